#include <algorithm>

#include "core/base/error.h"
#include "core/diffusion/guidance.h"
#include "core/engine/engine_internal.h"
#include "core/engine/model_cache.h"

namespace dsk {

Schedule schedule_for(const SamplingParams& params, const DiffusionConfig& diffusion) {
  const std::string respacing =
      !params.respacing.empty() ? params.respacing : steps_to_respacing(params.steps, diffusion.diffusion_steps);
  return make_schedule(diffusion, respacing);
}

torch::Tensor class_labels(const SamplingParams& params, const LoadedUNet& unet, const LoadedClassifier* classifier,
                           int64_t batch, torch::Device device) {
  const bool needed = unet.net.class_cond || classifier;
  if (!needed) {
    if (params.class_label >= 0)
      throw InputError("--class " + std::to_string(params.class_label) + " given, but " + unet.info.dir +
                       " is unconditional and no --classifier is given");
    return {};
  }
  const int classes = unet.net.class_cond ? unet.net.num_classes : classifier->net.num_classes;
  if (classifier && unet.net.class_cond && classifier->net.num_classes != unet.net.num_classes)
    throw InputError("the classifier has " + std::to_string(classifier->net.num_classes) + " classes, the model " +
                     std::to_string(unet.net.num_classes));
  if (params.class_label < 0 || params.class_label >= classes)
    throw InputError(std::string(unet.net.class_cond ? "this class-conditional model" : "classifier guidance") +
                     " needs --class Y with Y in 0.." + std::to_string(classes - 1));
  return torch::full({batch}, static_cast<int64_t>(params.class_label),
                     torch::TensorOptions().dtype(torch::kInt64).device(device));
}

Predictor guided_by_classifier(const Schedule& schedule, const DiffusionConfig& diffusion, Predictor predict,
                               SamplerKind sampler, LoadedClassifier* classifier, const torch::Tensor& y, double scale) {
  if (!classifier) return predict;
  EncoderUNetModel net = classifier->model;
  ClassifierFn logits = [net](const torch::Tensor& x, const torch::Tensor& t) mutable { return net(x, t); };
  return with_classifier_guidance(schedule, diffusion, std::move(predict), sampler,
                                  classifier_cond_fn(std::move(logits), y, scale));
}

ImageF32 to_image(const torch::Tensor& chw) {
  auto hwc = ((chw.detach().to(torch::kCPU, torch::kFloat32) + 1) / 2).clamp(0, 1).permute({1, 2, 0}).contiguous();
  ImageF32 img;
  img.height = static_cast<int>(hwc.size(0));
  img.width = static_cast<int>(hwc.size(1));
  img.channels = static_cast<int>(hwc.size(2));
  img.data.assign(hwc.data_ptr<float>(), hwc.data_ptr<float>() + hwc.numel());
  return img;
}

std::vector<ImageF32> to_images(const torch::Tensor& x) {
  std::vector<ImageF32> out;
  for (int64_t b = 0; b < x.size(0); ++b) out.push_back(to_image(x[b]));
  return out;
}

Engine::Engine() : Engine(Options{}) {}
Engine::Engine(const Options& options) : models_(std::make_unique<ModelCache>(options.models_kept)) {}
Engine::~Engine() = default;

int Engine::models_loaded() const { return models_->size(); }
void Engine::unload() { models_->clear(); }

std::vector<ImageF32> Engine::sample(const SampleRequest& req, const ProgressFn& progress, const CancelToken* cancel) {
  check_sample_request(req);
  const auto device = resolve_device(req.sampling.device);
  auto unet = models_->unet(req.model, device, "sample");
  if (unet.info.kind != ModelKind::AdmUnet)
    require_kind(unet.info, {ModelKind::AdmUnet}, "sample (use 'generate' for editing models)");
  std::optional<LoadedClassifier> classifier;
  if (!req.sampling.classifier.empty()) classifier = models_->classifier(req.sampling.classifier, device, "sample");
  if (classifier && classifier->net.image_size != unet.net.image_size)
    throw InputError("the classifier works on " + std::to_string(classifier->net.image_size) + " px images, the model on " +
                     std::to_string(unet.net.image_size) + " px");

  const auto kind = sampler_from_name(req.sampling.sampler);
  const Schedule schedule = schedule_for(req.sampling, unet.diffusion);
  const auto y = class_labels(req.sampling, unet, classifier ? &*classifier : nullptr, req.batch, device);
  const torch::Tensor y_model = unet.net.class_cond ? y : torch::Tensor();
  ModelFn model_fn = [&](const torch::Tensor& x, const torch::Tensor& t) { return unet.model(x, t, y_model); };
  Predictor predict = guided_by_classifier(schedule, unet.diffusion, make_predictor(schedule, unet.diffusion, model_fn),
                                           kind, classifier ? &*classifier : nullptr, y, req.sampling.classifier_scale);

  torch::NoGradGuard no_grad;
  LoopOptions opts;
  opts.sampler = kind;
  opts.eta = req.sampling.eta;
  opts.noise = seeded_noise(req.sampling.seed);
  opts.cancel = cancel;
  if (progress) {
    opts.on_step = [&](int step, int total, const torch::Tensor&, const torch::Tensor& x0) {
      Progress p{step, total, nullptr};
      ImageF32 preview;
      if (req.preview) {
        preview = to_image(x0[0]);
        p.preview = &preview;
      }
      progress(p);
    };
  }
  const int s = unet.net.image_size;
  auto x_T = opts.noise(torch::empty({req.batch, 3, s, s}, torch::TensorOptions().device(device)));
  return to_images(sample_loop(schedule, predict, x_T, opts));
}

}  // namespace dsk
