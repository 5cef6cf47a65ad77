// editing/masks: mask reading convention, random training masks, evaluation masks.
#include <gtest/gtest.h>

#include <random>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/masks.h"

using namespace dsk::edit;

namespace {
bool only_0_255(const cv::Mat& m) { return cv::countNonZero((m != 0) & (m != 255)) == 0; }
bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}
}  // namespace

TEST(TrainingMask, AreaFractionAlwaysInRange) {
  const cv::Size sizes[] = {{64, 64}, {256, 256}, {300, 100}, {17, 5}, {1, 40}};
  std::mt19937_64 rng(123);
  for (const cv::Size s : sizes) {
    for (int i = 0; i < 60; ++i) {
      const cv::Mat m = random_training_mask(s.height, s.width, rng);
      ASSERT_EQ(m.type(), CV_8UC1);
      ASSERT_EQ(m.size(), s);
      ASSERT_TRUE(only_0_255(m));
      const double f = mask_fraction(m);
      EXPECT_GE(f, 0.1) << s << " draw " << i;
      EXPECT_LE(f, 0.6) << s << " draw " << i;
    }
  }
}

TEST(TrainingMask, NarrowAndWideRangesAreHonoured) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(mask_fraction(random_training_mask(128, 96, rng, 0.25, 0.25)), 0.25);
    const double g = mask_fraction(random_training_mask(128, 96, rng, 0.7, 0.95));
    EXPECT_GE(g, 0.7);
    EXPECT_LE(g, 0.95);
    const double h = mask_fraction(random_training_mask(128, 96, rng, 0.01, 0.03));
    EXPECT_GE(h, 0.01);
    EXPECT_LE(h, 0.03);
  }
}

TEST(TrainingMask, ShapesAreVariedNotJustBoxes) {
  std::mt19937_64 rng(77);
  int freeform = 0;
  double min_f = 1, max_f = 0;
  for (int i = 0; i < 40; ++i) {
    const cv::Mat m = random_training_mask(128, 128, rng);
    const cv::Rect box = cv::boundingRect(m);
    freeform += cv::countNonZero(m) < 0.9 * box.area();
    min_f = std::min(min_f, mask_fraction(m));
    max_f = std::max(max_f, mask_fraction(m));
  }
  EXPECT_GT(freeform, 20);
  EXPECT_GT(max_f - min_f, 0.2);  // fractions spread over the range
}

TEST(TrainingMask, RejectsImpossibleRequests) {
  std::mt19937_64 rng(1);
  EXPECT_THROW(random_training_mask(64, 64, rng, 0.5, 0.4), dsk::edit::InputError);
  EXPECT_THROW(random_training_mask(64, 64, rng, 0.0, 0.4), dsk::edit::InputError);
  EXPECT_THROW(random_training_mask(64, 64, rng, 0.1, 1.5), dsk::edit::InputError);
  EXPECT_THROW(random_training_mask(0, 64, rng), dsk::edit::InputError);
  EXPECT_THROW(random_training_mask(1, 1, rng), dsk::edit::InputError);  // 1 pixel: 0 or 100%, never 10..60%
  EXPECT_THROW(random_training_mask(128, 96, rng, 0.3, 0.3), dsk::edit::InputError);  // 3686.4 pixels
}

TEST(EvalMask, DeterministicForASeed) {
  const cv::Mat a = eval_mask(120, 160, 2024);
  EXPECT_TRUE(same(a, eval_mask(120, 160, 2024)));
  EXPECT_FALSE(same(a, eval_mask(120, 160, 2025)));
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const double f = mask_fraction(eval_mask(120, 160, seed));
    EXPECT_GE(f, 0.1);
    EXPECT_LE(f, 0.4);
  }
}

// The evaluation set must not change silently: a change to the mask generator (or to the OpenCV
// drawing it relies on) changes these numbers, and every stored evaluation result with them.
TEST(EvalMask, GoldenChecksum) {
  const cv::Mat m = eval_mask(64, 96, 7);
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the pixels
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) h = (h ^ m.at<uchar>(y, x)) * 1099511628211ULL;
  EXPECT_EQ(cv::countNonZero(m), 2092);
  EXPECT_EQ(h, 17965670951931733381ULL);
}

TEST(MaskConvention, WhiteRegeneratesSoftThresholdIsHalf) {
  cv::Mat m8(1, 4, CV_8UC1);
  m8.at<uchar>(0, 0) = 0;
  m8.at<uchar>(0, 1) = 127;
  m8.at<uchar>(0, 2) = 128;
  m8.at<uchar>(0, 3) = 255;
  const cv::Mat b = binary_mask(m8);
  EXPECT_EQ(b.at<uchar>(0, 0), 0);
  EXPECT_EQ(b.at<uchar>(0, 1), 0);
  EXPECT_EQ(b.at<uchar>(0, 2), 255);
  EXPECT_EQ(b.at<uchar>(0, 3), 255);
  const cv::Mat soft = to_soft_mask(m8);
  EXPECT_FLOAT_EQ(soft.at<float>(0, 3), 1.f);
  EXPECT_NEAR(soft.at<float>(0, 1), 127.0 / 255.0, 1e-6);

  cv::Mat bgra(1, 2, CV_8UC4);
  bgra.at<cv::Vec4b>(0, 0) = {255, 255, 255, 0};    // white but transparent: keep
  bgra.at<cv::Vec4b>(0, 1) = {255, 255, 255, 255};  // opaque white: regenerate
  const cv::Mat s = soft_mask_from_image(bgra);
  EXPECT_FLOAT_EQ(s.at<float>(0, 0), 0.f);
  EXPECT_FLOAT_EQ(s.at<float>(0, 1), 1.f);
  cv::Mat m16(1, 1, CV_16UC1, cv::Scalar(65535));
  EXPECT_FLOAT_EQ(to_soft_mask(m16).at<float>(0, 0), 1.f);
  EXPECT_THROW(to_soft_mask(cv::Mat()), dsk::edit::InputError);
}
