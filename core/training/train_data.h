// Training data for the editing model: folders of pictures -> batches of (image, mask, sketch).
//
// Every image file under the given folders is a picture. RGBA pictures with a transparent
// background are objects (e.g. Tux Paint stamps), composited onto random crops of the others
// (backgrounds: wallpapers, photos). Sketches are synthesised from the composite (XDoG or Canny,
// with scribble augmentation), masks are random free-form strokes and boxes. The train/validation
// split is by picture: a picture is every file that shares a key (a wallpaper package's folder,
// which holds one picture at several resolutions, or the file's path without extension and
// without a resolution suffix such as "_3840x2160").
#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace dsk {

struct DataOptions {
  int size = 128;                 // training crop side
  double val_fraction = 0.1;      // pictures held out for validation
  double sketch_dropout = 0.15;   // no sketch (classifier-free guidance): a map of sketch_null
  double sketch_null = 0;         // the model's "no sketch" value (UNetConfig::sketch_null)
  double full_mask_prob = 0.1;    // whole-image generation
  double object_prob = 0.7;       // composite objects onto the crop
  double sketch_width_px = 0;     // 0 = size / 64
  // Data-parallel with the files shared out: this rank loads only share `share` of `shares`
  // (pictures by a hash of their key, packed shards by their index); 1 share = every file.
  int share = 0, shares = 1;
};

struct Batch {
  torch::Tensor image;   // [B,3,S,S] RGB in [-1,1]
  torch::Tensor mask;    // [B,1,S,S] 1 = regenerate
  torch::Tensor sketch;  // [B,1,S,S] stroke map in [0,1]
};

// The picture key of a file below `root` (see above).
std::string picture_key(const std::string& root, const std::string& file);
// Deterministic split: true when the key belongs to the validation set.
bool is_validation(const std::string& key, double val_fraction);
// The share (0 .. shares - 1) a picture key belongs to when the files are shared out between ranks:
// a hash of the key, independent of the validation split's.
int share_of(const std::string& key, int shares);

// Where training batches come from: picture folders (TrainingData) or packed shards (PackedData).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Batch next(int batch, std::mt19937_64& rng) const = 0;
  virtual std::string describe() const = 0;
};

class TrainingData : public BatchSource {
 public:
  // Loads (downscaled) every picture of the split. Throws dsk::InputError when a folder is missing
  // or holds no backgrounds.
  TrainingData(const std::vector<std::string>& dirs, const DataOptions& options, bool validation);
  Batch next(int batch, std::mt19937_64& rng) const override;
  std::string describe() const override;
  // One sample as images (for eval and inspection): BGR 8-bit crop, CV_8U mask, CV_32F sketch.
  void sample(std::mt19937_64& rng, cv::Mat& bgr, cv::Mat& mask, cv::Mat& sketch) const;
  size_t backgrounds() const { return backgrounds_.size(); }
  size_t objects() const { return objects_.size(); }
  size_t pictures() const { return pictures_; }

 private:
  DataOptions options_;
  std::vector<cv::Mat> backgrounds_;  // BGR 8-bit, short side <= 3 x size
  std::vector<cv::Mat> objects_;      // BGRA 8-bit, long side <= size
  size_t pictures_ = 0;
};

// Prepared crops in safetensors shards, so training can run where only LibTorch exists (a GPU
// machine): DIR/pack.json {"format": "diffsketch-pack", "version": 1, "size": S, "count": N,
// "shards": [...]} and DIR/shard-NNNNN.safetensors with U8 tensors image [n,3,S,S] (RGB),
// mask [n,1,S,S] (255 = regenerate) and sketch [n,1,S,S] (stroke map x 255). Sketch dropout and a
// horizontal flip are applied when batches are drawn.
class PackedData : public BatchSource {
 public:
  PackedData(const std::vector<std::string>& dirs, const DataOptions& options);
  Batch next(int batch, std::mt19937_64& rng) const override;
  std::string describe() const override;

 private:
  DataOptions options_;
  torch::Tensor image_, mask_, sketch_;  // all shards, U8
};

// Part [first, first + count) of a global batch whose samples are each drawn from a seed of their
// own (`seeds`: one per sample of the global batch, drawn by the caller from the run's generator),
// so that a sample is the same whichever rank of a data-parallel run draws it: N ranks of batch B
// see the samples one process of batch N x B sees.
Batch draw_part(const BatchSource& data, const std::vector<uint64_t>& seeds, int first, int count);

// A folder with pack.json is packed data; otherwise a folder of pictures. All folders must agree.
std::unique_ptr<BatchSource> open_training_data(const std::vector<std::string>& dirs, const DataOptions& options,
                                                bool validation);

// `diffsketch pack-data`: `count` samples of the pictures' split, drawn as training draws them
// (without sketch dropout), written as shards of `shard_size`.
void pack_training_data(const std::vector<std::string>& dirs, const DataOptions& options, const std::string& out,
                        int count, int shard_size, uint64_t seed, bool validation, std::ostream& log);

}  // namespace dsk
