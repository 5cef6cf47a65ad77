// Pieces of the engine shared by its request handlers (sample in engine.cpp; edit, generate and
// interpolate in edit.cpp). Uses LibTorch; hosts include engine.h instead.
#pragma once

#include <torch/torch.h>

#include <optional>

#include "core/diffusion/sampler.h"
#include "core/base/error.h"
#include "core/engine/defaults.h"
#include "core/engine/engine.h"
#include "core/engine/request_checks.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_registry.h"

namespace dsk {

// The respaced schedule a request asks for: --respacing, else --steps N (section respacing "N").
Schedule schedule_for(const SamplingParams& params, const DiffusionConfig& diffusion);

// Class labels [batch] for a class-conditional model or a classifier; undefined when neither needs one.
torch::Tensor class_labels(const SamplingParams& params, const LoadedUNet& unet, const LoadedClassifier* classifier,
                           int64_t batch, torch::Device device);

// `predict` with classifier guidance (core/diffusion/guidance.h) toward labels y when a classifier
// is given; `predict` itself otherwise.
Predictor guided_by_classifier(const Schedule& schedule, const DiffusionConfig& diffusion, Predictor predict,
                               SamplerKind sampler, LoadedClassifier* classifier, const torch::Tensor& y, double scale);

// [B,3,H,W] in [-1,1] -> images in [0,1].
std::vector<ImageF32> to_images(const torch::Tensor& x);
ImageF32 to_image(const torch::Tensor& chw);

}  // namespace dsk
