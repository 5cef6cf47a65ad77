#include "core/tools/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/device/cpu_kernels.h"
#include "core/device/precision.h"
#include "core/engine/engine.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_info.h"
#include "core/formats/model_registry.h"
#include "core/formats/presets.h"
#include "core/tools/conformance.h"
#include "editing/image_io.h"

namespace dsk {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void sync(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

template <class Fn>
std::vector<double> time_ms(int warmup, int iters, torch::Device device, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  sync(device);
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    sync(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return ms;
}

nlohmann::json bench_flags(const BenchOptions& o, std::string& label) {
  if (!o.preset.empty() == !o.config.empty()) throw InputError("bench: give exactly one of --preset NAME or --config FILE");
  if (!o.preset.empty()) {
    const auto& p = find_preset(o.preset);
    if (p.kind != ModelKind::AdmUnet) throw InputError("bench: preset " + o.preset + " is not a U-Net");
    label = o.preset;
    return p.flags;
  }
  std::ifstream in(o.config);
  if (!in) throw InputError(o.config + ": cannot open");
  try {
    auto j = nlohmann::json::parse(in);
    label = o.config;
    return j.contains("flags") ? j["flags"] : j;
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(o.config + ": invalid JSON (" + e.what() + ")");
  }
}

// `bench --json`: the results, the network's resolved flags (guided-diffusion's names: what
// tests/tools/bench_reference_forward.py builds the reference from) and the threads.
void write_bench_json(const std::string& path, const std::string& label, torch::Device device, int batch,
                      const UNetConfig& cfg, int64_t parameters, const BenchResult& r) {
  auto flags = to_json(cfg);
  std::string mults;
  for (double m : cfg.channel_mults()) {
    std::ostringstream one;
    one << m;
    mults += (mults.empty() ? "" : ",") + one.str();
  }
  flags["channel_mult"] = mults;  // resolved, as create_model derives it from the size
  const nlohmann::json j = {{"label", label},
                            {"device", device.is_cuda() ? "cuda" : "cpu"},
                            {"threads", torch::get_num_threads()},
                            {"batch", batch},
                            {"timestep", 500},
                            {"flags", flags},
                            {"parameters", parameters},
                            {"gflop_per_forward", r.gflop_per_forward},
                            {"precisions", r.precisions},
                            {"forward_ms_median", r.forward_ms_median},
                            {"forward_ms", r.forward_ms},
                            {"gemm_gflops", r.gemm_gflops},
                            {"cpu_kernels", describe(cpu_kernels())}};
  std::ofstream f(path);
  if (!(f << j.dump(2) << "\n")) throw InputError(path + ": cannot write the results (check the folder exists and is writable)");
}

// bench-edit's table: the settings, then one line per configuration against the first.
void print_edit_bench(std::ostream& out, const EditBenchOptions& o, const EditRequest& base, int side,
                      const EditBenchResult& r) {
  out << "edit of a " << o.size << "x" << o.size << " selection (in a " << side << " px picture), model " << o.model
      << ", sketch strength " << base.sketch_scale << ", init strength " << base.init_strength << ", ";
  const bool tiles = std::count(o.details.begin(), o.details.end(), DetailMode::Tiles) > 0;
  if (o.details.size() == 1) out << "detail " << detail_mode_name(o.details[0]) << ", ";
  if (tiles) out << "tiles' refine strength " << base.refine_strength << " in " << base.refine_steps << " step(s), ";
  out << "harmonize " << base.harmonize << ", " << torch::get_num_threads() << " thread(s), " << o.iters
      << " runs each, interleaved:\n";
  for (size_t c = 0; c < r.configs.size(); ++c) {
    const auto& rc = r.configs[c];
    out << "  " << std::left << std::setw(8) << rc.sampler << std::right << std::setw(4) << rc.steps << " steps, "
        << rc.precision;
    if (o.details.size() > 1) out << ", detail " << detail_mode_name(rc.detail);
    if (rc.detail == DetailMode::Tiles) {
      std::ostringstream scale;
      scale << rc.refine_sketch_scale;  // as given: 2, 1.5
      out << ", tiles' sketch strength " << scale.str();
    }
    out << ": " << std::fixed << std::setprecision(2) << "median " << rc.seconds_median << " s, min " << rc.seconds_min
        << " s; " << rc.unet_evaluations << " U-Net evaluations per edit";
    if (c > 0) out << "; " << r.configs[0].seconds_median / rc.seconds_median << "x the speed of the first";
    out << "\n";
  }
}

}  // namespace

BenchResult run_bench(const BenchOptions& o, std::ostream& out) {
  configure_threads();
  if (o.iters < 1 || o.batch < 1) throw InputError("bench: --iters and --batch must be positive");
  if (!o.json_path.empty()) {
    const auto folder = std::filesystem::absolute(o.json_path).parent_path();
    if (!std::filesystem::is_directory(folder))
      throw InputError("bench: --json " + o.json_path + ": the folder " + folder.string() + " does not exist; create it first");
  }
  const auto device = resolve_device(o.device);
  std::string label;
  const auto cfg = unet_config_from_flags(bench_flags(o, label), label);
  torch::NoGradGuard no_grad;
  UNetModel net(cfg);
  net->eval();
  net->to(device);
  if (cfg.use_fp16 && device.is_cuda()) net->convert_to_fp16();

  const auto opts = torch::TensorOptions().device(device);
  auto x = torch::randn({o.batch, cfg.in_channels, cfg.image_size, cfg.image_size}, opts);
  auto t = torch::full({o.batch}, 500, opts.dtype(torch::kInt64));
  auto y = cfg.class_cond ? torch::zeros({o.batch}, opts.dtype(torch::kInt64)) : torch::Tensor();

  BenchResult r;
  {
    FlopCount count;
    net(x, t, y);
    r.gflop_per_forward = count.flops() / 1e9;
  }
  // Each configuration (precision x memory format) in turn within every iteration, so that a
  // machine's drift hits all alike.
  std::vector<torch::Dtype> dtypes;
  std::vector<bool> channels_last;
  for (const auto& p : o.precisions) {
    const auto resolved = inference_precision(device, p == "auto" ? std::getenv("DSK_PRECISION") : p.c_str(), cpu_kernels());
    for (const auto& f : o.memory_formats) {
      dtypes.push_back(resolved.dtype);
      channels_last.push_back(f == "channels-last");
      r.precisions.push_back(std::string(resolved.dtype == torch::kBFloat16 ? "bf16" : "fp32") +
                             (o.memory_formats.size() > 1 ? " " + f : ""));
    }
  }
  // The convolutions' weights and the input in either layout (the layers' outputs follow the input's).
  auto use_layout = [&](bool last) {
    const auto format = last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    for (auto& p : net->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(format));
    x = x.contiguous(format);
  };
  std::vector<std::vector<double>> ms(dtypes.size());
  for (int i = 0; i < o.warmup + o.iters; ++i)
    for (size_t c = 0; c < dtypes.size(); ++c) {
      net->set_cpu_inference_dtype(dtypes[c]);
      if (o.memory_formats.size() > 1) use_layout(channels_last[c]);
      const auto one = time_ms(0, 1, device, [&] { net(x, t, y); });
      if (i >= o.warmup) ms[c].push_back(one[0]);
    }
  r.forward_ms = ms;
  for (const auto& m : ms) {
    r.forward_ms_median.push_back(median(m));
    r.forward_gflops.push_back(r.gflop_per_forward / (r.forward_ms_median.back() / 1e3));
  }

  const int n = o.gemm_size;
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  double gemm_ms = 0;
  {
    // The GEMM on as many threads as the forward (OpenBLAS is otherwise held to one, so that its
    // pool does not spin beside LibTorch's: configure_threads).
    ScopedBlasThreads blas;
    gemm_ms = median(time_ms(2, 10, device, [&] { torch::mm(a, b); }));
  }
  r.gemm_gflops = 2.0 * n * n * n / 1e9 / (gemm_ms / 1e3);

  out << std::fixed << std::setprecision(2) << "bench " << label << " on " << (device.is_cuda() ? "cuda" : "cpu") << ", "
      << torch::get_num_threads() << " threads, batch " << o.batch << ", " << cfg.image_size << " px, "
      << parameter_count(*net) / 1e6 << " M parameters, " << r.gflop_per_forward << " GFLOP per forward\n";
  for (size_t c = 0; c < ms.size(); ++c) {
    out << "  U-Net forward, " << r.precisions[c] << ": median " << r.forward_ms_median[c] << " ms of " << o.iters
        << " (after " << o.warmup << " warm-up) -> " << r.forward_gflops[c] << " GFLOP/s";
    if (c > 0) out << "; " << r.forward_ms_median[0] / r.forward_ms_median[c] << "x the speed of the first";
    out << "\n";
  }
  out << "  backends: oneDNN (mkldnn) " << (at::hasMKLDNN() ? "yes" : "no") << ", OpenMP "
      << (at::hasOpenMP() ? "yes" : "no") << ", LAPACK " << (at::hasLAPACK() ? "yes" : "no") << "\n"
      << "  CPU kernels: " << describe(cpu_kernels()) << "\n"
      << "  GEMM " << n << "x" << n << " float32, " << torch::get_num_threads() << " threads"
      << (device.is_cpu() && !ScopedBlasThreads::available() ? " (BLAS thread count not settable)" : "") << ": "
      << r.gemm_gflops << " GFLOP/s; the first forward reaches "
      << 100.0 * r.forward_gflops[0] / r.gemm_gflops << "% of it\n";
  if (!o.json_path.empty()) write_bench_json(o.json_path, label, device, o.batch, cfg, parameter_count(*net), r);
  return r;
}

EditBenchResult run_edit_bench(const EditBenchOptions& o, std::ostream& out) {
  if (o.size < 16 || o.size > 4096) throw InputError("bench-edit: --size must be in 16..4096 px");
  if (o.iters < 1 || o.warmup < 0) throw InputError("bench-edit: --iters must be positive, --warmup not negative");
  const size_t configs = std::max(
      {o.steps.size(), o.samplers.size(), o.precisions.size(), o.details.size(), o.refine_sketch_scales.size()});
  auto fits = [configs](size_t n) { return n == configs || n == 1; };
  if (configs == 0 || !fits(o.steps.size()) || !fits(o.samplers.size()) || !fits(o.precisions.size()) ||
      !fits(o.details.size()) || !(o.refine_sketch_scales.empty() || fits(o.refine_sketch_scales.size())))
    throw InputError("bench-edit: give --steps, --sampler, --precision, --detail and --refine-sketch-scale one value "
                     "each, or lists of the same length (one configuration per entry)");
  // Each configuration's precision, applied as DSK_PRECISION (the engine reads it when it hands out a model).
  const char* setting = std::getenv("DSK_PRECISION");
  const std::string user_setting = setting ? setting : "";
  std::vector<std::string> settings;
  for (const auto& p : o.precisions) {
    settings.push_back(p == "auto" ? user_setting : p);
    inference_precision(resolve_device(o.device), settings.back().c_str(), cpu_kernels());  // refused before timing
  }
  auto use_precision = [&](size_t c) {
    const std::string& v = settings[settings.size() == 1 ? 0 : c];
    if (v.empty()) unsetenv("DSK_PRECISION");
    else setenv("DSK_PRECISION", v.c_str(), 1);
  };
  for (int steps : o.steps)
    if (!kStepsRange.contains(steps)) throw InputError("bench-edit: --steps must be in " + range_text(kStepsRange));
  // A picture with structure around the hole (gradient, discs, stripes) and a sketch inside it.
  const int side = 2 * o.size;
  cv::Mat image(side, side, CV_8UC3);
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x)
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(60 + 120 * y / side), static_cast<uchar>(90 + (x / 16 % 2) * 40),
                                            static_cast<uchar>(200 - 100 * x / side));
  for (int k = 0; k < 6; ++k)
    cv::circle(image, {side * (k + 1) / 7, side / 4 + (k % 3) * side / 4}, side / 12, cv::Scalar(40 * k, 200 - 30 * k, 90), cv::FILLED);
  const cv::Rect hole(o.size / 2, o.size / 2, o.size, o.size);
  cv::Mat mask = cv::Mat::zeros(side, side, CV_8U);
  mask(hole).setTo(255);
  cv::Mat sketch(side, side, CV_8U, cv::Scalar(255));
  cv::ellipse(sketch, {side / 2, side / 2}, {o.size / 3, o.size / 4}, 20, 0, 360, cv::Scalar(0), std::max(1, side / 256));
  cv::line(sketch, {hole.x, hole.y + o.size * 3 / 4}, {hole.x + o.size, hole.y + o.size / 2}, cv::Scalar(0), std::max(1, side / 256));

  EditRequest base;
  base.model = o.model;
  base.image = image;
  base.mask = mask;
  base.sketch = sketch;
  base.sampling.device = o.device;
  if (o.init_strength >= 0) base.init_strength = o.init_strength;
  if (o.refine_strength >= 0) base.refine_strength = o.refine_strength;
  if (o.refine_steps >= 0) base.refine_steps = o.refine_steps;
  if (o.harmonize >= 0) base.harmonize = o.harmonize;
  if (o.sketch_scale >= 0) base.sketch_scale = o.sketch_scale;
  std::vector<EditRequest> reqs(configs, base);
  EditBenchResult r;
  r.configs.resize(configs);
  Engine engine;
  for (size_t c = 0; c < configs; ++c) {
    reqs[c].sampling.steps = o.steps.size() == 1 ? o.steps[0] : o.steps[c];
    reqs[c].sampling.sampler = o.samplers.size() == 1 ? o.samplers[0] : o.samplers[c];
    r.configs[c].steps = reqs[c].sampling.steps;
    r.configs[c].sampler = reqs[c].sampling.sampler;
    reqs[c].detail = r.configs[c].detail = o.details.size() == 1 ? o.details[0] : o.details[c];
    if (!o.refine_sketch_scales.empty())
      reqs[c].refine_sketch_scale = o.refine_sketch_scales[o.refine_sketch_scales.size() == 1 ? 0 : c];
    r.configs[c].refine_sketch_scale = reqs[c].refine_sketch_scale < 0 ? reqs[c].sketch_scale : reqs[c].refine_sketch_scale;
    use_precision(c);
    r.configs[c].precision = inference_precision(resolve_device(o.device)).dtype == torch::kBFloat16 ? "bf16" : "fp32";
    ProgressFn count = [&r, c](const Progress& p) { r.configs[c].unet_evaluations = p.total; };
    engine.edit(reqs[c], count);  // loads the model (the engine keeps it) and counts the evaluations
  }
  std::vector<std::vector<double>> s(configs);
  for (int i = 0; i < o.warmup + o.iters; ++i)
    for (size_t c = 0; c < configs; ++c) {
      const auto start = std::chrono::steady_clock::now();
      reqs[c].sampling.seed = static_cast<uint64_t>(i);
      use_precision(c);
      engine.edit(reqs[c]);
      if (i >= o.warmup) s[c].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  for (size_t c = 0; c < configs; ++c) {
    r.configs[c].seconds_median = median(s[c]);
    r.configs[c].seconds_min = *std::min_element(s[c].begin(), s[c].end());
  }
  print_edit_bench(out, o, base, side, r);
  if (user_setting.empty()) unsetenv("DSK_PRECISION");
  else setenv("DSK_PRECISION", user_setting.c_str(), 1);
  return r;
}

void run_model_solver_bench(const ModelSolverBenchOptions& o, std::ostream& out) {
  if (o.sketch.empty()) throw InputError("bench-solvers --model needs --sketch PNG (the sketch to generate from)");
  if (o.variants < 1 || !kVariantsRange.contains(o.variants))
    throw InputError("bench-solvers: --variants must be in " + range_text(kVariantsRange));
  check_solver_bench_options(o.nfes, o.samplers);
  Engine engine;
  const int size = read_model_info(resolve_model(o.model)).resolution;
  GenerateRequest base;
  base.model = o.model;
  base.sketch = edit::read_image(o.sketch);
  base.width = base.height = size;
  base.sketch_scale = 1.0;
  base.variants = o.variants;
  base.sampling.device = o.device;
  base.sampling.seed = 0;
  auto run = [&](const std::string& sampler, int steps) {
    GenerateRequest req = base;
    req.sampling.sampler = sampler;
    req.sampling.steps = steps;
    const auto result = engine.generate(req);
    std::vector<cv::Mat> images;
    for (const auto& m : result.images) {  // to the model's [-1, 1]
      const double scale = m.depth() == CV_8U ? 1.0 / 255 : m.depth() == CV_16U ? 1.0 / 65535 : 1.0;
      cv::Mat f;
      m.convertTo(f, CV_64F, 2 * scale, -1.0);
      images.push_back(f);
    }
    return images;
  };
  auto relative_error = [](const std::vector<cv::Mat>& a, const std::vector<cv::Mat>& b) {
    double diff = 0, ref = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      diff += std::pow(cv::norm(a[k], b[k], cv::NORM_L2), 2);
      ref += std::pow(cv::norm(b[k], cv::NORM_L2), 2);
    }
    return std::sqrt(diff / ref);
  };
  const int full = kStepsRange.max;
  const auto reference = run("ddim", full);
  out << "bench-solvers: model " << o.model << " (" << size << " px), sketch " << o.sketch << ", " << o.variants
      << " seeds, sketch strength 1; relative error (8-bit images in [-1, 1]) against DDIM over " << full
      << " steps from the same x_T\n";
  out << std::left << std::setw(6) << "NFE";
  for (const auto& name : o.samplers) out << std::setw(12) << name;
  out << "\n";
  for (int n : o.nfes) {
    out << std::setw(6) << n;
    for (const auto& name : o.samplers)
      out << std::setw(12) << std::scientific << std::setprecision(3) << relative_error(run(name, n), reference);
    out << "\n" << std::flush;
  }
}

}  // namespace dsk
