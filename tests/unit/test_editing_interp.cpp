// editing/interp: interpolation of starting noise.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "editing/error.h"
#include "editing/interp.h"

using namespace dsk::edit;

namespace {

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

}  // namespace

TEST(Interpolate, EndFramesAreExactlyAAndB) {
  const auto a = gaussian(1000, 1), b = gaussian(1000, 2);
  for (InterpMode m : {InterpMode::Slerp, InterpMode::Linear, InterpMode::Trig}) {
    const auto f = frame_fractions(7);
    EXPECT_EQ(interpolate(a, b, m, f.front()), a);
    EXPECT_EQ(interpolate(a, b, m, f.back()), b);
  }
}

TEST(Interpolate, LinearConventionFrameZeroIsA) {
  const std::vector<float> a = {1.f, 0.f, -2.f}, b = {3.f, 4.f, 2.f};
  const auto mid = interpolate(a, b, InterpMode::Linear, 0.5);
  EXPECT_FLOAT_EQ(mid[0], 2.f);
  EXPECT_FLOAT_EQ(mid[1], 2.f);
  EXPECT_FLOAT_EQ(mid[2], 0.f);
  const auto q = interpolate(a, b, InterpMode::Linear, 0.25);  // beta = 0.75 on a
  EXPECT_FLOAT_EQ(q[0], 0.75f * 1.f + 0.25f * 3.f);
}

TEST(Interpolate, TrigUsesCosAndSinOfAQuarterTurn) {
  const std::vector<float> a = {1.f, 2.f}, b = {-3.f, 5.f};
  const auto mid = interpolate(a, b, InterpMode::Trig, 0.5);
  const float c = static_cast<float>(std::sqrt(0.5));
  EXPECT_NEAR(mid[0], c * 1.f + c * -3.f, 1e-6);
  EXPECT_NEAR(mid[1], c * 2.f + c * 5.f, 1e-6);
  const auto third = interpolate(a, b, InterpMode::Trig, 1.0 / 3.0);  // theta = 30 degrees
  EXPECT_NEAR(third[0], std::cos(std::numbers::pi / 6) * 1 + std::sin(std::numbers::pi / 6) * -3, 1e-6);
}

TEST(Interpolate, SlerpFollowsTheGreatCircle) {
  const std::vector<float> a = {1.f, 0.f}, b = {0.f, 1.f};
  const auto mid = interpolate(a, b, InterpMode::Slerp, 0.5);
  EXPECT_NEAR(mid[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(mid[1], std::sqrt(0.5), 1e-6);
  // Two independent Gaussian draws: intermediate frames keep the norm (linear would shrink it).
  const auto x = gaussian(4096, 3), y = gaussian(4096, 4);
  const double nx = norm(x), ny = norm(y);
  for (double t : frame_fractions(9)) {
    const double ns = norm(interpolate(x, y, InterpMode::Slerp, t));
    EXPECT_NEAR(ns, (1 - t) * nx + t * ny, 0.02 * nx);
  }
  EXPECT_LT(norm(interpolate(x, y, InterpMode::Linear, 0.5)), 0.8 * nx);
}

TEST(Interpolate, SlerpFallsBackToLinearWhenParallelOrZero) {
  const std::vector<float> a = {1.f, 2.f, 3.f}, b = {2.f, 4.f, 6.f}, z = {0.f, 0.f, 0.f};
  const auto p = interpolate(a, b, InterpMode::Slerp, 0.5);
  EXPECT_FLOAT_EQ(p[0], 1.5f);
  EXPECT_FLOAT_EQ(p[2], 4.5f);
  const auto q = interpolate(a, z, InterpMode::Slerp, 0.5);
  EXPECT_FLOAT_EQ(q[1], 1.f);
  const std::vector<float> neg = {-1.f, -2.f, -3.f};  // antiparallel: no NaN
  for (float v : interpolate(a, neg, InterpMode::Slerp, 0.3)) EXPECT_TRUE(std::isfinite(v));
}

TEST(Interpolate, ErrorsAndFrameFractions) {
  const std::vector<float> a = {1.f, 2.f}, b = {1.f};
  EXPECT_THROW(interpolate(a, b, InterpMode::Linear, 0.5), dsk::edit::InputError);
  EXPECT_THROW(interpolate({}, {}, InterpMode::Linear, 0.5), dsk::edit::InputError);
  EXPECT_THROW(interpolate(a, a, InterpMode::Linear, std::nan("")), dsk::edit::InputError);
  EXPECT_THROW(frame_fractions(1), dsk::edit::InputError);
  EXPECT_THROW(frame_fractions(0), dsk::edit::InputError);
  const auto f = frame_fractions(5);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_EQ(f[2], 0.5);
  EXPECT_EQ(f[4], 1.0);
  EXPECT_EQ(frame_fractions(2), (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(parse_interp_mode("slerp"), InterpMode::Slerp);
  EXPECT_EQ(parse_interp_mode("trig"), InterpMode::Trig);
  EXPECT_THROW(parse_interp_mode("cubic"), dsk::edit::InputError);
}
