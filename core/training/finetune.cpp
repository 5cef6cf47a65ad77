#include "core/training/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <optional>
#include <random>

#include "core/base/error.h"
#include "core/base/limits.h"
#include "core/diffusion/sketch_loss.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_registry.h"
#include "core/formats/safetensors.h"
#include "core/formats/tensor_io.h"
#include "core/training/distributed.h"
#include "core/training/train_data.h"
#include "core/training/train_loop.h"
#include "core/training/train_state.h"
#include "editing/image_io.h"
#include "editing/sketch.h"

#include <opencv2/imgproc.hpp>

namespace dsk {

namespace fs = std::filesystem;
using torch::Tensor;

// A collective that waits longer than this for another rank ends the run (that rank died). An
// iteration runs T evaluations forward and T backward: this leaves room for slow ones.
constexpr int kFinetuneRankTimeoutSeconds = 900;

// ---------------------------------------------------------------------------------------------
// The chain

Tensor ddim_chain_step(const Schedule& schedule, const Predictor& predict, const Tensor& x, int index) {
  return ddim_step(schedule, x, index, predict(x, index), 0.0, Tensor());
}

double chain_backward(const Schedule& schedule, const Predictor& predict, const Tensor& x_T,
                      const std::function<Tensor(const Tensor&)>& loss, bool recompute, Tensor* grad_x_T,
                      double scale, const std::function<void()>& before_last_pass) {
  const WithoutOneDnn no_onednn;
  const int n = schedule.size();
  if (!recompute) {
    Tensor x = x_T.detach().requires_grad_(grad_x_T != nullptr);
    const Tensor start = x;
    for (int i = n - 1; i >= 0; --i) x = ddim_chain_step(schedule, predict, x, i);
    Tensor l = loss(x);
    if (before_last_pass) before_last_pass();
    (l * scale).backward();
    if (grad_x_T) *grad_x_T = start.grad();
    return l.item<double>();
  }
  // Forward without a graph, keeping each step's input (T small tensors).
  std::vector<Tensor> inputs;
  inputs.reserve(n);
  Tensor x = x_T.detach();
  {
    torch::NoGradGuard no_grad;
    for (int i = n - 1; i >= 0; --i) {
      inputs.push_back(x);
      x = ddim_chain_step(schedule, predict, x, i);
    }
  }
  Tensor x0 = x.detach().requires_grad_(true);
  Tensor l = loss(x0);
  (l * scale).backward();
  Tensor g = x0.grad();
  // Backward, one step at a time: recompute the step with a graph, push g through it.
  for (int k = n - 1; k >= 0; --k) {
    const int index = n - 1 - k;
    const bool need_input_grad = k > 0 || grad_x_T;
    Tensor in = inputs[k].detach().requires_grad_(need_input_grad);
    Tensor out = ddim_chain_step(schedule, predict, in, index);
    if (k == 0 && before_last_pass) before_last_pass();
    torch::autograd::backward({out}, {g});
    if (need_input_grad) g = in.grad();
  }
  if (grad_x_T) *grad_x_T = g;
  return l.item<double>();
}

// ---------------------------------------------------------------------------------------------
// Memory

FinetuneMemory estimate_finetune_memory(const UNetConfig& net, int64_t params, int batch) {
  FinetuneMemory m;
  m.params = static_cast<double>(params);
  // fp32 weights, gradients, Adam exp_avg and exp_avg_sq, EMA, and the frozen copy the paper keeps.
  m.state_bytes = 24.0 * params;
  // One step's saved activations: a ResBlock keeps about 8 maps of C x H x W (two norms, two SiLUs,
  // two convolutions, the skip and the embedding sum); attention keeps q, k, v, the output and the
  // H W x H W weights before and after softmax per head. The decoder's blocks see concatenated
  // channels: counted as 1.5 C.
  const auto mult = net.channel_mults();
  const auto rates = net.attention_rates();
  double per_sample = 0;
  int res = net.image_size;
  for (size_t level = 0; level < mult.size(); ++level) {
    const double c = net.num_channels * mult[level];
    const double hw = static_cast<double>(res) * res;
    const bool attn = std::find(rates.begin(), rates.end(), net.image_size / res) != rates.end();
    const int blocks = net.num_res_blocks + (net.num_res_blocks + 1);
    per_sample += blocks * 8 * c * hw * 1.25;
    if (attn) {
      const int heads = net.num_head_channels > 0 ? static_cast<int>(c) / net.num_head_channels : net.num_heads;
      per_sample += blocks * (6 * c * hw + 2.0 * heads * hw * hw);
    }
    if (level + 1 < mult.size()) res /= 2;
  }
  m.activation_bytes = 4.0 * per_sample * batch;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Loss scaling

bool LossScaler::unscale(const std::vector<Tensor>& params) {
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    p.grad().div_(scale_);
    if (finite && !torch::isfinite(p.grad()).all().item<bool>()) finite = false;
  }
  return finite;
}

void LossScaler::update(bool finite) {
  if (!finite) {
    scale_ = std::max(1.0, scale_ / 2);
    good_ = 0;
  } else if (++good_ >= interval_) {
    scale_ = std::min(scale_ * 2, 16777216.0);
    good_ = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning

namespace {

std::vector<fs::path> image_files(const std::string& dir, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(what + " folder '" + dir + "' does not exist or is not a folder");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && edit::is_image_path(e.path().string())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Pads a map to a square (value `fill`), centred, and resizes it to `size`.
cv::Mat to_square(const cv::Mat& m, int size, bool strokes) {
  const int side = std::max(m.cols, m.rows);
  cv::Mat sq;
  cv::copyMakeBorder(m, sq, (side - m.rows) / 2, side - m.rows - (side - m.rows) / 2, (side - m.cols) / 2,
                     side - m.cols - (side - m.cols) / 2, strokes ? cv::BORDER_CONSTANT : cv::BORDER_REFLECT_101,
                     cv::Scalar::all(0));
  if (strokes) return edit::resize_strokes(sq, {size, size});
  cv::Mat out;
  cv::resize(sq, out, {size, size}, 0, 0, side > size ? cv::INTER_AREA : cv::INTER_CUBIC);
  return out;
}

Tensor read_sketches(const std::vector<fs::path>& files, int size) {
  auto out = torch::empty({static_cast<int64_t>(files.size()), 1, size, size});
  for (size_t i = 0; i < files.size(); ++i) {
    cv::Mat layer;
    try {
      layer = edit::read_image(files[i].string());
    } catch (const std::exception& e) {
      throw InputError("cannot read sketch " + files[i].string() + ": " + e.what());
    }
    cv::Mat strokes = edit::stroke_map(layer);
    if (edit::is_blank(strokes))
      throw InputError("sketch " + files[i].string() + " is blank (no strokes): draw dark strokes on light paper "
                       "or opaque strokes on transparency");
    strokes = edit::normalize_stroke_width(to_square(strokes, size, true), edit::sketch_width_for(size));
    cv::Mat c = strokes.isContinuous() ? strokes : strokes.clone();
    out[i][0].copy_(torch::from_blob(c.data, {size, size}, torch::kFloat32));
  }
  return out;
}

Tensor read_photos(const std::vector<fs::path>& files, int size) {
  auto out = torch::empty({static_cast<int64_t>(files.size()), 3, size, size});
  for (size_t i = 0; i < files.size(); ++i) {
    cv::Mat img;
    try {
      img = edit::read_image(files[i].string());
    } catch (const std::exception& e) {
      throw InputError("cannot read photo " + files[i].string() + ": " + e.what());
    }
    cv::Mat rgb = to_square(edit::to_float_rgb(img).rgb, size, false);
    rgb = cv::min(cv::max(rgb, 0.0), 1.0);
    cv::Mat c = rgb.isContinuous() ? rgb : rgb.clone();
    out[i].copy_(torch::from_blob(c.data, {size, size, 3}, torch::kFloat32).permute({2, 0, 1}) * 2 - 1);
  }
  return out;
}

int64_t count_params(const std::string& weights) {
  auto file = st::File::open(weights);
  int64_t n = 0;
  for (const auto& t : file.tensors())
    n += std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<int64_t>());
  return n;
}

std::string gb(double bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(bytes < 10e9 ? 1 : 0) << bytes / 1e9 << " GB";
  return s.str();
}


void check_options(const FinetuneOptions& o) {
  if (o.steps < 1) throw InputError("--steps must be at least 1 (T: DDIM steps of the chain; 5-20 is typical)");
  if (o.iters < 1) throw InputError("--iters must be at least 1 (M: fine-tuning iterations)");
  if (!(o.lambda >= 0 && o.lambda <= 1)) throw InputError("--lambda must be in [0, 1] (the paper uses 0.4)");
  if (!(o.lr > 0)) throw InputError("--lr must be positive (the paper uses 1e-4)");
  if (o.batch < 0 || o.batch > 64) throw InputError("--batch must be in 1..64 (0 = 4, or 1 with fewer than 4 sketches)");
  if (o.out_dir.empty()) throw InputError("finetune needs --out DIR");
  if (o.precision != "fp32" && o.precision != "bf16" && o.precision != "fp16")
    throw InputError("--precision must be fp32, bf16 or fp16");
}

// Refuses, before anything is loaded, a model whose fine-tuning would not fit in this CPU's memory.
void check_memory(const ModelInfo& info, const UNetConfig& net, int steps, int batch, torch::Device device,
                  int local_ranks, std::ostream& log) {
  const int64_t nparams = count_params(info.weights_path());
  const auto mem = estimate_finetune_memory(net, nparams, batch);
  // Ranks on one machine share its memory.
  const double free_bytes = available_memory() / std::max(local_ranks, 1);
  log << "memory estimate: " << gb(mem.state_bytes) << " for weights, gradients, Adam, EMA and a frozen copy ("
      << std::setprecision(3) << nparams / 1e6 << " M parameters x 24 bytes) + " << gb(mem.activation_bytes)
      << " for one step's activations at batch " << batch << "\n";
  if (device.is_cpu()) {
    const double budget = free_bytes > 0 ? 0.8 * free_bytes : 0;
    if (nparams > kMaxCpuFinetuneParams || (budget > 0 && mem.total() > budget)) {
      const double fit = budget > mem.activation_bytes ? std::min(kMaxCpuFinetuneParams, (budget - mem.activation_bytes) / 24) : 0;
      throw InputError("fine-tuning " + info.name + " (" + std::to_string(static_cast<int>(nparams / 1e6)) +
                       " M parameters) needs about " + gb(mem.total()) + " (" + gb(mem.state_bytes) +
                       " of weights, gradients, Adam state, EMA and frozen copy + " + gb(mem.activation_bytes) +
                       " of activations) and a GPU: one iteration back-propagates through " + std::to_string(steps) +
                       " U-Net evaluations. On this CPU (" + gb(free_bytes) + " free" +
                       (local_ranks > 1 ? " for each of " + std::to_string(local_ranks) + " ranks" : std::string()) + ") models up to about " +
                       std::to_string(static_cast<int>(fit / 1e6)) +
                       " M parameters fit (the default editing model has 6 M); run it with --device cuda on a GPU");
    }
  } else if (device.is_cuda()) {
    // The device's memory is not queried here; CUDA reports an out-of-memory error if it does not fit.
  }
}

// The sketches of iteration `iter`: passes over the n sketches, each in its own seeded order; a
// pure function of the iteration, so a resumed run draws the same batches.
std::vector<int64_t> batch_at(long iter, int batch, int n, uint64_t seed) {
  std::vector<int64_t> pick;
  for (int k = 0; k < batch; ++k) {
    const int64_t g = iter * batch + k, pass = g / n;
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 pass_rng(seed * 1000003 + static_cast<uint64_t>(pass));
    std::shuffle(order.begin(), order.end(), pass_rng);
    pick.push_back(order[g % n]);
  }
  return pick;
}

// What a run is given, checked before anything is loaded: the files, the model's description and
// where it runs.
struct FinetuneSetup {
  std::vector<fs::path> sketch_files, photo_files;
  std::string model_dir;
  ModelInfo info;
  UNetConfig net;
  DiffusionConfig diffusion;
  torch::Device device = torch::kCPU;
  int n = 0, batch = 0;  // sketches, sketches per iteration (per rank when data-parallel)
};

FinetuneSetup plan_finetune(const FinetuneOptions& o, const DistEnv& env, std::ostream& log) {
  check_options(o);
  FinetuneSetup s;
  s.sketch_files = image_files(o.sketches_dir, "the sketches");
  if (s.sketch_files.empty())
    throw InputError("no sketches: " + o.sketches_dir + " holds no image files (.png, .jpg, ...)");
  if (!o.photos_dir.empty()) {
    s.photo_files = image_files(o.photos_dir, "the photos");
    if (s.photo_files.size() != s.sketch_files.size())
      throw InputError(std::to_string(s.sketch_files.size()) + " sketches but " + std::to_string(s.photo_files.size()) +
                       " photos: give one reference photo per sketch (paired by sorted file name), or no --photos");
  }
  s.model_dir = resolve_model(o.model);
  s.info = read_model_info(s.model_dir);
  require_kind(s.info, {ModelKind::AdmUnet, ModelKind::EditingUnet}, "finetune");
  s.net = unet_config_from_flags(s.info.flags, s.model_dir);
  s.diffusion = diffusion_config_from_json(s.info.flags, s.model_dir);
  if (o.steps > s.diffusion.diffusion_steps)
    throw InputError("--steps " + std::to_string(o.steps) + " exceeds the model's " +
                     std::to_string(s.diffusion.diffusion_steps) + " diffusion steps");
  if (s.net.class_cond && (o.class_label < 0 || o.class_label >= s.net.num_classes))
    throw InputError(s.model_dir + " is class-conditional: give --class in 0.." + std::to_string(s.net.num_classes - 1));
  s.device = resolve_device(o.device);
  if (o.precision == "bf16" && !(s.device.is_cpu() && cpu_has_native_bf16()))
    throw InputError("--precision bf16 needs a CPU with native bf16 (avx512_bf16 / amx_bf16); use fp32");
  if (o.precision == "fp16" && !s.device.is_cuda())
    throw InputError("--precision fp16 (with dynamic loss scaling) runs on CUDA only; on a CPU use fp32 or bf16");
  s.n = static_cast<int>(s.sketch_files.size());
  const int world = env.world_size;
  if (env.active()) {
    if (!s.device.is_cpu())
      throw InputError("finetune: data-parallel fine-tuning runs on CPUs (c10d's Gloo); this LibTorch has no NCCL for " +
                       s.device.str() + " (give --device cpu)");
    if (s.n < world)
      throw InputError("finetune on " + std::to_string(world) + " ranks needs at least one sketch a rank, and " +
                       o.sketches_dir + " holds " + std::to_string(s.n) + ": give more sketches or fewer ranks");
  }
  // Per rank: the global batch (world x batch) never exceeds the sketches.
  const int most = s.n / world;
  s.batch = o.batch > 0 ? std::min(o.batch, most) : (most >= 4 ? 4 : 1);
  if (o.batch > most)
    log << "batch " << o.batch << " is more than the " << s.n << " sketches allow" << (env.active() ? " per rank" : "")
        << ": " << s.batch << "\n";
  check_memory(s.info, s.net, o.steps, s.batch, s.device, env.local_world_size, log);
  return s;
}

// A run of Algorithm 1: the network with its optimiser and EMA, the sketches, the fixed x_T and
// identity references, and the deterministic DDIM chain the loss is differentiated through.
class FinetuneRun {
 public:
  FinetuneRun(const FinetuneOptions& o, const FinetuneSetup& s, DataParallel* dp, std::ostream& log)
      : o_(o), s_(s), dp_(dp), log_(log), ckpt_{fs::path(o.out_dir) / "checkpoint"}, rng_(o.seed),
        gen_(at::detail::createCPUGenerator(o.seed)) {
    const int r = s.net.image_size;
    sketches_ = read_sketches(s.sketch_files, r).to(s.device);
    if (!s.photo_files.empty()) photos_ = read_photos(s.photo_files, r).to(s.device);
    log << "finetune: " << s.n << " sketches" << (photos_.defined() ? " with reference photos" : "") << ", batch "
        << s.batch;
    if (dp) log << " on each of " << dp->world_size() << " ranks (Gloo), " << s.batch * dp->world_size() << " in all";
    log << ", T = " << o.steps << ", M = " << o.iters << ", lambda " << o.lambda << ", "
        << (o.recompute ? "per-step recomputation" : "whole graph kept") << ", " << o.precision << "\n";
    m_ = load_unet(s.model_dir, s.device, "finetune");
    m_.model->to(torch::kFloat32);
    m_.model->eval();  // dropout off: the recomputed steps must equal the forward ones
    params_ = m_.model->parameters();
    for (auto& p : params_) p.requires_grad_(true);
    for (const auto& p : params_) ema_.push_back(p.detach().clone());
    adam_ = std::make_unique<torch::optim::Adam>(params_, torch::optim::AdamOptions(o.lr).betas({0.9, 0.999}));
    if (dp) reducer_ = std::make_unique<GradientReducer>(*dp, params_);
    auto features = open_sketch_features(o.sketch_features, s.device);
    sketch_loss_ = std::make_unique<SketchLoss>(features);
    log << "sketch features: " << features->describe() << "\n";
    DiffusionConfig spaced = s.diffusion;
    spaced.timestep_respacing = std::to_string(o.steps);
    schedule_ = make_schedule(spaced);
    if (s.net.class_cond)
      y_ = torch::full({s.batch}, o.class_label, torch::TensorOptions().dtype(torch::kInt64).device(s.device));
    predict_ = make_predictor(schedule_, s.diffusion, [this](const Tensor& x, const Tensor& t) { return model(x, t); },
                              /*clip_denoised=*/true);
  }
  FinetuneRun(const FinetuneRun&) = delete;
  FinetuneRun& operator=(const FinetuneRun&) = delete;

  // x_T and the identity references: from the checkpoint (--resume), or new.
  // Data-parallel, only rank 0 opens OUT; every rank then takes rank 0's state.
  void start() {
    const int r = s_.net.image_size;
    bool resumed = false;
    if (rank() == 0) {
      lock_.emplace(o_.out_dir);
      resumed = open_checkpoint(ckpt_, o_.out_dir, o_.resume, log_);
      if (resumed) resume();
      else fs::create_directories(o_.out_dir);
    }
    if (dp_) {
      const auto root = dp_->sum({resumed ? 1.0 : 0.0, static_cast<double>(iter_)});
      resumed = root[0] > 0;
      iter_ = static_cast<long>(root[1]);
      share_state(*dp_, *m_.model, ema_, *adam_, rng_, gen_);
    }
    if (!resumed) {
      x_T_ = seeded_noise(o_.seed)(torch::empty({s_.n, 3, r, r})).to(s_.device);
      // The identity reference: the user's photos, or the original model's x0 from the same x_T
      // (data-parallel: each rank runs its share of the chunks).
      if (photos_.defined()) {
        refs_ = photos_;
      } else {
        refs_ = torch::zeros({s_.n, 3, r, r}, x_T_.options());
        for (int i = 0, c = 0; i < s_.n; i += s_.batch, ++c)
          if (mine(c)) {
            const Tensor idx = slice(i);
            refs_.index_copy_(0, idx, chain_x0(idx));
          }
        if (dp_) dp_->sum_tensors({refs_});
      }
    } else if (dp_ && rank() != 0) {
      x_T_ = torch::zeros({s_.n, 3, r, r}, sketches_.options());
      refs_ = torch::zeros_like(x_T_);
    }
    if (dp_) dp_->broadcast({x_T_, refs_});
  }

  // Mean losses over all sketches (no gradients): L_sketch, L_identity.
  std::pair<double, double> evaluate() {
    double ls = 0, li = 0;
    for (int i = 0, c = 0; i < s_.n; i += s_.batch, ++c) {
      if (!mine(c)) continue;
      const Tensor idx = slice(i);
      auto x0 = chain_x0(idx);
      torch::NoGradGuard no_grad;
      const double k = static_cast<double>(idx.size(0));
      ls += k * (*sketch_loss_)(x0, sketches_.index_select(0, idx)).item<double>();
      li += k * identity_loss(x0, refs_.index_select(0, idx)).item<double>();
    }
    if (dp_) {
      const auto sums = dp_->sum({ls, li});
      ls = sums[0];
      li = sums[1];
    }
    return {ls / s_.n, li / s_.n};
  }

  // Iterations until M (or a cancel), with the loss log and timed checkpoints; a last checkpoint.
  void train(const CancelToken* cancel) {
    std::optional<LossLog> csv;
    if (rank() == 0) csv.emplace(fs::path(o_.out_dir) / "loss.csv", "iter,loss,sketch,identity,seconds", o_.resume);
    LoopClock clock(iter_, o_.iters, o_.checkpoint_minutes);
    NonFiniteGuard guard("fine-tuning", "iteration");
    auto save = [&] {
      if (rank() != 0) return;  // rank 0's alone: the others wait at the next collective
      // x_T and the references travel inside the atomic checkpoint: a kill never separates them.
      ckpt_.save(*m_.model, ema_, *adam_, iter_, rng_, gen_, {{"sketches", s_.n}},
                 {{"fixed.safetensors", {{"x_T", x_T_}, {"identity_ref", refs_}}}});
      if (iter_ > 0) csv->plot("fine-tuning loss L", log_);
      clock.checkpointed();
    };
    while (iter_ < o_.iters) {
      // Every rank stops at the same iteration (a Ctrl-C reaches them at slightly different times).
      const bool stop = cancel && cancel->cancelled();
      if (dp_ ? dp_->sum({stop ? 1.0 : 0.0})[0] > 0 : stop) break;
      double ls = 0, li = 0;
      const double l = step(ls, li);
      if (!guard.accept(l, grad_norm_, iter_, "lower --lr, or use --precision fp32")) continue;
      adam_->step();
      ++iter_;
      ema_update(ema_, params_, o_.ema_rate, iter_);
      log_ << "iter " << iter_ << "/" << o_.iters << "  L " << std::fixed << std::setprecision(4) << l << " (sketch "
           << ls << ", identity " << li << ")  " << std::setprecision(3) << clock.rate(iter_) << " it/s  ETA "
           << std::setprecision(1) << clock.eta_minutes(iter_) << " min" << std::defaultfloat << std::endl;
      if (csv) csv->row(iter_, l, ls, li, clock.elapsed());
      const bool every = o_.checkpoint_every > 0 && iter_ % o_.checkpoint_every == 0;
      if (every || clock.checkpoint_due()) save();
    }
    save();
  }

  // OUT/model: the EMA weights as a model folder of the input's kind, with the fixed x_T.
  void export_model_folder() {
    ModelInfo out_info = s_.info;
    out_info.name = s_.info.name + "-finetuned";
    out_info.source = "diffsketch finetune of " + s_.info.name + " (" + s_.info.source + ")";
    std::ostringstream note;
    note << "Algorithm 1: " << iter_ << " iterations, T = " << o_.steps << ", " << s_.n << " sketches, lambda "
         << o_.lambda << ", lr " << o_.lr << ", EMA weights; x_T.safetensors holds the fixed x_T (one per sketch)";
    export_model(out_info, fs::path(o_.out_dir) / "model", *m_.model, &ema_, iter_, note.str(), torch::kFloat32,
                 {{"x_T.safetensors", {{"x_T", x_T_}}}});
  }

  long iterations() const { return iter_; }

 private:
  void resume() {
    const auto state = ckpt_.load(*m_.model, ema_, *adam_, rng_, gen_);
    iter_ = state["step"].get<long>();
    if (state.value("sketches", -1) != s_.n)
      throw InputError(o_.out_dir + ": the checkpoint was made with " + std::to_string(state.value("sketches", -1)) +
                       " sketches, now there are " + std::to_string(s_.n) + "; resume with the same --sketches");
    auto f = st::File::open((ckpt_.dir / "fixed.safetensors").string());
    x_T_ = read_tensor(f, f.at("x_T")).to(s_.device);
    refs_ = read_tensor(f, f.at("identity_ref")).to(s_.device);
    log_ << "resumed at iteration " << iter_ << "\n";
  }

  // The network on the current batch's conditioning (cond_sketch_, y_).
  Tensor model(const Tensor& x, const Tensor& t) {
    const Tensor yy = y_.defined() ? y_.narrow(0, 0, x.size(0)) : Tensor();
    if (s_.info.kind != ModelKind::EditingUnet) return m_.model(x, t, yy);
    auto zeros = torch::zeros_like(x), ones = torch::ones_like(x.narrow(1, 0, 1));
    return m_.model(torch::cat({x, zeros, ones}, 1), t, yy, cond_sketch_);
  }

  // Sketches i .. i + batch (fewer at the end).
  Tensor slice(int i) const {
    return torch::arange(i, std::min(s_.n, i + s_.batch), torch::TensorOptions().dtype(torch::kInt64).device(s_.device));
  }

  AutocastScope autocast() const {
    const bool fp16 = o_.precision == "fp16";
    return AutocastScope(fp16 || o_.precision == "bf16", s_.device.is_cuda() ? at::kCUDA : at::kCPU,
                         fp16 ? at::kHalf : at::kBFloat16);
  }

  // x0 of the chain from the fixed x_T of sketches `idx`, no gradients.
  Tensor chain_x0(const Tensor& idx) {
    torch::NoGradGuard no_grad;
    const auto ac = autocast();
    cond_sketch_ = sketches_.index_select(0, idx);
    Tensor x = x_T_.index_select(0, idx);
    for (int i = schedule_.size() - 1; i >= 0; --i) x = ddim_chain_step(schedule_, predict_, x, i);
    return x.to(torch::kFloat32);
  }

  // One iteration's loss and gradients (not yet applied); NaN when not finite. ls, li: its parts.
  double step(double& ls, double& li) {
    const bool fp16 = o_.precision == "fp16";
    // This rank's part of the iteration's global batch.
    const int world = dp_ ? dp_->world_size() : 1;
    const auto global = batch_at(iter_, s_.batch * world, s_.n, o_.seed);
    const std::vector<int64_t> part(global.begin() + rank() * s_.batch, global.begin() + (rank() + 1) * s_.batch);
    auto idx = torch::tensor(part, torch::kInt64).to(s_.device);
    cond_sketch_ = sketches_.index_select(0, idx);
    const Tensor target = cond_sketch_, ref = refs_.index_select(0, idx);
    // Data-parallel: the sketch loss's normalisers are the global batch's (equal parts: the mean
    // of the ranks' means).
    std::vector<double> energies;
    if (dp_) {
      energies = sketch_loss_->energies(target.to(torch::kFloat32));
      energies = dp_->sum(energies);
      for (auto& e : energies) e /= world;
    }
    auto loss_fn = [&](const Tensor& x0) {
      auto sk = (*sketch_loss_)(x0.to(torch::kFloat32), target, Tensor(), energies);
      auto id = identity_loss(x0.to(torch::kFloat32), ref);
      ls = sk.item<double>();
      li = id.item<double>();
      return o_.lambda * id + (1 - o_.lambda) * sk;
    };
    adam_->zero_grad();
    double l;
    {
      const auto ac = autocast();
      // Data-parallel, the gradients leave in buckets during the chain's last backward pass.
      l = chain_backward(schedule_, predict_, x_T_.index_select(0, idx), loss_fn, o_.recompute, nullptr,
                         fp16 ? scaler_.scale() : 1.0, [this] {
                           if (reducer_) reducer_->arm();
                         });
    }
    if (reducer_) {
      reducer_->finish();
      const auto sums = dp_->sum({l, ls, li});  // the global batch's means (equal parts)
      l = sums[0] / world;
      ls = sums[1] / world;
      li = sums[2] / world;
    }
    bool finite = std::isfinite(l);
    if (fp16) {
      finite = scaler_.unscale(params_) && finite;
      scaler_.update(finite);
    }
    grad_norm_ = torch::nn::utils::clip_grad_norm_(params_, 1.0);
    return finite ? l : NAN;
  }

  int rank() const { return dp_ ? dp_->rank() : 0; }
  // Chunk c of the sketches (evaluation, references) is rank c mod world's.
  bool mine(int c) const { return !dp_ || c % dp_->world_size() == dp_->rank(); }

  const FinetuneOptions& o_;
  const FinetuneSetup& s_;
  DataParallel* dp_;
  std::unique_ptr<GradientReducer> reducer_;
  std::ostream& log_;
  std::optional<RunLock> lock_;  // from start() to the end of the run
  Checkpointer ckpt_;
  std::mt19937_64 rng_;
  at::Generator gen_;
  Tensor sketches_, photos_, x_T_, refs_;
  LoadedUNet m_;
  std::vector<Tensor> params_, ema_;
  std::unique_ptr<torch::optim::Adam> adam_;
  std::unique_ptr<SketchLoss> sketch_loss_;
  Schedule schedule_;
  Tensor cond_sketch_, y_;  // the current batch's conditioning, read by model()
  Predictor predict_;
  LossScaler scaler_;
  long iter_ = 0;
  double grad_norm_ = 0;
};

}  // namespace

FinetuneReport finetune(const FinetuneOptions& o, std::ostream& log_all, const CancelToken* cancel) {
  configure_threads();
  const WithoutOneDnn no_onednn;
  // Data-parallel when a launcher set the ranks (torchrun, srun, finetune --nproc): rank 0 logs,
  // checkpoints and exports; the sketches of each iteration are shared out between the ranks.
  const DistEnv env = dist_env_from_environment();
  std::ostringstream quiet;
  std::ostream& log = env.rank == 0 ? log_all : quiet;
  const FinetuneSetup setup = plan_finetune(o, env, log);
  std::unique_ptr<DataParallel> dp;
  if (env.active()) {
    dp = std::make_unique<DataParallel>(env, std::chrono::seconds(kFinetuneRankTimeoutSeconds));
    std::ostringstream settings;
    settings << setup.info.name << ' ' << setup.n << " sketches, batch " << setup.batch << ", T " << o.steps << ", M "
             << o.iters << ", lambda " << o.lambda << ", lr " << o.lr << ", seed " << o.seed << ", class " << o.class_label
             << ", " << o.precision << ", photos " << setup.photo_files.size() << ", features '" << o.sketch_features << "'";
    dp->check_same("fine-tuning settings (model, sketches, --batch, --steps, --iters, --lambda, --lr, --seed)",
                   settings.str());
  }
  FinetuneRun run(o, setup, dp.get(), log);
  run.start();
  FinetuneReport report;
  const auto start = std::chrono::steady_clock::now();
  std::tie(report.first_sketch, report.first_identity) = run.evaluate();
  log << "before: L_sketch " << std::setprecision(4) << report.first_sketch << "  L_identity " << report.first_identity
      << std::endl;
  run.train(cancel);
  report.iters = run.iterations();
  std::tie(report.last_sketch, report.last_identity) = run.evaluate();
  log << "after (raw weights): L_sketch " << std::setprecision(4) << report.last_sketch << "  L_identity "
      << report.last_identity << std::endl;
  if (env.rank == 0) run.export_model_folder();
  if (dp) dp->barrier();  // nobody leaves while rank 0 still writes
  report.primary = env.rank == 0;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "saved " << (fs::path(o.out_dir) / "model").string() << " after " << run.iterations() << " iterations\n";
  return report;
}

}  // namespace dsk
