#include "core/tools/eval.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <vector>

#include "core/base/error.h"
#include "core/training/train_data.h"
#include "editing/image_io.h"
#include "editing/masks.h"
#include "editing/metrics.h"
#include "editing/random.h"
#include "editing/synth_sketch.h"

namespace dsk {

namespace fs = std::filesystem;

namespace {

struct Case {
  cv::Mat image;   // BGR 8-bit, size x size
  cv::Mat mask;    // CV_8U 0/255
  cv::Mat sketch;  // CV_32F stroke map (edges of the original)
  cv::Mat moved;   // the picture's own pixels 24-48 px away (the "shift" calibration)
  std::string source;
};

std::vector<std::pair<std::string, std::string>> list_pictures(const EvalOptions& o) {
  std::vector<std::pair<std::string, std::string>> files;  // (root, file)
  for (const auto& dir : o.image_dirs) {
    if (!fs::is_directory(dir)) throw InputError(dir + ": not a folder of images");
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file() || !edit::is_image_path(e.path().string())) continue;
      if (o.split != "all") {
        const bool val = is_validation(picture_key(dir, e.path().string()), o.val_fraction);
        if (val != (o.split == "val")) continue;
      }
      files.emplace_back(dir, e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The picture's pixels at `crop` moved 24-48 px in a seeded direction (turned back where it
// would leave the picture): a real texture of the same picture, not aligned with the crop. Its own
// generator, so the cases' crops and masks do not depend on it.
cv::Mat moved_crop(const cv::Mat& pic, const cv::Rect& crop, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x5DEECE66DULL);
  const double angle = edit::rnd::uniform(rng, 0.0, 2 * M_PI), dist = edit::rnd::uniform(rng, 24.0, 48.0);
  int dx = static_cast<int>(std::lround(dist * std::cos(angle))), dy = static_cast<int>(std::lround(dist * std::sin(angle)));
  if (crop.x + dx < 0 || crop.x + dx + crop.width > pic.cols) dx = -dx;
  if (crop.y + dy < 0 || crop.y + dy + crop.height > pic.rows) dy = -dy;
  const int x = std::clamp(crop.x + dx, 0, pic.cols - crop.width), y = std::clamp(crop.y + dy, 0, pic.rows - crop.height);
  return pic(cv::Rect(x, y, crop.width, crop.height)).clone();
}

// The calibration fills of the texture distance, which see the original: its own texture moved
// ("shift"), a Gaussian blur of sigma 2 px ("blur"), Gaussian noise of sigma 10 levels ("noise").
cv::Mat calibration_fill(const Case& c, const std::string& method, uint64_t seed) {
  cv::Mat fill;
  if (method == "shift") {
    fill = c.moved;
  } else if (method == "blur") {
    cv::GaussianBlur(c.image, fill, {0, 0}, 2.0);
  } else {
    cv::Mat noise(c.image.size(), CV_32FC3);
    cv::RNG(seed).fill(noise, cv::RNG::NORMAL, 0, 10);
    c.image.convertTo(fill, CV_32FC3);
    fill += noise;
    fill.convertTo(fill, CV_8UC3);
  }
  cv::Mat out = c.image.clone();
  fill.copyTo(out, c.mask > 127);
  return out;
}

std::vector<Case> make_cases(const EvalOptions& o) {
  if (o.split != "all" && o.split != "val" && o.split != "train") throw InputError("--split must be all, val or train");
  const auto files = list_pictures(o);
  std::vector<Case> cases;
  std::mt19937_64 rng(o.seed);
  // Opaque pictures at least `size` px; each used in turn, with a seeded crop.
  std::vector<cv::Mat> pictures;
  std::vector<std::string> names;
  for (const auto& [root, file] : files) {
    cv::Mat img;
    try {
      img = edit::read_image(file);
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (img.channels() == 4) {
      std::vector<cv::Mat> ch;
      cv::split(img, ch);
      double min_alpha;
      cv::minMaxLoc(ch[3], &min_alpha);
      if (min_alpha < (img.depth() == CV_16U ? 65535 : 255)) continue;  // objects on transparency: not photos
    }
    if (std::min(img.cols, img.rows) < o.size) continue;
    cv::Mat bgr;
    img.convertTo(bgr, CV_8U, img.depth() == CV_16U ? 1.0 / 257 : 1.0);
    if (bgr.channels() == 1) cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
    if (bgr.channels() == 4) cv::cvtColor(bgr, bgr, cv::COLOR_BGRA2BGR);
    // Large pictures are brought to at most 2x the crop size first, so a crop shows a scene.
    const double s = 2.0 * o.size / std::min(bgr.cols, bgr.rows);
    if (s < 1) cv::resize(bgr, bgr, cv::Size(), s, s, cv::INTER_AREA);
    pictures.push_back(bgr);
    names.push_back(fs::relative(file, root).string());
  }
  if (pictures.empty())
    throw InputError("no opaque pictures of at least " + std::to_string(o.size) + " px in the given folders (split " + o.split + ")");
  for (int i = 0; i < o.count; ++i) {
    const cv::Mat& pic = pictures[i % pictures.size()];
    const int x = edit::rnd::uniform_int(rng, 0, pic.cols - o.size), y = edit::rnd::uniform_int(rng, 0, pic.rows - o.size);
    Case c;
    c.image = pic(cv::Rect(x, y, o.size, o.size)).clone();
    c.mask = edit::eval_mask(o.size, o.size, o.seed * 1000003 + i, 0.1, 0.4);
    c.sketch = edit::canny_sketch(c.image);
    c.moved = moved_crop(pic, cv::Rect(x, y, o.size, o.size), o.seed * 1000003 + i);
    c.source = names[i % pictures.size()];
    cases.push_back(c);
  }
  return cases;
}

// The sketch as a user would draw it: black strokes on white paper.
cv::Mat sketch_layer(const cv::Mat& strokes) {
  cv::Mat layer;
  strokes.convertTo(layer, CV_8U, -255, 255);
  return layer;
}

struct Totals {
  std::map<std::string, double> sum;
  std::map<std::string, int> n;
  std::vector<edit::EdgeScore> edges;  // each crop's, for the pooled edge F1
  void add(const std::string& k, double v) {
    if (std::isfinite(v)) sum[k] += v, n[k]++;
  }
  double mean(const std::string& k) const { return n.count(k) ? sum.at(k) / n.at(k) : NAN; }
  // A positive ratio: averaged as its logarithm (geometric mean); 0 counts as 1e-6.
  void add_ratio(const std::string& k, double v) {
    add(k + "_arith", v);
    if (std::isfinite(v)) add(k + "_log", std::log(std::max(v, 1e-6)));
  }
  double geomean(const std::string& k) const { return std::exp(mean(k + "_log")); }
  std::map<std::string, std::vector<double>> samples;
  void add_sample(const std::string& k, double v) {
    if (std::isfinite(v)) samples[k].push_back(v);
  }
  double median(const std::string& k) const {
    if (!samples.count(k)) return NAN;
    auto v = samples.at(k);
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
};

// The human-readable summary: one row per method, then what the columns mean.
void print_eval_table(std::ostream& out, const EvalOptions& o, const std::vector<std::string>& methods,
                      const std::map<std::string, Totals>& totals, size_t count) {
  out << "\n"
      << std::left << std::setw(18) << "method" << std::right << std::setw(8) << "PSNR" << std::setw(8) << "SSIM"
      << std::setw(12) << "coarsePSNR" << std::setw(9) << "edgeF1" << std::setw(9) << "pooled" << std::setw(11)
      << "sharpness" << std::setw(9) << "texture" << std::setw(9) << "s/image" << "\n";
  for (const auto& m : methods) {
    const auto& t = totals.at(m);
    out << std::left << std::setw(18) << m << std::right << std::fixed << std::setprecision(2) << std::setw(8)
        << t.mean("psnr") << std::setprecision(3) << std::setw(8) << t.mean("ssim") << std::setprecision(2)
        << std::setw(12) << t.mean("coarse_psnr") << std::setprecision(3) << std::setw(9) << t.mean("edge_f1")
        << std::setw(9) << edit::pooled_edge_f1(t.edges).f1 << std::setw(11) << t.geomean("sharpness") << std::setw(9)
        << t.mean("texture") << std::setprecision(2) << std::setw(9) << t.mean("seconds") << "\n";
  }
  out << "(" << count << " crops of " << o.size << " px, seed " << o.seed << ", split " << o.split
      << "; inside the hole; sharpness: geometric mean, 1 = as detailed as the photo;\n"
      << " texture: distance of the gradient statistics from the photo's, mean; 0 = the same;\n"
      << " edgeF1: the mean of the crops' F1s; pooled: one F1 over all crops' pixels, where a crop with a\n"
      << " few sketch pixels weighs a few pixels)\n";
}

}  // namespace

nlohmann::json eval_inpaint(const EvalOptions& o, std::ostream& out) {
  if (o.count < 1 || o.size < 16) throw InputError("eval-inpaint: --count must be positive and --size at least 16");
  const auto cases = make_cases(o);
  std::vector<std::string> methods;
  if (!o.model.empty()) methods = {"model", "model-no-sketch"};
  const std::set<std::string> calibration = {"shift", "blur", "noise"};
  for (const auto& b : o.baselines)
    if (b != "telea" && b != "ns" && !calibration.count(b))
      throw InputError("--baselines takes telea, ns and the texture calibrations shift, blur, noise; got '" + b + "'");
  for (const auto& b : o.baselines) methods.push_back(b);
  if (!o.save_dir.empty()) fs::create_directories(o.save_dir);

  Engine engine;  // the model loaded once for every case
  std::map<std::string, Totals> totals;
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    for (const auto& m : methods) {
      const auto start = std::chrono::steady_clock::now();
      cv::Mat result;
      if (m == "telea" || m == "ns") {
        result = edit::inpaint_baseline(c.image, c.mask, m);
      } else if (calibration.count(m)) {
        result = calibration_fill(c, m, o.seed * 1000003 + i);
      } else {
        EditRequest req;
        req.model = o.model;
        req.sampling = o.sampling;
        req.sampling.seed = o.seed + i;
        req.image = c.image;
        req.mask = c.mask;
        if (m == "model") {
          req.sketch = sketch_layer(c.sketch);
          req.sketch_guidance = o.sketch_guidance;  // model-no-sketch has no sketch to be guided towards
        }
        req.sketch_scale = o.sketch_scale;
        req.detail = o.detail;
        req.init_strength = o.init_strength;
        req.harmonize = o.harmonize;
        req.refine_strength = o.refine_strength;
        req.refine_steps = o.refine_steps;
        req.refine_sketch_scale = o.refine_sketch_scale;
        result = engine.edit(req).images.at(0);
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto s = edit::score_inpaint(result, c.image, c.mask, c.sketch);
      auto& t = totals[m];
      t.add("psnr", s.psnr), t.add("ssim", s.ssim), t.add("coarse_psnr", s.coarse_psnr);
      t.add("edge_f1", s.edge.f1), t.add_ratio("sharpness", s.sharpness), t.add("seconds", seconds);
      t.add("texture", s.texture), t.add_sample("texture", s.texture);
      t.edges.push_back(s.edge);
      rows.push_back({{"case", i}, {"source", c.source}, {"method", m}, {"psnr", s.psnr}, {"ssim", s.ssim},
                      {"coarse_psnr", s.coarse_psnr}, {"edge_f1", s.edge.f1}, {"sketch_px", s.edge.sketch_px},
                      {"edge_px", s.edge.edge_px}, {"sharpness", s.sharpness},
                      {"texture", s.texture}, {"seconds", seconds}});
      if (!o.save_dir.empty()) edit::write_image(o.save_dir + "/case" + std::to_string(i) + "-" + m + ".png", result);
    }
    if (!o.save_dir.empty()) {
      edit::write_image(o.save_dir + "/case" + std::to_string(i) + "-input.png", c.image);
      edit::write_image(o.save_dir + "/case" + std::to_string(i) + "-mask.png", c.mask);
      edit::write_image(o.save_dir + "/case" + std::to_string(i) + "-sketch.png", sketch_layer(c.sketch));
    }
    if (!o.json) out << "\rcase " << i + 1 << "/" << cases.size() << std::flush;
  }
  nlohmann::json summary = {{"count", cases.size()}, {"size", o.size}, {"seed", o.seed}, {"split", o.split},
                            {"model", o.model}, {"detail", detail_mode_name(o.detail)}, {"init_strength", o.init_strength},
                            {"refine_strength", o.refine_strength}, {"refine_steps", o.refine_steps}, {"refine_sketch_scale", o.refine_sketch_scale}, {"harmonize", o.harmonize}, {"methods", nlohmann::json::object()}};
  if (o.sketch_guidance.scale > 0)
    summary["sketch_guidance"] = {{"scale", o.sketch_guidance.scale},
                                  {"mode", o.sketch_guidance.exact ? "exact" : "cheap"},
                                  {"features", o.sketch_guidance.features}};
  for (const auto& m : methods) {
    const auto& t = totals[m];
    summary["methods"][m] = {{"psnr", t.mean("psnr")},       {"ssim", t.mean("ssim")},
                             {"coarse_psnr", t.mean("coarse_psnr")}, {"edge_f1", t.mean("edge_f1")},
                             {"edge_f1_pooled", edit::pooled_edge_f1(t.edges).f1},
                             {"sharpness", t.geomean("sharpness")}, {"sharpness_arith", t.mean("sharpness_arith")},
                             {"texture", t.mean("texture")}, {"texture_median", t.median("texture")},
                             {"seconds", t.mean("seconds")}};
  }
  if (o.json) out << nlohmann::json({{"summary", summary}, {"cases", rows}}).dump(2) << "\n";
  else print_eval_table(out, o, methods, totals, cases.size());
  return summary;
}

}  // namespace dsk
