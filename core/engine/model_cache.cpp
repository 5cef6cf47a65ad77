#include "core/engine/model_cache.h"

#include <algorithm>
#include <filesystem>

#include "core/device/precision.h"
#include "core/formats/model_registry.h"

namespace dsk {

namespace {

namespace fs = std::filesystem;

std::string stamp(const fs::path& file) {
  std::error_code ec;
  return std::to_string(fs::last_write_time(file, ec).time_since_epoch().count());
}

std::string cache_key(const std::string& dir, torch::Device device) {
  std::error_code ec;
  return fs::weakly_canonical(dir, ec).string() + "|" + device.str();
}

// Changes when the folder's model is rewritten.
std::string folder_stamp(const std::string& dir) {
  return stamp(fs::path(dir) / "model.json") + "|" + stamp(fs::path(dir) / "weights.safetensors");
}

}  // namespace

ModelCache::ModelCache(int capacity) : capacity_(std::max(1, capacity)) {}

template <class T, class Load>
T ModelCache::get(Shelf<T>& shelf, const std::string& dir, torch::Device device, Load load) {
  const std::string key = cache_key(dir, device), now = folder_stamp(dir);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& e = shelf.entries;
  const auto it = std::find_if(e.begin(), e.end(), [&](const Entry<T>& x) { return x.key == key; });
  if (it != e.end()) {
    std::rotate(it, it + 1, e.end());  // now the most recently used
    if (e.back().stamp == now) return e.back().loaded;
    e.pop_back();  // rewritten since: the old network goes
  }
  T loaded = load(dir);  // throws before anything is kept
  e.push_back({key, now, loaded});
  if (static_cast<int>(e.size()) > capacity_) e.erase(e.begin());
  return loaded;
}

LoadedUNet ModelCache::unet(const std::string& model, torch::Device device, const std::string& command) {
  const torch::Dtype precision = inference_precision(device).dtype;  // a bad DSK_PRECISION fails every call
  LoadedUNet unet = get(unets_, resolve_model(model), device,
                        [&](const std::string& dir) { return load_unet(dir, device, command); });
  unet.model->set_cpu_inference_dtype(precision);
  return unet;
}

LoadedClassifier ModelCache::classifier(const std::string& model, torch::Device device, const std::string& command) {
  return get(classifiers_, resolve_model(model), device,
             [&](const std::string& dir) { return load_classifier(dir, device, command); });
}

std::shared_ptr<SketchFeatureNet> ModelCache::sketch_features(const std::string& model, torch::Device device) {
  if (model.empty()) return load_sketch_features("", device);
  return get(sketch_features_, resolve_model(model), device,
             [&](const std::string& dir) { return load_sketch_features(dir, device); });
}

int ModelCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(unets_.entries.size() + classifiers_.entries.size() + sketch_features_.entries.size());
}

void ModelCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  unets_.entries.clear();
  classifiers_.entries.clear();
  sketch_features_.entries.clear();
}

}  // namespace dsk
