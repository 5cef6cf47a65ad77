// editing/synth_sketch: XDoG and Canny sketches from photos, scribble augmentation.
#include <gtest/gtest.h>

#include <random>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/sketch.h"
#include "editing/synth_sketch.h"

using namespace dsk::edit;

namespace {

// A "photo": grey background, a dark rectangle and a light disc, mild noise.
cv::Mat photo() {
  cv::Mat img(200, 240, CV_8UC3, cv::Scalar(120, 130, 140));
  cv::rectangle(img, cv::Rect(40, 50, 80, 60), cv::Scalar(30, 40, 50), cv::FILLED);
  cv::circle(img, {170, 130}, 35, cv::Scalar(220, 210, 200), cv::FILLED, cv::LINE_AA);
  cv::Mat noise(img.size(), CV_8UC3);
  cv::RNG(1).fill(noise, cv::RNG::UNIFORM, 0, 4);
  img += noise;
  return img;
}

cv::Mat boundaries() {  // true outlines, 1 px, 0 / 255
  cv::Mat b = cv::Mat::zeros(200, 240, CV_8UC1);
  cv::rectangle(b, cv::Rect(40, 50, 80, 60), cv::Scalar(255), 1);
  cv::circle(b, {170, 130}, 35, cv::Scalar(255), 1);
  return b;
}

cv::Mat within(const cv::Mat& bin, int px) {
  cv::Mat d;
  cv::dilate(bin, d, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * px + 1, 2 * px + 1}));
  return d;
}

bool only_zero_one(const cv::Mat& m) { return cv::countNonZero((m != 0.f) & (m != 1.f)) == 0; }

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

cv::Mat stroke_drawing() {
  cv::Mat m = cv::Mat::zeros(256, 256, CV_32FC1);
  cv::line(m, {20, 30}, {230, 50}, cv::Scalar(1.0), 2, cv::LINE_AA);
  cv::line(m, {40, 220}, {220, 100}, cv::Scalar(1.0), 2, cv::LINE_AA);
  cv::circle(m, {128, 140}, 50, cv::Scalar(1.0), 2, cv::LINE_AA);
  return m;
}

}  // namespace

TEST(CannySketch, FindsTheOutlinesAndNothingElse) {
  const cv::Mat edges = canny_sketch(photo());
  ASSERT_EQ(edges.type(), CV_32FC1);
  EXPECT_TRUE(only_zero_one(edges));
  const cv::Mat on = edges > 0.5f;
  EXPECT_EQ(cv::countNonZero(on & ~within(boundaries(), 2)), 0);  // precision
  const double recall = static_cast<double>(cv::countNonZero(boundaries() & within(on, 2))) /
                        cv::countNonZero(boundaries());
  EXPECT_GT(recall, 0.95);
  EXPECT_TRUE(is_blank(canny_sketch(cv::Mat(50, 50, CV_8UC3, cv::Scalar::all(90)))));
}

TEST(CannySketch, DeterministicWhateverTheThreadCount) {
  const cv::Mat img = photo();
  const int threads = cv::getNumThreads();
  const cv::Mat a = canny_sketch(img);
  cv::setNumThreads(1);
  const cv::Mat b = canny_sketch(img);
  cv::setNumThreads(threads);
  EXPECT_TRUE(same(a, b));
  EXPECT_TRUE(same(a, canny_sketch(img)));
}

TEST(CannySketch, SixteenBitAndGrayGiveTheSameEdges) {
  const cv::Mat img = photo();
  cv::Mat img16, gray;
  img.convertTo(img16, CV_16U, 257.0);
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  EXPECT_TRUE(same(canny_sketch(img), canny_sketch(img16)));
  EXPECT_GT(cv::countNonZero(canny_sketch(gray)), 0);
  CannyParams bad;
  bad.sigma = -1;
  EXPECT_THROW(canny_sketch(img, bad), dsk::edit::InputError);
}

TEST(XDoGSketch, DrawsLinesAlongEdges) {
  const cv::Mat s = xdog_sketch(photo());
  ASSERT_EQ(s.type(), CV_32FC1);
  EXPECT_TRUE(only_zero_one(s));
  EXPECT_FALSE(is_blank(s));
  const cv::Mat on = s > 0.5f;
  EXPECT_GT(static_cast<double>(cv::countNonZero(on & within(boundaries(), 3))) / cv::countNonZero(on), 0.95);
  EXPECT_TRUE(is_blank(xdog_sketch(cv::Mat(50, 50, CV_8UC1, cv::Scalar(200)))));
  XDoGParams bad;
  bad.k = 1.0;
  EXPECT_THROW(xdog_sketch(photo(), bad), dsk::edit::InputError);
}

TEST(XDoGSketch, RandomParametersAreReproducible) {
  const cv::Mat img = photo();
  std::mt19937_64 r1(42), r2(42);
  EXPECT_TRUE(same(xdog_sketch(img, {}, &r1), xdog_sketch(img, {}, &r2)));
  EXPECT_TRUE(same(xdog_sketch(img), xdog_sketch(img)));
  // Different draws give different line sets on a textured image.
  cv::Mat tex(128, 128, CV_8UC1);
  cv::RNG(9).fill(tex, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(tex, tex, {0, 0}, 2.0);
  int differing = 0;
  std::mt19937_64 r3(1);
  const cv::Mat first = xdog_sketch(tex, {}, &r3);
  for (int i = 0; i < 4; ++i) differing += !same(first, xdog_sketch(tex, {}, &r3));
  EXPECT_GT(differing, 0);
}

TEST(ScribbleAugment, StrengthZeroIsIdentityAndBlankStaysBlank) {
  const cv::Mat m = stroke_drawing();
  std::mt19937_64 rng(3);
  EXPECT_TRUE(same(scribble_augment(m, rng, 0.0), m));
  EXPECT_TRUE(is_blank(scribble_augment(cv::Mat::zeros(64, 64, CV_32FC1), rng, 1.0)));
  EXPECT_THROW(scribble_augment(m, rng, -0.5), dsk::edit::InputError);
  EXPECT_THROW(scribble_augment(cv::Mat(4, 4, CV_8UC1), rng, 0.5), dsk::edit::InputError);
}

TEST(ScribbleAugment, ReproducibleForASeedAndDifferentAcrossSeeds) {
  const cv::Mat m = stroke_drawing();
  std::mt19937_64 a(11), b(11), c(12);
  const cv::Mat x = scribble_augment(m, a, 0.7);
  EXPECT_TRUE(same(x, scribble_augment(m, b, 0.7)));
  EXPECT_FALSE(same(x, scribble_augment(m, c, 0.7)));
}

TEST(ScribbleAugment, LooksLikeTheSameDrawingButHandMade) {
  const cv::Mat m = stroke_drawing();
  const cv::Mat orig_on = m > 0.5f;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    std::mt19937_64 rng(seed);
    const cv::Mat s = scribble_augment(m, rng, 0.8);
    ASSERT_EQ(s.type(), CV_32FC1);
    double mn, mx;
    cv::minMaxLoc(s, &mn, &mx);
    EXPECT_GE(mn, 0.0);
    EXPECT_LE(mx, 1.0);
    const cv::Mat on = s > 0.5f;
    ASSERT_FALSE(is_blank(s)) << "seed " << seed;
    // Close to the original strokes: warp amplitude is a few pixels.
    EXPECT_GT(static_cast<double>(cv::countNonZero(on & within(orig_on, 8))) / cv::countNonZero(on), 0.98);
    // But not the same drawing: moved, broken or dropped somewhere.
    EXPECT_GT(cv::countNonZero(on ^ orig_on), 200) << "seed " << seed;
    // Gaps or drops: not every original stroke pixel is still covered.
    EXPECT_LT(static_cast<double>(cv::countNonZero(orig_on & within(on, 3))) / cv::countNonZero(orig_on), 0.999);
  }
}
