#include "core/training/sketch_features_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "core/formats/model_folder.h"
#include "core/formats/sketch_features_model.h"
#include "core/formats/tensor_io.h"
#include "core/training/train_loop.h"
#include "core/training/train_state.h"
#include "editing/image_io.h"
#include "editing/random.h"
#include "editing/sketch.h"

namespace dsk {

namespace fs = std::filesystem;
using torch::Tensor;

namespace {

struct SketchSet {
  std::vector<cv::Mat> maps;  // CV_8UC1 stroke maps (255 = stroke), size x size
  std::vector<int64_t> labels;
};

struct SketchData {
  std::vector<std::string> classes;
  SketchSet train, val;
  int skipped = 0;
};

// FNV-1a: a split that does not depend on the standard library's std::hash.
uint64_t stable_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A sketch file -> its stroke map (as the engine reads a user's sketch), padded to a square with
// empty paper and reduced to size x size keeping thin strokes.
cv::Mat read_sketch(const std::string& path, int size) {
  cv::Mat map = edit::stroke_map(edit::read_image(path));
  const int side = std::max(map.rows, map.cols);
  cv::copyMakeBorder(map, map, (side - map.rows) / 2, side - map.rows - (side - map.rows) / 2, (side - map.cols) / 2,
                     side - map.cols - (side - map.cols) / 2, cv::BORDER_CONSTANT, 0);
  map = side == size ? map : edit::resize_strokes(map, {size, size});
  cv::Mat out;
  map.convertTo(out, CV_8U, 255.0);
  return out;
}

std::vector<std::string> class_folders(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw InputError(dir + ": no such folder (expected DIR/<class>/<sketch image>, the Sketchy layout)");
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string()[0] != '.') classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  if (classes.size() < 2)
    throw InputError(dir + ": has " + std::to_string(classes.size()) +
                     " class folder(s); training needs at least 2 (DIR/<class>/<sketch image>, one folder per class)");
  return classes;
}

// Every class's readable sketches; of each class, the val_fraction whose names hash lowest are held out.
SketchData load_sketches(const std::string& dir, int size, double val_fraction, std::ostream& log) {
  SketchData data;
  data.classes = class_folders(dir);
  for (size_t c = 0; c < data.classes.size(); ++c) {
    const fs::path folder = fs::path(dir) / data.classes[c];
    std::vector<std::pair<uint64_t, cv::Mat>> maps;
    for (const auto& e : fs::directory_iterator(folder)) {
      if (!e.is_regular_file() || !edit::is_image_path(e.path().string())) continue;
      try {
        maps.emplace_back(stable_hash(e.path().filename().string()), read_sketch(e.path().string(), size));
      } catch (const std::invalid_argument& err) {
        log << "warning: skipped " << e.path().string() << ": " << err.what() << "\n";
        ++data.skipped;
      }
    }
    if (maps.empty())
      throw InputError(folder.string() + ": class '" + data.classes[c] +
                       "' has no readable sketch image (any image OpenCV reads: PNG, JPEG, ...); add some or remove the folder");
    std::sort(maps.begin(), maps.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    const size_t n = maps.size();
    const size_t held = std::min(n - 1, static_cast<size_t>(std::lround(n * val_fraction)));
    for (size_t i = 0; i < n; ++i) {
      auto& set = i < held ? data.val : data.train;
      set.maps.push_back(maps[i].second);
      set.labels.push_back(static_cast<int64_t>(c));
    }
  }
  return data;
}

// Random zoom-crop (1 to 1.2x), shift (+-8%), rotation (+-10 degrees) and horizontal flip, in one warp.
cv::Mat augment(const cv::Mat& map, std::mt19937_64& rng) {
  const auto u = [](std::mt19937_64& g) { return edit::rnd::uniform(g); };  // portable draws (editing/random.h)
  const double s = map.cols, angle = (u(rng) * 2 - 1) * 10, zoom = 1 + 0.2 * u(rng);
  cv::Mat m = cv::getRotationMatrix2D({static_cast<float>(s / 2), static_cast<float>(s / 2)}, angle, zoom);
  m.at<double>(0, 2) += (u(rng) * 2 - 1) * 0.08 * s;
  m.at<double>(1, 2) += (u(rng) * 2 - 1) * 0.08 * s;
  if (u(rng) < 0.5) {  // mirror: x -> s - 1 - x after the warp
    m.row(0) *= -1;
    m.at<double>(0, 2) += s - 1;
  }
  cv::Mat out;
  cv::warpAffine(map, out, m, map.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  return out;
}

// CV_8U stroke maps -> [B,1,S,S] float in [0,1].
Tensor to_tensor(const std::vector<cv::Mat>& maps) {
  const int s = maps.front().rows;
  auto out = torch::empty({static_cast<int64_t>(maps.size()), 1, s, s}, torch::kUInt8);
  for (size_t i = 0; i < maps.size(); ++i)
    std::memcpy(out[i].data_ptr(), maps[i].data, static_cast<size_t>(s) * s);
  return out.to(torch::kFloat32) / 255;
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  return logits.argmax(1).eq(labels).to(torch::kFloat32).mean().item<double>();
}

// Accuracy on the held-out sketches (eval mode: BatchNorm running statistics), -1 when there are none.
double validate(ResNet& model, const SketchSet& val, torch::Device device) {
  if (val.maps.empty()) return -1;
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (size_t i = 0; i < val.maps.size(); i += 64) {
    const size_t end = std::min(val.maps.size(), i + 64);
    std::vector<cv::Mat> maps(val.maps.begin() + i, val.maps.begin() + end);
    auto labels = torch::tensor(std::vector<int64_t>(val.labels.begin() + i, val.labels.begin() + end)).to(device);
    auto logits = model->forward(sketch_to_resnet_input(to_tensor(maps).to(device)));
    correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  model->train();
  return static_cast<double>(correct) / val.maps.size();
}

void check_options(const SketchTrainOptions& o) {
  if (o.out_dir.empty()) throw InputError("train-sketch-features: give --out DIR");
  if (o.steps < 1 || o.lr < 0 || o.log_every < 1) throw InputError("train-sketch-features: --steps and --lr must be positive");
  if (o.batch < 2) throw InputError("train-sketch-features: --batch must be at least 2 (BatchNorm needs a batch statistic)");
  if (o.size < 32 || o.size > 1024) throw InputError("train-sketch-features: --size must be in 32..1024 px");
  if (o.val_fraction < 0 || o.val_fraction >= 1) throw InputError("train-sketch-features: the validation fraction must be in [0, 1)");
}


// model.json of the exported network.
ModelInfo exported_info(const SketchTrainOptions& o, const SketchFeaturesConfig& config) {
  ModelInfo info;
  info.kind = ModelKind::SketchFeatures;
  info.name = fs::path(o.out_dir).filename().string();
  info.source = "diffsketch train-sketch-features on " + fs::path(o.data_dir).filename().string() +
                (o.init.empty() ? "" : ", initialised from " + o.init);
  info.flags = to_flags(config);
  return info;
}

// The network to train: from scratch (residual branches zeroed, so blocks start as identities and
// it trains faster) or from --init.
ResNet make_network(const SketchTrainOptions& o, int64_t classes, torch::Device device, std::ostream& log) {
  torch::manual_seed(o.seed);
  ResNetConfig net_config;
  net_config.num_classes = classes;
  net_config.zero_init_residual = o.init.empty();
  ResNet model(net_config);
  if (!o.init.empty()) init_weights_from(*model, o.init, {ModelKind::SketchFeatures}, "train-sketch-features --init", log);
  model->to(device);
  model->train();
  return model;
}

// A batch of augmented training sketches, drawn with `rng`: inputs [B,3,S,S] and labels [B].
std::pair<Tensor, Tensor> draw_batch(const SketchSet& train, int batch, std::mt19937_64& rng, torch::Device device) {
  std::vector<cv::Mat> maps;
  std::vector<int64_t> labels;
  for (int i = 0; i < batch; ++i) {
    const auto k = static_cast<size_t>(edit::rnd::uniform_int(rng, 0, static_cast<int>(train.maps.size()) - 1));
    maps.push_back(augment(train.maps[k], rng));
    labels.push_back(train.labels[k]);
  }
  return {sketch_to_resnet_input(to_tensor(maps).to(device)), torch::tensor(labels).to(device)};
}

// Mean loss and accuracy between two log lines.
struct LogWindow {
  double loss = 0, acc = 0;
  int n = 0;
  void add(double l, double a) { loss += l, acc += a, ++n; }
};

void report_data(const SketchData& data, const SketchTrainOptions& o, SketchTrainReport& report, std::ostream& log) {
  report.classes = static_cast<int>(data.classes.size());
  report.train_images = static_cast<int>(data.train.maps.size());
  report.val_images = static_cast<int>(data.val.maps.size());
  report.skipped_files = data.skipped;
  log << "data: " << data.classes.size() << " classes, " << report.train_images << " training and "
      << report.val_images << " validation sketches at " << o.size << " px"
      << (data.skipped ? ", " + std::to_string(data.skipped) + " unreadable file(s) skipped" : "") << "\n";
}

}  // namespace

SketchTrainReport train_sketch_features(const SketchTrainOptions& o, std::ostream& log, const CancelToken* cancel) {
  check_options(o);
  configure_threads();
  const auto device = resolve_device(o.device);
  const auto data = load_sketches(o.data_dir, o.size, o.val_fraction, log);
  SketchTrainReport report;
  report_data(data, o, report, log);
  SketchFeaturesConfig config;
  config.num_classes = static_cast<int64_t>(data.classes.size());
  config.image_size = o.size;
  config.classes = data.classes;
  ResNet model = make_network(o, config.num_classes, device, log);
  const double lr = o.lr > 0 ? o.lr : o.init.empty() ? 3e-4 : 1e-4;
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(lr).betas({0.9, 0.999}));
  std::mt19937_64 rng(o.seed);
  at::Generator gen = at::detail::createCPUGenerator(o.seed + 1);
  std::vector<Tensor> no_ema;

  const fs::path out(o.out_dir);
  const RunLock lock(out);
  Checkpointer ckpt{out / "checkpoint"};
  const nlohmann::json identity = {{"classes", data.classes}, {"size", o.size}};
  long step = 0;
  if (open_checkpoint(ckpt, o.out_dir, o.resume, log)) {
    const auto state = ckpt.load(*model, no_ema, adam, rng, gen);
    if (state.value("classes", nlohmann::json()) != identity["classes"] || state.value("size", 0) != o.size)
      throw InputError(o.out_dir + ": the checkpoint was trained on other classes or another --size; resume with the same data and --size");
    step = state["step"].get<long>();
    log << "resumed from step " << step << "\n";
  }

  const ModelInfo info = exported_info(o, config);
  LossLog csv(out / "log.csv", "step,loss,accuracy,val_accuracy,steps_per_s,elapsed_s", o.resume);
  LoopClock clock(step, o.steps, o.checkpoint_minutes);
  NonFiniteGuard guard("training", "step");
  auto checkpoint = [&] {
    ckpt.save(*model, no_ema, adam, step, rng, gen, identity);
    report.val_accuracy = validate(model, data.val, device);
    const std::string acc = report.val_accuracy < 0 ? "n/a" : std::to_string(report.val_accuracy);
    std::ostringstream note;
    note << "step " << step << "; " << data.classes.size() << " classes; validation accuracy " << acc << " on "
         << data.val.maps.size() << " sketches";
    export_model(info, out / "model", *model, nullptr, step, note.str(), torch::kFloat32);
    log << "checkpoint at step " << step << ": validation accuracy "
        << (report.val_accuracy < 0 ? "n/a (no held-out sketches)" : acc) << std::endl;
    csv.row(step, "", "", report.val_accuracy, "", "");
    clock.checkpointed();
  };

  LogWindow window;
  while (step < o.steps) {
    if (cancel && cancel->cancelled()) break;
    const auto [input, y] = draw_batch(data.train, o.batch, rng, device);
    auto logits = model->forward(input);
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    adam.zero_grad();
    loss.backward();
    const double l = loss.item<double>();
    if (!guard.accept(l, 0.0, step, "lower --lr")) continue;
    adam.step();
    ++step;
    window.add(l, accuracy(logits.detach(), y));
    if (step % o.log_every == 0 || step == o.steps) {
      const double rate = clock.rate(step), mean = window.loss / window.n, acc = window.acc / window.n;
      if (report.first_loss == 0) report.first_loss = mean;
      report.last_loss = mean;
      std::ostringstream line;  // its own stream: the log's number format stays as it was
      line << "step " << step << "/" << o.steps << "  loss " << std::fixed << std::setprecision(4) << mean << "  acc "
           << std::setprecision(3) << acc << "  " << rate << " steps/s  ETA " << std::setprecision(1)
           << clock.eta_minutes(step) << " min";
      log << line.str() << std::endl;
      csv.row(step, mean, acc, "", rate, clock.elapsed());
      window = {};
    }
    if (clock.checkpoint_due()) checkpoint();
  }
  checkpoint();
  report.step = step;
  log << "saved " << (out / "model").string() << " at step " << step << "\n";
  return report;
}

}  // namespace dsk
