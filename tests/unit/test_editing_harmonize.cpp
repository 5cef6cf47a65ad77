// editing/harmonize: a colour cast is removed, drawn structure keeps its contrast, a mismatch at one
// spot of the edge stays local, pixels outside the hole never change, bad inputs are refused.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/harmonize.h"

using namespace dsk::edit;

namespace {

cv::Mat ramp(cv::Size s) {  // a smooth RGB gradient, like a wallpaper
  cv::Mat m(s, CV_32FC3);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x)
      m.at<cv::Vec3f>(y, x) = cv::Vec3f(0.2f + 0.002f * x, 0.3f + 0.002f * y, 0.6f - 0.001f * (x + y));
  return m;
}

cv::Mat blob(cv::Size s) {  // an irregular hole, 0 / 255
  cv::Mat m = cv::Mat::zeros(s, CV_8UC1);
  cv::ellipse(m, {70, 60}, {40, 28}, 25, 0, 360, cv::Scalar(255), cv::FILLED);
  cv::rectangle(m, cv::Rect(80, 70, 40, 30), cv::Scalar(255), cv::FILLED);
  return m;
}

// max |a - b| over the pixels where `where` is non-zero (all channels).
double max_diff_in(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  double hi = 0;
  for (int y = 0; y < d.rows; ++y)
    for (int x = 0; x < d.cols; ++x)
      if (where.at<uint8_t>(y, x))
        for (int c = 0; c < 3; ++c) hi = std::max(hi, static_cast<double>(d.at<cv::Vec3f>(y, x)[c]));
  return hi;
}

}  // namespace

TEST(Harmonize, RemovesAColourCastOnASmoothGradient) {
  const cv::Size s(160, 130);
  const cv::Mat orig = ramp(s), hole = blob(s);
  cv::Mat gen = orig.clone();
  cv::Mat cast = orig + cv::Scalar(0.12, -0.08, 0.05);  // the right gradient, the wrong colour
  cast.copyTo(gen, hole);
  const cv::Mat out = harmonize(gen, orig, hole);
  EXPECT_GT(max_diff_in(gen, orig, hole), 0.11);
  // Gradient slopes of 0.002 / px meet the edge values of neighbouring pixels: ~1 px of slope off.
  EXPECT_LT(max_diff_in(out, orig, hole), 0.006);
}

TEST(Harmonize, KeepsTheContrastOfWhatWasDrawn) {
  const cv::Size s(160, 130);
  const cv::Mat orig(s, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5)), hole = blob(s);
  cv::Mat gen = orig.clone();
  cv::Mat inside(s, CV_32FC3, cv::Scalar(0.35, 0.35, 0.35));  // a cast of -0.15 ...
  cv::line(inside, {50, 60}, {110, 85}, cv::Scalar(0.05, 0.05, 0.05), 3);  // ... and a dark stroke on it
  inside.copyTo(gen, hole);
  const cv::Mat out = harmonize(gen, orig, hole);
  EXPECT_NEAR(out.at<cv::Vec3f>(40, 60)[0], 0.5, 0.01);   // the cast is gone away from the stroke
  EXPECT_NEAR(out.at<cv::Vec3f>(72, 80)[0], 0.2, 0.02);   // the stroke is still 0.3 darker
  EXPECT_LT(out.at<cv::Vec3f>(72, 80)[0], out.at<cv::Vec3f>(60, 80)[0] - 0.25);
}

TEST(Harmonize, AMismatchAtOneSpotOfTheEdgeStaysLocal) {
  // The real pixels are flat except one bright patch touching the hole's left edge: the correction
  // is large next to it and fades with the distance.
  const cv::Size s(200, 120);
  cv::Mat orig(s, CV_32FC3, cv::Scalar::all(0.4));
  cv::Mat hole = cv::Mat::zeros(s, CV_8UC1);
  cv::rectangle(hole, cv::Rect(40, 20, 140, 80), cv::Scalar(255), cv::FILLED);
  cv::rectangle(orig, cv::Rect(30, 55, 10, 10), cv::Scalar::all(0.9), cv::FILLED);
  cv::Mat gen = orig.clone();
  gen.setTo(cv::Scalar::all(0.4), hole);
  const cv::Mat out = harmonize(gen, orig, hole);
  const float near = out.at<cv::Vec3f>(60, 41)[0], far = out.at<cv::Vec3f>(60, 170)[0];
  EXPECT_GT(near, 0.5f);
  EXPECT_NEAR(far, 0.4f, 0.005f);
}

TEST(Harmonize, NeverChangesPixelsOutsideTheHoleAndHonoursStrength) {
  const cv::Size s(120, 100);
  cv::Mat orig(s, CV_32FC3), gen(s, CV_32FC3);
  cv::RNG(3).fill(orig, cv::RNG::UNIFORM, 0, 1);
  cv::RNG(4).fill(gen, cv::RNG::UNIFORM, 0, 1);
  const cv::Mat hole = blob(s)(cv::Rect(0, 0, 120, 100)).clone();
  const cv::Mat full = harmonize(gen, orig, hole, 1.0), half = harmonize(gen, orig, hole, 0.5),
                off = harmonize(gen, orig, hole, 0.0);
  EXPECT_EQ(max_diff_in(full, gen, hole == 0), 0.0);
  EXPECT_EQ(max_diff_in(off, gen, cv::Mat(s, CV_8UC1, cv::Scalar(1))), 0.0);
  // Half the strength: half the correction, pixel for pixel.
  cv::Mat expect = gen + 0.5 * (full - gen);
  EXPECT_LT(max_diff_in(half, expect, hole), 1e-5);
  EXPECT_GT(max_diff_in(full, gen, hole), 0.01);
}

TEST(Harmonize, HolesAtTheImageBorderAndTheWholeImage) {
  const cv::Size s(90, 70);
  const cv::Mat orig(s, CV_32FC3, cv::Scalar(0.6, 0.5, 0.4));
  cv::Mat gen(s, CV_32FC3, cv::Scalar(0.3, 0.3, 0.3));
  // A hole along the whole left border: it meets real pixels only on its right.
  cv::Mat hole = cv::Mat::zeros(s, CV_8UC1);
  hole(cv::Rect(0, 0, 30, 70)).setTo(255);
  cv::Mat out = harmonize(gen, orig, hole);
  EXPECT_LT(max_diff_in(out, orig, hole), 1e-3);
  // Everything is the hole: no real pixel to match, the result is the generated one.
  out = harmonize(gen, orig, cv::Mat(s, CV_8UC1, cv::Scalar(255)));
  EXPECT_EQ(max_diff_in(out, gen, cv::Mat(s, CV_8UC1, cv::Scalar(1))), 0.0);
  // No hole: nothing changes.
  out = harmonize(gen, orig, cv::Mat::zeros(s, CV_8UC1));
  EXPECT_EQ(max_diff_in(out, gen, cv::Mat(s, CV_8UC1, cv::Scalar(1))), 0.0);
  // A one-pixel hole.
  hole = cv::Mat::zeros(s, CV_8UC1);
  hole.at<uint8_t>(30, 40) = 255;
  out = harmonize(gen, orig, hole);
  EXPECT_NEAR(out.at<cv::Vec3f>(30, 40)[0], 0.6f, 1e-5f);
}

TEST(Harmonize, ALargeHoleConverges) {
  // 1500 x 1200 px of hole: the coarse-to-fine solve reaches the constant correction everywhere.
  const cv::Size s(1600, 1300);
  const cv::Mat orig(s, CV_32FC3, cv::Scalar(0.7, 0.2, 0.5));
  cv::Mat gen(s, CV_32FC3, cv::Scalar(0.4, 0.4, 0.4));
  cv::Mat hole = cv::Mat::zeros(s, CV_8UC1);
  hole(cv::Rect(50, 50, 1500, 1200)).setTo(255);
  const cv::Mat out = harmonize(gen, orig, hole);
  EXPECT_LT(max_diff_in(out, orig, hole), 2e-3);
}

TEST(Harmonize, RefusesBadInputs) {
  const cv::Size s(40, 30);
  const cv::Mat a(s, CV_32FC3, cv::Scalar::all(0.5)), hole = cv::Mat::zeros(s, CV_8UC1);
  EXPECT_THROW(harmonize(a, cv::Mat(cv::Size(41, 30), CV_32FC3), hole), dsk::edit::InputError);
  EXPECT_THROW(harmonize(a, cv::Mat(s, CV_8UC3), hole), dsk::edit::InputError);
  EXPECT_THROW(harmonize(a, a, cv::Mat(s, CV_32FC1)), dsk::edit::InputError);
  EXPECT_THROW(harmonize(cv::Mat(), a, hole), dsk::edit::InputError);
  EXPECT_THROW(harmonize(a, a, hole, 1.5), dsk::edit::InputError);
  EXPECT_THROW(harmonize(a, a, hole, -0.1), dsk::edit::InputError);
  EXPECT_THROW(harmonize(a, a, hole, std::nan("")), dsk::edit::InputError);
}
