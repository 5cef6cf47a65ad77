#include "core/tools/convert.h"

#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>

#include "core/base/error.h"
#include "core/base/remove_tree.h"
#include "core/formats/model_folder.h"
#include "core/formats/presets.h"
#include "core/formats/sketch_features_model.h"
#include "core/formats/tensor_io.h"

namespace dsk {

namespace fs = std::filesystem;

namespace {

std::map<std::string, torch::Tensor> unpickle_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 4 || bytes[0] != 'P' || bytes[1] != 'K')
    throw InputError(path + ": not a torch.save zip checkpoint (legacy non-zip pickles are not supported; re-save it "
                     "with a current PyTorch)");
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    const std::string why = e.what_without_backtrace();
    // LibTorch's unpickler builds only tensors and containers: any other global is refused, not run.
    const std::string hint = why.find("unknown type") != std::string::npos
                                 ? " (refused: the pickle names a Python global that is not part of a weights "
                                   "checkpoint; it was not run. Re-save only the state_dict from a trusted source)"
                             : why.find("zip archive") != std::string::npos || why.find("central directory") != std::string::npos
                                 ? " (the zip is damaged or truncated: download or copy it again)"
                                 : "";
    throw InputError(path + ": cannot unpickle: " + why + hint);
  }
  if (value.isGenericDict()) {  // {"state_dict": {...}} wrappers
    auto dict = value.toGenericDict();
    for (const char* key : {"state_dict", "model", "ema"}) {
      if (dict.size() == 1 && dict.contains(key) && dict.at(key).isGenericDict()) value = dict.at(key);
    }
  }
  if (!value.isGenericDict()) throw InputError(path + ": the pickle is not a state_dict (a dict of tensors)");
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor())
      throw InputError(path + ": the state_dict has an entry that is not name -> tensor");
    out[item.key().toStringRef()] = item.value().toTensor().contiguous();
  }
  return out;
}

std::pair<ModelKind, nlohmann::json> kind_and_flags(const ConvertOptions& o) {
  if (!o.preset.empty() == !o.config.empty()) throw InputError("convert: give exactly one of --preset NAME or --config FILE");
  if (!o.preset.empty()) {
    const auto& p = find_preset(o.preset);
    return {p.kind, p.flags};
  }
  std::ifstream in(o.config);
  if (!in) throw InputError(o.config + ": cannot open the config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(o.config + ": invalid JSON (" + e.what() + ")");
  }
  const std::string kind = j.value("kind", "");
  if (!j.contains("flags") || !j["flags"].is_object())
    throw InputError(o.config + ": expected {\"kind\": \"adm-unet\" | \"adm-classifier\" | \"sketch-features\", \"flags\": {...}}");
  if (kind == "adm-unet") return {ModelKind::AdmUnet, j["flags"]};
  if (kind == "adm-classifier") return {ModelKind::AdmClassifier, j["flags"]};
  if (kind == "sketch-features") return {ModelKind::SketchFeatures, j["flags"]};
  throw InputError(o.config + ": kind '" + kind + "' must be adm-unet, adm-classifier or sketch-features");
}

std::shared_ptr<torch::nn::Module> build_network(ModelKind kind, const nlohmann::json& flags, const std::string& where) {
  torch::NoGradGuard no_grad;
  if (kind == ModelKind::SketchFeatures) return build_sketch_resnet(sketch_features_config_from_flags(flags, where)).ptr();
  if (kind == ModelKind::AdmClassifier) return EncoderUNetModel(classifier_config_from_flags(flags, where)).ptr();
  auto cfg = unet_config_from_flags(flags, where);
  diffusion_config_from_json(flags, where);
  return UNetModel(cfg).ptr();
}

// BatchNorm's num_batches_tracked counters (PyTorch >= 0.4.1) are missing from older torchvision
// state_dicts; PyTorch's own loader fills them in, and so does this (with 0; eval mode never reads them).
void add_missing_batch_counters(torch::nn::Module& net, std::map<std::string, torch::Tensor>& tensors, std::ostream& log) {
  int added = 0;
  for (const auto& b : net.named_buffers()) {
    const auto& name = b.key();
    const std::string suffix = ".num_batches_tracked";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        !tensors.count(name) && tensors.count(name.substr(0, name.size() - suffix.size()) + ".running_mean")) {
      tensors[name] = torch::zeros({}, torch::kInt64);
      ++added;
    }
  }
  if (added) log << "added " << added << " missing BatchNorm num_batches_tracked counters (0), as PyTorch does\n";
}

// Cheap filters before a preset's network is built: ADM networks by their first convolution, label
// embedding and output blocks; torchvision's resnet50 by fc's shape.
bool might_match(const Preset& p, const st::File& file) {
  if (p.kind == ModelKind::SketchFeatures) {
    const auto* fc = file.find("fc.weight");
    return fc && fc->shape == std::vector<int64_t>{p.flags["num_classes"].get<int64_t>(), 2048};
  }
  const auto* first_conv = file.find("input_blocks.0.0.weight");
  if (!first_conv) return false;
  const bool classifier = !file.find("output_blocks.0.0.in_layers.0.weight");
  if (classifier != (p.kind == ModelKind::AdmClassifier)) return false;
  if (!classifier && (file.find("label_emb.weight") != nullptr) != p.flags.value("class_cond", false)) return false;
  const int image_size = p.flags["image_size"];
  const int width = classifier ? p.flags.value("classifier_width", 128) : p.flags.value("num_channels", 128);
  const int expected_first = image_size == 512 ? width / 2 : width;
  return !first_conv->shape.empty() && first_conv->shape[0] == expected_first;
}

std::string licence_of(const ConvertOptions& o, ModelKind kind) {
  if (o.preset.empty()) return "";
  return kind == ModelKind::SketchFeatures ? "BSD-3-Clause (torchvision); trained on ImageNet, whose terms apply"
                                           : "MIT (openai/guided-diffusion)";
}

}  // namespace

ModelInfo convert_checkpoint(const ConvertOptions& o, std::ostream& log) {
  log << "note: convert unpickles " << o.input
      << " with LibTorch; pickle can run code, so convert only checkpoints you trust. Nothing else in DiffSketch "
         "reads pickle.\n";
  auto [kind, flags] = kind_and_flags(o);
  const std::string where = o.preset.empty() ? o.config : "preset " + o.preset;
  auto net = build_network(kind, flags, where);
  auto tensors = unpickle_state_dict(o.input);
  if (kind == ModelKind::SketchFeatures) add_missing_batch_counters(*net, tensors, log);
  if (o.dtype != "keep") {
    const auto type = o.dtype == "f16" ? torch::kHalf : o.dtype == "bf16" ? torch::kBFloat16 : o.dtype == "f32" ? torch::kFloat32
                      : throw InputError("--dtype '" + o.dtype + "' is not keep, f32, f16 or bf16");
    for (auto& [name, t] : tensors)
      if (t.is_floating_point()) t = t.to(type);
  }
  // Write beside the target, check by loading it like any model, then move into place.
  const fs::path out(o.out_dir);
  const fs::path staging = out.string() + ".converting";
  remove_tree(staging);
  fs::create_directories(staging);
  try {
    ModelInfo info;
    info.dir = staging.string();
    info.kind = kind;
    info.name = out.filename().string();
    info.source = fs::path(o.input).filename().string() + (o.preset.empty() ? "" : " (preset " + o.preset + ")");
    info.licence = licence_of(o, kind);
    info.flags = flags;
    write_tensors(info.weights_path(), tensors, {{"format", "pt"}, {"source", info.source}});
    load_weights(*net, st::File::open(info.weights_path()));
    write_model_info(info);
    if (fs::exists(out)) {
      if (!fs::is_directory(out) || !fs::is_empty(out))
        throw InputError(o.out_dir + ": exists and is not empty; choose a new folder");
      fs::remove(out);
    }
    fs::rename(staging, out);
    info.dir = out.string();
    log << "converted " << tensors.size() << " tensors (" << parameter_count(*net) << " parameters) to " << o.out_dir
        << " (" << kind_name(kind) << ")\n";
    return info;
  } catch (...) {
    remove_tree(staging);
    throw;
  }
}

void print_safetensors_info(const std::string& path, bool all, std::ostream& out) {
  auto file = st::File::open(path);
  int64_t params = 0;
  std::map<std::string, int64_t> by_dtype;
  for (const auto& t : file.tensors()) {
    params += t.numel();
    by_dtype[st::dtype_name(t.dtype)] += t.numel();
  }
  out << path << ": " << file.tensors().size() << " tensors, " << params << " parameters (";
  bool first = true;
  for (const auto& [d, n] : by_dtype) out << (first ? "" : ", ") << d << " " << n, first = false;
  out << ")\n";
  size_t shown = 0;
  for (const auto& t : file.tensors()) {
    if (!all && shown++ >= 20) {
      out << "  ... (" << file.tensors().size() - 20 << " more; --all lists them)\n";
      break;
    }
    out << "  " << std::left << std::setw(48) << t.name << " " << std::setw(5) << st::dtype_name(t.dtype) << " [";
    for (size_t i = 0; i < t.shape.size(); ++i) out << (i ? "," : "") << t.shape[i];
    out << "]\n";
  }
  for (const auto& [k, v] : file.metadata()) out << "  metadata " << k << " = " << v << "\n";

  // Which published configuration these weights are: cheap filters first, then a full check.
  std::string matched;
  for (const auto& p : presets()) {
    if (!might_match(p, file)) continue;
    auto net = build_network(p.kind, p.flags, p.name);
    std::map<std::string, std::vector<int64_t>> want;
    for (const auto& [name, t] : state_dict(*net)) want[name] = t.sizes().vec();
    bool same = want.size() == file.tensors().size();
    for (const auto& t : file.tensors()) same = same && want.count(t.name) && want[t.name] == t.shape;
    if (same) matched += (matched.empty() ? "" : ", ") + p.name;
  }
  out << "matches preset: " << (matched.empty() ? "none of the published configurations" : matched) << "\n";
}

}  // namespace dsk
