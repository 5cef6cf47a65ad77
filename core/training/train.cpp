#include "core/training/train.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "core/diffusion/sampler.h"
#include "core/formats/model_folder.h"
#include "core/formats/tensor_io.h"
#include "core/training/distributed.h"
#include "core/training/train_data.h"
#include "core/training/train_loop.h"
#include "core/training/train_state.h"

namespace dsk {

namespace fs = std::filesystem;
using torch::Tensor;

// A collective that waits longer than this for another rank ends the run (that rank died).
constexpr int kRankTimeoutSeconds = 300;

namespace {

struct TrainSettings {
  long steps = 20000;
  int batch = 8;
  double lr = 1e-4;
  double ema_rate = 0.9999;
  double grad_clip = 1.0;
  uint64_t seed = 0;
  double checkpoint_minutes = 5;
  int log_every = 10;
  bool bf16 = false;
  std::string export_weights = "ema";
  std::string export_dtype = "f16";
  std::string init_from;
  // Editing models: the loss counts only the hole's pixels. Sampling pastes the known pixels after
  // every step, so the network's output there is never used; counting it spends most of the
  // gradient on copying the masked image through.
  bool hole_loss = false;
  double sketch_lr_mult = 1.0;  // lr multiplier of the sketch path (sketch_*, *.encoder_kv.*)
  // Editing models: the loss at pixels within 1 px of a sketch stroke weighs 1 + this (the loss is
  // normalised by the weights' sum): the edges the sketch asks for are a few percent of the hole,
  // and a plain mean lets the model skip them.
  double edge_loss_weight = 0.0;
  LrDecay lr_decay;
  DataOptions data;
  // Data-parallel: all-reduce the gradients in buckets while backward runs (false: after it).
  bool grad_overlap = true;
  // Data-parallel: "samples" (every rank loads all the data and draws its part of each global
  // batch: the run equals one process of the global batch) or "files" (each rank loads only its
  // share of the pictures or packed shards and draws its part from them: memory and loading
  // shrink with the ranks, for data sets too large for one process).
  std::string data_sharding = "samples";
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path + ": invalid JSON (" + e.what() + ")");
  }
}

TrainSettings parse_settings(const nlohmann::json& t, const std::string& where, int size) {
  TrainSettings s;
  s.data.size = size;
  if (!t.is_object()) throw InputError(where + ": 'train' must be an object");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const auto& k = it.key();
    const auto& v = it.value();
    try {
      if (k == "steps") s.steps = v.get<long>();
      else if (k == "batch") s.batch = v.get<int>();
      else if (k == "lr") s.lr = v.get<double>();
      else if (k == "ema_rate") s.ema_rate = v.get<double>();
      else if (k == "grad_clip") s.grad_clip = v.get<double>();
      else if (k == "seed") s.seed = v.get<uint64_t>();
      else if (k == "checkpoint_minutes") s.checkpoint_minutes = v.get<double>();
      else if (k == "log_every") s.log_every = v.get<int>();
      else if (k == "bf16") s.bf16 = v.get<bool>();
      else if (k == "export") s.export_weights = v.get<std::string>();
      else if (k == "export_dtype") s.export_dtype = v.get<std::string>();
      else if (k == "init_from") s.init_from = v.get<std::string>();
      else if (k == "hole_loss") s.hole_loss = v.get<bool>();
      else if (k == "sketch_lr_mult") s.sketch_lr_mult = v.get<double>();
      else if (k == "edge_loss_weight") s.edge_loss_weight = v.get<double>();
      else if (k == "lr_decay") {
        const auto shape = v.get<std::string>();
        if (shape == "none") s.lr_decay.shape = LrDecay::Shape::None;
        else if (shape == "cosine") s.lr_decay.shape = LrDecay::Shape::Cosine;
        else if (shape == "linear") s.lr_decay.shape = LrDecay::Shape::Linear;
        else throw InputError(where + ": lr_decay must be \"none\", \"cosine\" or \"linear\", got \"" + shape + "\"");
      } else if (k == "lr_decay_start") s.lr_decay.start = v.get<long>();
      else if (k == "lr_decay_steps") s.lr_decay.steps = v.get<long>();
      else if (k == "lr_final") s.lr_decay.final_lr = v.get<double>();
      else if (k == "val_fraction") s.data.val_fraction = v.get<double>();
      else if (k == "sketch_dropout") s.data.sketch_dropout = v.get<double>();
      else if (k == "full_mask_prob") s.data.full_mask_prob = v.get<double>();
      else if (k == "object_prob") s.data.object_prob = v.get<double>();
      else if (k == "grad_overlap") s.grad_overlap = v.get<bool>();
      else if (k == "data_sharding") s.data_sharding = v.get<std::string>();
      else throw InputError(where + ": unknown training setting '" + k + "'");
    } catch (const nlohmann::json::exception&) {
      throw InputError(where + ": training setting '" + k + "' has the wrong type: " + v.dump());
    }
  }
  if (!(s.sketch_lr_mult > 0)) throw InputError(where + ": sketch_lr_mult must be positive (1 = the same lr)");
  if (!(s.edge_loss_weight >= 0)) throw InputError(where + ": edge_loss_weight must be >= 0 (0 = off, e.g. 4)");
  if (s.steps < 1 || s.batch < 1 || s.lr <= 0 || s.ema_rate < 0 || s.ema_rate >= 1 || s.log_every < 1)
    throw InputError(where + ": steps, batch, lr, log_every must be positive and ema_rate in [0, 1)");
  if (s.lr_decay.shape != LrDecay::Shape::None) {
    if (s.lr_decay.steps < 1 || s.lr_decay.start < 0)
      throw InputError(where + ": lr_decay needs lr_decay_steps >= 1 (how many steps the decay takes) and lr_decay_start >= 0");
    if (!t.contains("lr_final")) s.lr_decay.final_lr = s.lr / 10;
    if (!(s.lr_decay.final_lr >= 0 && s.lr_decay.final_lr <= s.lr))
      throw InputError(where + ": lr_final must be in [0, lr] (e.g. lr / 10)");
  }
  if (s.data_sharding != "samples" && s.data_sharding != "files")
    throw InputError(where + ": data_sharding must be \"samples\" (every rank loads all the data) or \"files\" (each rank "
                     "loads its share of the files)");
  if (s.export_weights != "ema" && s.export_weights != "raw")
    throw InputError(where + ": export must be \"ema\" or \"raw\"");
  if (s.export_dtype != "f32" && s.export_dtype != "f16" && s.export_dtype != "bf16")
    throw InputError(where + ": export_dtype must be \"f32\", \"f16\" or \"bf16\"");
  return s;
}


// The model section of the training config: model.json's shape (kind, name, flags).
struct ModelSpec {
  ModelInfo info;
  UNetConfig net;
  DiffusionConfig diffusion;
  bool editing = false;
};

ModelSpec read_model_spec(const nlohmann::json& config, const TrainOptions& o) {
  if (!config.contains("model") || !config["model"].is_object())
    throw InputError(o.config_path + ": needs a 'model' object (model.json's shape: kind, name, flags)");
  ModelSpec spec;
  ModelInfo& info = spec.info;
  const auto& m = config["model"];
  const std::string kind = m.value("kind", "");
  if (kind == "editing-unet") info.kind = ModelKind::EditingUnet;
  else if (kind == "adm-unet") info.kind = ModelKind::AdmUnet;
  else throw InputError(o.config_path + ": model.kind must be editing-unet or adm-unet, got '" + kind + "'");
  info.name = m.value("name", fs::path(o.out_dir).filename().string());
  info.source = m.value("source", "trained with diffsketch train");
  info.licence = m.value("licence", "");
  info.flags = m.value("flags", nlohmann::json::object());
  spec.net = unet_config_from_flags(info.flags, o.config_path);
  spec.diffusion = diffusion_config_from_json(info.flags, o.config_path);
  if (spec.net.learn_sigma)
    throw InputError(o.config_path + ": training with learn_sigma is not supported yet (set learn_sigma false: "
                     "epsilon prediction with fixed variance, what DDIM uses)");
  spec.editing = info.kind == ModelKind::EditingUnet;
  if (spec.editing && (spec.net.in_channels != 7 || spec.net.sketch_channels <= 0))
    throw InputError(o.config_path + ": an editing-unet needs in_channels 7 (x_t, masked image, mask) and sketch_channels > 0");
  return spec;
}

void describe_run(const ModelSpec& spec, const TrainSettings& s, const BatchSource& data, std::ostream& log) {
  log << "data: " << data.describe() << "\n";
  log << "target: " << (spec.diffusion.predict_v ? "v" : "eps") << ", loss over "
      << (spec.editing && s.hole_loss ? "the hole's pixels" : "every pixel");
  if (spec.editing && s.edge_loss_weight > 0) log << ", sketch strokes weighted x" << 1 + s.edge_loss_weight;
  if (spec.editing) log << "; sketch dropout " << s.data.sketch_dropout << " to a map of " << s.data.sketch_null
                        << (s.data.sketch_null == 0 ? " (the same as a blank sketch)" : " (no sketch, apart from blank)");
  log << "\n";
}

// Adam over two groups: the sketch path (encoder, zero-initialised injections, the attention
// blocks' sketch key/value projections) may learn at a multiple of lr: its zero start gives the
// encoder no gradient at first, so it otherwise lags the image path.
torch::optim::Adam make_optimizer(UNetModel& model, const TrainSettings& s, std::ostream& log) {
  std::vector<Tensor> image_path, sketch_path;
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    const bool sketch = name.rfind("sketch_", 0) == 0 || name.find(".encoder_kv.") != std::string::npos;
    (sketch ? sketch_path : image_path).push_back(item.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(image_path, std::make_unique<torch::optim::AdamOptions>(
                                      torch::optim::AdamOptions(s.lr).betas({0.9, 0.999})));
  if (!sketch_path.empty())
    groups.emplace_back(sketch_path, std::make_unique<torch::optim::AdamOptions>(
                                         torch::optim::AdamOptions(s.lr * s.sketch_lr_mult).betas({0.9, 0.999})));
  if (s.sketch_lr_mult != 1.0 && !sketch_path.empty())
    log << "sketch path: " << sketch_path.size() << " tensors at lr x" << s.sketch_lr_mult << "\n";
  if (s.lr_decay.shape != LrDecay::Shape::None)
    log << "lr: " << s.lr << " until step " << s.lr_decay.start << ", then "
        << (s.lr_decay.shape == LrDecay::Shape::Cosine ? "cosine" : "linear") << " decay to " << s.lr_decay.final_lr
        << " at step " << s.lr_decay.start + s.lr_decay.steps << "\n";
  return torch::optim::Adam(std::move(groups), torch::optim::AdamOptions(s.lr).betas({0.9, 0.999}));
}

// One step's loss: the network's prediction of eps (or v) at random timesteps, over the hole's
// pixels (and the strokes weighted up) for editing models. Data-parallel (`dp`), this is the rank's
// part of the global batch: the timesteps and the noise are drawn for the whole global batch from
// the generator every rank shares and the rank's part is taken, and a weighted loss is divided by
// the ranks' mean weight, so that the mean of the ranks' gradients is the global batch's gradient.
Tensor batch_loss(UNetModel& model, const ModelSpec& spec, const TrainSettings& s, const ForwardProcess& q,
                  const Batch& b, at::Generator& gen, torch::Device device, DataParallel* dp) {
  const int64_t part = s.batch, rank = dp ? dp->rank() : 0, world = dp ? dp->world_size() : 1;
  auto x0 = b.image.to(device);
  auto t = torch::randint(0, q.size(), {part * world}, gen, torch::kInt64).narrow(0, rank * part, part);
  auto noise_shape = x0.sizes().vec();
  noise_shape[0] = part * world;
  auto noise = torch::randn(noise_shape, gen).narrow(0, rank * part, part).to(device);
  const auto x_t = q.q_sample(x0, t, noise);
  const Tensor target = spec.diffusion.predict_v ? q.v_target(x0, t, noise) : noise;
  Tensor input = x_t, sketch;
  if (spec.editing) {
    auto mask = b.mask.to(device);
    input = torch::cat({x_t, x0 * (1 - mask), mask}, 1);
    sketch = b.sketch.to(device);
  }
  const AutocastScope autocast(s.bf16, at::kCPU, at::kBFloat16);
  auto pred = model(input, t.to(device), Tensor(), sketch);
  if (spec.editing && (s.hole_loss || s.edge_loss_weight > 0)) {
    auto w = s.hole_loss ? b.mask.to(device) : torch::ones_like(b.mask).to(device);
    if (s.edge_loss_weight > 0)
      w = w * (1 + s.edge_loss_weight * torch::max_pool2d(sketch.gt(0.5).to(torch::kFloat32), {3, 3}, {1, 1}, {1, 1}));
    w = w.expand_as(target);
    double weight = w.sum().item<double>();
    if (dp) weight = dp->sum({weight})[0] / static_cast<double>(world);
    return ((pred.to(torch::kFloat32) - target).pow(2) * w).sum() / std::max(weight, 1.0);
  }
  return torch::mse_loss(pred.to(torch::kFloat32), target);
}

}  // namespace

double lr_at(double lr, const LrDecay& decay, long step) {
  if (decay.shape == LrDecay::Shape::None || step <= decay.start) return lr;
  const double f = std::min(1.0, static_cast<double>(step - decay.start) / static_cast<double>(decay.steps));
  const double keep = decay.shape == LrDecay::Shape::Cosine ? 0.5 * (1 + std::cos(M_PI * f)) : 1 - f;
  return decay.final_lr + (lr - decay.final_lr) * keep;
}

namespace {

// "step N/M  loss L  R steps/s  ETA E min  (data D%)", the learning rate when it decays, and the
// steps skipped so far.
void log_progress(std::ostream& log, const TrainSettings& s, long step, double mean, const LoopClock& clock,
                  double data_seconds, long skipped) {
  log << "step " << step << "/" << s.steps << "  loss " << std::fixed << std::setprecision(4) << mean << "  "
      << std::setprecision(3) << clock.rate(step) << " steps/s  ETA " << std::setprecision(1) << clock.eta_minutes(step)
      << " min  (data " << std::setprecision(0) << 100 * data_seconds / std::max(clock.elapsed(), 1e-9) << "%)";
  if (s.lr_decay.shape != LrDecay::Shape::None)
    log << "  lr " << std::scientific << std::setprecision(2) << lr_at(s.lr, s.lr_decay, step) << std::fixed;
  if (skipped > 0) log << "  " << skipped << " step(s) skipped so far: non-finite loss";
  log << std::endl;
}

// The config's training settings with the command line's overrides (--steps, --init-from).
TrainSettings run_settings(const nlohmann::json& config, const TrainOptions& o, const ModelSpec& spec) {
  auto s = parse_settings(config.value("train", nlohmann::json::object()), o.config_path, spec.net.image_size);
  s.data.sketch_null = spec.net.sketch_null;
  if (o.max_steps_override > 0) s.steps = std::min(s.steps, o.max_steps_override);
  if (o.data_dirs.empty()) throw InputError("train: give at least one --data DIR");
  if (!o.init_from.empty() && o.resume)
    throw InputError("train: --init-from starts a new run and --resume continues one; give one of them");
  if (!o.init_from.empty()) s.init_from = o.init_from;
  return s;
}

// Data-parallel when the environment names several ranks: joins them (nullptr for one process).
// Every rank must run the same config (and --steps, --init-from): checked with rank 0's.
std::unique_ptr<DataParallel> join_ranks(const DistEnv& env, const torch::Device& device, const TrainSettings& s,
                                         const nlohmann::json& config, std::ostream& log) {
  if (!env.active()) return nullptr;
  if (!device.is_cpu())
    throw InputError("train: data-parallel training runs on CPUs (c10d's Gloo); this LibTorch has no NCCL for " +
                     device.str() + " (give --device cpu)");
  auto dp = std::make_unique<DataParallel>(env, std::chrono::seconds(kRankTimeoutSeconds));
  dp->check_same("training config (--config, --steps, --init-from)",
                 config.dump() + " steps " + std::to_string(s.steps) + " init " + s.init_from);
  log << "data-parallel: " << env.world_size << " ranks (Gloo), batch " << s.batch << " each, " << s.batch * env.world_size
      << " in all; " << (s.data_sharding == "files" ? "each rank loads its share of the files" : "every rank loads all the data")
      << "; gradients all-reduced " << (s.grad_overlap ? "during" : "after") << " backward\n";
  return dp;
}

// OUT/checkpoint: the step the run starts at (0, or the resumed checkpoint's, loaded into the
// model, EMA, Adam and generators). Only rank 0 reads OUT (and puts back an interrupted save);
// data-parallel, it then sends every rank its whole state (weights, buffers, EMA, Adam's moments,
// the generators), so that the other ranks need no access to OUT: each machine of a run may keep
// its own disk.
long open_run(Checkpointer& ckpt, const TrainOptions& o, const DistEnv& env, DataParallel* dp, UNetModel& model,
              std::vector<Tensor>& ema, torch::optim::Adam& adam, std::mt19937_64& rng, at::Generator& gen,
              bool& ema_warmup, std::ostream& log) {
  long step = 0;
  if (env.rank == 0 && open_checkpoint(ckpt, o.out_dir, o.resume, log)) {
    const auto state = ckpt.load(*model, ema, adam, rng, gen);
    step = state["step"].get<long>();
    if (state.contains("ema_warmup") && state["ema_warmup"].is_boolean()) ema_warmup = state["ema_warmup"].get<bool>();
    log << "resumed from step " << step << "\n";
  }
  if (dp) {
    const auto root = dp->sum({env.rank == 0 ? static_cast<double>(step) : 0.0, env.rank == 0 && ema_warmup ? 1.0 : 0.0});
    step = static_cast<long>(root[0]);
    ema_warmup = root[1] > 0;
    share_state(*dp, *model, ema, adam, rng, gen);
  }
  return step;
}

// This rank's part of the next global batch: world x batch samples, each from its own seed.
Batch next_part(const BatchSource& data, std::mt19937_64& rng, int batch, const DistEnv& env) {
  std::vector<uint64_t> seeds(static_cast<size_t>(batch) * env.world_size);
  for (auto& x : seeds) x = rng();
  return draw_part(data, seeds, env.rank * batch, batch);
}

// The gradients of `loss`, averaged over the ranks (during backward with a `reducer`, else after
// it) and clipped: {the global batch's loss, the gradients' norm}, the same on every rank, so that
// every rank skips or takes the step alike.
std::pair<double, double> backward(const Tensor& loss, torch::optim::Adam& adam, const std::vector<Tensor>& params,
                                   double clip, DataParallel* dp, GradientReducer* reducer) {
  adam.zero_grad();
  if (reducer) reducer->arm();
  loss.backward();
  if (reducer) reducer->finish();
  else if (dp) dp->average_gradients(params);
  const double grad_norm = torch::nn::utils::clip_grad_norm_(params, clip);
  double l = loss.item<double>();
  if (dp) l = dp->sum({l})[0] / dp->world_size();
  return {l, grad_norm};
}

// The training data this rank draws from: all of it, or with "data_sharding": "files" its share.
std::unique_ptr<BatchSource> open_rank_data(const TrainOptions& o, const TrainSettings& s, const DistEnv& env) {
  DataOptions options = s.data;
  if (env.active() && s.data_sharding == "files") {
    options.share = env.rank;
    options.shares = env.world_size;
  }
  return open_training_data(o.data_dirs, options, /*validation=*/false);
}

// The learning rate of `step` (the decay's) into Adam's groups: the image path's, the sketch path's.
void set_lr(torch::optim::Adam& adam, const TrainSettings& s, long step) {
  const double lr = lr_at(s.lr, s.lr_decay, step);
  for (size_t g = 0; g < adam.param_groups().size(); ++g)
    static_cast<torch::optim::AdamOptions&>(adam.param_groups()[g].options()).lr(g == 0 ? lr : lr * s.sketch_lr_mult);
}

}  // namespace

TrainReport train(const TrainOptions& o, std::ostream& log_all, const CancelToken* cancel) {
  configure_threads();
  const WithoutOneDnn no_onednn;
  // Data-parallel when a launcher set the ranks (torchrun, srun, train --nproc): rank 0 logs,
  // checkpoints and exports; every rank steps the same optimiser on the averaged gradients.
  const DistEnv env = dist_env_from_environment();
  std::ostringstream quiet;
  std::ostream& log = env.rank == 0 ? log_all : quiet;
  const auto config = read_json(o.config_path);
  const ModelSpec spec = read_model_spec(config, o);
  const auto s = run_settings(config, o, spec);
  const auto device = resolve_device(o.device);
  if (s.bf16 && !(device.is_cpu() && cpu_has_native_bf16()))
    throw InputError("train: bf16 autocast needs a CPU with native bf16 (avx512_bf16 / amx_bf16); this one has none");
  const auto data = open_rank_data(o, s, env);
  std::unique_ptr<DataParallel> dp = join_ranks(env, device, s, config, log);
  describe_run(spec, s, *data, log);

  torch::manual_seed(s.seed);
  UNetModel model(spec.net);
  // A run that starts from trained weights keeps its EMA from the first step (no warm-up), and says
  // so in its checkpoints, so that a resumed run does the same.
  bool ema_warmup = o.init_from.empty();
  if (!s.init_from.empty())
    init_weights_from(*model, s.init_from, {ModelKind::AdmUnet, ModelKind::EditingUnet}, "train init_from", log);
  model->to(device);
  model->train();
  auto params = model->parameters();
  std::vector<Tensor> ema;
  for (const auto& p : params) ema.push_back(p.detach().clone());
  torch::optim::Adam adam = make_optimizer(model, s, log);
  std::mt19937_64 rng(s.seed);  // the same on every rank: it draws the global batch's samples
  at::Generator gen = at::detail::createCPUGenerator(s.seed + 1);

  const fs::path out(o.out_dir);
  std::optional<RunLock> lock;
  if (env.rank == 0) lock.emplace(out);
  Checkpointer ckpt{out / "checkpoint"};
  long step = open_run(ckpt, o, env, dp.get(), model, ema, adam, rng, gen, ema_warmup, log);
  std::unique_ptr<GradientReducer> reducer;
  if (dp && s.grad_overlap) reducer = std::make_unique<GradientReducer>(*dp, params);
  DiffusionConfig full = spec.diffusion;  // training samples every timestep of the trained process
  full.timestep_respacing.clear();
  const ForwardProcess q(make_schedule(full));

  std::optional<LossLog> loss_log;
  if (env.rank == 0) loss_log.emplace(out / "loss.csv", "step,loss,steps_per_s,elapsed_s", o.resume);
  LoopClock clock(step, s.steps, s.checkpoint_minutes);
  NonFiniteGuard guard("training", "step");
  const std::string hint = s.bf16 ? "with bf16 autocast: set \"bf16\": false" : "lower lr, or resume from the last checkpoint";
  TrainReport report;
  double window = 0, data_seconds = 0;
  int window_n = 0;
  auto checkpoint = [&] {
    if (env.rank != 0) return;
    ckpt.save(*model, ema, adam, step, rng, gen, {{"name", spec.info.name}, {"ema_warmup", ema_warmup}});
    const bool use_ema = s.export_weights == "ema";
    const auto dtype = s.export_dtype == "f16" ? torch::kHalf : s.export_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    export_model(spec.info, out / "model", *model, use_ema ? &ema : nullptr, step,
                 "step " + std::to_string(step) + ", " + (use_ema ? "EMA" : "raw") + " weights", dtype);
    loss_log->plot(spec.info.name + ": training loss", log);
    clock.checkpointed();
  };

  while (step < s.steps) {
    // Every rank stops at the same step (a Ctrl-C reaches them at slightly different times).
    const bool stop = cancel && cancel->cancelled();
    if (dp ? dp->sum({stop ? 1.0 : 0.0})[0] > 0 : stop) break;
    const auto data_start = std::chrono::steady_clock::now();
    const Batch b = next_part(*data, rng, s.batch, env);
    data_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - data_start).count();
    const auto [l, grad_norm] = backward(batch_loss(model, spec, s, q, b, gen, device, dp.get()), adam, params,
                                         s.grad_clip, dp.get(), reducer.get());
    if (!guard.accept(l, grad_norm, step, hint)) continue;  // skip the update
    set_lr(adam, s, step);
    adam.step();
    ++step;
    ema_update(ema, params, s.ema_rate, step, ema_warmup);
    window += l;
    ++window_n;
    if (step % s.log_every == 0 || step == s.steps) {
      const double mean = window / window_n;
      if (report.first_loss == 0) report.first_loss = mean;
      report.last_loss = mean;
      log_progress(log, s, step, mean, clock, data_seconds, guard.skipped());
      if (loss_log) loss_log->row(step, mean, clock.rate(step), clock.elapsed());
      window = 0;
      window_n = 0;
    }
    // A checkpoint is rank 0's alone (no collective in it): the others wait at the next all-reduce.
    if (clock.checkpoint_due()) checkpoint();
  }
  checkpoint();
  if (dp) dp->barrier();  // nobody leaves while rank 0 still writes
  report.step = step;
  report.skipped_nan = static_cast<int>(guard.skipped());
  log << "saved " << (out / "model").string() << " at step " << step;
  if (report.skipped_nan > 0) log << " (" << report.skipped_nan << " step(s) skipped: non-finite loss)";
  log << "\n";
  return report;
}

}  // namespace dsk
