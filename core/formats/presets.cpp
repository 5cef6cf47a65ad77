#include "core/formats/presets.h"

#include "core/base/error.h"

namespace dsk {

namespace {

nlohmann::json adm_flags(int size, bool class_cond) {
  nlohmann::json f = {{"image_size", size},          {"attention_resolutions", "32,16,8"},
                      {"class_cond", class_cond},    {"diffusion_steps", 1000},
                      {"learn_sigma", true},         {"noise_schedule", "linear"},
                      {"num_channels", 256},         {"num_res_blocks", 2},
                      {"resblock_updown", true},     {"use_fp16", true},
                      {"use_scale_shift_norm", true}};
  return f;
}

nlohmann::json classifier_flags(int size, int depth) {
  return {{"image_size", size},
          {"classifier_attention_resolutions", "32,16,8"},
          {"classifier_depth", depth},
          {"classifier_width", 128},
          {"classifier_pool", "attention"},
          {"classifier_resblock_updown", true},
          {"classifier_use_scale_shift_norm", true}};
}

std::vector<Preset> make_presets() {
  std::vector<Preset> p;
  auto f64 = adm_flags(64, true);
  f64["num_channels"] = 192;
  f64["num_head_channels"] = 64;
  f64["num_res_blocks"] = 3;
  f64["noise_schedule"] = "cosine";
  f64["dropout"] = 0.1;
  f64["use_new_attention_order"] = true;
  p.push_back({"adm-64-cond", ModelKind::AdmUnet, "64x64_diffusion.pt", f64});
  auto f128 = adm_flags(128, true);
  f128["num_heads"] = 4;
  p.push_back({"adm-128-cond", ModelKind::AdmUnet, "128x128_diffusion.pt", f128});
  auto f256 = adm_flags(256, true);
  f256["num_head_channels"] = 64;
  p.push_back({"adm-256-cond", ModelKind::AdmUnet, "256x256_diffusion.pt", f256});
  auto f256u = f256;
  f256u["class_cond"] = false;
  p.push_back({"adm-256-uncond", ModelKind::AdmUnet, "256x256_diffusion_uncond.pt", f256u});
  auto f512 = adm_flags(512, true);
  f512["num_head_channels"] = 64;
  f512["use_fp16"] = false;
  p.push_back({"adm-512-cond", ModelKind::AdmUnet, "512x512_diffusion.pt", f512});
  p.push_back({"adm-64-classifier", ModelKind::AdmClassifier, "64x64_classifier.pt", classifier_flags(64, 4)});
  p.push_back({"adm-128-classifier", ModelKind::AdmClassifier, "128x128_classifier.pt", classifier_flags(128, 2)});
  p.push_back({"adm-256-classifier", ModelKind::AdmClassifier, "256x256_classifier.pt", classifier_flags(256, 2)});
  p.push_back({"adm-512-classifier", ModelKind::AdmClassifier, "512x512_classifier.pt", classifier_flags(512, 2)});
  // torchvision's ImageNet resnet50 (any of its state_dicts: IMAGENET1K_V1 or V2) as a sketch feature network.
  p.push_back({"resnet50-torchvision", ModelKind::SketchFeatures, "resnet50-0676ba61.pth",
               {{"arch", "resnet50"}, {"num_classes", 1000}, {"image_size", 224}}});
  return p;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = make_presets();
  return all;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const auto& p : presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw InputError("unknown preset '" + name + "' (known: " + names + ")");
}

}  // namespace dsk
