// The networks' named_parameters() equal the official checkpoints' key lists (names and shapes).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/unet.h"

namespace {

// "name\t(1024, 256)" per line, as dumped from the official state_dicts.
std::map<std::string, std::vector<int64_t>> read_keys(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::map<std::string, std::vector<int64_t>> keys;
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::vector<int64_t> shape;
    std::string dims = line.substr(tab + 1);
    for (char& c : dims)
      if (c == '(' || c == ')' || c == ',') c = ' ';
    std::istringstream ss(dims);
    int64_t d;
    while (ss >> d) shape.push_back(d);
    keys[line.substr(0, tab)] = shape;
  }
  return keys;
}

std::map<std::string, std::vector<int64_t>> named_shapes(const torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

dsk::UNetConfig adm256(bool class_cond) {
  return dsk::unet_config_from_json(
      {{"image_size", 256}, {"attention_resolutions", "32,16,8"}, {"class_cond", class_cond},
       {"diffusion_steps", 1000}, {"learn_sigma", true}, {"noise_schedule", "linear"}, {"num_channels", 256},
       {"num_head_channels", 64}, {"num_res_blocks", 2}, {"resblock_updown", true}, {"use_fp16", true},
       {"use_scale_shift_norm", true}},
      "adm-256", {"diffusion_steps", "noise_schedule"});
}

TEST(AdmKeys, Unet256ConditionalMatchesOfficialStateDict) {
  torch::NoGradGuard no_grad;
  dsk::UNetModel net(adm256(true));
  auto expected = read_keys(DSK_TEST_DATA "/reference/unet256_keys.txt");
  ASSERT_EQ(expected.size(), 567u);
  EXPECT_EQ(named_shapes(*net), expected);
  EXPECT_EQ(dsk::parameter_count(*net), 553838086);
}

TEST(AdmKeys, Unet256UnconditionalLacksLabelEmbedding) {
  torch::NoGradGuard no_grad;
  dsk::UNetModel net(adm256(false));
  auto expected = read_keys(DSK_TEST_DATA "/reference/unet256_keys.txt");
  expected.erase("label_emb.weight");
  EXPECT_EQ(named_shapes(*net), expected);
  EXPECT_EQ(dsk::parameter_count(*net), 552814086);
}

TEST(AdmKeys, Classifier256MatchesOfficialStateDict) {
  torch::NoGradGuard no_grad;
  auto cfg = dsk::classifier_config_from_json(
      {{"image_size", 256}, {"classifier_attention_resolutions", "32,16,8"}, {"classifier_depth", 2},
       {"classifier_width", 128}, {"classifier_pool", "attention"}, {"classifier_resblock_updown", true},
       {"classifier_use_scale_shift_norm", true}},
      "classifier-256");
  dsk::EncoderUNetModel net(cfg);
  auto expected = read_keys(DSK_TEST_DATA "/reference/classifier256_keys.txt");
  ASSERT_EQ(expected.size(), 249u);
  EXPECT_EQ(named_shapes(*net), expected);
  EXPECT_EQ(dsk::parameter_count(*net), 54096360);
}

}  // namespace
