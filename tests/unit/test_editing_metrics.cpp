// editing/metrics: evaluation metrics on synthetic cases with known answers, and the baselines.
#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/metrics.h"

using namespace dsk::edit;

namespace {

cv::Mat texture(cv::Size s, std::uint64_t seed, int type = CV_8UC3) {
  cv::Mat m(s, type);
  cv::RNG(seed).fill(m, cv::RNG::UNIFORM, 0, CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256);
  cv::GaussianBlur(m, m, {0, 0}, 0.8);
  return m;
}

cv::Mat hole_mask(cv::Size s, cv::Rect r) {
  cv::Mat m = cv::Mat::zeros(s, CV_8UC1);
  m(r).setTo(255);
  return m;
}

const cv::Size kSize(160, 120);
const cv::Rect kHole(40, 30, 70, 60);

}  // namespace

TEST(Psnr, IdenticalImagesHitTheCapAndSsimIsOne) {
  const cv::Mat img = texture(kSize, 1), mask = hole_mask(kSize, kHole);
  EXPECT_EQ(hole_psnr(img, img, mask), kPsnrCapDb);
  EXPECT_EQ(coarse_psnr(img, img, mask), kPsnrCapDb);
  EXPECT_NEAR(hole_ssim(img, img, mask), 1.0, 1e-6);
}

TEST(Psnr, KnownErrorGivesKnownDecibelsAndOnlyTheHoleCounts) {
  cv::Mat ref(kSize, CV_32FC3, cv::Scalar::all(0.5)), res = ref.clone();
  const cv::Rect aligned(40, 32, 72, 60);  // on the 4x grid, so the coarse hole has no partial pixels
  const cv::Mat mask = hole_mask(kSize, aligned);
  res(aligned) += cv::Scalar::all(0.1);  // MSE 0.01 -> 20 dB
  res(cv::Rect(0, 0, 20, 20)).setTo(cv::Scalar::all(1.0));  // outside the hole: ignored
  EXPECT_NEAR(hole_psnr(res, ref, mask), 20.0, 1e-4);
  EXPECT_NEAR(coarse_psnr(res, ref, mask), 20.0, 1e-4);
  // A hole off the grid: its coarse border pixels mix in known pixels, so the error looks smaller.
  cv::Mat res2 = ref.clone();
  res2(kHole) += cv::Scalar::all(0.1);
  EXPECT_GT(coarse_psnr(res2, ref, hole_mask(kSize, kHole)), 20.0);

  cv::Mat ref8(kSize, CV_8UC1, cv::Scalar(100)), res8 = ref8.clone();
  res8(aligned).setTo(110);
  EXPECT_NEAR(hole_psnr(res8, ref8, mask), 20.0 * std::log10(255.0 / 10.0), 1e-4);
  EXPECT_THROW(hole_psnr(res8, ref8, cv::Mat::zeros(kSize, CV_8UC1)), dsk::edit::InputError);
  EXPECT_THROW(hole_psnr(res8, texture(kSize, 1), mask), dsk::edit::InputError);  // channels differ
}

TEST(Psnr, CoarsePsnrForgivesFineNoise) {
  const cv::Mat ref = texture(kSize, 2), mask = hole_mask(kSize, kHole);
  cv::Mat noise(kSize, CV_16SC3), res;
  cv::RNG(3).fill(noise, cv::RNG::UNIFORM, -40, 41);
  cv::Mat ref16;
  ref.convertTo(ref16, CV_16SC3);
  cv::Mat noisy = ref16 + noise;
  noisy.convertTo(res, CV_8UC3);
  const double fine = hole_psnr(res, ref, mask), coarse = coarse_psnr(res, ref, mask);
  EXPECT_GT(coarse, fine + 8.0);  // averaging 4x4 cuts independent noise power by ~16 (12 dB)
}

TEST(Ssim, DropsWithNoise) {
  const cv::Mat ref = texture(kSize, 4), mask = hole_mask(kSize, kHole);
  double last = 1.0;
  for (int amp : {5, 20, 60}) {
    cv::Mat noise(kSize, CV_16SC3), r16, res;
    cv::RNG(amp).fill(noise, cv::RNG::UNIFORM, -amp, amp + 1);
    ref.convertTo(r16, CV_16SC3);
    cv::Mat(r16 + noise).convertTo(res, CV_8UC3);
    const double s = hole_ssim(res, ref, mask);
    EXPECT_LT(s, last) << amp;
    EXPECT_GT(s, -1.0);
    last = s;
  }
  EXPECT_LT(last, 0.6);
}

TEST(Sharpness, BlurredFillIsBelowOne) {
  const cv::Mat ref = texture(kSize, 5), mask = hole_mask(kSize, kHole);
  EXPECT_NEAR(sharpness_ratio(ref, ref, mask), 1.0, 1e-9);
  cv::Mat blurred, res = ref.clone();
  cv::GaussianBlur(ref, blurred, {0, 0}, 2.0);
  blurred(kHole).copyTo(res(kHole));
  EXPECT_LT(sharpness_ratio(res, ref, mask), 0.2);
  cv::Mat flat(kSize, CV_8UC3, cv::Scalar::all(90));
  EXPECT_EQ(sharpness_ratio(flat, flat, mask), 1.0);
  EXPECT_TRUE(std::isinf(sharpness_ratio(ref, flat, mask)));
}

TEST(TextureDistance, ZeroForTheSameStatisticsAndRaisedByBlurAndNoise) {
  const cv::Mat ref = texture(kSize, 5), mask = hole_mask(kSize, kHole);
  EXPECT_EQ(texture_distance(ref, ref, mask), 0.0);
  // The same kind of texture, not pixel-aligned (another draw of the same process): near 0,
  // while its PSNR is poor.
  const cv::Mat other = texture(kSize, 77);
  EXPECT_LT(texture_distance(other, ref, mask), 0.08);
  EXPECT_LT(hole_psnr(other, ref, mask), 20.0);
  // A blur and added noise both raise it.
  cv::Mat blurred;
  cv::GaussianBlur(ref, blurred, {0, 0}, 2.0);
  EXPECT_GT(texture_distance(blurred, ref, mask), 0.4);
  cv::Mat noisy, noise(kSize, CV_16SC3);
  cv::RNG(3).fill(noise, cv::RNG::NORMAL, 0, 40);
  ref.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(noisy, CV_8UC3);
  EXPECT_GT(texture_distance(noisy, ref, mask), 0.3);
  // Flat reference: 0 for a flat result, +inf for a textured one.
  const cv::Mat flat(kSize, CV_8UC3, cv::Scalar::all(90));
  EXPECT_EQ(texture_distance(flat, flat, mask), 0.0);
  EXPECT_TRUE(std::isinf(texture_distance(ref, flat, mask)));
  EXPECT_THROW(texture_distance(ref, ref, cv::Mat::zeros(kSize, CV_8UC1)), dsk::edit::InputError);
  EXPECT_THROW(texture_distance(ref, ref(cv::Rect(0, 0, 100, 100)), mask), dsk::edit::InputError);
}

TEST(TextureDistance, IsTheW1OfGradientMagnitudesOverTheirMean) {
  // Every gradient doubled: each quantile moves by itself, so W1 / mean = 1 exactly (float images,
  // no rounding). Sobel is linear and the luma is linear in the channels.
  cv::Mat ref;
  texture(kSize, 9).convertTo(ref, CV_32FC3, 0.5 / 255);
  const cv::Mat mask = hole_mask(kSize, kHole);
  EXPECT_NEAR(texture_distance(ref * 2, ref, mask), 1.0, 1e-5);
  EXPECT_NEAR(texture_distance(ref * 0.5, ref, mask), 0.5, 1e-5);
  // Only the eroded hole's gradients count (which see 1 px further): the outside and the outer
  // 1 px of the hole taken from the reference change nothing.
  cv::Mat res = ref * 0.5;
  cv::Mat outside = ref.clone();
  const cv::Rect inner(kHole.x + 1, kHole.y + 1, kHole.width - 2, kHole.height - 2);
  res(inner).copyTo(outside(inner));
  EXPECT_NEAR(texture_distance(outside, ref, mask), 0.5, 1e-5);
}

TEST(EdgeF1, DefinitionOnMaps) {
  const cv::Mat mask = hole_mask(kSize, kHole);
  cv::Mat a = cv::Mat::zeros(kSize, CV_8UC1);
  cv::line(a, {45, 35}, {100, 60}, cv::Scalar(255));
  EdgeScore s = edge_f1_maps(a, a, mask);
  EXPECT_DOUBLE_EQ(s.f1, 1.0);
  EXPECT_GT(s.edge_px, 40);

  cv::Mat shifted = cv::Mat::zeros(kSize, CV_8UC1);
  cv::line(shifted, {45, 37}, {100, 62}, cv::Scalar(255));  // 2 px lower: within tolerance
  EXPECT_DOUBLE_EQ(edge_f1_maps(shifted, a, mask).f1, 1.0);
  cv::Mat far = cv::Mat::zeros(kSize, CV_8UC1);
  cv::line(far, {45, 45}, {100, 70}, cv::Scalar(255));  // 10 px lower
  EXPECT_DOUBLE_EQ(edge_f1_maps(far, a, mask).f1, 0.0);

  // Extra edges far from the sketch halve the precision, recall stays 1.
  cv::Mat both = a.clone();
  cv::line(both, {45, 60}, {100, 85}, cv::Scalar(255));  // same shape, 25 px lower
  s = edge_f1_maps(both, a, mask);
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_NEAR(s.f1, 2 * 0.5 / 1.5, 1e-12);

  const cv::Mat none = cv::Mat::zeros(kSize, CV_8UC1);
  EXPECT_DOUBLE_EQ(edge_f1_maps(none, none, mask).f1, 1.0);  // nothing asked, nothing drawn
  s = edge_f1_maps(none, a, mask);  // sketch ignored
  EXPECT_DOUBLE_EQ(s.precision, 1.0);
  EXPECT_DOUBLE_EQ(s.recall, 0.0);
  EXPECT_DOUBLE_EQ(s.f1, 0.0);
  s = edge_f1_maps(a, none, mask);  // edges where no sketch asked for them
  EXPECT_DOUBLE_EQ(s.precision, 0.0);
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_DOUBLE_EQ(s.f1, 0.0);
  // Edges outside the hole do not count.
  cv::Mat outside = cv::Mat::zeros(kSize, CV_8UC1);
  cv::line(outside, {0, 5}, {150, 5}, cv::Scalar(255));
  EXPECT_EQ(edge_f1_maps(outside, none, mask).edge_px, 0);
}

TEST(EdgeF1, PooledOverCropsWeighsPixelsNotCrops) {
  const cv::Mat mask = hole_mask(kSize, kHole);
  // A crop with a long sketched line drawn well, and one whose hole holds a 3 px dot the result
  // missed: the mean of the F1s is 0.5, the pooled F1 barely moves from the first crop's.
  cv::Mat line = cv::Mat::zeros(kSize, CV_8UC1), dot = cv::Mat::zeros(kSize, CV_8UC1);
  cv::line(line, {45, 35}, {100, 60}, cv::Scalar(255));
  cv::line(dot, {70, 50}, {72, 50}, cv::Scalar(255));
  const EdgeScore good = edge_f1_maps(line, line, mask);
  const EdgeScore missed = edge_f1_maps(cv::Mat::zeros(kSize, CV_8UC1), dot, mask);
  ASSERT_DOUBLE_EQ(good.f1, 1.0);
  ASSERT_DOUBLE_EQ(missed.f1, 0.0);
  EXPECT_EQ(missed.sketch_px, 3);
  EXPECT_EQ(good.edge_hits, good.edge_px);
  EXPECT_EQ(missed.sketch_hits, 0);
  const EdgeScore pooled = pooled_edge_f1({good, missed});
  EXPECT_EQ(pooled.sketch_px, good.sketch_px + 3);
  EXPECT_DOUBLE_EQ(pooled.precision, 1.0);
  EXPECT_DOUBLE_EQ(pooled.recall, static_cast<double>(good.sketch_px) / (good.sketch_px + 3));
  EXPECT_GT(pooled.f1, 0.95);
  // One crop pools to itself; nothing pooled is "nothing asked, nothing drawn".
  EXPECT_DOUBLE_EQ(pooled_edge_f1({missed}).f1, missed.f1);
  EXPECT_DOUBLE_EQ(pooled_edge_f1({}).f1, 1.0);
}

TEST(EdgeF1, ResultAgainstItsOwnCannySketchIsOne) {
  cv::Mat img(kSize, CV_8UC3, cv::Scalar(200, 200, 200));
  cv::rectangle(img, cv::Rect(55, 45, 35, 30), cv::Scalar(40, 60, 80), cv::FILLED);
  const cv::Mat mask = hole_mask(kSize, kHole);
  const cv::Mat sketch = canny_sketch(img);
  const EdgeScore s = edge_f1(img, sketch, mask);
  EXPECT_DOUBLE_EQ(s.f1, 1.0);
  EXPECT_GT(s.sketch_px, 100);
  // A wide brush sketch of the same outline still matches (the sketch is thinned first).
  cv::Mat wide = cv::Mat::zeros(kSize, CV_32FC1);
  cv::rectangle(wide, cv::Rect(55, 45, 35, 30), cv::Scalar(1.0), 7);
  EXPECT_GT(edge_f1(img, wide, mask).f1, 0.9);
  // A blank result misses the sketch.
  const cv::Mat blank(kSize, CV_8UC3, cv::Scalar::all(200));
  EXPECT_DOUBLE_EQ(edge_f1(blank, sketch, mask).recall, 0.0);
}

TEST(Baselines, TeleaAndNsFillTheHoleAndKeepTheRest) {
  // A smooth gradient: a classical fill should get close to it.
  cv::Mat img(kSize, CV_8UC3);
  for (int y = 0; y < kSize.height; ++y)
    for (int x = 0; x < kSize.width; ++x)
      img.at<cv::Vec3b>(y, x) = {static_cast<uchar>(x), static_cast<uchar>(y * 2), 128};
  const cv::Rect small_hole(60, 40, 16, 16);
  const cv::Mat mask = hole_mask(kSize, small_hole);
  for (const char* method : {"telea", "ns"}) {
    cv::Mat damaged = img.clone();
    damaged(small_hole).setTo(cv::Scalar(0, 0, 255));
    const cv::Mat out = inpaint_baseline(damaged, mask, method, 3.0);
    ASSERT_EQ(out.type(), img.type());
    cv::Mat diff;
    cv::absdiff(out, damaged, diff);
    diff.setTo(0, mask);
    EXPECT_EQ(cv::countNonZero(diff.reshape(1)), 0) << method;  // outside: untouched
    EXPECT_GT(hole_psnr(out, img, mask), 30.0) << method;
  }
  // Other layouts: gray 8-bit, 16-bit color, BGRA (alpha kept).
  cv::Mat gray, img16, bgra;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  img.convertTo(img16, CV_16U, 257.0);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  bgra.forEach<cv::Vec4b>([](cv::Vec4b& p, const int* pos) { p[3] = static_cast<uchar>(pos[1]); });
  EXPECT_GT(hole_psnr(inpaint_baseline(gray, mask, "telea"), gray, mask), 30.0);
  EXPECT_GT(hole_psnr(inpaint_baseline(img16, mask, "ns"), img16, mask), 30.0);
  const cv::Mat out4 = inpaint_baseline(bgra, mask, "telea");
  ASSERT_EQ(out4.type(), CV_8UC4);
  cv::Mat a0, a1;
  cv::extractChannel(bgra, a0, 3);
  cv::extractChannel(out4, a1, 3);
  EXPECT_EQ(cv::countNonZero(a0 != a1), 0);
  EXPECT_THROW(inpaint_baseline(img, mask, "patchmatch"), dsk::edit::InputError);
  EXPECT_THROW(inpaint_baseline(img, mask, "telea", 0.0), dsk::edit::InputError);
}

TEST(ScoreInpaint, BundlesTheMetrics) {
  const cv::Mat ref = texture(kSize, 6), mask = hole_mask(kSize, kHole);
  const InpaintScores s = score_inpaint(ref, ref, mask, canny_sketch(ref));
  EXPECT_EQ(s.psnr, kPsnrCapDb);
  EXPECT_NEAR(s.ssim, 1.0, 1e-6);
  EXPECT_NEAR(s.sharpness, 1.0, 1e-9);
  EXPECT_EQ(s.texture, 0.0);
  EXPECT_DOUBLE_EQ(s.edge.f1, 1.0);
  EXPECT_TRUE(std::isnan(score_inpaint(ref, ref, mask, cv::Mat()).edge.f1));
}
