#include "core/formats/sketch_features_model.h"

#include "core/base/error.h"
#include "core/formats/manifest.h"
#include "core/formats/model_folder.h"
#include "core/formats/tensor_io.h"

namespace dsk {

SketchFeaturesConfig sketch_features_config_from_flags(const nlohmann::json& flags, const std::string& where) {
  SketchFeaturesConfig c;
  auto bad = [&](const std::string& what) { return InputError(where + ": sketch-features flags: " + what); };
  if (!flags.is_object()) throw bad("must be an object");
  for (auto it = flags.begin(); it != flags.end(); ++it) {
    const auto& k = it.key();
    const auto& v = it.value();
    if (k == "arch") {
      if (!v.is_string()) throw bad("'arch' must be a string");
      c.arch = v.get<std::string>();
    } else if (k == "num_classes") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1) throw bad("'num_classes' must be an integer >= 1");
      c.num_classes = v.get<int64_t>();
    } else if (k == "image_size") {
      if (!v.is_number_integer() || v.get<int>() < 16) throw bad("'image_size' must be an integer >= 16");
      c.image_size = v.get<int>();
    } else if (k == "classes") {
      if (!v.is_array()) throw bad("'classes' must be an array of class names");
      for (const auto& name : v) {
        if (!name.is_string()) throw bad("'classes' must hold strings");
        c.classes.push_back(name.get<std::string>());
      }
    } else {
      throw bad("unknown flag '" + k + "' (known: arch, num_classes, image_size, classes)");
    }
  }
  if (c.arch != "resnet50") throw bad("arch '" + c.arch + "' is not supported (only \"resnet50\")");
  if (!c.classes.empty() && static_cast<int64_t>(c.classes.size()) != c.num_classes)
    throw bad("'classes' has " + std::to_string(c.classes.size()) + " names but num_classes is " +
              std::to_string(c.num_classes));
  return c;
}

nlohmann::json to_flags(const SketchFeaturesConfig& c) {
  nlohmann::json j = {{"arch", c.arch}, {"num_classes", c.num_classes}, {"image_size", c.image_size}};
  if (!c.classes.empty()) j["classes"] = c.classes;
  return j;
}

ResNet build_sketch_resnet(const SketchFeaturesConfig& config) { return resnet50(config.num_classes); }

ResNet load_sketch_resnet(const std::string& dir, ModelInfo* info_out, SketchFeaturesConfig* config_out) {
  configure_threads();
  const auto info = read_model_info(dir);
  require_kind(info, {ModelKind::SketchFeatures}, "sketch features");
  require_intact_model(dir);
  const auto config = sketch_features_config_from_flags(info.flags, info.json_path());
  auto net = build_sketch_resnet(config);
  load_weights(*net, st::File::open(info.weights_path()));
  if (info_out) *info_out = info;
  if (config_out) *config_out = config;
  return net;
}

std::shared_ptr<SketchFeatureNet> load_sketch_features(const std::string& dir, torch::Device device) {
  if (dir.empty()) return make_edge_pyramid();
  ModelInfo info;
  auto net = load_sketch_resnet(dir, &info);
  auto features = std::make_shared<ResNetSketchFeatures>(
      net, "ResNet-50 layer1..layer3 of sketch-features model '" + info.name + "' (" + dir + ")");
  features->to(device);
  return features;
}

}  // namespace dsk
