// The published guided-diffusion checkpoints, by the flags its README gives for each, and
// torchvision's resnet50 (a sketch-features model, docs/sketch-features.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/formats/model_info.h"

namespace dsk {

struct Preset {
  std::string name;
  ModelKind kind;
  std::string checkpoint;  // the official file name
  nlohmann::json flags;
};

const std::vector<Preset>& presets();
const Preset& find_preset(const std::string& name);  // throws InputError listing the names

}  // namespace dsk
