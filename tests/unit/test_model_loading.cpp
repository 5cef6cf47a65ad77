// Loading model folders (core/formats/model_folder.h, core/formats/tensor_io.h): a good folder loads whole; every
// bad file or config is one std::invalid_argument naming the file, the tensor and what was expected; a
// failed load never changes the module it was loading into.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_registry.h"
#include "core/formats/model_info.h"
#include "core/formats/safetensors.h"
#include "core/formats/tensor_io.h"
#include "models/unet.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// adm-small's U-Net (the conformance fixture) with its diffusion flags, as in model.json.
json unet_flags() {
  return {{"image_size", 32},        {"num_channels", 32},          {"num_res_blocks", 2},
          {"channel_mult", "1,2,2"}, {"attention_resolutions", "16,8"}, {"num_heads", 4},
          {"num_head_channels", 16}, {"use_scale_shift_norm", true}, {"resblock_updown", true},
          {"use_new_attention_order", false}, {"learn_sigma", true}, {"class_cond", true},
          {"num_classes", 10},       {"diffusion_steps", 1000},     {"noise_schedule", "linear"}};
}

json classifier_flags() {
  return {{"image_size", 32},
          {"classifier_width", 32},
          {"classifier_depth", 1},
          {"classifier_channel_mult", "1,2,2"},
          {"classifier_attention_resolutions", "8"},
          {"classifier_num_head_channels", 16},
          {"classifier_use_scale_shift_norm", true},
          {"classifier_resblock_updown", true},
          {"classifier_pool", "attention"},
          {"num_classes", 10}};
}

std::map<std::string, torch::Tensor> fresh_unet_weights(uint64_t seed = 0) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  dsk::UNetModel net(dsk::unet_config_from_flags(unet_flags(), "test"));
  // The reference zero-initialises some output layers; give every tensor distinct values.
  for (auto& p : net->parameters()) p.normal_(0.0, 0.02);
  auto sd = dsk::state_dict(*net);
  for (auto& [name, t] : sd) t = t.clone();
  return sd;
}

std::map<std::string, torch::Tensor> fresh_classifier_weights() {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  dsk::EncoderUNetModel net(dsk::classifier_config_from_flags(classifier_flags(), "test"));
  auto sd = dsk::state_dict(*net);
  for (auto& [name, t] : sd) t = t.clone();
  return sd;
}

// Runs fn, expects std::invalid_argument whose message contains every word of `words`.
template <class Fn>
std::string expect_input_error(Fn fn, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no std::invalid_argument thrown";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    return msg;
  }
  return {};
}

class ModelLoading : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "dsk-test-model-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // A model folder NAME with model.json `j` and the given weights (none: no weights file).
  std::string make_folder(const std::string& name, const json& j,
                          const std::map<std::string, torch::Tensor>* weights) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "model.json") << j.dump(2);
    if (weights) dsk::write_tensors((dir / "weights.safetensors").string(), *weights);
    return dir.string();
  }
  std::string make_unet(const std::string& name, const std::map<std::string, torch::Tensor>& weights,
                        const json& flags = unet_flags()) {
    return make_folder(name, model_json("adm-unet", flags), &weights);
  }
  static json model_json(const std::string& kind, const json& flags) {
    return {{"format_version", 1}, {"kind", kind}, {"name", "test " + kind}, {"flags", flags}};
  }
  static std::string weights(const std::string& dir) { return dir + "/weights.safetensors"; }

  dsk::LoadedUNet load(const std::string& dir) { return dsk::load_unet(dir, torch::kCPU, "test"); }

  fs::path root_;
};

TEST_F(ModelLoading, LoadsAWholeUNetFolder) {
  const auto w = fresh_unet_weights();
  const auto dir = make_unet("good", w);
  auto m = load(dir);
  EXPECT_EQ(m.info.kind, dsk::ModelKind::AdmUnet);
  EXPECT_EQ(m.info.name, "test adm-unet");
  EXPECT_EQ(m.info.resolution, 32);
  EXPECT_EQ(m.net.num_channels, 32);
  EXPECT_TRUE(m.net.class_cond);
  EXPECT_TRUE(m.diffusion.learn_sigma);
  EXPECT_EQ(m.diffusion.diffusion_steps, 1000);
  EXPECT_FALSE(m.model->is_training());
  const auto loaded = dsk::state_dict(*m.model);
  ASSERT_EQ(loaded.size(), w.size());
  for (const auto& [name, t] : w) {
    ASSERT_TRUE(loaded.count(name)) << name;
    EXPECT_TRUE(torch::equal(loaded.at(name), t)) << name;
  }
  // It runs.
  torch::NoGradGuard no_grad;
  auto out = m.model->forward(torch::randn({1, 3, 32, 32}), torch::full({1}, 10, torch::kLong), torch::full({1}, 3, torch::kLong));
  EXPECT_EQ(out.sizes().vec(), (std::vector<int64_t>{1, 6, 32, 32}));
}

TEST_F(ModelLoading, LoadsTheFixtureFolders) {
  const std::string models = std::string(DSK_TEST_DATA) + "/models";
  const auto unet = dsk::load_unet(models + "/adm-small", torch::kCPU, "test");
  EXPECT_EQ(dsk::parameter_count(*unet.model), 2008742);
  const auto cls = dsk::load_classifier(models + "/adm-small-classifier", torch::kCPU, "test");
  EXPECT_EQ(cls.net.num_classes, 10);
}

TEST_F(ModelLoading, LoadsAClassifierFolder) {
  const auto w = fresh_classifier_weights();
  const auto dir = make_folder("cls", model_json("adm-classifier", classifier_flags()), &w);
  const auto c = dsk::load_classifier(dir, torch::kCPU, "test");
  EXPECT_EQ(c.info.kind, dsk::ModelKind::AdmClassifier);
  EXPECT_EQ(c.net.classifier_width, 32);
  EXPECT_EQ(dsk::state_dict(*c.model).size(), w.size());
}

// ---- bad weights ----

TEST_F(ModelLoading, MissingTensor) {
  auto w = fresh_unet_weights();
  w.erase("out.2.bias");
  const auto dir = make_unet("missing", w);
  expect_input_error([&] { load(dir); }, {weights(dir), "missing 1 tensor", "out.2.bias", "[6]"});
}

TEST_F(ModelLoading, ExtraTensor) {
  auto w = fresh_unet_weights();
  w["decoder.extra.weight"] = torch::zeros({4, 4});
  const auto dir = make_unet("extra", w);
  expect_input_error([&] { load(dir); }, {weights(dir), "decoder.extra.weight", "does not have"});
}

TEST_F(ModelLoading, WrongShape) {
  auto w = fresh_unet_weights();
  w["input_blocks.0.0.weight"] = torch::zeros({32, 3, 1, 1});
  const auto dir = make_unet("shape", w);
  expect_input_error([&] { load(dir); },
                     {weights(dir), "input_blocks.0.0.weight", "[32,3,1,1]", "expects [32,3,3,3]"});
}

TEST_F(ModelLoading, NaNWeight) {
  auto w = fresh_unet_weights();
  w["middle_block.1.qkv.weight"].view(-1)[5] = std::numeric_limits<float>::quiet_NaN();
  const auto dir = make_unet("nan", w);
  expect_input_error([&] { load(dir); }, {weights(dir), "middle_block.1.qkv.weight", "NaN or Inf", "element 5"});
}

TEST_F(ModelLoading, InfWeight) {
  auto w = fresh_unet_weights();
  w["time_embed.0.bias"].view(-1)[0] = -std::numeric_limits<float>::infinity();
  const auto dir = make_unet("inf", w);
  expect_input_error([&] { load(dir); }, {weights(dir), "time_embed.0.bias", "NaN or Inf", "element 0"});
}

TEST_F(ModelLoading, PickleWhereSafetensorsIsExpected) {
  const auto dir = make_folder("pickle", model_json("adm-unet", unet_flags()), nullptr);
  fs::copy_file(std::string(DSK_TEST_DATA) + "/conformance/adm-small/classifier.pt", weights(dir));
  expect_input_error([&] { load(dir); }, {weights(dir), "pickle", "not safetensors", "diffsketch convert"});
}

TEST_F(ModelLoading, EmptyWeightsFile) {
  const auto dir = make_folder("empty", model_json("adm-unet", unet_flags()), nullptr);
  std::ofstream(weights(dir)).close();
  expect_input_error([&] { load(dir); }, {weights(dir), "empty"});
}

TEST_F(ModelLoading, TruncatedWeightsFile) {
  const auto dir = make_unet("truncated", fresh_unet_weights());
  const auto size = fs::file_size(weights(dir));
  fs::resize_file(weights(dir), size / 2);
  expect_input_error([&] { load(dir); }, {weights(dir), "truncated"});
  // Cut inside the header too.
  fs::resize_file(weights(dir), 100);
  expect_input_error([&] { load(dir); }, {weights(dir), "runs past the end"});
}

TEST_F(ModelLoading, NoWeightsFile) {
  const auto dir = make_folder("noweights", model_json("adm-unet", unet_flags()), nullptr);
  expect_input_error([&] { load(dir); }, {weights(dir), "missing", "no weights"});
}

TEST_F(ModelLoading, NotAFolder) {
  expect_input_error([&] { load((root_ / "nowhere").string()); }, {"nowhere", "not a model folder"});
}

// ---- bad model.json ----

TEST_F(ModelLoading, InvalidJson) {
  const auto dir = make_unet("json", fresh_unet_weights());
  std::ofstream(dir + "/model.json") << "{\"format_version\": 1, \"kind\": \"adm-unet\",";
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "invalid JSON"});
}

TEST_F(ModelLoading, MissingKind) {
  auto j = model_json("adm-unet", unet_flags());
  j.erase("kind");
  const auto w = fresh_unet_weights();
  const auto dir = make_folder("nokind", j, &w);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "kind ''", "adm-unet, adm-classifier"});
}

TEST_F(ModelLoading, UnknownKind) {
  const auto w = fresh_unet_weights();
  const auto dir = make_folder("vae", model_json("adm-vae", unet_flags()), &w);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "kind 'adm-vae'", "adm-unet"});
}

TEST_F(ModelLoading, UnknownFlag) {
  auto flags = unet_flags();
  flags["num_chanels"] = 64;
  const auto dir = make_unet("typo", fresh_unet_weights(), flags);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "unknown flag 'num_chanels'", "num_channels"});
}

TEST_F(ModelLoading, FormatVersionTooNew) {
  auto j = model_json("adm-unet", unet_flags());
  j["format_version"] = dsk::kModelFormatVersion + 1;
  const auto w = fresh_unet_weights();
  const auto dir = make_folder("future", j, &w);
  expect_input_error([&] { load(dir); },
                     {dir + "/model.json", "format_version " + std::to_string(dsk::kModelFormatVersion + 1), "newer"});
  j.erase("format_version");
  std::ofstream(dir + "/model.json") << j.dump();
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "format_version"});
}

// model.json read strictly: each of these is one input error naming the file, never a crash, a
// hang or a wrong model (issue 19's probes).
TEST_F(ModelLoading, HostileModelJsonIsAnInputError) {
  const auto w = fresh_unet_weights();
  auto j = model_json("adm-unet", unet_flags());
  for (const int64_t v : {int64_t{-1}, int64_t{0}, (int64_t{1} << 32) + 1}) {
    j["format_version"] = v;
    const auto dir = make_folder("version" + std::to_string(v), j, &w);
    expect_input_error([&] { load(dir); }, {dir + "/model.json", "format_version " + std::to_string(v)});
  }
  j = model_json("adm-unet", unet_flags());
  j["kind"] = 5;
  auto dir = make_folder("kind5", j, &w);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "'kind' must be a string"});
  j = model_json("adm-unet", unet_flags());
  j["flags"]["image_size"] = "large";
  dir = make_folder("size-string", j, &w);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "image_size", "integer"});
  // Flags that divided by zero or built a network of any size.
  const std::vector<std::pair<json, std::string>> flags = {
      {{{"num_head_channels", 0}}, "num_head_channels must be positive"},
      {{{"num_head_channels", -2}}, "num_head_channels must be positive"},
      {{{"num_heads_upsample", 0}}, "num_heads_upsample must be positive"},
      {{{"num_res_blocks", 1000000}}, "num_res_blocks must be in 1..16"},
      {{{"num_channels", 4096}, {"channel_mult", "1,2,4,8"}}, "M parameters; the limit is 4000 M"},
      {{{"channel_mult", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"}},
       "more than 12 levels"},
  };
  for (size_t i = 0; i < flags.size(); ++i) {
    const auto& [bad, words] = flags[i];
    auto f = unet_flags();
    f.update(bad);
    dir = make_folder("flags" + std::to_string(i), model_json("adm-unet", f), &w);
    expect_input_error([&] { load(dir); }, {dir + "/model.json", words});
  }
  // Nested deep enough to overflow the stack of anything recursive: refused before parsing.
  dir = (root_ / "deep").string();
  fs::create_directories(dir);
  std::ofstream(dir + "/model.json") << R"({"format_version": 1, "kind": "adm-unet", "flags": {"x": )"
                                     << std::string(200000, '[') << std::string(200000, ']') << "}}";
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "nested deeper than 16 levels"});
  // A FIFO named model.json would block a reader forever.
  dir = (root_ / "fifo").string();
  fs::create_directories(dir);
  ASSERT_EQ(::mkfifo((dir + "/model.json").c_str(), 0600), 0);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "not a regular file"});
}

// One broken folder on the search path hides nothing else, and is reported.
TEST_F(ModelLoading, ListingSkipsABrokenFolderAndSaysWhy) {
  const auto w = fresh_unet_weights();
  make_unet("good", w);
  auto j = model_json("adm-unet", unet_flags());
  j["kind"] = 5;
  make_folder("broken", j, &w);
  fs::create_directory_symlink(root_ / "loop", root_ / "loop");  // a symlink loop, too
  ::setenv("DSK_MODEL_PATH", root_.c_str(), 1);
  std::vector<std::string> skipped;
  const auto models = dsk::list_models(&skipped);
  ::unsetenv("DSK_MODEL_PATH");
  ASSERT_FALSE(models.empty());
  EXPECT_EQ(models.front().id, "good");
  EXPECT_TRUE(std::any_of(skipped.begin(), skipped.end(),
                          [](const std::string& why) { return why.find("broken/model.json") != std::string::npos; }));
}

TEST_F(ModelLoading, ChannelsNotDivisibleBy32Groups) {
  auto flags = unet_flags();
  flags["num_channels"] = 48;
  const auto dir = make_unet("groups", fresh_unet_weights(), flags);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "48 channels", "GroupNorm32", "multiple of 32"});
}

TEST_F(ModelLoading, AttentionResolutionNotReached) {
  // 32 px, channel_mult 1,2,2: levels at 32, 16 and 8 px; 4 px is never reached.
  auto flags = unet_flags();
  flags["attention_resolutions"] = "16,4";
  const auto dir = make_unet("attn", fresh_unet_weights(), flags);
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "resolution 4", "never reaches", "32 down to 8"});
  // 3 does not even divide the image size.
  flags["attention_resolutions"] = "3";
  std::ofstream(dir + "/model.json") << model_json("adm-unet", flags).dump();
  expect_input_error([&] { load(dir); }, {dir + "/model.json", "attention_resolutions", "3", "image_size 32"});
}

TEST_F(ModelLoading, FlagsOfAnotherNetworkGiveAShapeError) {
  auto flags = unet_flags();
  flags["num_channels"] = 64;
  const auto dir = make_unet("other", fresh_unet_weights(), flags);
  expect_input_error([&] { load(dir); }, {weights(dir), "has shape", "the config expects", "model.json"});
}

// ---- wrong kind ----

TEST_F(ModelLoading, ClassifierFolderGivenToLoadUnet) {
  const auto w = fresh_classifier_weights();
  const auto dir = make_folder("cls", model_json("adm-classifier", classifier_flags()), &w);
  expect_input_error([&] { dsk::load_unet(dir, torch::kCPU, "sample"); },
                     {dir, "kind adm-classifier", "'sample' needs adm-unet", "--classifier"});
}

TEST_F(ModelLoading, UnetFolderGivenToLoadClassifier) {
  const auto dir = make_unet("unet", fresh_unet_weights());
  expect_input_error([&] { dsk::load_classifier(dir, torch::kCPU, "sample"); },
                     {dir, "kind adm-unet", "'sample --classifier' needs adm-classifier"});
}

// ---- never a partial load ----

class PartialLoad : public ModelLoading {
 protected:
  // Loads `w` into a fresh network and checks that the failure left every tensor as it was.
  void expect_unchanged_after_failure(const std::map<std::string, torch::Tensor>& w, const std::string& word) {
    const auto dir = make_unet("partial", w);
    auto file = dsk::st::File::open(weights(dir));
    torch::manual_seed(7);
    torch::NoGradGuard no_grad;
    dsk::UNetModel net(dsk::unet_config_from_flags(unet_flags(), "test"));
    std::map<std::string, torch::Tensor> before;
    for (const auto& [name, t] : dsk::state_dict(*net)) before[name] = t.clone();
    expect_input_error([&] { dsk::load_weights(*net, file); }, {word});
    const auto after = dsk::state_dict(*net);
    ASSERT_EQ(after.size(), before.size());
    for (const auto& [name, t] : before) EXPECT_TRUE(torch::equal(after.at(name), t)) << name;
  }
};

// Every other tensor is valid and different from the network's own values; the bad one sorts last.
TEST_F(PartialLoad, WrongShapeInTheLastTensor) {
  auto w = fresh_unet_weights(3);
  ASSERT_EQ(w.rbegin()->first, "time_embed.2.weight");
  w["time_embed.2.weight"] = torch::zeros({128, 127});
  expect_unchanged_after_failure(w, "time_embed.2.weight");
}

TEST_F(PartialLoad, NaNInTheLastTensor) {
  auto w = fresh_unet_weights(3);
  w["time_embed.2.weight"].view(-1)[100] = std::numeric_limits<float>::quiet_NaN();
  expect_unchanged_after_failure(w, "NaN");
}

TEST_F(PartialLoad, MissingTensor) {
  auto w = fresh_unet_weights(3);
  w.erase("time_embed.2.weight");
  expect_unchanged_after_failure(w, "missing");
}

TEST_F(PartialLoad, ExtraTensor) {
  auto w = fresh_unet_weights(3);
  w["zzz.extra"] = torch::ones({2});
  expect_unchanged_after_failure(w, "zzz.extra");
}

}  // namespace
