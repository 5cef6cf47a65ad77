// The models an Engine keeps loaded between requests: a `diffsketch serve` answers the next edit
// without reading the weights again. An entry is a folder on a device; it remembers the times of
// its model.json and weights.safetensors, so a model rewritten in place (fine-tuning's --out over
// the old folder) is read again and replaces the old network. The `capacity` most recently used of
// each kind stay loaded.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/formats/model_folder.h"
#include "core/formats/sketch_features_model.h"

namespace dsk {

class ModelCache {
 public:
  explicit ModelCache(int capacity = 2);

  // `model`: a model id or folder (resolve_model). `command` names the request in errors (a wrong
  // kind of model: "edit needs editing-unet or adm-unet"). Its inference runs in the precision
  // DSK_PRECISION and the CPU give (core/device/precision.h: bf16 where native, else fp32).
  LoadedUNet unet(const std::string& model, torch::Device device, const std::string& command);
  LoadedClassifier classifier(const std::string& model, torch::Device device, const std::string& command);
  // "" = the fixed edge pyramid (not cached: it has no weights); otherwise a sketch-features model.
  std::shared_ptr<SketchFeatureNet> sketch_features(const std::string& model, torch::Device device);

  int size() const;  // networks held, all kinds
  void clear();

 private:
  template <class T>
  struct Entry {
    std::string key, stamp;  // folder|device, file times
    T loaded;
  };
  template <class T>
  struct Shelf {
    std::vector<Entry<T>> entries;  // least recently used first
  };
  template <class T, class Load>
  T get(Shelf<T>& shelf, const std::string& dir, torch::Device device, Load load);

  int capacity_;
  mutable std::mutex mutex_;
  Shelf<LoadedUNet> unets_;
  Shelf<LoadedClassifier> classifiers_;
  Shelf<std::shared_ptr<SketchFeatureNet>> sketch_features_;
};

}  // namespace dsk
