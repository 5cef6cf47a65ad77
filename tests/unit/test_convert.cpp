// `diffsketch convert` (core/tools/convert.h): the reference's torch.save checkpoint of the fixture
// classifier converts to tensors bit-identical to the reference's own safetensors export; bad
// configs and occupied targets are refused without leaving anything behind. Also `info`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "core/base/error.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_info.h"
#include "core/formats/safetensors.h"
#include "core/tools/convert.h"
#include "expect_error.h"

using dsk::test::expect_input_error;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kCase = std::string(DSK_TEST_DATA) + "/conformance/adm-small";

// The classifier flags of adm-small's config.json.
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

class Convert : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "dsk-test-convert-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string write_config(const std::string& name, const json& j) {
    const auto path = (root_ / name).string();
    std::ofstream(path) << j.dump(2);
    return path;
  }
  dsk::ConvertOptions options(const json& flags, const std::string& out = "out") {
    dsk::ConvertOptions o;
    o.input = kCase + "/classifier.pt";
    o.out_dir = (root_ / out).string();
    o.config = write_config("config.json", {{"kind", "adm-classifier"}, {"flags", flags}});
    return o;
  }
  // Nothing in root_ but the config file(s) and what `keep` names.
  void expect_only(const std::set<std::string>& keep) {
    for (const auto& e : fs::directory_iterator(root_)) {
      const auto name = e.path().filename().string();
      if (name.size() > 5 && name.substr(name.size() - 5) == ".json") continue;
      EXPECT_TRUE(keep.count(name)) << "left behind: " << name;
    }
  }
  fs::path root_;
};

TEST_F(Convert, ClassifierCheckpointIsBitIdenticalToTheReferenceExport) {
  std::ostringstream log;
  const auto o = options(classifier_flags());
  const auto info = dsk::convert_checkpoint(o, log);
  EXPECT_NE(log.str().find("trust"), std::string::npos) << log.str();
  EXPECT_EQ(info.dir, o.out_dir);
  EXPECT_EQ(info.kind, dsk::ModelKind::AdmClassifier);

  auto got = dsk::st::File::open(o.out_dir + "/weights.safetensors");
  auto want = dsk::st::File::open(kCase + "/classifier.safetensors");
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  ASSERT_EQ(want.tensors().size(), 97u);
  for (const auto& w : want.tensors()) {
    SCOPED_TRACE(w.name);
    const auto* g = got.find(w.name);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->dtype, w.dtype);
    EXPECT_EQ(g->shape, w.shape);
    const auto gb = got.bytes(*g), wb = want.bytes(w);
    ASSERT_EQ(gb.size(), wb.size());
    EXPECT_EQ(std::memcmp(gb.data(), wb.data(), wb.size()), 0);
  }

  // The result is a model folder like any other.
  const auto mi = dsk::read_model_info(o.out_dir);
  EXPECT_EQ(mi.kind, dsk::ModelKind::AdmClassifier);
  EXPECT_EQ(mi.flags, classifier_flags());
  EXPECT_EQ(mi.resolution, 32);
  const auto loaded = dsk::load_classifier(o.out_dir, torch::kCPU, "test");
  EXPECT_EQ(loaded.net.classifier_depth, 1);
  expect_only({"out"});
}

TEST_F(Convert, IntoAnEmptyExistingFolder) {
  const auto o = options(classifier_flags());
  fs::create_directories(o.out_dir);
  std::ostringstream log;
  dsk::convert_checkpoint(o, log);
  EXPECT_TRUE(fs::exists(o.out_dir + "/weights.safetensors"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/model.json"));
}

TEST_F(Convert, WrongConfigFailsAndLeavesNoFolder) {
  auto flags = classifier_flags();
  flags["classifier_depth"] = 2;
  const auto o = options(flags);
  std::ostringstream log;
  // Depth 2 has other shapes (and more tensors) than the depth-1 checkpoint.
  expect_input_error([&] { dsk::convert_checkpoint(o, log); },
                     {"weights.safetensors", "input_blocks.3.0.emb_layers.1.bias", "has shape [128]", "expects [64]"});
  EXPECT_FALSE(fs::exists(o.out_dir));
  expect_only({});
}

TEST_F(Convert, ImpossibleConfigFailsAndLeavesNoFolder) {
  auto flags = classifier_flags();
  flags["classifier_width"] = 48;
  const auto o = options(flags);
  std::ostringstream log;
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {o.config, "48 channels"});
  EXPECT_FALSE(fs::exists(o.out_dir));
  expect_only({});
}

TEST_F(Convert, WrongPresetIsRefused) {
  // The published 256 px classifier has other shapes than the fixture's.
  dsk::ConvertOptions o;
  o.input = kCase + "/classifier.pt";
  o.out_dir = (root_ / "out").string();
  o.preset = "adm-256-classifier";
  std::ostringstream log;
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"has shape", "the config expects"});
  EXPECT_FALSE(fs::exists(o.out_dir));
  expect_only({});
}

TEST_F(Convert, RefusesANonEmptyFolder) {
  const auto o = options(classifier_flags());
  fs::create_directories(o.out_dir);
  std::ofstream(o.out_dir + "/keep.txt") << "mine";
  std::ostringstream log;
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {o.out_dir, "not empty"});
  // The folder is untouched, and no staging folder is left.
  std::ifstream in(o.out_dir + "/keep.txt");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "mine");
  EXPECT_FALSE(fs::exists(o.out_dir + "/weights.safetensors"));
  expect_only({"out"});
}

TEST_F(Convert, BadOptions) {
  std::ostringstream log;
  auto o = options(classifier_flags());
  o.preset = "adm-256-classifier";
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"exactly one", "--preset", "--config"});
  o = options(classifier_flags());
  o.config.clear();
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"exactly one"});
  o = options(classifier_flags());
  o.preset = "adm-1024-cond";
  o.config.clear();
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"adm-1024-cond", "adm-256-cond"});
  o = options(classifier_flags());
  o.config = write_config("bad-kind.json", {{"kind", "adm-vae"}, {"flags", classifier_flags()}});
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"adm-vae"});
  o = options(classifier_flags());
  o.input = kCase + "/classifier.safetensors";  // not a torch.save zip
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"classifier.safetensors", "not a torch.save"});
  o = options(classifier_flags());
  o.input = (root_ / "missing.pt").string();
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"missing.pt"});
  expect_only({});
}

TEST(Info, DescribesTheFixtureWeights) {
  std::ostringstream out;
  dsk::print_safetensors_info(kCase + "/classifier.safetensors", false, out);
  const auto s = out.str();
  EXPECT_NE(s.find("97 tensors, 563082 parameters (F32 563082)"), std::string::npos) << s;
  EXPECT_NE(s.find("... (77 more; --all lists them)"), std::string::npos) << s;
  EXPECT_NE(s.find("matches preset: none"), std::string::npos) << s;

  std::ostringstream unet;
  dsk::print_safetensors_info(kCase + "/unet.safetensors", true, unet);
  EXPECT_NE(unet.str().find("307 tensors, 2008742 parameters"), std::string::npos) << unet.str();
  EXPECT_NE(unet.str().find("out.2.weight"), std::string::npos);  // --all lists every tensor
  EXPECT_NE(unet.str().find("matches preset: none"), std::string::npos);
}

TEST(Info, BadFileIsAnInputError) {
  std::ostringstream out;
  expect_input_error([&] { dsk::print_safetensors_info(kCase + "/classifier.pt", false, out); },
                     {"classifier.pt", "pickle"});
}

}  // namespace
