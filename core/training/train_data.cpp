#include "core/training/train_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>

#include "core/base/error.h"
#include "core/base/files.h"
#include "core/formats/tensor_io.h"
#include "editing/image_io.h"
#include "editing/masks.h"
#include "editing/random.h"
#include "editing/sketch.h"
#include "editing/synth_sketch.h"

namespace dsk {

namespace fs = std::filesystem;
namespace rnd = edit::rnd;

std::string picture_key(const std::string& root, const std::string& file) {
  const std::string rel = fs::relative(file, root).generic_string();
  const auto contents = rel.find("/contents/");
  if (contents != std::string::npos) return rel.substr(0, contents);
  // "Elephants_3840x2160.jpg" is "Elephants.jpg" at another resolution: one picture.
  static const std::regex resolution(R"([_-]\d{2,5}x\d{2,5}$)");
  return std::regex_replace(fs::path(rel).replace_extension().generic_string(), resolution, "");
}

namespace {

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// "rank R of N" for messages about a rank's share of the files.
std::string share_name(const DataOptions& o) {
  return "rank " + std::to_string(o.share) + " of " + std::to_string(o.shares);
}

}  // namespace

bool is_validation(const std::string& key, double val_fraction) {
  return static_cast<double>(fnv1a(key) % 1000003) / 1000003.0 < val_fraction;
}

int share_of(const std::string& key, int shares) {
  return static_cast<int>(fnv1a("share:" + key) % static_cast<uint64_t>(std::max(shares, 1)));
}

namespace {

bool is_object(const cv::Mat& img) {
  if (img.channels() != 4) return false;
  std::vector<cv::Mat> ch;
  cv::split(img, ch);
  cv::Mat alpha8;
  ch[3].convertTo(alpha8, CV_8U, img.depth() == CV_16U ? 1.0 / 257 : 1.0);
  return cv::countNonZero(alpha8 < 128) > 0.05 * img.total();
}

cv::Mat to_8bit(const cv::Mat& img) {
  cv::Mat out;
  img.convertTo(out, CV_8U, img.depth() == CV_16U ? 1.0 / 257 : 1.0);
  if (out.channels() == 1) cv::cvtColor(out, out, cv::COLOR_GRAY2BGR);
  return out;
}

cv::Mat shrink(const cv::Mat& img, double limit, bool short_side) {
  const int side = short_side ? std::min(img.cols, img.rows) : std::max(img.cols, img.rows);
  if (side <= limit) return img;
  const double s = limit / side;
  cv::Mat out;
  cv::resize(img, out, cv::Size(std::max(1, int(img.cols * s)), std::max(1, int(img.rows * s))), 0, 0, cv::INTER_AREA);
  return out;
}

// Alpha-composites `obj` (BGRA) onto `dst` (BGR) with its top-left at (x, y), clipped.
void paste(cv::Mat& dst, const cv::Mat& obj, int x, int y) {
  const cv::Rect r = cv::Rect(x, y, obj.cols, obj.rows) & cv::Rect(0, 0, dst.cols, dst.rows);
  if (r.empty()) return;
  for (int j = r.y; j < r.y + r.height; ++j) {
    const auto* src = obj.ptr<cv::Vec4b>(j - y);
    auto* out = dst.ptr<cv::Vec3b>(j);
    for (int i = r.x; i < r.x + r.width; ++i) {
      const auto& s = src[i - x];
      const float a = s[3] / 255.f;
      for (int c = 0; c < 3; ++c) out[i][c] = cv::saturate_cast<uchar>(a * s[c] + (1 - a) * out[i][c]);
    }
  }
}

}  // namespace

TrainingData::TrainingData(const std::vector<std::string>& dirs, const DataOptions& options, bool validation)
    : options_(options) {
  std::set<std::string> keys;
  for (const auto& dir : dirs) {
    if (!fs::is_directory(dir)) throw InputError(dir + ": not a folder of training pictures");
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
      if (e.is_regular_file() && edit::is_image_path(e.path().string())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string key = picture_key(dir, f.string());
      if (is_validation(key, options_.val_fraction) != validation) continue;
      if (options_.shares > 1 && share_of(key, options_.shares) != options_.share) continue;
      cv::Mat img;
      try {
        img = edit::read_image(f.string());
      } catch (const std::invalid_argument&) {
        continue;  // an unreadable file in a data folder is skipped, not fatal
      }
      keys.insert(dir + "/" + key);
      if (is_object(img)) {
        cv::Mat bgra = img.channels() == 4 ? img : cv::Mat();
        bgra.convertTo(bgra, CV_8U, img.depth() == CV_16U ? 1.0 / 257 : 1.0);
        objects_.push_back(shrink(bgra, options_.size, false));
      } else {
        cv::Mat bgr = to_8bit(img.channels() == 4 ? img : img);
        if (bgr.channels() == 4) cv::cvtColor(bgr, bgr, cv::COLOR_BGRA2BGR);
        if (std::min(bgr.cols, bgr.rows) < options_.size / 2) continue;
        backgrounds_.push_back(shrink(bgr, 3.0 * options_.size, true));
      }
    }
  }
  pictures_ = keys.size();
  if (backgrounds_.empty() && options_.shares > 1)
    throw InputError(share_name(options_) + " got no training backgrounds in its share of the files: too few pictures "
                     "to share out between " + std::to_string(options_.shares) +
                     " ranks (set \"data_sharding\": \"samples\", where every rank loads every picture)");
  if (backgrounds_.empty())
    throw InputError(std::string("no ") + (validation ? "validation" : "training") +
                     " backgrounds (opaque pictures at least " + std::to_string(options_.size / 2) +
                     " px) in the data folders");
}

void TrainingData::sample(std::mt19937_64& rng, cv::Mat& bgr, cv::Mat& mask, cv::Mat& sketch) const {
  const int s = options_.size;
  const cv::Mat& bg = backgrounds_[rnd::uniform_int(rng, 0, static_cast<int>(backgrounds_.size()) - 1)];
  // A random square crop, log-uniform in size between S and the short side.
  const int short_side = std::min(bg.cols, bg.rows);
  const int lo = std::min(s, short_side);
  const int side = static_cast<int>(std::exp(rnd::uniform(rng, std::log(lo), std::log(short_side) + 1e-9)));
  const int x = rnd::uniform_int(rng, 0, bg.cols - side), y = rnd::uniform_int(rng, 0, bg.rows - side);
  cv::resize(bg(cv::Rect(x, y, side, side)), bgr, cv::Size(s, s), 0, 0, side > s ? cv::INTER_AREA : cv::INTER_CUBIC);
  if (rnd::uniform(rng) < 0.5) cv::flip(bgr, bgr, 1);
  if (!objects_.empty() && rnd::uniform(rng) < options_.object_prob) {
    const int n = rnd::uniform_int(rng, 1, 2);
    for (int k = 0; k < n; ++k) {
      const cv::Mat& obj = objects_[rnd::uniform_int(rng, 0, static_cast<int>(objects_.size()) - 1)];
      const double scale = rnd::uniform(rng, 0.3, 0.8) * s / std::max(obj.cols, obj.rows);
      cv::Mat o;
      cv::resize(obj, o, cv::Size(std::max(2, int(obj.cols * scale)), std::max(2, int(obj.rows * scale))), 0, 0,
                 cv::INTER_AREA);
      if (rnd::uniform(rng) < 0.5) cv::flip(o, o, 1);
      paste(bgr, o, rnd::uniform_int(rng, -o.cols / 4, s - 3 * o.cols / 4),
            rnd::uniform_int(rng, -o.rows / 4, s - 3 * o.rows / 4));
    }
  }
  mask = rnd::uniform(rng) < options_.full_mask_prob ? cv::Mat(s, s, CV_8U, cv::Scalar(255))
                                                      : edit::random_training_mask(s, s, rng, 0.1, 0.6);
  if (rnd::uniform(rng) < options_.sketch_dropout) {
    sketch = cv::Mat(s, s, CV_32F, cv::Scalar(options_.sketch_null));
    return;
  }
  cv::Mat strokes = rnd::uniform(rng) < 0.5 ? edit::xdog_sketch(bgr, {}, &rng) : edit::canny_sketch(bgr);
  if (rnd::uniform(rng) < 0.7) strokes = edit::scribble_augment(strokes, rng, rnd::uniform(rng, 0.2, 1.0));
  const double width = options_.sketch_width_px > 0 ? options_.sketch_width_px : edit::sketch_width_for(s);
  sketch = edit::sketch_in_hole(edit::normalize_stroke_width(strokes, width), mask, s);
}

std::string TrainingData::describe() const {
  return std::to_string(pictures_) + " pictures (" + std::to_string(backgrounds_.size()) + " backgrounds, " +
         std::to_string(objects_.size()) + " objects), crops of " + std::to_string(options_.size) + " px" +
         (options_.shares > 1 ? " (" + share_name(options_) + "'s share of the pictures)" : "");
}

Batch TrainingData::next(int batch, std::mt19937_64& rng) const {
  const int s = options_.size;
  auto image = torch::empty({batch, 3, s, s});
  auto mask = torch::empty({batch, 1, s, s});
  auto sketch = torch::empty({batch, 1, s, s});
  for (int b = 0; b < batch; ++b) {
    cv::Mat bgr, m, sk;
    sample(rng, bgr, m, sk);
    cv::Mat rgb, rgbf, mf;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    rgb.convertTo(rgbf, CV_32FC3, 2.0 / 255, -1.0);
    m.convertTo(mf, CV_32F, 1.0 / 255);
    image[b].copy_(torch::from_blob(rgbf.data, {s, s, 3}, torch::kFloat32).permute({2, 0, 1}));
    mask[b][0].copy_(torch::from_blob(mf.data, {s, s}, torch::kFloat32));
    sketch[b][0].copy_(torch::from_blob(sk.data, {s, s}, torch::kFloat32));
  }
  return {image, mask, sketch};
}

PackedData::PackedData(const std::vector<std::string>& dirs, const DataOptions& options) : options_(options) {
  std::vector<torch::Tensor> images, masks, sketches;
  int index_of_shard = 0, all_shards = 0;
  for (const auto& dir : dirs) {
    const std::string index = dir + "/pack.json";
    std::ifstream in(index);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(index + ": not a readable pack index (" + e.what() + ")");
    }
    if (j.value("format", "") != "diffsketch-pack" || j.value("version", 0) != 1)
      throw InputError(index + ": not a diffsketch-pack version 1 index");
    if (j.value("size", 0) != options_.size)
      throw InputError(index + ": packed at " + std::to_string(j.value("size", 0)) + " px, the model trains at " +
                       std::to_string(options_.size) + " px (pack again with --size " + std::to_string(options_.size) + ")");
    for (const auto& shard : j.at("shards")) {
      ++all_shards;
      if (index_of_shard++ % options_.shares != options_.share) continue;  // another rank's
      const auto file = st::File::open(dir + "/" + shard.get<std::string>());
      auto get = [&](const char* name, int64_t channels) {
        const auto& info = file.at(name);
        if (info.dtype != st::DType::U8 || info.shape.size() != 4 || info.shape[1] != channels ||
            info.shape[2] != options_.size || info.shape[3] != options_.size)
          throw InputError(file.label() + ": tensor '" + name + "' must be U8 [n," + std::to_string(channels) + "," +
                           std::to_string(options_.size) + "," + std::to_string(options_.size) + "]");
        return read_tensor(file, info);
      };
      images.push_back(get("image", 3));
      masks.push_back(get("mask", 1));
      sketches.push_back(get("sketch", 1));
      if (images.back().size(0) != masks.back().size(0) || images.back().size(0) != sketches.back().size(0))
        throw InputError(file.label() + ": image, mask and sketch hold different sample counts");
    }
  }
  if (images.empty() && options_.shares > 1 && all_shards > 0)
    throw InputError(share_name(options_) + " got no packed shard: the data folders hold " + std::to_string(all_shards) +
                     " shard(s) for " + std::to_string(options_.shares) + " ranks (pack again with a smaller --shard-size, " +
                     "or set \"data_sharding\": \"samples\", where every rank loads every shard)");
  if (images.empty()) throw InputError("the packed data folders hold no shards");
  image_ = torch::cat(images);
  mask_ = torch::cat(masks);
  sketch_ = torch::cat(sketches);
}

std::string PackedData::describe() const {
  return std::to_string(image_.size(0)) + " packed samples of " + std::to_string(options_.size) + " px" +
         (options_.shares > 1 ? " (" + share_name(options_) + "'s share of the shards)" : "");
}

Batch PackedData::next(int batch, std::mt19937_64& rng) const {
  std::vector<int64_t> pick(batch);
  for (auto& i : pick) i = rnd::uniform_int(rng, 0, static_cast<int>(image_.size(0)) - 1);
  auto idx = torch::tensor(pick);
  Batch b{image_.index_select(0, idx).to(torch::kFloat32) / 127.5 - 1, mask_.index_select(0, idx).to(torch::kFloat32) / 255,
          sketch_.index_select(0, idx).to(torch::kFloat32) / 255};
  for (int k = 0; k < batch; ++k) {
    if (rnd::uniform(rng) < 0.5) {
      b.image[k] = b.image[k].flip({2});
      b.mask[k] = b.mask[k].flip({2});
      b.sketch[k] = b.sketch[k].flip({2});
    }
    if (rnd::uniform(rng) < options_.sketch_dropout) b.sketch[k].fill_(options_.sketch_null);
  }
  return b;
}

Batch draw_part(const BatchSource& data, const std::vector<uint64_t>& seeds, int first, int count) {
  std::vector<torch::Tensor> image, mask, sketch;
  for (int i = first; i < first + count; ++i) {
    std::mt19937_64 rng(seeds.at(static_cast<size_t>(i)));
    Batch one = data.next(1, rng);
    image.push_back(one.image);
    mask.push_back(one.mask);
    sketch.push_back(one.sketch);
  }
  return {torch::cat(image), torch::cat(mask), torch::cat(sketch)};
}

std::unique_ptr<BatchSource> open_training_data(const std::vector<std::string>& dirs, const DataOptions& options,
                                                bool validation) {
  size_t packed = 0;
  for (const auto& d : dirs) packed += fs::exists(d + "/pack.json");
  if (packed == 0) return std::make_unique<TrainingData>(dirs, options, validation);
  if (packed != dirs.size()) throw InputError("--data mixes packed folders (with pack.json) and picture folders; give one kind");
  return std::make_unique<PackedData>(dirs, options);
}

void pack_training_data(const std::vector<std::string>& dirs, const DataOptions& options, const std::string& out,
                        int count, int shard_size, uint64_t seed, bool validation, std::ostream& log) {
  if (count < 1 || shard_size < 1) throw InputError("pack-data: --count and --shard-size must be positive");
  if (fs::exists(out + "/pack.json")) throw InputError(out + ": already holds a pack; choose a new --out");
  DataOptions o = options;
  o.sketch_dropout = 0;  // applied when batches are drawn
  TrainingData data(dirs, o, validation);
  log << "packing " << count << " samples from " << data.describe() << "\n";
  fs::create_directories(out);
  std::mt19937_64 rng(seed);
  const int s = o.size;
  nlohmann::json shards = nlohmann::json::array();
  for (int start = 0; start < count; start += shard_size) {
    const int n = std::min(shard_size, count - start);
    auto image = torch::empty({n, 3, s, s}, torch::kUInt8), mask = torch::empty({n, 1, s, s}, torch::kUInt8),
         sketch = torch::empty({n, 1, s, s}, torch::kUInt8);
    for (int k = 0; k < n; ++k) {
      cv::Mat bgr, m, sk, rgb, sk8;
      data.sample(rng, bgr, m, sk);
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      sk.convertTo(sk8, CV_8U, 255.0);
      image[k].copy_(torch::from_blob(rgb.data, {s, s, 3}, torch::kUInt8).permute({2, 0, 1}));
      mask[k][0].copy_(torch::from_blob(m.data, {s, s}, torch::kUInt8));
      sketch[k][0].copy_(torch::from_blob(sk8.data, {s, s}, torch::kUInt8));
    }
    char name[32];
    std::snprintf(name, sizeof name, "shard-%05d.safetensors", static_cast<int>(shards.size()));
    write_tensors(out + "/" + name, {{"image", image}, {"mask", mask}, {"sketch", sketch}},
                  {{"size", std::to_string(s)}, {"split", validation ? "val" : "train"}});
    shards.push_back(name);
    log << "  " << name << ": " << n << " samples\n";
  }
  const nlohmann::json index = {{"format", "diffsketch-pack"}, {"version", 1}, {"size", s}, {"count", count},
                                {"split", validation ? "val" : "train"}, {"shards", shards}};
  write_file(out + "/pack.json", index.dump(2) + "\n");
}

}  // namespace dsk
