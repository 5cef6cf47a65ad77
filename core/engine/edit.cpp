// edit / generate / interpolate: from user images to the model's working square and back.
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/diffusion/guidance.h"
#include "core/diffusion/sketch_loss.h"
#include "core/engine/engine_internal.h"
#include "core/engine/model_cache.h"
#include "editing/composite.h"
#include "editing/detail.h"
#include "editing/harmonize.h"
#include "editing/image_io.h"
#include "editing/interp.h"
#include "editing/masks.h"
#include "editing/metrics.h"
#include "editing/region.h"
#include "editing/sketch.h"
#include "editing/tiles.h"

namespace dsk {

using torch::Tensor;

namespace {

// [H,W,C] float mat -> [1,C,H,W] tensor (RGB images mapped to [-1,1]).
Tensor to_tensor(const cv::Mat& m, bool image) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, torch::kFloat32).permute({2, 0, 1}).clone();
  if (image) t = t * 2 - 1;
  return t.unsqueeze(0);
}

// [3,H,W] in [-1,1] -> CV_32FC3 RGB in [0,1].
cv::Mat to_rgb_mat(const Tensor& chw) {
  auto hwc = ((chw.detach().to(torch::kCPU, torch::kFloat32) + 1) / 2).clamp(0, 1).permute({1, 2, 0}).contiguous();
  return cv::Mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_32FC3, hwc.data_ptr<float>()).clone();
}

// What the model sees of one square.
struct Square {
  Tensor image;   // [1,3,R,R] in [-1,1]
  Tensor mask;    // [1,1,R,R] 1 = generate (binary)
  Tensor sketch;  // [1,1,R,R] stroke map; zeros = blank
  // The model is conditioned on `sketch` (editing models); otherwise it gets "no sketch" (its
  // sketch_null map), as classifier-free guidance's unconditional branch does.
  bool has_sketch = false;
  bool guide = false;         // the sketch is not blank: sketch guidance applies
};

// The denoiser for a square: editing models get [x_t, masked image, mask] and the sketch, with
// classifier-free guidance on the sketch (eps_u + s (eps_c - eps_u)); plain ADM models get x_t.
ModelFn square_model(LoadedUNet& unet, const Square& sq, double sketch_scale, const Tensor& y_model) {
  if (unet.info.kind != ModelKind::EditingUnet)
    return [&unet, y_model](const Tensor& x, const Tensor& t) { return unet.model(x, t, y_model); };
  return [&unet, sq, sketch_scale, y_model](const Tensor& x, const Tensor& t) {
    const int64_t b = x.size(0);
    auto masked = (sq.image * (1 - sq.mask)).expand({b, -1, -1, -1});
    auto mask = sq.mask.expand({b, -1, -1, -1});
    auto input = torch::cat({x, masked, mask}, 1);
    auto blank = torch::full_like(sq.sketch, unet.net.sketch_null).expand({b, -1, -1, -1});
    auto sketch = sq.sketch.expand({b, -1, -1, -1});
    if (!sq.has_sketch || sketch_scale == 0) return unet.model(input, t, y_model, blank);
    if (sketch_scale == 1) return unet.model(input, t, y_model, sketch);
    auto y2 = y_model.defined() ? torch::cat({y_model, y_model}) : Tensor();
    auto both = unet.model(torch::cat({input, input}), torch::cat({t, t}), y2, torch::cat({sketch, blank}));
    auto cond = both.narrow(0, 0, b), uncond = both.narrow(0, b, b);
    return uncond + sketch_scale * (cond - uncond);
  };
}

struct Job {
  LoadedUNet unet;
  std::optional<LoadedClassifier> classifier;
  torch::Device device = torch::kCPU;
  SamplingParams params;
  double sketch_scale = 1.0;
  double refine_sketch_scale = 1.0;  // the refinement tiles'
  SamplingParams refine_params;  // the refinement's schedule: refine_steps from refine_strength
  int refine_first = 0;          // its first step index
  int repaint_jumps = 0, repaint_length = 10;
  SketchGuidance guidance;
  std::shared_ptr<SketchLoss> sketch_loss;  // when guidance.scale > 0
  const ProgressFn* progress = nullptr;
  const CancelToken* cancel = nullptr;
  bool preview = false;
  bool sketch_given = false;  // the sketch layer has a stroke somewhere in the image
  int done = 0, total = 0;  // steps over all variants / tiles
};

Job open_job(ModelCache& models, const std::string& model, const SamplingParams& params, const std::string& command) {
  Job job;
  job.device = resolve_device(params.device);
  job.params = params;
  job.unet = models.unet(model, job.device, command);
  if (!params.classifier.empty()) job.classifier = models.classifier(params.classifier, job.device, command);
  return job;
}

// Samples one square from seed `seed`; `init` + `first_index` give an SDEdit-style partial run.
// Known pixels (mask 0) are blended in after every step: noised to the level of that step's output.
// `params` gives the schedule (the coarse pass's or the refinement's).
Tensor sample_square(Job& job, const SamplingParams& params, double sketch_scale, const Square& square, uint64_t seed,
                     bool blend_known, const Tensor& init = {}, int first_index = -1, const Tensor& x_T_override = {}) {
  // Whatever device the caller built the square on (the refinement tiles come from OpenCV, on the
  // CPU), the model sees it on the job's: a CUDA model refuses a CPU input.
  Square sq = square;
  sq.image = square.image.to(job.device);
  sq.mask = square.mask.to(job.device);
  sq.sketch = square.sketch.to(job.device);
  const auto kind = sampler_from_name(params.sampler);
  const Schedule schedule = schedule_for(params, job.unet.diffusion);
  LoadedClassifier* cls = job.classifier ? &*job.classifier : nullptr;
  const auto y = class_labels(job.params, job.unet, cls, 1, job.device);
  const Tensor y_model = job.unet.net.class_cond ? y : Tensor();
  Predictor predict = guided_by_classifier(schedule, job.unet.diffusion,
                                           make_predictor(schedule, job.unet.diffusion,
                                                          square_model(job.unet, sq, sketch_scale, y_model)),
                                           kind, cls, y, job.params.classifier_scale);
  if (job.guidance.scale > 0 && sq.guide) {
    // The sketch applies inside the hole (grown a little, as sketch_in_hole grows it).
    const int64_t r = std::max<int64_t>(1, sq.mask.size(2) / 32);
    const Tensor where = torch::max_pool2d(sq.mask, {2 * r + 1, 2 * r + 1}, {1, 1}, {r, r});
    const Tensor target = sq.sketch;
    auto loss = [sl = job.sketch_loss, where, target](const Tensor& x0) {
      const auto b = x0.size(0);
      return (*sl)(x0, target.expand({b, -1, -1, -1}), where.expand({b, -1, -1, -1})) * static_cast<double>(b);
    };
    predict = with_sketch_guidance(schedule, std::move(predict), loss, job.guidance.scale, job.guidance.exact, kind);
  }
  torch::NoGradGuard no_grad;
  LoopOptions opts;
  opts.sampler = kind;
  opts.eta = job.params.eta;
  opts.noise = seeded_noise(seed);
  opts.cancel = job.cancel;
  opts.first_index = first_index;
  if (blend_known) opts.after_step = known_region_blend(schedule, sq.image, sq.mask, seeded_noise(seed ^ 0x9E3779B97F4A7C15ULL));
  const int base = job.done;
  if (job.progress && *job.progress) {
    opts.on_step = [&job, base](int step, int, const Tensor&, const Tensor& x0) {
      job.done = base + step;
      Progress p{job.done, job.total, nullptr};
      ImageF32 preview;
      if (job.preview) {
        preview = to_image(x0[0]);
        p.preview = &preview;
      }
      (*job.progress)(p);
    };
  }
  const int r = job.unet.net.image_size;
  Tensor x_T = opts.noise(torch::empty({1, 3, r, r}, torch::TensorOptions().device(job.device)));
  if (x_T_override.defined()) x_T = x_T_override.to(job.device);
  if (init.defined()) x_T = q_sample(schedule, init.to(job.device), first_index, x_T);
  auto out = job.repaint_jumps > 0 && !init.defined()
                 ? repaint_loop(schedule, predict, x_T, opts, job.repaint_jumps, job.repaint_length)
                 : sample_loop(schedule, predict, x_T, opts);
  job.done = base + (first_index < 0 ? schedule.size() : first_index + 1);
  return out;
}

int steps_of(const Job& job) { return schedule_for(job.params, job.unet.diffusion).size(); }

// The step a partial run of a `steps`-step schedule starts at: `strength` of the process (1 = all of it).
int first_index_for(int steps, double strength) {
  return std::clamp(static_cast<int>(std::lround(steps * strength)) - 1, 0, steps - 1);
}
int first_index_for(const Job& job, double strength) { return first_index_for(steps_of(job), strength); }

// The refinement's own schedule: even steps over the whole process, as many as put `steps` of them
// below `strength` (e.g. 0.3 and 2: 7 steps over the process, of which the tiles run the lowest 2),
// at most one per timestep of the model.
void plan_refinement_schedule(Job& job, double strength, int steps) {
  job.refine_params = job.params;
  job.refine_params.respacing.clear();
  job.refine_params.steps = std::min(job.unet.diffusion.diffusion_steps,
                                     std::max(steps, static_cast<int>(std::lround(steps / strength))));
  job.refine_first = first_index_for(job.refine_params.steps, strength);
}

double sketch_width(const Job& job) { return edit::sketch_width_for(job.unet.net.image_size); }

// Whether an editing model is conditioned on a square's sketch. Models whose "no sketch" is a blank
// map (sketch_null 0) only when strokes reach the square: nothing else differs. Models that tell
// them apart whenever the user gave a sketch: a square it leaves blank means "draw no new edges
// here", while no sketch at all lets the model invent.
bool conditioned(const Job& job, bool strokes_in_square) {
  if (job.unet.info.kind != ModelKind::EditingUnet) return false;
  return job.unet.net.sketch_null != 0 ? job.sketch_given : strokes_in_square;
}

// The stroke map of the sketch layer at `size`, with warnings for a resized or blank sketch.
cv::Mat read_sketch(const cv::Mat& layer, cv::Size size, std::vector<std::string>& warnings) {
  if (layer.empty()) return cv::Mat::zeros(size, CV_32F);
  cv::Mat strokes = edit::stroke_map(layer);
  if (strokes.size() != size) {
    warnings.push_back("the sketch is " + std::to_string(layer.cols) + "x" + std::to_string(layer.rows) +
                       ", the image " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                       ": the sketch was resized to the image");
    strokes = edit::resize_strokes(strokes, size);
  }
  if (edit::is_blank(strokes)) warnings.push_back("the sketch is blank: running without sketch guidance");
  return strokes;
}

// The coarse result (crop pixels, RGB [0,1]) refined in tiles at (near) native resolution: each
// tile is re-noised to an intermediate step and denoised with the known pixels blended in.
cv::Mat refine(Job& job, const edit::RegionPlan& plan, const cv::Mat& image, const cv::Mat& soft_mask,
               const cv::Mat& strokes, const cv::Mat& coarse_square, uint64_t seed) {
  const int r = job.unet.net.image_size;
  const int overlap = r / 4;
  const auto rp = edit::plan_refinement(plan.side, r, overlap);
  if (!rp.needed) return {};
  const cv::Mat img = edit::to_work_image(plan, image, rp.size);
  const cv::Mat mask = edit::to_work_mask(plan, soft_mask, rp.size);
  const cv::Mat sketch = edit::to_work_sketch(plan, strokes, rp.size);
  cv::Mat coarse;
  cv::resize(coarse_square, coarse, cv::Size(rp.size, rp.size), 0, 0, cv::INTER_CUBIC);
  // Start: the coarse result inside the hole, the real pixels outside.
  cv::Mat mask3, start;
  cv::cvtColor(mask, mask3, cv::COLOR_GRAY2BGR);
  start = coarse.mul(mask3) + img.mul(cv::Scalar::all(1) - mask3);
  const int first = job.refine_first;
  std::vector<cv::Mat> results;
  for (size_t k = 0; k < rp.tiles.size(); ++k) {
    const cv::Rect t = rp.tiles[k].rect;
    Square sq;
    sq.image = to_tensor(start(t), true);
    cv::Mat m = mask(t) > 0.5;
    m.convertTo(m, CV_32F, 1.0 / 255);
    sq.mask = to_tensor(m, false);
    cv::Mat sk = edit::normalize_stroke_width(sketch(t), sketch_width(job));
    sq.sketch = to_tensor(edit::sketch_in_hole(sk, m, r), false);
    sq.guide = !edit::is_blank(sk);
    sq.has_sketch = conditioned(job, sq.guide);
    if (cv::countNonZero(m) == 0) {
      results.push_back(start(t).clone());
      job.done += first + 1;
      continue;
    }
    auto out = sample_square(job, job.refine_params, job.refine_sketch_scale, sq, seed + 1000 * (k + 1), /*blend_known=*/true, sq.image, first);
    results.push_back(to_rgb_mat(out[0]));
  }
  const cv::Mat refined = edit::blend_tiles(rp.tiles, results, cv::Size(rp.size, rp.size), overlap);
  return edit::work_to_crop(plan, refined);
}


// Everything an edit needs before sampling: the model, the region plan and the square's inputs.
struct Prepared {
  Job job;
  edit::RegionPlan plan;
  Square sq;
  Tensor init;  // [1,3,R,R]: the smooth fill a partial run starts from (init_strength < 1)
  int init_first = -1;
  cv::Mat soft, strokes;
  DetailMode detail = DetailMode::None;  // what the request asked for, or tiles where patches have no source
  bool editing = false;
  EditResult result;  // warnings so far
};

Prepared prepare(ModelCache& models, const EditRequest& req, const ProgressFn& progress, const CancelToken* cancel,
                 const std::string& command) {
  check_edit_request(req);
  check_request_memory(req.image.size(), req.variants, available_memory());
  Prepared p;
  p.soft = edit::soft_mask_from_image(req.mask);
  if (edit::mask_support_bbox(p.soft > 0.5).empty())
    throw InputError("the mask selects nothing (no pixel above 50%); paint the region to regenerate white");
  p.strokes = read_sketch(req.sketch, req.image.size(), p.result.warnings);
  p.job = open_job(models, req.model, req.sampling, command);
  Job& job = p.job;
  job.sketch_scale = req.sketch_scale;
  job.refine_sketch_scale = req.refine_sketch_scale < 0 ? req.sketch_scale : req.refine_sketch_scale;
  plan_refinement_schedule(job, req.refine_strength, req.refine_steps);
  job.repaint_jumps = req.repaint_jumps;
  job.repaint_length = req.repaint_length;
  job.guidance = req.sketch_guidance;
  if (job.guidance.scale > 0)
    job.sketch_loss = std::make_shared<SketchLoss>(models.sketch_features(job.guidance.features, job.device));
  job.progress = &progress;
  job.cancel = cancel;
  job.preview = req.preview;
  p.editing = job.unet.info.kind == ModelKind::EditingUnet;
  job.sketch_given = !edit::is_blank(p.strokes);
  if (!p.editing && job.sketch_given && job.guidance.scale == 0)
    p.result.warnings.push_back(job.unet.info.dir + " is a plain ADM model: it follows the sketch only with sketch "
                                "guidance (--sketch-guidance S), or use an editing model");
  if (job.guidance.scale > 0 && !job.sketch_given)
    p.result.warnings.push_back("sketch guidance needs a sketch: the sketch is blank, guidance is off");
  const int r = job.unet.net.image_size;
  p.plan = edit::plan_region(req.image.size(), p.soft, r, req.context_margin);
  const auto rp = edit::plan_refinement(p.plan.side, r, r / 4);
  const cv::Mat work_image = edit::to_work_image(p.plan, req.image);
  const cv::Mat work_mask_u8 = edit::to_work_mask(p.plan, p.soft) > 0.5;
  // A partial run from a smooth fill needs known pixels to fill from (not generate's blank canvas).
  // RePaint's jumps run the whole process from noise.
  const bool repaint = req.repaint_jumps > 0;
  if (repaint && req.init_strength < 1) {
    std::ostringstream w;
    w << "RePaint jumps run the whole process from noise: the init strength (" << req.init_strength
      << ") does not apply";
    p.result.warnings.push_back(w.str());
  }
  if (!repaint && req.init_strength < 1 && cv::countNonZero(work_mask_u8) < 0.99 * work_mask_u8.total()) {
    p.init = to_tensor(edit::inpaint_baseline(work_image, work_mask_u8, "ns"), true).to(job.device);
    p.init_first = first_index_for(job, req.init_strength);
  }
  const int steps = steps_of(job);
  const int repaint_factor = 1 + std::max(0, req.repaint_jumps);
  const int first_steps = p.init.defined() ? p.init_first + 1 : steps * repaint_factor;
  p.detail = req.detail;
  if (p.detail == DetailMode::Patch && rp.needed && !edit::has_patch_source(p.soft(p.plan.crop) > 0)) {
    p.detail = DetailMode::Tiles;
    p.result.warnings.push_back("no known pixels around the selection to take detail from: the tiles refinement was used");
  }
  job.total = req.variants * (first_steps + (p.detail == DetailMode::Tiles && rp.needed ? static_cast<int>(rp.tiles.size()) * (job.refine_first + 1)
                                                                     : 0));
  p.sq.image = to_tensor(work_image, true).to(job.device);
  cv::Mat work_mask;
  work_mask_u8.convertTo(work_mask, CV_32F, 1.0 / 255);
  p.sq.mask = to_tensor(work_mask, false).to(job.device);
  const cv::Mat work_strokes = edit::normalize_stroke_width(edit::to_work_sketch(p.plan, p.strokes), sketch_width(job));
  p.sq.sketch = to_tensor(edit::sketch_in_hole(work_strokes, work_mask, r), false).to(job.device);
  p.sq.guide = !edit::is_blank(work_strokes);
  p.sq.has_sketch = conditioned(job, p.sq.guide);
  return p;
}

// Detail from the picture's own pixels at native resolution (editing/detail.h), guided by the
// model's result upscaled; nothing when the model already worked at native resolution or above.
cv::Mat patch_detail(const Prepared& p, const EditRequest& req, const cv::Mat& square, uint64_t seed) {
  if (p.plan.scale >= 1) return {};
  const cv::Mat coarse = edit::work_to_crop(p.plan, square);
  const cv::Mat real = edit::to_float_rgb(req.image(p.plan.crop)).rgb;
  edit::DetailOptions o;
  o.guide_scale = 1.0 / p.plan.scale;
  o.seed = seed;
  if (const CancelToken* cancel = p.job.cancel)
    o.check = [cancel] {
      if (cancel->cancelled()) throw Cancelled();
    };
  // The sketch steers the synthesis where it steered the model (`conditioned`): a model whose "no
  // sketch" is a blank map saw none when no stroke reached its square; the structure target is then
  // the edges of what the model drew.
  const cv::Mat strokes = p.sq.has_sketch ? p.strokes(p.plan.crop).clone() : cv::Mat();
  return edit::synthesize_detail(real, p.soft(p.plan.crop) > 0, coarse, strokes, o);
}

// One result: the square sampled from `seed` (or from x_T), refined, composited into the image.
cv::Mat render(Prepared& p, const EditRequest& req, uint64_t seed, const Tensor& x_T = {}) {
  // Known pixels are blended in for editing models too: their x_t outside the hole then stays
  // distributed as in training (the image noised to t) instead of drifting with the model's errors.
  auto out = sample_square(p.job, p.job.params, p.job.sketch_scale, p.sq, seed, /*blend_known=*/true, p.init, p.init_first, x_T);
  const cv::Mat square = to_rgb_mat(out[0]);
  cv::Mat crop;
  if (p.detail == DetailMode::Tiles) crop = refine(p.job, p.plan, req.image, p.soft, p.strokes, square, seed);
  if (p.detail == DetailMode::Patch) crop = patch_detail(p, req, square, seed);
  if (crop.empty()) crop = edit::work_to_crop(p.plan, square);
  if (req.harmonize > 0) {
    const cv::Mat real = edit::to_float_rgb(req.image(p.plan.crop)).rgb;
    crop = edit::harmonize(crop, real, p.soft(p.plan.crop) > 0.f, req.harmonize);
  }
  return edit::composite(req.image, crop, p.soft, req.feather, p.plan.crop.tl());
}

// generate = edit of a neutral canvas with everything selected.
EditRequest generate_as_edit(const GenerateRequest& req) {
  // Before the canvas and the mask are made: a huge size is refused, not allocated.
  check_generate_request(req);
  const int w = req.width > 0 ? req.width : req.sketch.cols, h = req.height > 0 ? req.height : req.sketch.rows;
  check_request_memory(cv::Size(w, h), req.variants, available_memory());
  const auto info = read_model_info(resolve_model(req.model));
  require_kind(info, {ModelKind::EditingUnet}, "generate (plain ADM models: use 'sample')");
  EditRequest e;
  e.model = req.model;
  e.sampling = req.sampling;
  e.image = cv::Mat(h, w, CV_8UC3, cv::Scalar::all(127));
  e.mask = cv::Mat(h, w, CV_8UC1, cv::Scalar(255));
  e.sketch = req.sketch;
  e.sketch_scale = req.sketch_scale;
  e.sketch_guidance = req.sketch_guidance;
  e.variants = req.variants;
  e.context_margin = 0;
  e.feather = 0;
  e.detail = DetailMode::Tiles;  // nothing around the canvas to take patches from
  e.preview = req.preview;
  return e;
}

}  // namespace

EditResult Engine::edit(const EditRequest& req, const ProgressFn& progress, const CancelToken* cancel) {
  Prepared p = prepare(*models_, req, progress, cancel, "edit");
  for (int v = 0; v < req.variants; ++v) {
    const uint64_t seed = req.sampling.seed + v;
    p.result.images.push_back(render(p, req, seed));
    p.result.seeds.push_back(seed);
  }
  return p.result;
}

EditResult Engine::generate(const GenerateRequest& req, const ProgressFn& progress, const CancelToken* cancel) {
  return edit(generate_as_edit(req), progress, cancel);
}

EditResult Engine::interpolate(const InterpolateRequest& req, const ProgressFn& progress, const CancelToken* cancel) {
  check_interpolate_request(req);
  EditRequest e = generate_as_edit(req.generate);
  e.variants = 1;
  Prepared p = prepare(*models_, e, progress, cancel, "interpolate");
  p.job.total *= req.frames;
  const int r = p.job.unet.net.image_size;
  // x_T of a seed is the first draw of that seed's generator, as in edit / generate / sample.
  auto noise_of = [&](uint64_t seed) { return seeded_noise(seed)(torch::empty({1, 3, r, r})).contiguous(); };
  const auto a = noise_of(req.seed_a), b = noise_of(req.seed_b);
  const std::span<const float> sa(a.data_ptr<float>(), a.numel()), sb(b.data_ptr<float>(), b.numel());
  for (double frac : edit::frame_fractions(req.frames)) {
    auto mixed = edit::interpolate(sa, sb, req.mode, frac);
    auto x_T = torch::from_blob(mixed.data(), a.sizes(), torch::kFloat32).clone();
    const uint64_t seed = frac >= 1.0 ? req.seed_b : req.seed_a;  // the refinement's noise
    p.result.images.push_back(render(p, e, seed, x_T));
    p.result.seeds.push_back(seed);
  }
  return p.result;
}

}  // namespace dsk
