// A model is a folder: model.json + weights.safetensors. This header reads and writes model.json
// without LibTorch (the CLI's model list and the plug-in side use it).
//
// model.json:
//   {"format_version": 1, "kind": "adm-unet" | "adm-classifier" | "editing-unet",
//    "name": "...", "source": "...", "licence": "...", "notes": "...",
//    "flags": {guided-diffusion flags, flat, as script_util's args: image_size, num_channels, ...,
//              diffusion_steps, noise_schedule, learn_sigma, ...; flags left out take its defaults}}
// The working resolution is flags.image_size.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dsk {

inline constexpr int kModelFormatVersion = 1;

enum class ModelKind { AdmUnet, AdmClassifier, EditingUnet, SketchFeatures };
const char* kind_name(ModelKind kind);

struct ModelInfo {
  std::string dir;
  ModelKind kind = ModelKind::AdmUnet;
  std::string name, source, licence, notes;
  nlohmann::json flags = nlohmann::json::object();
  int resolution = 0;  // flags.image_size

  std::string json_path() const { return dir + "/model.json"; }
  std::string weights_path() const { return dir + "/weights.safetensors"; }
};

// Reads and validates DIR/model.json (and that DIR/weights.safetensors exists).
ModelInfo read_model_info(const std::string& dir);
// Refuses a model whose kind is not one of `allowed`, naming the command and the kinds it takes.
void require_kind(const ModelInfo& info, const std::vector<ModelKind>& allowed, const std::string& command);
// Writes DIR/model.json atomically (the weights are written separately).
void write_model_info(const ModelInfo& info);

}  // namespace dsk
