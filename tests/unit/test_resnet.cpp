// The sketch feature network: ResNet-50 with torchvision's state_dict names and shapes, its
// features (shapes, frozen, differentiable in the strokes), sketch-features model folders, and a
// torchvision state_dict saved as torch.save does converting to such a folder tensor for tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

#include "core/base/error.h"
#include "core/formats/sketch_features_model.h"
#include "core/formats/tensor_io.h"
#include "core/tools/convert.h"
#include "models/resnet.h"
#include "models/unet.h"  // parameter_count
#include "expect_error.h"

using dsk::test::expect_input_error;
#include "numerics.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Shapes = std::map<std::string, std::vector<int64_t>>;

// "name\t(1024, 256)" per line (tests/tools/resnet50_keys.py).
Shapes read_keys(const std::string& path, size_t* lines = nullptr) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  Shapes keys;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    ++n;
    std::string dims = line.substr(tab + 1);
    for (char& c : dims)
      if (c == '(' || c == ')' || c == ',') c = ' ';
    std::istringstream ss(dims);
    std::vector<int64_t> shape;
    for (int64_t d; ss >> d;) shape.push_back(d);
    keys[line.substr(0, tab)] = shape;
  }
  if (lines) *lines = n;
  return keys;
}

Shapes shapes_of(const torch::nn::Module& m) {
  Shapes out;
  for (const auto& [name, t] : dsk::state_dict(m)) out[name] = t.sizes().vec();
  return out;
}

TEST(ResNet, StateDictEqualsTorchvisionResnet50) {
  size_t lines = 0;
  const auto expected = read_keys(DSK_TEST_DATA "/reference/resnet50_keys.txt", &lines);
  ASSERT_EQ(lines, 320u);
  ASSERT_EQ(expected.size(), 320u);
  auto net = dsk::resnet50();
  EXPECT_EQ(shapes_of(*net), expected);
  EXPECT_EQ(net->named_parameters().size(), 161u);
  EXPECT_EQ(net->named_buffers().size(), 159u);
  EXPECT_EQ(dsk::parameter_count(*net), 25557032);  // torchvision's resnet50
  EXPECT_EQ(net->named_buffers()["layer2.0.downsample.1.num_batches_tracked"].scalar_type(), torch::kInt64);
}

TEST(ResNet, NumClassesChangesOnlyFc) {
  auto expected = read_keys(DSK_TEST_DATA "/reference/resnet50_keys.txt");
  expected["fc.weight"] = {125, 2048};
  expected["fc.bias"] = {125};
  EXPECT_EQ(shapes_of(*dsk::resnet50(125)), expected);
}

TEST(ResNet, StagesHaveTorchvisionStridesAndLogitsTheirClasses) {
  torch::NoGradGuard no_grad;
  auto net = dsk::resnet50(7);
  net->eval();
  auto x = torch::randn({2, 3, 64, 96});
  const auto s = net->stages(x);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].sizes(), (std::vector<int64_t>{2, 256, 16, 24}));
  EXPECT_EQ(s[1].sizes(), (std::vector<int64_t>{2, 512, 8, 12}));
  EXPECT_EQ(s[2].sizes(), (std::vector<int64_t>{2, 1024, 4, 6}));
  EXPECT_EQ(s[3].sizes(), (std::vector<int64_t>{2, 2048, 2, 3}));
  EXPECT_EQ(net->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
}

// torchvision's Bottleneck written out from the weights: the stride on conv2 (v1.5) and on the
// strided 1x1 convolution of downsample.0 (which the module computes as subsample + 1x1).
TEST(ResNet, FirstBlockOfAStageComputesTorchvisionsBottleneck) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  auto net = dsk::resnet50(10);
  for (auto& b : net->named_buffers())
    if (b.value().is_floating_point()) b.value().uniform_(0.5, 1.5);  // running statistics != 0 / 1
  net->eval();
  auto p = net->named_parameters();
  auto b = net->named_buffers();
  namespace F = torch::nn::functional;
  auto bn = [&](const torch::Tensor& x, const std::string& n) {
    return F::batch_norm(x, b[n + ".running_mean"], b[n + ".running_var"],
                         F::BatchNormFuncOptions().weight(p[n + ".weight"]).bias(p[n + ".bias"]).training(false));
  };
  auto conv = [&](const torch::Tensor& x, const std::string& n, int stride, int pad) {
    return F::conv2d(x, p[n + ".weight"], F::Conv2dFuncOptions().stride(stride).padding(pad));
  };
  const auto x = torch::randn({2, 512, 9, 9});
  auto h = torch::relu(bn(conv(x, "layer3.0.conv1", 1, 0), "layer3.0.bn1"));
  h = torch::relu(bn(conv(h, "layer3.0.conv2", 2, 1), "layer3.0.bn2"));
  h = bn(conv(h, "layer3.0.conv3", 1, 0), "layer3.0.bn3");
  const auto want = torch::relu(h + bn(conv(x, "layer3.0.downsample.0", 2, 0), "layer3.0.downsample.1"));
  auto block = net->named_modules()["layer3.0"]->as<dsk::BottleneckImpl>();
  ASSERT_NE(block, nullptr);
  const auto got = block->forward(x);
  EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 1024, 5, 5}));
  // The module runs the strided 1x1 shortcut as subsample + 1x1 and may pick other convolution
  // kernels than F::conv2d does: the same sums in another order, K <= 9 * 256 terms each, four
  // convolutions deep; fp32 rounding gives a relative error of the order of u * sqrt(K) ~ 3e-6.
  // Measured: at most 1.2e-6 over the portability matrix.
  EXPECT_TRUE(dsk::test::within("resnet/bottleneck-equals-torchvision", dsk::test::relative_error(got, want), 1e-4));
}

TEST(ResNetSketchFeatures, InputIsTheImageNetNormalisedPaperPicture) {
  auto strokes = torch::zeros({1, 1, 16, 16});
  strokes.index_put_({0, 0, 3, 4}, 1.0);
  const auto x = dsk::sketch_to_resnet_input(strokes);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
  // White paper -> (1 - mean) / std, a stroke (black) -> -mean / std, per channel.
  EXPECT_NEAR(x[0][0][0][0].item<float>(), (1 - 0.485) / 0.229, 1e-5);
  EXPECT_NEAR(x[0][2][0][0].item<float>(), (1 - 0.406) / 0.225, 1e-5);
  EXPECT_NEAR(x[0][1][3][4].item<float>(), -0.456 / 0.224, 1e-5);
}

TEST(ResNetSketchFeatures, Layer1To3FrozenAndDifferentiableInTheStrokes) {
  torch::manual_seed(1);
  dsk::ResNetSketchFeatures net(dsk::resnet50(3), "test");
  for (const auto& p : net.network()->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(net.network()->is_training());
  auto strokes = (torch::rand({2, 1, 64, 64}) > 0.9).to(torch::kFloat32).requires_grad_(true);
  const auto feats = net.features(strokes);
  ASSERT_EQ(feats.size(), 3u);
  EXPECT_EQ(feats[0].sizes(), (std::vector<int64_t>{2, 256, 16, 16}));
  EXPECT_EQ(feats[1].sizes(), (std::vector<int64_t>{2, 512, 8, 8}));
  EXPECT_EQ(feats[2].sizes(), (std::vector<int64_t>{2, 1024, 4, 4}));
  torch::Tensor loss = torch::zeros({});
  for (const auto& f : feats) loss = loss + f.pow(2).mean();
  loss.backward();
  const auto g = strokes.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
  EXPECT_GT(g.abs().max().item<float>(), 0.f);
  for (const auto& p : net.network()->parameters()) EXPECT_FALSE(p.grad().defined());
  // Eval mode: one sketch's features do not depend on the rest of the batch.
  torch::NoGradGuard no_grad;
  const auto alone = net.features(strokes.detach().narrow(0, 1, 1));
  // Alone and in a batch of two the sums are the same but the kernels and their blocking differ
  // with the batch size (oneDNN, LibTorch's im2col), so they agree only up to fp32 rounding over
  // ~40 convolutions of K <= 9 * 256 terms; a BatchNorm in training mode would change the features
  // by O(1) (checked below). Element-wise tolerances (allclose) do not fit: features near 0 carry
  // the rounding of their large neighbours. Measured: at most 1.3e-6 over the portability matrix.
  const double batch_error = dsk::test::relative_error(alone[2], feats[2].detach().narrow(0, 1, 1));
  EXPECT_TRUE(dsk::test::within("resnet/features-batch-independent", batch_error, 1e-4));
  net.network()->train();
  const double train_mode_error = dsk::test::relative_error(net.features(strokes.detach().narrow(0, 1, 1))[2],
                                                            net.features(strokes.detach())[2].narrow(0, 1, 1));
  net.network()->eval();
  EXPECT_GT(train_mode_error, 1000 * batch_error) << "the test must tell eval-mode BatchNorm from training mode";
}

class SketchFeaturesModel : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("dsk-test-resnet-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A torchvision-named state_dict with values that differ from any initialisation (buffers too),
  // saved with torch::pickle_save (torch.save's zip format).
  std::map<std::string, torch::Tensor> write_checkpoint(const std::string& file, int64_t classes,
                                                        bool with_counters = true) {
    torch::manual_seed(7);
    std::map<std::string, torch::Tensor> sd;
    c10::Dict<std::string, torch::Tensor> dict;
    for (const auto& [name, t] : dsk::state_dict(*dsk::resnet50(classes))) {
      const bool counter = name.find("num_batches_tracked") != std::string::npos;
      if (counter && !with_counters) continue;
      auto v = counter ? torch::full({}, 1234, torch::kInt64) : torch::rand(t.sizes()) + 0.5;
      sd[name] = v;
      dict.insert(name, v);
    }
    const auto bytes = torch::pickle_save(dict);
    std::ofstream((root_ / file).string(), std::ios::binary).write(bytes.data(), bytes.size());
    return sd;
  }

  fs::path root_;
};

TEST_F(SketchFeaturesModel, TorchvisionCheckpointConvertsAndLoadsTensorForTensor) {
  const auto written = write_checkpoint("resnet50.pth", 1000);
  {
    std::ifstream in(root_ / "resnet50.pth", std::ios::binary);
    char magic[2] = {};
    in.read(magic, 2);
    ASSERT_EQ(std::string(magic, 2), "PK") << "torch::pickle_save did not write torch.save's zip format";
  }
  dsk::ConvertOptions o;
  o.input = (root_ / "resnet50.pth").string();
  o.out_dir = (root_ / "rn50").string();
  o.preset = "resnet50-torchvision";
  std::ostringstream log;
  const auto info = dsk::convert_checkpoint(o, log);
  EXPECT_EQ(info.kind, dsk::ModelKind::SketchFeatures);
  EXPECT_NE(log.str().find("converted 320 tensors (25557032 parameters)"), std::string::npos) << log.str();

  dsk::ModelInfo read;
  dsk::SketchFeaturesConfig config;
  auto net = dsk::load_sketch_resnet(o.out_dir, &read, &config);
  EXPECT_EQ(read.resolution, 224);
  EXPECT_EQ(config.num_classes, 1000);
  const auto loaded = dsk::state_dict(*net);
  ASSERT_EQ(loaded.size(), written.size());
  for (const auto& [name, want] : written) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(loaded.count(name));
    EXPECT_EQ(loaded.at(name).scalar_type(), want.scalar_type());
    EXPECT_TRUE(torch::equal(loaded.at(name), want));
  }

  // As the sketch loss gets it: frozen features on the device.
  auto features = dsk::load_sketch_features(o.out_dir, torch::kCPU);
  EXPECT_NE(features->describe().find("rn50"), std::string::npos) << features->describe();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(features->features(torch::zeros({1, 1, 32, 32})).size(), 3u);

  // `diffsketch info` recognises it.
  std::ostringstream info_out;
  dsk::print_safetensors_info(info.weights_path(), false, info_out);
  EXPECT_NE(info_out.str().find("matches preset: resnet50-torchvision"), std::string::npos) << info_out.str();
}

TEST_F(SketchFeaturesModel, OldCheckpointsWithoutBatchCountersConvert) {
  write_checkpoint("old.pth", 10, /*with_counters=*/false);
  std::ofstream(root_ / "config.json") << json{{"kind", "sketch-features"},
                                               {"flags", {{"arch", "resnet50"}, {"num_classes", 10}, {"image_size", 64}}}}
                                              .dump();
  dsk::ConvertOptions o;
  o.input = (root_ / "old.pth").string();
  o.out_dir = (root_ / "old").string();
  o.config = (root_ / "config.json").string();
  std::ostringstream log;
  dsk::convert_checkpoint(o, log);
  EXPECT_NE(log.str().find("added 53 missing BatchNorm num_batches_tracked"), std::string::npos) << log.str();
  EXPECT_EQ(dsk::load_sketch_resnet(o.out_dir)->named_buffers()["bn1.num_batches_tracked"].item<int64_t>(), 0);
}

TEST_F(SketchFeaturesModel, WrongClassCountIsRefused) {
  write_checkpoint("c10.pth", 10);
  dsk::ConvertOptions o;
  o.input = (root_ / "c10.pth").string();
  o.out_dir = (root_ / "out").string();
  o.preset = "resnet50-torchvision";
  std::ostringstream log;
  expect_input_error([&] { dsk::convert_checkpoint(o, log); }, {"fc.", "has shape [10", "expects [1000"});
  EXPECT_FALSE(fs::exists(o.out_dir));
}

TEST_F(SketchFeaturesModel, EmptyNameIsTheEdgePyramidAndOtherKindsAreRefused) {
  EXPECT_NE(dsk::load_sketch_features("", torch::kCPU)->describe().find("edge pyramid"), std::string::npos);
  expect_input_error([] { dsk::load_sketch_features(DSK_TEST_DATA "/models/adm-small", torch::kCPU); },
                     {"adm-small", "adm-unet", "sketch-features"});
  expect_input_error([&] { dsk::load_sketch_features((root_ / "none").string(), torch::kCPU); }, {"not a model folder"});
}

TEST(SketchFeaturesFlags, AreChecked) {
  const json good = {{"arch", "resnet50"}, {"num_classes", 2}, {"image_size", 64}, {"classes", {"cat", "dog"}}};
  const auto c = dsk::sketch_features_config_from_flags(good, "m.json");
  EXPECT_EQ(c.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(dsk::to_flags(c), good);
  auto bad = [&](json j, std::vector<std::string> words) {
    expect_input_error([&] { dsk::sketch_features_config_from_flags(j, "m.json"); }, words);
  };
  bad({{"arch", "resnet18"}}, {"m.json", "resnet18", "resnet50"});
  bad({{"num_classes", 0}}, {"num_classes"});
  bad({{"num_classes", 3}, {"classes", {"a", "b"}}}, {"2 names", "num_classes is 3"});
  bad({{"depth", 50}}, {"unknown flag 'depth'"});
}

}  // namespace
