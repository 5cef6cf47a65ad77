// Sketch feature model folders (kind "sketch-features") and loading the feature network for the
// sketch loss (docs/sketch-features.md).
//
// model.json flags:
//   {"arch": "resnet50", "num_classes": N, "image_size": S, "classes": ["airplane", ...]}
//   arch: the network (torchvision's resnet50, the only one so far); num_classes: the rows of fc;
//   image_size: the side it was trained at (features work at any size >= 16 px);
//   classes (optional): the class names in label order, e.g. the training folders' names.
// weights.safetensors: torchvision's state_dict names, BatchNorm buffers included.
//
//   auto net = dsk::load_sketch_features("", device);          // the fixed edge pyramid
//   auto net = dsk::load_sketch_features("models/sketchy", device);
//   auto feats = net->features(strokes);                       // [B,1,H,W] in [0,1]
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/formats/model_info.h"
#include "models/resnet.h"
#include "models/sketch_features.h"

namespace dsk {

struct SketchFeaturesConfig {
  std::string arch = "resnet50";
  int64_t num_classes = 1000;
  int image_size = 224;
  std::vector<std::string> classes;  // empty, or num_classes names
};

// Checks the flags (unknown keys, types, ranges); errors name `where`.
SketchFeaturesConfig sketch_features_config_from_flags(const nlohmann::json& flags, const std::string& where);
nlohmann::json to_flags(const SketchFeaturesConfig& config);
ResNet build_sketch_resnet(const SketchFeaturesConfig& config);

// The network of a sketch-features model folder, loaded whole (or InputError), on the CPU, in
// train mode with trainable parameters (for training and inspection). `info`/`config` receive what was read.
ResNet load_sketch_resnet(const std::string& dir, ModelInfo* info = nullptr, SketchFeaturesConfig* config = nullptr);

// The feature network for the sketch loss: "" = make_edge_pyramid(); else a sketch-features model
// folder (another kind is refused with InputError), frozen, in eval mode, on `device`.
std::shared_ptr<SketchFeatureNet> load_sketch_features(const std::string& dir_or_empty, torch::Device device);

}  // namespace dsk
