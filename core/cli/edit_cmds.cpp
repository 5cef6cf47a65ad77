// edit, generate, interpolate, models list.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "core/base/error.h"
#include "core/cli/commands.h"
#include "core/cli/sampling_flags.h"
#include "core/engine/engine.h"
#include "core/formats/model_registry.h"
#include "core/tools/eval.h"
#include <opencv2/imgproc.hpp>

#include "editing/image_io.h"
#include "editing/masks.h"
#include "editing/metrics.h"

namespace dsk::cli {

namespace fs = std::filesystem;

namespace {


// input | sketch | mask | result | Telea, side by side, 8-bit BGR.
cv::Mat compare_strip(const cv::Mat& image, const cv::Mat& sketch, const cv::Mat& mask, const cv::Mat& result) {
  auto bgr8 = [&](const cv::Mat& m) {
    cv::Mat out;
    m.convertTo(out, CV_8U, m.depth() == CV_16U ? 1.0 / 257 : 1.0);
    if (out.channels() == 1) cv::cvtColor(out, out, cv::COLOR_GRAY2BGR);
    if (out.channels() == 4) cv::cvtColor(out, out, cv::COLOR_BGRA2BGR);
    if (out.size() != image.size()) cv::resize(out, out, image.size(), 0, 0, cv::INTER_AREA);
    return out;
  };
  cv::Mat sketch_view = sketch.empty() ? cv::Mat(image.size(), CV_8UC3, cv::Scalar::all(255)) : bgr8(sketch);
  cv::Mat binary = edit::binary_mask(edit::soft_mask_from_image(mask));
  cv::Mat telea = edit::inpaint_baseline(bgr8(image), binary, "telea");
  cv::Mat strip;
  cv::hconcat(std::vector<cv::Mat>{bgr8(image), sketch_view, bgr8(mask), bgr8(result), telea}, strip);
  return strip;
}

// The folders a command creates for its output: made (and checked writable) before the work, so
// that an unwritable output fails in a second, not after the computation; removed again (when
// still empty) unless the results were written.
class OutputFolder {
 public:
  explicit OutputFolder(const fs::path& dir) {
    if (dir.empty()) return;
    std::vector<fs::path> missing;
    for (fs::path d = fs::absolute(dir); !d.empty() && !fs::exists(d); d = d.parent_path()) {
      missing.push_back(d);
      if (d == d.parent_path()) break;
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    created_.assign(missing.begin(), missing.end());  // deepest first
    if (ec || !fs::is_directory(dir))
      throw InputError("cannot create the output folder " + dir.string() + (ec ? ": " + ec.message() : "") +
                       "; choose another --out");
    const fs::path probe = dir / (".diffsketch-write-test-" + std::to_string(::getpid()));
    {
      std::ofstream test(probe);
      if (!test) {
        remove_created();
        throw InputError("the output folder " + dir.string() + " is not writable; choose another --out");
      }
    }
    fs::remove(probe, ec);
  }
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;
  ~OutputFolder() {
    if (!keep_) remove_created();
  }
  void keep() { keep_ = true; }

 private:
  void remove_created() {
    std::error_code ec;
    for (const auto& d : created_) fs::remove(d, ec);  // fails (and stays) when not empty
    created_.clear();
  }
  std::vector<fs::path> created_;
  bool keep_ = false;
};

// Checks an --out PNG path and prepares its folder.
std::unique_ptr<OutputFolder> check_out(const std::string& out) {
  if (fs::path(out).extension() != ".png") throw InputError("--out " + out + ": results are written as PNG; name it *.png");
  return std::make_unique<OutputFolder>(fs::path(out).parent_path());
}

ProgressFn progress_line() {
  return [](const Progress& p) {
    std::cerr << "\rstep " << p.step << "/" << p.total << std::flush;
    if (p.step >= p.total) std::cerr << "\n";
  };
}

// Writes each result as OUT.png or OUT-1.png, OUT-2.png, ...; returns the paths.
// All or none (edit::write_images).
std::vector<std::string> write_results(const EditResult& r, const std::string& out) {
  std::vector<std::string> paths;
  for (size_t i = 0; i < r.images.size(); ++i) paths.push_back(numbered(out, i, r.images.size()));
  edit::write_images(paths, r.images);
  return paths;
}

void report(const EditResult& r, const std::vector<std::string>& paths, double seconds) {
  for (const auto& w : r.warnings) std::cerr << "diffsketch: warning: " << w << "\n";
  for (size_t i = 0; i < paths.size(); ++i) std::cout << paths[i] << "  (seed " << r.seeds[i] << ")\n";
  std::cerr << "done in " << seconds << " s\n";
}

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void add_strength_flags(CLI::App* cmd, double& init_strength, double& refine_strength, int& refine_steps,
                        double& harmonize) {
  cmd->add_option("--init-strength", init_strength,
                  "1: the hole starts from noise; below 1 (e.g. 0.8) from a smooth fill of the hole noised to that "
                  "fraction of the process (colours follow the surroundings)")
      ->capture_default_str();
  cmd->add_option("--refine-strength", refine_strength,
                  "how far each refinement tile is re-noised (fraction of the process; lower keeps the coarse result)")
      ->capture_default_str();
  cmd->add_option("--refine-steps", refine_steps,
                  "denoising steps each refinement tile takes back from there (--steps sets the coarse pass)")
      ->capture_default_str();
  cmd->add_option("--harmonize", harmonize,
                  "colour matching to the surroundings, 0..1: the smoothest correction that makes the result meet the "
                  "real pixels along the selection's edge (0 = the model's colours)")
      ->capture_default_str();
}

// `diffsketch edit`.
void register_edit_command(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("edit", "regenerate the masked part of an image, following a sketch");
  static EditRequest req;
  static std::string image, mask, sketch, out;
  static DetailFlag detail;
  static std::string compare;
  cmd->add_option("--model", req.model, "model folder or id (editing-unet, or adm-unet with known-region blending)")->required();
  cmd->add_option("--image", image, "the picture (any format OpenCV reads, 8/16-bit, gray/RGB/RGBA)")->required();
  cmd->add_option("--mask", mask, "the selection: white = regenerate, same size as the image")->required();
  cmd->add_option("--sketch", sketch, "sketch: dark strokes on light paper or opaque strokes on transparency");
  cmd->add_option("--sketch-scale", req.sketch_scale, "sketch strength: 0 ignore, 1 plain, > 1 follow harder")->capture_default_str();
  cmd->add_option("--variants", req.variants, "results with seeds S, S+1, ... (OUT-1.png, ...)")->capture_default_str();
  cmd->add_option("--context-margin", req.context_margin, "context around the selection, fraction of its size")->capture_default_str();
  cmd->add_option("--feather", req.feather, "feather width inside the selection, px")->capture_default_str();
  cmd->add_option("--repaint-jumps", req.repaint_jumps, "RePaint resampling passes (adm-unet models)")->capture_default_str();
  cmd->add_option("--repaint-length", req.repaint_length, "RePaint jump length, steps")->capture_default_str();
  detail.add(cmd);
  add_strength_flags(cmd, req.init_strength, req.refine_strength, req.refine_steps, req.harmonize);
  cmd->add_option("--refine-sketch-scale", req.refine_sketch_scale,
                  "sketch strength in the refinement tiles (--detail tiles); -1 = --sketch-scale, 1 = the sketch's "
                  "guidance in the coarse pass only")
      ->capture_default_str();
  cmd->add_option("--compare", compare, "also write input | sketch | mask | result | Telea side by side (PNG)");
  cmd->add_option("--out", out, "result PNG")->required();
  add_sampling_flags(cmd, req.sampling);
  add_sketch_guidance_flags(cmd, req.sketch_guidance);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    check_sketch_guidance(req.sketch_guidance);
    const auto out_folder = check_out(out);
    std::unique_ptr<OutputFolder> compare_folder;
    if (!compare.empty()) {  // checked before the work, so that nothing is overwritten after it
      compare_folder = check_out(compare);
      for (int v = 0; v < std::max(1, req.variants); ++v)
        if (fs::weakly_canonical(compare) == fs::weakly_canonical(numbered(out, v, std::max(1, req.variants))))
          throw InputError("--compare " + compare + " is also a result's file; give it another name");
    }
    const auto start = std::chrono::steady_clock::now();
    req.image = edit::read_image(image);
    req.mask = edit::read_image(mask);
    if (!sketch.empty()) req.sketch = edit::read_image(sketch);
    req.detail = detail.mode();
    auto r = Engine().edit(req, progress_line());
    auto paths = write_results(r, out);
    if (!compare.empty()) {
      edit::write_image(compare, compare_strip(req.image, req.sketch, req.mask, r.images[0]));
      paths.push_back(compare);
      r.seeds.push_back(r.seeds[0]);
      compare_folder->keep();
    }
    out_folder->keep();
    report(r, paths, since(start));
    return 0;
  });
}

// `diffsketch generate`.
void register_generate(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("generate", "synthesise a whole image from a sketch (editing models)");
  static GenerateRequest req;
  static std::string sketch, out;
  cmd->add_option("--model", req.model, "model folder or id (editing-unet)")->required();
  cmd->add_option("--sketch", sketch, "the sketch; its size is the output size unless --width/--height");
  cmd->add_option("--width", req.width);
  cmd->add_option("--height", req.height);
  cmd->add_option("--sketch-scale", req.sketch_scale)->capture_default_str();
  cmd->add_option("--variants", req.variants)->capture_default_str();
  cmd->add_option("--out", out, "result PNG")->required();
  add_sampling_flags(cmd, req.sampling);
  add_sketch_guidance_flags(cmd, req.sketch_guidance);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    check_sketch_guidance(req.sketch_guidance);
    const auto out_folder = check_out(out);
    const auto start = std::chrono::steady_clock::now();
    if (!sketch.empty()) req.sketch = edit::read_image(sketch);
    auto r = Engine().generate(req, progress_line());
    auto paths = write_results(r, out);
    out_folder->keep();
    report(r, paths, since(start));
    return 0;
  });
}

// `diffsketch interpolate`.
void register_interpolate(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("interpolate", "frames between the samples of two seeds (x_T interpolation)");
  static InterpolateRequest req;
  static std::string sketch, seeds, mode{kDefaultInterpolationMode}, out;
  cmd->add_option("--model", req.generate.model)->required();
  cmd->add_option("--sketch", sketch);
  cmd->add_option("--width", req.generate.width);
  cmd->add_option("--height", req.generate.height);
  cmd->add_option("--sketch-scale", req.generate.sketch_scale)->capture_default_str();
  cmd->add_option("--seeds", seeds, "A,B")->required();
  cmd->add_option("--frames", req.frames, "frames including both end points")->capture_default_str();
  cmd->add_option("--mode", mode, "slerp, linear or trig")->capture_default_str();
  cmd->add_option("--out", out, "output folder (frame-01.png, ...)")->required();
  add_sampling_flags(cmd, req.generate.sampling);
  add_sketch_guidance_flags(cmd, req.generate.sketch_guidance);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    check_sketch_guidance(req.generate.sketch_guidance);
    const auto comma = seeds.find(',');
    try {
      if (comma == std::string::npos) throw std::invalid_argument(seeds);
      req.seed_a = std::stoull(seeds.substr(0, comma));
      req.seed_b = std::stoull(seeds.substr(comma + 1));
    } catch (const std::exception&) {
      throw InputError("--seeds '" + seeds + "' must be two seeds A,B");
    }
    req.mode = edit::parse_interp_mode(mode);
    const auto start = std::chrono::steady_clock::now();
    if (!sketch.empty()) req.generate.sketch = edit::read_image(sketch);
    OutputFolder out_folder(out);
    auto r = Engine().interpolate(req, progress_line());
    std::vector<std::string> paths;
    for (size_t i = 0; i < r.images.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "frame-%02zu.png", i + 1);
      paths.push_back((fs::path(out) / name).string());
    }
    edit::write_images(paths, r.images);
    out_folder.keep();
    report(r, paths, since(start));
    return 0;
  });
}

// `diffsketch eval-inpaint`.
void register_eval_inpaint(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("eval-inpaint", "inpainting quality inside the hole: model vs OpenCV baselines");
  static EvalOptions o;
  static std::string baselines = "telea,ns";
  cmd->add_option("--model", o.model, "model folder or id (omit to score only the baselines)");
  cmd->add_option("--images", o.image_dirs, "folders of pictures (repeatable)")->required();
  cmd->add_option("--count", o.count, "crops")->capture_default_str();
  cmd->add_option("--size", o.size, "crop side, px")->capture_default_str();
  cmd->add_option("--baselines", baselines, "telea,ns (or empty); calibrations of the texture distance, which see the original: shift (its own pixels moved 24-48 px), blur (sigma 2), noise (sigma 10)")->capture_default_str();
  cmd->add_option("--split", o.split, "all, or val / train of a training data folder (by picture)")->capture_default_str();
  cmd->add_option("--val-fraction", o.val_fraction)->capture_default_str();
  cmd->add_option("--sketch-scale", o.sketch_scale)->capture_default_str();
  cmd->add_option("--save", o.save_dir, "write each case's images here");
  cmd->add_flag("--json", o.json);
  static DetailFlag detail;
  detail.add(cmd);
  add_strength_flags(cmd, o.init_strength, o.refine_strength, o.refine_steps, o.harmonize);
  cmd->add_option("--refine-sketch-scale", o.refine_sketch_scale, "as edit's")->capture_default_str();
  add_sampling_flags(cmd, o.sampling);
  add_sketch_guidance_flags(cmd, o.sketch_guidance);
  cmd->get_option("--seed")->description("seed of the crops, masks and sampling");
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    check_sketch_guidance(o.sketch_guidance);
    o.seed = o.sampling.seed;
    o.detail = detail.mode();
    o.baselines.clear();
    std::stringstream ss(baselines);
    std::string b;
    while (std::getline(ss, b, ','))
      if (!b.empty()) o.baselines.push_back(b);
    eval_inpaint(o, std::cout);
    return 0;
  });
}

}  // namespace

void register_edit(CLI::App& app, Runners& runners) {
  register_edit_command(app, runners);
  register_generate(app, runners);
  register_interpolate(app, runners);
  register_eval_inpaint(app, runners);
}

}  // namespace dsk::cli
