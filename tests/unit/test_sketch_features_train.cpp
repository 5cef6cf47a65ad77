// `diffsketch train-sketch-features` on a tiny generated sketch set (circles, squares, triangles
// drawn with jitter): the loss goes down, validation beats chance, a resumed run continues at the
// saved step exactly as an uninterrupted one, and bad data folders are refused clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <unistd.h>

#include "core/base/error.h"
#include "core/formats/safetensors.h"
#include "core/formats/sketch_features_model.h"
#include "core/formats/tensor_io.h"
#include "core/training/sketch_features_train.h"
#include "editing/image_io.h"
#include "expect_error.h"

using dsk::test::expect_input_error;
#include "numerics.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) { return dsk::test::temp_dir("sketchfeat", name); }

// One outline, dark on white, `side` px: 0 circle, 1 square, 2 triangle (pointing up); random
// place, size, pen width and a slight tilt.
cv::Mat draw_shape(int kind, int side, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  cv::Mat img(side, side, CV_8UC1, cv::Scalar(255));
  const cv::Point2d c(side / 2.0 + (u(rng) - 0.5) * side * 0.2, side / 2.0 + (u(rng) - 0.5) * side * 0.2);
  const double r = side * (0.3 + 0.12 * u(rng)), turn = (kind == 1 ? M_PI / 4 : -M_PI / 2) + (u(rng) - 0.5) * 0.3;
  const int pen = 1 + static_cast<int>(u(rng) * 2.5);
  if (kind == 0) {
    cv::circle(img, c, static_cast<int>(r), cv::Scalar(0), pen, cv::LINE_AA);
    return img;
  }
  const int corners = kind == 1 ? 4 : 3;
  std::vector<cv::Point> pts;
  for (int i = 0; i < corners; ++i) {
    const double a = turn + 2 * M_PI * i / corners;
    pts.emplace_back(static_cast<int>(c.x + r * std::cos(a)), static_cast<int>(c.y + r * std::sin(a)));
  }
  cv::polylines(img, pts, true, cv::Scalar(0), pen, cv::LINE_AA);
  return img;
}

fs::path make_sketches(const std::string& name, int per_class, int side = 48) {
  const auto dir = temp_dir(name);
  std::mt19937 rng(5);
  const char* classes[] = {"circle", "square", "triangle"};
  for (int k = 0; k < 3; ++k) {
    fs::create_directories(dir / classes[k]);
    for (int i = 0; i < per_class; ++i)
      dsk::edit::write_image((dir / classes[k] / (std::to_string(i) + ".png")).string(), draw_shape(k, side, rng));
  }
  return dir;
}

dsk::SketchTrainOptions options(const fs::path& data, const fs::path& out, long steps) {
  dsk::SketchTrainOptions o;
  o.data_dir = data.string();
  o.out_dir = out.string();
  o.steps = steps;
  o.batch = 16;
  o.size = 48;
  o.seed = 3;
  o.val_fraction = 0.25;
  o.log_every = 5;
  o.checkpoint_minutes = 60;
  o.device = "cpu";
  return o;
}

TEST(TrainSketchFeatures, LowersTheLossAndBeatsChanceOnHeldOutSketches) {
  const auto data = make_sketches("shapes", 40);
  const auto out = temp_dir("run") / "out";
  std::ostringstream log;
  const auto r = dsk::train_sketch_features(options(data, out, 30), log);
  std::cout << log.str();
  EXPECT_EQ(r.step, 30);
  EXPECT_EQ(r.classes, 3);
  EXPECT_EQ(r.val_images, 30);  // 10 of each class's 40
  EXPECT_EQ(r.train_images, 90);
  EXPECT_LT(r.last_loss, 0.7 * r.first_loss) << log.str();
  EXPECT_GE(r.val_accuracy, 0.6) << log.str();  // chance: 1/3
  EXPECT_NE(log.str().find("steps/s  ETA"), std::string::npos);

  // OUT/model is a sketch-features model folder with the class names.
  dsk::ModelInfo info;
  dsk::SketchFeaturesConfig config;
  dsk::load_sketch_resnet((out / "model").string(), &info, &config);
  EXPECT_EQ(info.kind, dsk::ModelKind::SketchFeatures);
  EXPECT_EQ(config.classes, (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(config.image_size, 48);
  EXPECT_TRUE(fs::exists(out / "log.csv"));
}

TEST(TrainSketchFeatures, ResumeContinuesAtTheSavedStepLikeAnUninterruptedRun) {
  const auto data = make_sketches("resume", 6);
  const auto dir = temp_dir("resume-out");
  std::ostringstream log;
  auto small = [&](const fs::path& out, long steps) {  // the smallest size: only the bookkeeping matters here
    auto o = options(data, out, steps);
    o.size = 32;
    o.batch = 8;
    return o;
  };
  dsk::train_sketch_features(small(dir / "straight", 6), log);
  dsk::train_sketch_features(small(dir / "split", 3), log);
  auto o = small(dir / "split", 6);
  o.resume = true;
  std::ostringstream resumed;
  EXPECT_EQ(dsk::train_sketch_features(o, resumed).step, 6);
  EXPECT_NE(resumed.str().find("resumed from step 3"), std::string::npos) << resumed.str();

  auto a = dsk::st::File::open((dir / "straight" / "model" / "weights.safetensors").string());
  auto b = dsk::st::File::open((dir / "split" / "model" / "weights.safetensors").string());
  const auto ta = dsk::read_tensors(a), tb = dsk::read_tensors(b);
  ASSERT_EQ(ta.size(), 320u);
  ASSERT_EQ(tb.size(), 320u);
  // Training runs without oneDNN (WithoutOneDnn) on LibTorch's kernels, deterministic for a fixed
  // thread count in one process: the resumed run's weights equal the straight run's up to the
  // order of float sums only where a kernel reorders them; a lost optimiser state or RNG draw
  // would move every weight by ~lr (1e-3).
  double worst = 0;
  for (const auto& [name, t] : ta) worst = std::max(worst, dsk::test::max_relative_error(tb.at(name), t));
  EXPECT_TRUE(dsk::test::within("sketch-features/resumed-equals-uninterrupted", worst, 1e-5));
  // --init copies every tensor of the same name and shape from a sketch-features model folder.
  auto init = small(dir / "init", 1);
  init.init = (dir / "straight" / "model").string();
  std::ostringstream init_log;
  dsk::train_sketch_features(init, init_log);
  EXPECT_NE(init_log.str().find("kept 0 tensor(s) freshly initialised"), std::string::npos) << init_log.str();
  init.init = DSK_TEST_DATA "/models/adm-small";
  init.out_dir = (dir / "init-bad").string();
  expect_input_error([&] { dsk::train_sketch_features(init, log); }, {"adm-unet", "--init", "sketch-features"});

  // Without --resume an existing checkpoint is not overwritten; --resume needs one.
  expect_input_error([&] { dsk::train_sketch_features(small(dir / "split", 6), log); }, {"--resume"});
  o.out_dir = (dir / "empty").string();
  expect_input_error([&] { dsk::train_sketch_features(o, log); }, {"no checkpoint"});
}

TEST(TrainSketchFeatures, BadDataFoldersAreRefusedAndUnreadableFilesSkipped) {
  std::ostringstream log;
  const auto dir = temp_dir("bad");
  expect_input_error([&] { dsk::train_sketch_features(options(dir / "missing", dir / "o1", 1), log); },
                     {"missing", "no such folder", "<class>"});
  const auto one = make_sketches("one", 2);
  fs::remove_all(one / "square");
  fs::remove_all(one / "triangle");
  expect_input_error([&] { dsk::train_sketch_features(options(one, dir / "o2", 1), log); },
                     {"1 class folder", "at least 2"});

  const auto data = make_sketches("empty", 2);
  fs::remove_all(data / "square");
  fs::create_directories(data / "square");
  std::ofstream(data / "square" / "notes.txt") << "not a sketch";
  expect_input_error([&] { dsk::train_sketch_features(options(data, dir / "o3", 1), log); },
                     {"square", "no readable sketch"});

  // A corrupt PNG is skipped with a warning; the rest trains.
  std::ofstream(data / "square" / "broken.png") << "not a png";
  dsk::edit::write_image((data / "square" / "ok.png").string(), cv::Mat(48, 48, CV_8UC1, cv::Scalar(255)));
  std::ostringstream warn;
  const auto r = dsk::train_sketch_features(options(data, dir / "o4", 1), warn);
  EXPECT_EQ(r.skipped_files, 1);
  EXPECT_NE(warn.str().find("warning: skipped"), std::string::npos) << warn.str();
  EXPECT_NE(warn.str().find("broken.png"), std::string::npos) << warn.str();
}

}  // namespace
