// Training: a tiny editing model lowers its loss on generated pictures; a killed run resumes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "core/base/remove_tree.h"
#include "core/formats/safetensors.h"
#include "core/formats/tensor_io.h"
#include "core/training/train.h"
#include "core/training/train_data.h"
#include "editing/image_io.h"
#include "kill_helper.h"
#include "models/unet.h"
#include "numerics.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) { return dsk::test::temp_dir("train", name); }

// Pictures with smooth backgrounds and a few shapes: edges for sketches, colours for harmony.
fs::path make_pictures(int count) {
  const auto dir = temp_dir("pictures");
  std::mt19937 rng(3);
  for (int i = 0; i < count; ++i) {
    cv::Mat img(96, 128, CV_8UC3);
    const cv::Scalar a(rng() % 256, rng() % 256, rng() % 256), b(rng() % 256, rng() % 256, rng() % 256);
    for (int y = 0; y < img.rows; ++y) img.row(y).setTo(a * (1.0 - y / 96.0) + b * (y / 96.0));
    for (int k = 0; k < 3; ++k) {
      const cv::Scalar c(rng() % 256, rng() % 256, rng() % 256);
      if (k % 2) cv::circle(img, {int(rng() % 128), int(rng() % 96)}, 8 + rng() % 20, c, -1, cv::LINE_AA);
      else cv::rectangle(img, cv::Rect(rng() % 100, rng() % 70, 10 + rng() % 30, 10 + rng() % 30), c, -1);
    }
    dsk::edit::write_image((dir / ("p" + std::to_string(i) + ".png")).string(), img);
  }
  return dir;
}

// `extra_flags` / `extra_train` are merged into the model flags / training settings.
fs::path write_config(const fs::path& dir, long steps, double checkpoint_minutes, const nlohmann::json& extra_flags = {},
                      const nlohmann::json& extra_train = {}) {
  nlohmann::json c = {
      {"model",
       {{"kind", "editing-unet"},
        {"name", "tiny"},
        {"flags",
         {{"image_size", 32}, {"in_channels", 7}, {"num_channels", 32}, {"channel_mult", "1,2"}, {"num_res_blocks", 1},
          {"attention_resolutions", "16"}, {"num_head_channels", 32}, {"sketch_channels", 32}, {"learn_sigma", false},
          {"diffusion_steps", 1000}, {"noise_schedule", "cosine"}}}}},
      {"train",
       {{"steps", steps}, {"batch", 4}, {"lr", 1e-3}, {"seed", 1}, {"log_every", 25}, {"export", "raw"},
        {"checkpoint_minutes", checkpoint_minutes}, {"val_fraction", 0.0}}}};
  if (!extra_flags.is_null()) c["model"]["flags"].update(extra_flags);
  if (!extra_train.is_null()) c["train"].update(extra_train);
  const auto path = dir / "config.json";
  std::ofstream(path) << c.dump(2);
  return path;
}

// A run's options on the CPU: its config, one data folder, its output folder.
dsk::TrainOptions cpu_run(const fs::path& config, const fs::path& data, const fs::path& out) {
  dsk::TrainOptions o;
  o.config_path = config.string();
  o.data_dirs = {data.string()};
  o.out_dir = out.string();
  o.device = "cpu";
  return o;
}

TEST(Train, TinyEditingModelLowersItsLoss) {
  // The shipped model's recipe: v-prediction, the loss inside the hole only.
  const auto pictures = make_pictures(12);
  const auto dir = temp_dir("loss");
  dsk::TrainOptions o = cpu_run(write_config(dir, 150, 60, {{"predict_v", true}}, {{"hole_loss", true}, {"sketch_lr_mult", 5.0}, {"edge_loss_weight", 4.0}}), pictures, dir / "out");
  std::ostringstream log;
  const auto report = dsk::train(o, log);
  EXPECT_EQ(report.step, 150);
  EXPECT_LT(report.last_loss, 0.8 * report.first_loss) << log.str();
  EXPECT_TRUE(fs::exists(dir / "out" / "model" / "weights.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "out" / "loss.csv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "loss.png"));
  EXPECT_NE(log.str().find("hole"), std::string::npos) << "the log names the loss region";
  EXPECT_NE(log.str().find("sketch path: "), std::string::npos) << "the log names the sketch path's lr";
  EXPECT_NE(log.str().find("strokes weighted x5"), std::string::npos) << "the log names the stroke weight";
  // The exported model keeps the flag, so sampling converts v.
  std::ifstream json((dir / "out" / "model" / "model.json").string());
  EXPECT_TRUE(nlohmann::json::parse(json)["flags"]["predict_v"].get<bool>());
}

// The sum over tensors of |a - b| of two model folders' weights.
double weight_distance(const fs::path& a, const fs::path& b) {
  const auto ta = dsk::read_tensors(dsk::st::File::open((a / "weights.safetensors").string()));
  const auto tb = dsk::read_tensors(dsk::st::File::open((b / "weights.safetensors").string()));
  double d = 0;
  for (const auto& [name, t] : ta) d += (t.to(torch::kFloat64) - tb.at(name).to(torch::kFloat64)).abs().sum().item<double>();
  return d;
}

TEST(Train, ContinuesFromAShippedModelFolder) {
  // A trained folder (raw weights), then a new run from it: the EMA starts at its weights and has
  // no warm-up, so after a few steps the EMA export is still near them while the raw weights moved.
  const auto pictures = make_pictures(6);
  const auto dir = temp_dir("init-from");
  dsk::TrainOptions first = cpu_run(write_config(dir, 10, 60), pictures, dir / "first");
  std::ostringstream log;
  dsk::train(first, log);
  const fs::path shipped = dir / "first" / "model";
  auto run = [&](const std::string& name, const std::string& export_weights) {
    dsk::TrainOptions o = first;
    o.config_path = write_config(dir / name, 5, 60, {}, {{"export", export_weights}, {"ema_rate", 0.9}}).string();
    o.out_dir = (dir / name / "out").string();
    o.init_from = shipped.string();
    dsk::train(o, log);
    return dir / name / "out" / "model";
  };
  fs::create_directories(dir / "ema"), fs::create_directories(dir / "raw");
  const auto ema = run("ema", "ema"), raw = run("raw", "raw");
  EXPECT_NE(log.str().find("init from " + shipped.string()), std::string::npos) << log.str();
  const double moved = weight_distance(raw, shipped), ema_moved = weight_distance(ema, shipped);
  EXPECT_GT(moved, 0);
  // 5 steps at decay 0.9 keep 0.9^5 = 59% of the start; a warm-up (decay 0.1 at step 0) would keep ~0.
  EXPECT_LT(ema_moved, 0.6 * moved) << ema_moved << " vs " << moved;
  std::ifstream state((dir / "ema" / "out" / "checkpoint" / "state.json").string());
  EXPECT_FALSE(nlohmann::json::parse(state).at("ema_warmup").get<bool>());
  // A new run and a resumed one are not both possible.
  dsk::TrainOptions both = first;
  both.out_dir = (dir / "ema" / "out").string();
  both.init_from = shipped.string();
  both.resume = true;
  EXPECT_THROW(dsk::train(both, log), std::invalid_argument);
}

TEST(LrDecay, FollowsItsShapeFromItsStart) {
  dsk::LrDecay d{dsk::LrDecay::Shape::Cosine, 100, 50, 1e-5};
  EXPECT_DOUBLE_EQ(dsk::lr_at(1e-4, d, 0), 1e-4);
  EXPECT_DOUBLE_EQ(dsk::lr_at(1e-4, d, 100), 1e-4);
  EXPECT_NEAR(dsk::lr_at(1e-4, d, 125), 5.5e-5, 1e-12) << "halfway down the cosine: the mean of the ends";
  EXPECT_LT(dsk::lr_at(1e-4, d, 110), 1e-4);
  EXPECT_GT(dsk::lr_at(1e-4, d, 110), 5.5e-5 + 0.5 * 4.5e-5) << "a cosine starts slower than a line";
  EXPECT_DOUBLE_EQ(dsk::lr_at(1e-4, d, 150), 1e-5);
  EXPECT_DOUBLE_EQ(dsk::lr_at(1e-4, d, 10'000), 1e-5);
  d.shape = dsk::LrDecay::Shape::Linear;
  EXPECT_NEAR(dsk::lr_at(1e-4, d, 110), 1e-4 - 0.2 * 9e-5, 1e-12);
  d.shape = dsk::LrDecay::Shape::None;
  EXPECT_DOUBLE_EQ(dsk::lr_at(1e-4, d, 10'000), 1e-4);
}

// A safetensors file's tensor bytes (after the header, which records the step).
std::string tensor_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string all{std::istreambuf_iterator<char>(in), {}};
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | static_cast<unsigned char>(all.at(i));
  return all.substr(8 + header);
}

TEST(Train, TheDecayedLrIsTheOptimisersLr) {
  // Down to lr 0 by step 3: the 4th and later updates change nothing, the 3rd still does.
  const auto pictures = make_pictures(4);
  const nlohmann::json decay = {{"lr_decay", "linear"}, {"lr_decay_start", 0}, {"lr_decay_steps", 3}, {"lr_final", 0.0}};
  auto weights_after = [&](long steps) {
    const auto dir = temp_dir("decay" + std::to_string(steps));
    dsk::TrainOptions o = cpu_run(write_config(dir, steps, 60, {}, decay), pictures, dir / "out");
    std::ostringstream log;
    dsk::train(o, log);
    EXPECT_NE(log.str().find("linear decay to 0 at step 3"), std::string::npos) << log.str();
    return tensor_bytes(dir / "out" / "model" / "weights.safetensors");
  };
  const auto two = weights_after(2), three = weights_after(3), six = weights_after(6);
  EXPECT_TRUE(two != three) << "the third update, at a third of the lr, changes the weights";
  EXPECT_TRUE(three == six) << "updates at lr 0 leave them as they are";
}

TEST(Train, RefusesABadLrDecay) {
  const auto pictures = make_pictures(2);
  const auto dir = temp_dir("baddecay");
  auto message = [&](const nlohmann::json& train) {
    dsk::TrainOptions o;
    o.config_path = write_config(dir, 2, 60, {}, train).string();
    o.data_dirs = {pictures.string()};
    o.out_dir = (dir / "out").string();
    std::ostringstream log;
    try {
      dsk::train(o, log);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"lr_decay", "step"}}).find("lr_decay must be \"none\", \"cosine\" or \"linear\""), std::string::npos);
  EXPECT_NE(message({{"lr_decay", "cosine"}}).find("lr_decay_steps >= 1"), std::string::npos);
  EXPECT_NE(message({{"lr_decay", "cosine"}, {"lr_decay_steps", 10}, {"lr_final", 1.0}}).find("lr_final must be in [0, lr]"),
            std::string::npos);
  EXPECT_NE(message({{"lr_decay_steps", "ten"}}).find("'lr_decay_steps' has the wrong type"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "out")) << "nothing written for a bad config";
}

TEST(Train, ResumesFromTheLastCheckpointAfterAKill) {
  const auto pictures = make_pictures(6);
  const auto dir = temp_dir("resume");
  const auto config = write_config(dir, 40, 0.0);  // a checkpoint after every step
  const auto out = dir / "out";
  const std::string cmd = std::string(DSK_BIN_DIR) + "/diffsketch train --device cpu --config " + config.string() +
                          " --data " + pictures.string() + " --out " + out.string();
  // Kill the run hard once a few checkpoints exist.
  const long killed_at = dsk::test::run_and_kill_after_checkpoint(cmd, out, 5, dir / "first.log");
  ASSERT_NE(killed_at, -1) << "no checkpoint was written before the kill";
  ASSERT_GE(killed_at, 5);
  ASSERT_LT(killed_at, 40);

  dsk::TrainOptions o = cpu_run(config, pictures, out);
  o.resume = true;
  std::ostringstream log;
  const auto report = dsk::train(o, log);
  EXPECT_NE(log.str().find("resumed from step " + std::to_string(killed_at)), std::string::npos) << log.str();
  EXPECT_EQ(report.step, 40);
}

TEST(Train, ResumesAfterAKillBetweenTheCheckpointRenames) {
  // save() moves checkpoint -> checkpoint.old, then checkpoint.tmp -> checkpoint: a kill between
  // the two leaves no checkpoint folder. Both states of that window must resume.
  const auto pictures = make_pictures(4);
  const auto dir = temp_dir("window");
  dsk::TrainOptions o = cpu_run(write_config(dir, 5, 60), pictures, dir / "out");
  o.max_steps_override = 3;  // one checkpoint, at the end (step 3)
  std::ostringstream first;
  dsk::train(o, first);
  const auto ckpt = dir / "out" / "checkpoint";
  const fs::path tmp = ckpt.string() + ".tmp", old = ckpt.string() + ".old";
  o.resume = true;
  o.max_steps_override = 4;
  // (a) the new one complete in .tmp (and the previous in .old): the new one is used.
  fs::copy(ckpt, tmp, fs::copy_options::recursive);
  fs::rename(ckpt, old);
  std::ostringstream a;
  EXPECT_EQ(dsk::train(o, a).step, 4);
  EXPECT_NE(a.str().find("resumed from step 3"), std::string::npos) << a.str();
  EXPECT_NE(a.str().find("interrupted save"), std::string::npos) << a.str();
  EXPECT_FALSE(fs::exists(tmp));
  // (b) .tmp incomplete (no state.json yet): the previous one in .old is used.
  fs::remove_all(old);
  fs::copy(ckpt, tmp, fs::copy_options::recursive);
  fs::remove(tmp / "state.json");
  fs::rename(ckpt, old);
  o.max_steps_override = -1;
  std::ostringstream b;
  EXPECT_EQ(dsk::train(o, b).step, 5);
  EXPECT_NE(b.str().find("resumed from step 4"), std::string::npos) << b.str();
  EXPECT_NE(b.str().find("last save was interrupted"), std::string::npos) << b.str();
}

TEST(Train, RefusesToOverwriteACheckpointWithoutResume) {
  const auto pictures = make_pictures(4);
  const auto dir = temp_dir("overwrite");
  dsk::TrainOptions o = cpu_run(write_config(dir, 2, 60), pictures, dir / "out");
  std::ostringstream log;
  dsk::train(o, log);
  EXPECT_THROW(dsk::train(o, log), std::invalid_argument);
  o.resume = true;
  o.out_dir = (dir / "empty").string();
  EXPECT_THROW(dsk::train(o, log), std::invalid_argument);
}

}  // namespace

namespace {

// Checkpoints replace their predecessors with remove_tree (not std::filesystem::remove_all, which
// crashed under PyTorch's pip LibTorch): it removes nested folders and links, never a link's target.
TEST(RemoveTree, RemovesNestedFoldersAndLinksButNotWhatTheyPointTo) {
  const auto dir = temp_dir("remove-tree");
  const auto tree = dir / "tree", outside = dir / "outside";
  fs::create_directories(tree / "a" / "b");
  fs::create_directories(outside);
  std::ofstream(tree / "a" / "b" / "weights.safetensors") << "x";
  std::ofstream(tree / "state.json") << "{}";
  std::ofstream(outside / "keep.txt") << "keep";
  fs::create_directory_symlink(outside, tree / "link");
  dsk::remove_tree(tree);
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  EXPECT_NO_THROW(dsk::remove_tree(tree)) << "a missing folder is already removed";
  try {
    dsk::remove_tree(outside / "keep.txt" / "below");
    FAIL() << "a path through a file cannot be removed";
  } catch (const dsk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("keep.txt/below: cannot remove"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(TrainData, PictureKeysKeepEveryResolutionOfAPictureTogether) {
  EXPECT_EQ(dsk::picture_key("/d", "/d/wallpapers/Altai/contents/images/5120x2880.png"), "wallpapers/Altai");
  EXPECT_EQ(dsk::picture_key("/d", "/d/wallpapers/Altai/contents/screenshot.png"), "wallpapers/Altai");
  EXPECT_EQ(dsk::picture_key("/d", "/d/mate/Elephants_3840x2160.jpg"), "mate/Elephants");
  EXPECT_EQ(dsk::picture_key("/d", "/d/mate/Elephants-640x480.png"), "mate/Elephants");
  EXPECT_EQ(dsk::picture_key("/d", "/d/mate/Elephants.jpg"), "mate/Elephants");
  EXPECT_EQ(dsk::picture_key("/d", "/d/stamps/cat.png"), "stamps/cat");
  // The split is a pure function of the key, and roughly the asked fraction.
  int val = 0;
  for (int i = 0; i < 10000; ++i) val += dsk::is_validation("picture" + std::to_string(i), 0.1);
  EXPECT_NEAR(val, 1000, 100);
  EXPECT_EQ(dsk::is_validation("mate/Elephants", 0.1), dsk::is_validation("mate/Elephants", 0.1));
}

}  // namespace

namespace {

// 32 px crops, every picture in the training split.
dsk::DataOptions small_data() {
  dsk::DataOptions options;
  options.size = 32;
  options.val_fraction = 0;
  return options;
}

TEST(TrainData, SketchDropoutGivesTheModelsNoSketchMap) {
  const auto pictures = make_pictures(4);
  const auto dir = temp_dir("null");
  dsk::DataOptions options = small_data();
  std::ostringstream log;
  dsk::pack_training_data({pictures.string()}, options, (dir / "pack").string(), 6, 6, 1, false, log);
  for (const auto& folder : {pictures, dir / "pack"}) {
    options.sketch_null = -1;
    options.sketch_dropout = 1;
    std::mt19937_64 rng(5);
    auto b = dsk::open_training_data({folder.string()}, options, false)->next(4, rng);
    EXPECT_EQ(b.sketch.min().item<float>(), -1.f) << folder;
    EXPECT_EQ(b.sketch.max().item<float>(), -1.f) << folder;
    options.sketch_dropout = 0;  // given sketches: stroke maps in [0, 1] with some strokes
    b = dsk::open_training_data({folder.string()}, options, false)->next(4, rng);
    EXPECT_GE(b.sketch.min().item<float>(), 0.f) << folder;
    EXPECT_GT(b.sketch.max().item<float>(), 0.5f) << folder;
  }
}

TEST(SketchNull, NoSketchIsTheNullMapNotABlankOne) {
  nlohmann::json flags = {{"image_size", 32},      {"in_channels", 7},     {"num_channels", 32},
                          {"channel_mult", "1,2"}, {"num_res_blocks", 1},  {"attention_resolutions", "16"},
                          {"num_head_channels", 32}, {"sketch_channels", 32}, {"sketch_null", -1}};
  const auto config = dsk::unet_config_from_json(flags, "test");
  EXPECT_EQ(dsk::to_json(config).at("sketch_null"), -1.0);
  torch::manual_seed(3);
  dsk::UNetModel net(config);
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters())
    if (p.key().find("sketch_inject") != std::string::npos) p.value().normal_(0, 0.2);
  const auto x = torch::randn({1, 7, 32, 32}), t = torch::tensor({500});
  const auto none = net->forward(x, t, {}, {}), null = net->forward(x, t, {}, torch::full({1, 1, 32, 32}, -1.0)),
             blank = net->forward(x, t, {}, torch::zeros({1, 1, 32, 32}));
  // No sketch is the null map itself (the same tensor goes through the same kernels): equal.
  EXPECT_TRUE(torch::equal(none, null));
  EXPECT_GT(dsk::test::relative_error(blank, none), 1e-2) << "a blank sketch must not look like no sketch";
  // Older models (no sketch_null) keep "no sketch" = the blank map, and write no sketch_null.
  flags.erase("sketch_null");
  EXPECT_FALSE(dsk::to_json(dsk::unet_config_from_json(flags, "test")).contains("sketch_null"));
  for (const auto& bad : {nlohmann::json(0.5), nlohmann::json(-20), nlohmann::json("x")}) {
    flags["sketch_null"] = bad;
    EXPECT_THROW(dsk::unet_config_from_json(flags, "test"), std::invalid_argument) << bad;
  }
  nlohmann::json plain = {{"image_size", 32}, {"num_channels", 32}, {"channel_mult", "1,2"}, {"sketch_null", -1}};
  try {
    dsk::unet_config_from_json(plain, "m.json");
    ADD_FAILURE() << "sketch_null on a plain ADM model was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sketch_null needs an editing model"), std::string::npos) << e.what();
  }
}

TEST(TrainData, PackedShardsTrainLikePictureFolders) {
  const auto pictures = make_pictures(4);
  const auto dir = temp_dir("pack");
  dsk::DataOptions options = small_data();
  std::ostringstream log;
  dsk::pack_training_data({pictures.string()}, options, (dir / "pack").string(), 10, 4, 1, false, log);
  EXPECT_TRUE(fs::exists(dir / "pack" / "shard-00002.safetensors")) << log.str();  // 4 + 4 + 2
  EXPECT_THROW(dsk::pack_training_data({pictures.string()}, options, (dir / "pack").string(), 10, 4, 1, false, log),
               std::invalid_argument);
  auto source = dsk::open_training_data({(dir / "pack").string()}, options, false);
  std::mt19937_64 rng(2);
  const auto b = source->next(6, rng);
  EXPECT_EQ(b.image.sizes(), (std::vector<int64_t>{6, 3, 32, 32}));
  EXPECT_GE(b.image.min().item<float>(), -1.f);
  EXPECT_LE(b.image.max().item<float>(), 1.f);
  EXPECT_EQ(b.mask.sizes(), (std::vector<int64_t>{6, 1, 32, 32}));
  EXPECT_THROW(dsk::open_training_data({(dir / "pack").string(), pictures.string()}, options, false), std::invalid_argument);
  options.size = 64;
  EXPECT_THROW(dsk::open_training_data({(dir / "pack").string()}, options, false), std::invalid_argument);

  // And `train` takes the packed folder like a picture folder.
  dsk::TrainOptions o = cpu_run(write_config(dir, 3, 60), dir / "pack", dir / "out");
  EXPECT_EQ(dsk::train(o, log).step, 3);
}

// Data-parallel with "data_sharding": "files": each rank loads only its share of the files (packed
// shards by index, pictures by a hash of their key), the shares are disjoint and cover the data, a
// rank left without any is one clear message, and `train --nproc 2` runs on the shares.
TEST(TrainData, RanksLoadTheirShareOfTheFiles) {
  const auto pictures = make_pictures(12);
  const auto dir = temp_dir("shares");
  dsk::DataOptions options = small_data();
  std::ostringstream log;
  dsk::pack_training_data({pictures.string()}, options, (dir / "pack").string(), 10, 4, 1, false, log);  // 4 + 4 + 2
  auto share = [&](const fs::path& data, int rank, int ranks) {
    auto o = options;
    o.share = rank;
    o.shares = ranks;
    return dsk::open_training_data({data.string()}, o, false);
  };
  EXPECT_NE(share(dir / "pack", 0, 2)->describe().find("6 packed samples"), std::string::npos);  // shards 0 and 2
  EXPECT_NE(share(dir / "pack", 1, 2)->describe().find("4 packed samples"), std::string::npos);  // shard 1
  EXPECT_NE(share(dir / "pack", 1, 2)->describe().find("rank 1 of 2's share"), std::string::npos);
  try {
    share(dir / "pack", 3, 4);
    ADD_FAILURE() << "a rank without a shard was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("rank 3 of 4 got no packed shard: the data folders hold 3 shard(s) for 4 ranks"),
              std::string::npos)
        << e.what();
  }
  size_t total = 0;
  for (int r = 0; r < 3; ++r) {
    const auto part = share(pictures, r, 3);
    const auto* pics = dynamic_cast<const dsk::TrainingData*>(part.get());
    ASSERT_NE(pics, nullptr);
    total += pics->pictures();
  }
  const auto all = share(pictures, 0, 1);
  EXPECT_EQ(total, dynamic_cast<const dsk::TrainingData*>(all.get())->pictures()) << "the shares cover every picture once";
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 12; ++i) ++counts[dsk::share_of("p" + std::to_string(i), 3)];
  EXPECT_GT(std::min({counts[0], counts[1], counts[2]}), 0);

  const auto config = write_config(dir, 3, 60, {}, {{"data_sharding", "files"}});
  const std::string cmd = std::string(DSK_BIN_DIR) + "/diffsketch train --nproc 2 --device cpu --config " +
                          config.string() + " --data " + (dir / "pack").string() + " --out " + (dir / "out").string() +
                          " > " + (dir / "two.log").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::stringstream two;
  two << std::ifstream(dir / "two.log").rdbuf();
  ASSERT_EQ(rc, 0) << two.str();
  EXPECT_NE(two.str().find("each rank loads its share of the files"), std::string::npos) << two.str();
  EXPECT_NE(two.str().find("6 packed samples of 32 px (rank 0 of 2's share of the shards)"), std::string::npos) << two.str();
  EXPECT_TRUE(fs::exists(dir / "out" / "model" / "weights.safetensors"));
  fs::create_directories(dir / "bad");
  const auto bad = write_config(dir / "bad", 3, 60, {}, {{"data_sharding", "rows"}});
  dsk::TrainOptions o = cpu_run(bad, dir / "pack", dir / "bad" / "out");
  try {
    dsk::train(o, log);
    ADD_FAILURE() << "data_sharding \"rows\" was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("data_sharding must be \"samples\""), std::string::npos) << e.what();
  }
}

}  // namespace

// Data-parallel (issue 21): two ranks of batch 4 (`train --nproc 2`: Gloo over loopback) take the
// steps one process of batch 8 takes on the same samples; the hole loss's weights are normalised
// over the global batch too. Float sums run in another order (each rank's half, then the
// all-reduce), so the weights agree to within 0.1 % of what other samples change, not bit for bit.
TEST(Train, TwoRanksOfFourEqualOneProcessOfEight) {
  const auto pictures = make_pictures(6);
  const auto dir = temp_dir("ddp");
  const nlohmann::json train = {{"hole_loss", true}, {"edge_loss_weight", 2.0}};
  auto weights = [](const fs::path& out) {
    return dsk::read_tensors(dsk::st::File::open((out / "model" / "weights.safetensors").string()));
  };
  auto one_process = [&](const std::string& name, int batch) {
    fs::create_directories(dir / name);
    auto t = train;
    t["batch"] = batch;
    dsk::TrainOptions o = cpu_run(write_config(dir / name, 3, 60, {}, t), pictures, dir / name / "out");
    std::ostringstream log;
    dsk::train(o, log);
    return weights(dir / name / "out");
  };
  const auto eight = one_process("one", 8);
  fs::create_directories(dir / "two");
  const std::string cmd = std::string(DSK_BIN_DIR) + "/diffsketch train --nproc 2 --device cpu --config " +
                          write_config(dir / "two", 3, 60, {}, train).string() + " --data " + pictures.string() +
                          " --out " + (dir / "two" / "out").string() + " > " + (dir / "two.log").string() + " 2>&1";
  std::stringstream two_log;
  const int status = std::system(cmd.c_str());
  two_log << std::ifstream(dir / "two.log").rdbuf();
  ASSERT_EQ(status, 0) << two_log.str();
  EXPECT_NE(two_log.str().find("data-parallel: 2 ranks (Gloo), batch 4 each, 8 in all; every rank loads all the data; "
                               "gradients all-reduced during backward"),
            std::string::npos)
      << two_log.str();
  // Adam divides each update by the root of its squared gradients, so where a gradient is near
  // zero the order of the sums can move a weight by up to lr: the measure is the whole difference's
  // norm, against the difference other samples make (one process of batch 4: half of them).
  auto distance = [](const std::map<std::string, torch::Tensor>& x, const std::map<std::string, torch::Tensor>& y) {
    double d = 0;
    for (const auto& [name, t] : x) d += (t - y.at(name)).pow(2).sum().item<double>();
    return std::sqrt(d);
  };
  const double apart = distance(eight, weights(dir / "two" / "out"));
  const double other = distance(eight, one_process("half", 4));
  std::cout << "[ distance ] 2 x 4 against 1 x 8: " << apart << "; 1 x 8 against 1 x 4: " << other << std::endl;
  EXPECT_LT(apart, 0.001 * other);
}

// A rank killed mid-run (`train --nproc 2`): the launcher stops the other, says which rank died
// and how, and rank 0's last checkpoint resumes on two ranks to the end.
TEST(Train, ARankKilledEndsTheRunAndTheRunResumes) {
  const auto pictures = make_pictures(6);
  const auto dir = temp_dir("ddpkill");
  const auto config = write_config(dir, 25, 0.0);  // a checkpoint after every step
  const auto out = dir / "out";
  const std::string cmd = std::string(DSK_BIN_DIR) + "/diffsketch train --nproc 2 --device cpu --config " +
                          config.string() + " --data " + pictures.string() + " --out " + out.string();
  const auto state = out / "checkpoint" / "state.json";
  const auto script = dir / "kill.sh";
  std::ofstream(script) << "(" << cmd << " >" << (dir / "first.log").string() << " 2>&1 & pid=$!\n"
                        << "for i in $(seq 1200); do sleep 0.05; s=$(grep -o '\"step\": [0-9]*' " << state.string()
                        << " 2>/dev/null | grep -o '[0-9]*$'); [ \"${s:-0}\" -ge 3 ] && break; done\n"
                        << "for p in $(pgrep -P $pid); do tr '\\0' '\\n' </proc/$p/environ | grep -qx RANK=1 && kill -9 $p; done\n"
                        << "wait $pid; echo $? >" << (dir / "status").string() << ")\n";
  std::system(("bash " + script.string()).c_str());
  std::stringstream first, status;
  first << std::ifstream(dir / "first.log").rdbuf();
  status << std::ifstream(dir / "status").rdbuf();
  EXPECT_EQ(status.str(), "1\n") << first.str();
  EXPECT_NE(first.str().find("the other ranks were stopped"), std::string::npos) << first.str();
  EXPECT_NE(first.str().find("continue with --resume"), std::string::npos) << first.str();
  std::ifstream in(state);
  ASSERT_TRUE(in) << "no checkpoint left";
  const long killed_at = nlohmann::json::parse(in)["step"].get<long>();
  ASSERT_GE(killed_at, 3);
  ASSERT_LT(killed_at, 25);
  const std::string resume = cmd + " --resume > " + (dir / "second.log").string() + " 2>&1";
  const int rc = std::system(resume.c_str());
  std::stringstream second;
  second << std::ifstream(dir / "second.log").rdbuf();
  ASSERT_EQ(rc, 0) << second.str();
  EXPECT_NE(second.str().find("resumed from step " + std::to_string(killed_at)), std::string::npos) << second.str();
  EXPECT_NE(second.str().find("at step 25"), std::string::npos) << second.str();
}

// A resumed data-parallel run takes its whole state from rank 0 (weights, EMA, Adam, generators):
// rank 1, started by hand as torchrun would start it, is given an OUT that does not exist (as on a
// machine without the shared disk) and never reads it; the run then equals one never interrupted.
TEST(Train, ResumedRanksTakeTheirStateFromRankZero) {
  const auto pictures = make_pictures(6);
  const auto dir = temp_dir("ddpresume");
  const auto config = write_config(dir, 6, 60, {}, {{"hole_loss", true}});
  const std::string train = std::string(DSK_BIN_DIR) + "/diffsketch train --device cpu --config " + config.string() +
                            " --data " + pictures.string();
  auto run = [&](const std::string& cmd, const std::string& log_name) {
    const int rc = std::system((cmd + " > " + (dir / log_name).string() + " 2>&1").c_str());
    std::stringstream log;
    log << std::ifstream(dir / log_name).rdbuf();
    EXPECT_EQ(rc, 0) << log.str();
    return log.str();
  };
  auto weights = [](const fs::path& out) {
    return dsk::read_tensors(dsk::st::File::open((out / "model" / "weights.safetensors").string()));
  };
  auto distance = [](const std::map<std::string, torch::Tensor>& x, const std::map<std::string, torch::Tensor>& y) {
    double d = 0;
    for (const auto& [name, t] : x) d += (t - y.at(name)).pow(2).sum().item<double>();
    return std::sqrt(d);
  };
  run(train + " --nproc 2 --out " + (dir / "straight").string(), "straight.log");
  run(train + " --nproc 2 --steps 3 --out " + (dir / "split").string(), "first.log");
  const auto at_three = weights(dir / "split");
  // A free port for the ranks' store: bind to port 0, read it back, release it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(ntohs(a.sin_port)) +
                          " DSK_THREADS=1 ";
  const auto elsewhere = dir / "not-shared";
  const std::string both = "(" + env + "RANK=1 LOCAL_RANK=1 " + train + " --resume --out " + elsewhere.string() + " > " +
                           (dir / "rank1.log").string() + " 2>&1 & " + env + "RANK=0 LOCAL_RANK=0 " + train +
                           " --resume --out " + (dir / "split").string() + "; r=$?; wait $! && exit $r)";
  // Rank 1 started with other settings (--steps 5): both ranks stop with one message, nothing written.
  const std::string mismatched = "(" + env + "RANK=1 LOCAL_RANK=1 " + train + " --steps 5 --out " + (dir / "m").string() +
                                 " > " + (dir / "m1.log").string() + " 2>&1 & " + env + "RANK=0 LOCAL_RANK=0 " + train +
                                 " --out " + (dir / "m").string() + " > " + (dir / "m0.log").string() +
                                 " 2>&1; r=$?; wait $!; exit $r)";
  EXPECT_NE(std::system(mismatched.c_str()), 0);
  std::stringstream m0;
  m0 << std::ifstream(dir / "m0.log").rdbuf();
  EXPECT_NE(m0.str().find("the ranks were started with different training config (--config, --steps, --init-from): 1 of 2"),
            std::string::npos)
      << m0.str();
  EXPECT_FALSE(fs::exists(dir / "m" / "checkpoint"));
  const std::string log = run(both, "second.log");
  EXPECT_NE(log.find("resumed from step 3"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(elsewhere)) << "rank 1 wrote to its OUT";
  const double apart = distance(weights(dir / "straight"), weights(dir / "split"));
  const double moved = distance(weights(dir / "straight"), at_three);
  std::cout << "[ distance ] resumed against straight: " << apart << "; steps 3 to 6 moved the weights " << moved << std::endl;
  EXPECT_LT(apart, 1e-4 * moved);
}
