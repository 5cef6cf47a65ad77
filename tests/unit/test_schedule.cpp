// Noise schedules and respacing (core/diffusion/schedule.h) against the reference's values: closed forms,
// numbers computed with guided_diffusion's own formulas, and the timestep maps the reference
// recorded in the conformance cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/diffusion/schedule.h"
#include "core/formats/safetensors.h"

namespace {

using std::invalid_argument;

// Runs fn, expects std::invalid_argument whose message contains every word of `words`.
template <class Fn>
void expect_input_error(Fn fn, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no std::invalid_argument thrown";
  } catch (const invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

std::vector<int64_t> iota_stride(int64_t begin, int64_t end, int64_t stride) {
  std::vector<int64_t> out;
  for (int64_t t = begin; t < end; t += stride) out.push_back(t);
  return out;
}

// ---- beta schedules ----

TEST(Schedule, LinearBetasFor1000Steps) {
  const auto b = dsk::named_beta_schedule("linear", 1000);
  ASSERT_EQ(b.size(), 1000u);
  // np.linspace(1e-4, 0.02, 1000): start + i * (end - start) / 999, the last value exactly `end`.
  EXPECT_DOUBLE_EQ(b[0], 1e-4);
  EXPECT_DOUBLE_EQ(b[1], 0.00011991991991991993);
  EXPECT_DOUBLE_EQ(b[500], 0.010059959959959959);
  EXPECT_DOUBLE_EQ(b[998], 0.01998008008008008);
  EXPECT_EQ(b[999], 0.02);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_GT(b[i], b[i - 1]) << i;
}

TEST(Schedule, LinearBetasScaleWithStepCount) {
  // get_named_beta_schedule scales both ends by 1000 / steps.
  const auto b = dsk::named_beta_schedule("linear", 100);
  ASSERT_EQ(b.size(), 100u);
  EXPECT_DOUBLE_EQ(b[0], 1e-3);
  EXPECT_DOUBLE_EQ(b[1], 0.00301010101010101);
  EXPECT_DOUBLE_EQ(b[50], 0.1015050505050505);
  EXPECT_DOUBLE_EQ(b[99], 0.2);
  const auto b4000 = dsk::named_beta_schedule("linear", 4000);
  EXPECT_DOUBLE_EQ(b4000.front(), 0.25e-4);
  EXPECT_DOUBLE_EQ(b4000.back(), 0.005);
}

TEST(Schedule, LinearAlphaBarMatchesReference) {
  // np.cumprod(1 - betas) of the 1000-step linear schedule, computed in Python.
  const auto s = dsk::make_schedule({});
  ASSERT_EQ(s.size(), 1000);
  EXPECT_NEAR(s.alphas_cumprod[0], 0.9999, 1e-15);
  EXPECT_NEAR(s.alphas_cumprod[99] / 0.89701814567496, 1.0, 1e-12);
  EXPECT_NEAR(s.alphas_cumprod[499] / 0.07858724288177824, 1.0, 1e-12);
  EXPECT_NEAR(s.alphas_cumprod[999] / 4.035829765375676e-05, 1.0, 1e-12);
}

TEST(Schedule, CosineBetasFor1000Steps) {
  const auto b = dsk::named_beta_schedule("cosine", 1000);
  ASSERT_EQ(b.size(), 1000u);
  // betas_for_alpha_bar with alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2) ** 2 (Python math).
  EXPECT_NEAR(b[0], 4.128422482196914e-05, 1e-17);
  EXPECT_NEAR(b[1], 4.614175273665033e-05, 1e-17);
  EXPECT_NEAR(b[500], 0.003155691441585007, 1e-15);
  EXPECT_NEAR(b[998], 0.7499993929011166, 1e-12);
  // The last step would be 1 (alpha_bar(1) = 0): capped at max_beta 0.999, the only capped one.
  EXPECT_EQ(b[999], 0.999);
  for (int i = 0; i < 999; ++i) EXPECT_LT(b[i], 0.999) << i;
}

TEST(Schedule, CosineAlphaBarTelescopes) {
  // prod_{i<=t} (1 - beta_i) = alpha_bar((t+1)/T) / alpha_bar(0) wherever no beta was capped.
  const int T = 1000;
  auto f = [](double t) {
    const double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  dsk::DiffusionConfig cfg;
  cfg.noise_schedule = "cosine";
  const auto s = dsk::make_schedule(cfg);
  for (int t : {0, 1, 10, 100, 500, 900, 990, 998})
    EXPECT_NEAR(s.alphas_cumprod[t] / (f((t + 1.0) / T) / f(0)), 1.0, 1e-9) << t;
}

TEST(Schedule, UnknownScheduleIsAnInputError) {
  expect_input_error([] { dsk::named_beta_schedule("quadratic", 1000); }, {"quadratic", "linear", "cosine"});
  dsk::DiffusionConfig cfg;
  cfg.noise_schedule = "sqrt";
  expect_input_error([&] { cfg.validate("model.json"); }, {"model.json", "sqrt"});
}

// The diffusion flags are read by the same flag readers as the network's (models/adm_config.h):
// guided-diffusion's strings are accepted, and a number must be all number.
TEST(Schedule, DiffusionFlagsReadLikeTheNetworkFlags) {
  const auto c = dsk::diffusion_config_from_json({{"diffusion_steps", "100"}, {"learn_sigma", "Yes"}, {"predict_xstart", 0}},
                                                 "model.json");
  EXPECT_EQ(c.diffusion_steps, 100);
  EXPECT_TRUE(c.learn_sigma);
  EXPECT_FALSE(c.predict_xstart);
  expect_input_error([] { dsk::diffusion_config_from_json({{"diffusion_steps", "100x"}}, "model.json"); },
                     {"model.json", "diffusion_steps", "integer", "100x"});
  expect_input_error([] { dsk::diffusion_config_from_json({{"sigma_small", "maybe"}}, "model.json"); },
                     {"model.json", "sigma_small", "true or false"});
  expect_input_error([] { dsk::diffusion_config_from_json({{"noise_schedule", 3}}, "model.json"); },
                     {"model.json", "noise_schedule"});
}

// ---- space_timesteps ----

TEST(Respacing, DdimStrides) {
  EXPECT_EQ(dsk::space_timesteps(1000, "ddim10"), iota_stride(0, 1000, 100));
  EXPECT_EQ(dsk::space_timesteps(1000, "ddim25"), iota_stride(0, 1000, 40));
  EXPECT_EQ(dsk::space_timesteps(1000, "ddim50"), iota_stride(0, 1000, 20));
  EXPECT_EQ(dsk::space_timesteps(100, "ddim5"), iota_stride(0, 100, 20));
  // The first stride whose range has N elements: 143 for 7 (143 * 6 = 858 < 1000 <= 143 * 7).
  EXPECT_EQ(dsk::space_timesteps(1000, "ddim7"), iota_stride(0, 1000, 143));
  EXPECT_EQ(dsk::space_timesteps(1000, "ddim1000"), iota_stride(0, 1000, 1));
}

TEST(Respacing, SectionCounts) {
  // respace.space_timesteps(300, "10,15,20"), run in Python.
  const std::vector<int64_t> expected = {
      0,   11,  22,  33,  44,  55,  66,  77,  88,  99,  100, 107, 114, 121, 128, 135, 142, 149, 157, 164, 171, 178, 185,
      192, 199, 200, 205, 210, 216, 221, 226, 231, 236, 242, 247, 252, 257, 263, 268, 273, 278, 283, 289, 294, 299};
  EXPECT_EQ(dsk::space_timesteps(300, "10,15,20"), expected);
  const std::vector<int64_t> e343 = {0, 166, 333, 334, 445, 555, 666, 667, 833, 999};
  EXPECT_EQ(dsk::space_timesteps(1000, "3,4,3"), e343);
  // A single section: the reference accumulates the fractional stride (hence 832, not 833).
  const std::vector<int64_t> e7 = {0, 166, 333, 500, 666, 832, 999};
  EXPECT_EQ(dsk::space_timesteps(1000, "7"), e7);
  // "250": 250 steps from 0 to 999.
  const auto s250 = dsk::space_timesteps(1000, "250");
  ASSERT_EQ(s250.size(), 250u);
  EXPECT_EQ(s250.front(), 0);
  EXPECT_EQ(s250[41], 164);
  EXPECT_EQ(s250[42], 169);
  EXPECT_EQ(s250.back(), 999);
  // Every step kept.
  EXPECT_EQ(dsk::space_timesteps(1000, "1000"), iota_stride(0, 1000, 1));
}

TEST(Respacing, MatchesTheReferenceTimestepMapOfEveryConformanceCase) {
  for (const char* name : {"adm-small", "fixedvar-spatial", "spatialv2-sections", "uncond-cosine-neworder"}) {
    SCOPED_TRACE(name);
    const std::string dir = std::string(DSK_TEST_DATA) + "/conformance/" + name;
    std::ifstream in(dir + "/config.json");
    ASSERT_TRUE(in) << dir;
    const auto config = nlohmann::json::parse(in);
    auto io = dsk::st::File::open(dir + "/io.safetensors");
    const auto& info = io.at("timestep_map");
    ASSERT_EQ(info.dtype, dsk::st::DType::I64);
    std::vector<int64_t> expected(info.numel());
    const auto bytes = io.bytes(info);
    ASSERT_EQ(bytes.size(), expected.size() * sizeof(int64_t));
    std::memcpy(expected.data(), bytes.data(), bytes.size());

    const int steps = config["diffusion_steps"].get<int>();
    const std::string respacing = config["timestep_respacing"].get<std::string>();
    EXPECT_EQ(dsk::space_timesteps(steps, respacing), expected) << respacing;
    dsk::DiffusionConfig cfg;
    cfg.diffusion_steps = steps;
    cfg.noise_schedule = config["noise_schedule"].get<std::string>();
    cfg.timestep_respacing = respacing;
    EXPECT_EQ(dsk::make_schedule(cfg).timestep_map, expected);
  }
  // The case the brief names, spelled out.
  const std::vector<int64_t> e343 = {0, 166, 333, 334, 445, 555, 666, 667, 833, 999};
  EXPECT_EQ(dsk::space_timesteps(1000, "3,4,3"), e343);
}

TEST(Respacing, RejectsWhatTheReferenceRejects) {
  // No integer stride gives exactly 37 steps over 1000 (stride 27 gives 38, stride 28 gives 36),
  // nor 1 (the reference tries strides 1..T-1 only). ddim7 is possible: stride 143.
  expect_input_error([] { dsk::space_timesteps(1000, "ddim37"); }, {"ddim37", "37", "stride", "1000"});
  expect_input_error([] { dsk::space_timesteps(1000, "ddim1"); }, {"ddim1", "stride"});
  expect_input_error([] { dsk::space_timesteps(100, "ddim11"); }, {"ddim11", "stride", "100"});
  expect_input_error([] { dsk::space_timesteps(1000, "0"); }, {"'0'"});
  expect_input_error([] { dsk::space_timesteps(1000, "2000"); }, {"2000", "1000"});
  expect_input_error([] { dsk::space_timesteps(300, "10,150,20"); }, {"150", "100"});
  expect_input_error([] { dsk::space_timesteps(1000, "abc"); }, {"abc", "integers"});
  expect_input_error([] { dsk::space_timesteps(1000, "ddim"); }, {"ddim"});
  expect_input_error([] { dsk::space_timesteps(1000, "ddimx"); }, {"ddimx"});
  expect_input_error([] { dsk::space_timesteps(1000, "10,,5"); }, {"10,,5"});
  expect_input_error([] { dsk::space_timesteps(1000, "-5"); }, {"-5"});
  expect_input_error([] { dsk::space_timesteps(1000, ""); }, {"respacing"});
}

TEST(Respacing, ABadRespacingInTheConfigIsRejectedByValidate) {
  dsk::DiffusionConfig cfg;
  cfg.timestep_respacing = "ddim37";
  expect_input_error([&] { cfg.validate("model.json"); }, {"ddim37"});
  expect_input_error([] { dsk::make_schedule({}, "2000"); }, {"2000"});
}

// ---- make_schedule (SpacedDiffusion) ----

TEST(Schedule, FullScheduleKeepsEveryStep) {
  const auto s = dsk::make_schedule({});
  const auto base = dsk::named_beta_schedule("linear", 1000);
  ASSERT_EQ(s.size(), 1000);
  EXPECT_EQ(s.original_steps, 1000);
  EXPECT_EQ(s.timestep_map, iota_stride(0, 1000, 1));
  for (int i = 0; i < 1000; ++i) EXPECT_NEAR(s.betas[i], base[i], 1e-15) << i;
  EXPECT_EQ(s.alphas_cumprod_prev[0], 1.0);
  // posterior_log_variance_clipped[0] = log(posterior_variance[1]) (posterior_variance[0] is 0).
  EXPECT_EQ(s.posterior_variance[0], 0.0);
  EXPECT_DOUBLE_EQ(s.posterior_log_variance_clipped[0], std::log(s.posterior_variance[1]));
  EXPECT_DOUBLE_EQ(s.posterior_log_variance_clipped[500], std::log(s.posterior_variance[500]));
}

void check_respaced(const dsk::DiffusionConfig& cfg, const std::string& respacing) {
  SCOPED_TRACE(cfg.noise_schedule + " " + respacing);
  const auto base = dsk::named_beta_schedule(cfg.noise_schedule, cfg.diffusion_steps);
  std::vector<double> base_abar;
  double acc = 1.0;
  for (double b : base) base_abar.push_back(acc *= 1.0 - b);

  const auto s = dsk::make_schedule(cfg, respacing);
  ASSERT_EQ(s.timestep_map, dsk::space_timesteps(cfg.diffusion_steps, respacing));
  ASSERT_EQ(static_cast<size_t>(s.size()), s.timestep_map.size());
  // The product of (1 - beta) over the kept steps equals the base alpha_bar at those steps. (Up to
  // 1e-8: where a respaced beta is close to 1, as at the cosine schedule's last step, 1 - beta
  // keeps few significant digits; the reference rounds the same way.)
  double prod = 1.0;
  for (int i = 0; i < s.size(); ++i) {
    prod *= 1.0 - s.betas[i];
    const double want = base_abar[s.timestep_map[i]];
    EXPECT_NEAR(prod / want, 1.0, 1e-8) << i;
    EXPECT_NEAR(s.alphas_cumprod[i] / want, 1.0, 1e-8) << i;
    EXPECT_EQ(s.alphas_cumprod_prev[i], i == 0 ? 1.0 : s.alphas_cumprod[i - 1]);
    EXPECT_GT(s.betas[i], 0.0);
    EXPECT_LT(s.betas[i], 1.0);
  }
  // The first kept step is t = 0, so its beta is the base one (up to the rounding of
  // 1 - (1 - beta) / 1, which the reference has too).
  EXPECT_NEAR(s.betas[0] / base[0], 1.0, 1e-10);
  EXPECT_NEAR(s.betas[1] / (1.0 - base_abar[s.timestep_map[1]] / base_abar[0]), 1.0, 1e-10);
}

TEST(Schedule, RespacedBetasComeFromAlphaBar) {
  dsk::DiffusionConfig linear;
  check_respaced(linear, "ddim10");
  check_respaced(linear, "ddim25");
  check_respaced(linear, "250");
  check_respaced(linear, "3,4,3");
  dsk::DiffusionConfig cosine;
  cosine.noise_schedule = "cosine";
  check_respaced(cosine, "3,4,3");
  check_respaced(cosine, "ddim50");
  dsk::DiffusionConfig short300;
  short300.diffusion_steps = 300;
  check_respaced(short300, "10,15,20");
}

TEST(Schedule, RespacingArgumentOverridesTheConfig) {
  dsk::DiffusionConfig cfg;
  cfg.timestep_respacing = "ddim10";
  EXPECT_EQ(dsk::make_schedule(cfg).size(), 10);
  EXPECT_EQ(dsk::make_schedule(cfg, "ddim25").size(), 25);
}

TEST(Schedule, ModelTimestepRescales) {
  dsk::DiffusionConfig cfg;
  cfg.diffusion_steps = 4000;
  const auto s = dsk::make_schedule(cfg, "ddim10");
  EXPECT_EQ(s.model_timestep(1, false), 400.0);
  EXPECT_EQ(s.model_timestep(1, true), 100.0);
}

// ---- --steps ----

TEST(Steps, ToRespacingBounds) {
  EXPECT_EQ(dsk::steps_to_respacing(1, 1000), "1");
  EXPECT_EQ(dsk::steps_to_respacing(25, 1000), "25");
  EXPECT_EQ(dsk::steps_to_respacing(1000, 1000), "1000");
  EXPECT_EQ(dsk::steps_to_respacing(100, 100), "100");
  expect_input_error([] { dsk::steps_to_respacing(0, 1000); }, {"--steps 0", "1..1000"});
  expect_input_error([] { dsk::steps_to_respacing(-3, 1000); }, {"--steps -3"});
  expect_input_error([] { dsk::steps_to_respacing(1001, 1000); }, {"--steps 1001", "1000"});
  expect_input_error([] { dsk::steps_to_respacing(5000, 1000); }, {"--steps 5000"});
  expect_input_error([] { dsk::steps_to_respacing(101, 100); }, {"1..100"});
  // Every N up to T is valid: even spacing never needs an integer stride.
  for (int n : {1, 7, 13, 333, 999})
    EXPECT_EQ(dsk::space_timesteps(1000, dsk::steps_to_respacing(n, 1000)).size(), static_cast<size_t>(n)) << n;
}

}  // namespace
