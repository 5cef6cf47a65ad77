#include "core/formats/model_folder.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/base/error.h"
#include "core/formats/tensor_io.h"

namespace dsk {

UNetConfig unet_config_from_flags(const nlohmann::json& flags, const std::string& where) {
  return unet_config_from_json(flags, where, diffusion_flag_names());
}

ClassifierConfig classifier_config_from_flags(const nlohmann::json& flags, const std::string& where) {
  return classifier_config_from_json(flags, where);
}

namespace {

template <class Net>
void finish_load(Net& model, const ModelInfo& info, torch::Device device, bool fp16) {
  auto file = st::File::open(info.weights_path());
  load_weights(*model, file);
  model->eval();
  model->to(device);
  if (fp16 && device.is_cuda()) model->convert_to_fp16();
}

}  // namespace

// Loaded networks stay in memory for the process (a `diffsketch serve` keeps models loaded between
// requests), keyed by folder, weights file time and device; the two most recent are kept.
template <class Loaded>
class ModelCache {
 public:
  template <class Load>
  Loaded get(const std::string& dir, torch::Device device, Load load) {
    std::error_code ec;
    const auto weights = std::filesystem::path(dir) / "weights.safetensors";
    const auto stamp = std::filesystem::last_write_time(weights, ec).time_since_epoch().count();
    const std::string key = std::filesystem::weakly_canonical(dir, ec).string() + "|" + std::to_string(stamp) + "|" + device.str();
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [k, v] : entries_)
      if (k == key) return v;
    Loaded loaded = load();
    entries_.emplace_back(key, loaded);
    if (entries_.size() > 2) entries_.erase(entries_.begin());
    return loaded;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::string, Loaded>> entries_;
};

LoadedUNet load_unet(const std::string& dir, torch::Device device, const std::string& command) {
  static ModelCache<LoadedUNet> cache;
  auto out = cache.get(dir, device, [&] { return load_unet_uncached(dir, device, command); });
  require_kind(out.info, {ModelKind::AdmUnet, ModelKind::EditingUnet}, command);
  return out;
}

LoadedClassifier load_classifier(const std::string& dir, torch::Device device, const std::string& command) {
  static ModelCache<LoadedClassifier> cache;
  auto out = cache.get(dir, device, [&] { return load_classifier_uncached(dir, device, command); });
  require_kind(out.info, {ModelKind::AdmClassifier}, command + " --classifier");
  return out;
}

LoadedUNet load_unet_uncached(const std::string& dir, torch::Device device, const std::string& command) {
  configure_threads();
  LoadedUNet out;
  out.info = read_model_info(dir);
  require_kind(out.info, {ModelKind::AdmUnet, ModelKind::EditingUnet}, command);
  out.net = unet_config_from_flags(out.info.flags, out.info.json_path());
  out.diffusion = diffusion_config_from_json(out.info.flags, out.info.json_path());
  if (out.diffusion.learn_sigma != out.net.learn_sigma)
    throw InputError(out.info.json_path() + ": learn_sigma must be set once for both network and diffusion");
  torch::NoGradGuard no_grad;
  out.model = UNetModel(out.net);
  finish_load(out.model, out.info, device, out.net.use_fp16);
  return out;
}

LoadedClassifier load_classifier_uncached(const std::string& dir, torch::Device device, const std::string& command) {
  configure_threads();
  LoadedClassifier out;
  out.info = read_model_info(dir);
  require_kind(out.info, {ModelKind::AdmClassifier}, command + " --classifier");
  out.net = classifier_config_from_flags(out.info.flags, out.info.json_path());
  torch::NoGradGuard no_grad;
  out.model = EncoderUNetModel(out.net);
  finish_load(out.model, out.info, device, out.net.classifier_use_fp16);
  return out;
}

}  // namespace dsk
