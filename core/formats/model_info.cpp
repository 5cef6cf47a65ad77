#include "core/formats/model_info.h"

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/base/files.h"
#include "core/base/json_depth.h"
#include "core/base/limits.h"
#include "models/adm_config.h"

namespace dsk {

namespace fs = std::filesystem;

const char* kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::AdmUnet: return "adm-unet";
    case ModelKind::AdmClassifier: return "adm-classifier";
    case ModelKind::EditingUnet: return "editing-unet";
    case ModelKind::SketchFeatures: return "sketch-features";
  }
  return "?";
}

ModelInfo read_model_info(const std::string& dir) {
  ModelInfo info;
  info.dir = dir;
  if (!fs::is_directory(dir))
    throw InputError(dir + ": not a model folder (a model is a folder with model.json and weights.safetensors)");
  const std::string path = info.json_path();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": missing; a model folder needs model.json beside weights.safetensors");
  // A FIFO or a device would block the read, a huge file exhaust memory: a small regular file only.
  if (!fs::is_regular_file(path, ec)) throw InputError(path + ": not a regular file");
  if (fs::file_size(path, ec) > kMaxModelJsonBytes)
    throw InputError(path + ": over " + std::to_string(kMaxModelJsonBytes >> 20) + " MiB; model.json holds a few flags");
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot be read");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth)
    throw InputError(path + ": nested deeper than " + std::to_string(kMaxJsonDepth) + " levels; not a model.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path + ": invalid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw InputError(path + ": must be a JSON object");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    throw InputError(path + ": missing integer 'format_version'");
  const auto version = j["format_version"].get<int64_t>();  // 64 bits: 2^32 + 1 must not read as 1
  if (version > kModelFormatVersion)
    throw InputError(path + ": format_version " + std::to_string(version) + " is newer than this DiffSketch reads (" +
                     std::to_string(kModelFormatVersion) + "); update DiffSketch");
  if (version != kModelFormatVersion)
    throw InputError(path + ": format_version " + std::to_string(version) + " is not a version DiffSketch wrote (" +
                     std::to_string(kModelFormatVersion) + ")");
  if (j.contains("kind") && !j["kind"].is_string()) throw InputError(path + ": 'kind' must be a string");
  const std::string kind = j.value("kind", "");
  if (kind == "adm-unet") info.kind = ModelKind::AdmUnet;
  else if (kind == "adm-classifier") info.kind = ModelKind::AdmClassifier;
  else if (kind == "editing-unet") info.kind = ModelKind::EditingUnet;
  else if (kind == "sketch-features") info.kind = ModelKind::SketchFeatures;
  else throw InputError(path + ": kind '" + kind + "' is not one of adm-unet, adm-classifier, editing-unet, sketch-features");
  for (auto [key, field] : {std::pair{"name", &info.name}, {"source", &info.source}, {"licence", &info.licence},
                            {"notes", &info.notes}}) {
    if (j.contains(key) && !j[key].is_string()) throw InputError(path + ": '" + key + "' must be a string");
    *field = j.value(key, "");
  }
  if (info.name.empty()) info.name = fs::path(dir).filename().string();
  if (!j.contains("flags") || !j["flags"].is_object())
    throw InputError(path + ": missing object 'flags' (the network's guided-diffusion flags)");
  info.flags = j["flags"];
  info.resolution = info.flags.contains("image_size") ? flag_int(info.flags["image_size"], "image_size", path) : 64;
  if (!fs::exists(info.weights_path()))
    throw InputError(info.weights_path() + ": missing; the model folder has model.json but no weights");
  return info;
}

void require_kind(const ModelInfo& info, const std::vector<ModelKind>& allowed, const std::string& command) {
  for (auto k : allowed)
    if (k == info.kind) return;
  std::string list;
  for (auto k : allowed) list += (list.empty() ? "" : " or ") + std::string(kind_name(k));
  throw InputError(info.dir + ": is a model of kind " + kind_name(info.kind) + "; '" + command + "' needs " + list +
                   (info.kind == ModelKind::AdmClassifier ? " (give a classifier with --classifier DIR)" : ""));
}

void write_model_info(const ModelInfo& info) {
  nlohmann::json j = {{"format_version", kModelFormatVersion}, {"kind", kind_name(info.kind)}, {"name", info.name},
                      {"source", info.source},       {"licence", info.licence},      {"notes", info.notes},
                      {"flags", info.flags}};
  fs::create_directories(info.dir);
  write_file(info.json_path(), j.dump(2) + "\n");
}

}  // namespace dsk
