// Loading model folders into LibTorch networks on a device.
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/device/device.h"
#include "core/diffusion/schedule.h"
#include "core/formats/model_info.h"
#include "models/unet.h"

namespace dsk {

struct LoadedUNet {
  ModelInfo info;
  UNetConfig net;
  DiffusionConfig diffusion;
  UNetModel model{nullptr};
};

struct LoadedClassifier {
  ModelInfo info;
  ClassifierConfig net;
  EncoderUNetModel model{nullptr};
};

// Reads model.json + weights.safetensors (checked against manifest.json when the folder has one:
// core/formats/manifest.h), builds the network, loads it whole (or throws), moves it
// to `device` in eval mode; on CUDA with use_fp16 the block convolutions run in half precision.
// Every call reads the folder: an Engine keeps loaded models (core/engine/model_cache.h).
LoadedUNet load_unet(const std::string& dir, torch::Device device, const std::string& command);
LoadedClassifier load_classifier(const std::string& dir, torch::Device device, const std::string& command);

// Builds networks from flat guided-diffusion flags (conformance cases, conversion, tests).
UNetConfig unet_config_from_flags(const nlohmann::json& flags, const std::string& where);
ClassifierConfig classifier_config_from_flags(const nlohmann::json& flags, const std::string& where);

}  // namespace dsk
