// editing/sketch: stroke maps, thinning, width normalisation, stroke-preserving resize.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/sketch.h"

using namespace dsk::edit;

namespace {

// A few strokes (lines and an arc) drawn with `value` and `width` onto `canvas`.
void draw_strokes(cv::Mat& canvas, const cv::Scalar& value, int width) {
  cv::line(canvas, {30, 40}, {220, 60}, value, width, cv::LINE_AA);
  cv::line(canvas, {60, 200}, {200, 120}, value, width, cv::LINE_AA);
  cv::ellipse(canvas, {128, 150}, {60, 40}, 0, 20, 200, value, width, cv::LINE_AA);
}

cv::Mat truth_mask(int width) {  // where the strokes are, 0 / 255
  cv::Mat m = cv::Mat::zeros(256, 256, CV_8UC1);
  draw_strokes(m, cv::Scalar(255), width);
  return m > 128;
}

double frac_above(const cv::Mat& map, const cv::Mat& where, float t) {
  return static_cast<double>(cv::countNonZero((map > t) & where)) / cv::countNonZero(where);
}

bool has_2x2_block(const cv::Mat& bin) {
  for (int y = 0; y + 1 < bin.rows; ++y)
    for (int x = 0; x + 1 < bin.cols; ++x)
      if (bin.at<uchar>(y, x) && bin.at<uchar>(y + 1, x) && bin.at<uchar>(y, x + 1) && bin.at<uchar>(y + 1, x + 1))
        return true;
  return false;
}

double iou(const cv::Mat& a, const cv::Mat& b) {
  return static_cast<double>(cv::countNonZero(a & b)) / cv::countNonZero(a | b);
}

}  // namespace

TEST(StrokeMap, DarkStrokesOnWhitePaper) {
  cv::Mat layer(256, 256, CV_8UC1, cv::Scalar(255));
  draw_strokes(layer, cv::Scalar(0), 4);
  SketchKind kind{};
  const cv::Mat map = stroke_map(layer, &kind);
  EXPECT_EQ(kind, SketchKind::Paper);
  ASSERT_EQ(map.type(), CV_32FC1);
  const cv::Mat core = truth_mask(2);
  cv::Mat far;
  cv::dilate(truth_mask(4), far, cv::Mat(), {-1, -1}, 2);
  EXPECT_GT(frac_above(map, core, 0.9f), 0.99);
  EXPECT_EQ(cv::countNonZero((map > 0.f) & ~far), 0);  // paper is exactly 0
  EXPECT_FALSE(is_blank(map));
}

TEST(StrokeMap, UnevenlyLitNoisyPhotoOfASketch) {
  // Light falls off from 250 (right) to 120 (left); the graphite reflects 45% of it. So ink on the
  // bright side (~112) is lighter than bare paper on the dim side (120): no global threshold works.
  const cv::Mat strokes = truth_mask(3);
  cv::Mat layer(256, 256, CV_32FC1);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) {
      const float light = 120.f + 130.f * static_cast<float>(x) / 255.f;
      layer.at<float>(y, x) = strokes.at<uchar>(y, x) ? 0.45f * light : light;
    }
  cv::Mat noise(256, 256, CV_32FC1);
  cv::RNG(3).fill(noise, cv::RNG::NORMAL, 0, 3);
  layer += noise;
  cv::Mat layer8;
  layer.convertTo(layer8, CV_8U);
  const cv::Mat map = stroke_map(layer8);
  cv::Mat near;
  cv::dilate(strokes, near, cv::Mat(), {-1, -1}, 3);
  EXPECT_GT(frac_above(map, truth_mask(1), 0.5f), 0.97);
  EXPECT_LT(frac_above(map, ~near, 0.5f), 0.001);  // the dim left side is not a stroke
  EXPECT_LT(frac_above(map, ~near, 0.1f), 0.01);
}

TEST(StrokeMap, ColourStrokesSixteenBitAndDarkPaper) {
  cv::Mat bgr(256, 256, CV_16UC3, cv::Scalar::all(60000));
  draw_strokes(bgr, cv::Scalar(50000, 5000, 5000), 3);  // blue ink
  EXPECT_GT(frac_above(stroke_map(bgr), truth_mask(1), 0.5f), 0.97);

  cv::Mat chalk(256, 256, CV_8UC1, cv::Scalar(20));  // light strokes on a blackboard
  draw_strokes(chalk, cv::Scalar(230), 3);
  const cv::Mat map = stroke_map(chalk);
  EXPECT_GT(frac_above(map, truth_mask(1), 0.5f), 0.97);
  EXPECT_LT(frac_above(map, ~truth_mask(7), 0.5f), 0.001);
}

TEST(StrokeMap, TransparentLayerUsesAlphaWhateverTheColour) {
  cv::Mat rgba(256, 256, CV_8UC4, cv::Scalar(255, 255, 255, 0));
  draw_strokes(rgba, cv::Scalar(255, 255, 255, 255), 3);  // white strokes on transparency
  SketchKind kind{};
  const cv::Mat map = stroke_map(rgba, &kind);
  EXPECT_EQ(kind, SketchKind::Transparent);
  cv::Mat alpha;
  cv::extractChannel(rgba, alpha, 3);
  alpha.convertTo(alpha, CV_32F, 1.0 / 255);
  EXPECT_LT(cv::norm(map, alpha, cv::NORM_INF), 1e-6);

  cv::Mat opaque(256, 256, CV_8UC4, cv::Scalar(255, 255, 255, 255));  // an opaque paper layer
  draw_strokes(opaque, cv::Scalar(0, 0, 0, 255), 3);
  EXPECT_EQ(detect_sketch_kind(opaque), SketchKind::Paper);
  EXPECT_GT(frac_above(stroke_map(opaque), truth_mask(1), 0.5f), 0.97);
}

TEST(StrokeMap, BlankLayersGiveAllZero) {
  std::vector<cv::Mat> blanks = {cv::Mat(64, 80, CV_8UC1, cv::Scalar(255)),
                                 cv::Mat(64, 80, CV_8UC3, cv::Scalar(128, 128, 128)),
                                 cv::Mat(64, 80, CV_8UC4, cv::Scalar(0, 0, 0, 0)),
                                 cv::Mat(64, 80, CV_16UC1, cv::Scalar(0))};
  for (const auto& b : blanks) {
    const cv::Mat map = stroke_map(b);
    EXPECT_EQ(cv::countNonZero(map), 0);
    EXPECT_TRUE(is_blank(map));
  }
  cv::Mat noisy(200, 200, CV_8UC1);
  cv::RNG(5).fill(noisy, cv::RNG::NORMAL, 240, 2);
  EXPECT_TRUE(is_blank(stroke_map(noisy)));
}

TEST(StrokeMap, RejectsBadInput) {
  EXPECT_THROW(stroke_map(cv::Mat()), dsk::edit::InputError);
  EXPECT_THROW(stroke_map(cv::Mat(4, 4, CV_8UC2)), dsk::edit::InputError);
  EXPECT_THROW(is_blank(cv::Mat(4, 4, CV_8UC1)), dsk::edit::InputError);
}

TEST(Skeleton, ThickStrokesBecomeOnePixelWide) {
  cv::Mat map = cv::Mat::zeros(256, 256, CV_32FC1);
  draw_strokes(map, cv::Scalar(1.0), 12);
  const cv::Mat skel = skeletonize(map);
  ASSERT_EQ(skel.type(), CV_8UC1);
  EXPECT_FALSE(has_2x2_block(skel));
  EXPECT_EQ(cv::countNonZero(skel & (map <= 0.5f)), 0);  // inside the strokes
  // Roughly the centre-line length (the three strokes are ~190 + ~160 + ~170 px long).
  EXPECT_GT(cv::countNonZero(skel), 400);
  EXPECT_LT(cv::countNonZero(skel), 700);
}

TEST(Skeleton, TinyDotsSurvive) {
  cv::Mat map = cv::Mat::zeros(20, 20, CV_32FC1);
  map(cv::Rect(5, 5, 2, 2)).setTo(1.0);
  map(cv::Rect(12, 12, 1, 1)).setTo(1.0);
  const cv::Mat skel = skeletonize(map);
  EXPECT_EQ(cv::countNonZero(skel(cv::Rect(5, 5, 2, 2))), 1);
  EXPECT_EQ(skel.at<uchar>(12, 12), 255);
}

TEST(NormalizeWidth, TwoAndTwelvePixelBrushesLookAlike) {
  cv::Mat thin = cv::Mat::zeros(256, 256, CV_32FC1), thick = thin.clone();
  draw_strokes(thin, cv::Scalar(1.0), 2);
  draw_strokes(thick, cv::Scalar(1.0), 12);
  EXPECT_LT(iou(thin > 0.5f, thick > 0.5f), 0.3);  // very different before
  const cv::Mat a = normalize_stroke_width(thin, 3), b = normalize_stroke_width(thick, 3);
  EXPECT_GT(iou(a > 0.5f, b > 0.5f), 0.6);  // alike after
  // Width ~3: area / skeleton length.
  const double width = cv::sum(b)[0] / cv::countNonZero(skeletonize(thick));
  EXPECT_GT(width, 2.3);
  EXPECT_LT(width, 3.7);
  EXPECT_THROW(normalize_stroke_width(thin, 0), dsk::edit::InputError);
  EXPECT_TRUE(is_blank(normalize_stroke_width(cv::Mat::zeros(10, 10, CV_32FC1), 3)));
}

TEST(ResizeStrokes, ShrinkingKeepsOnePixelLines) {
  cv::Mat map = cv::Mat::zeros(256, 300, CV_32FC1);
  cv::line(map, {0, 101}, {299, 101}, cv::Scalar(1.0), 1);  // horizontal, 1 px
  cv::line(map, {151, 0}, {151, 255}, cv::Scalar(1.0), 1);  // vertical, 1 px
  const cv::Mat small = resize_strokes(map, {97, 64});
  ASSERT_EQ(small.size(), cv::Size(97, 64));
  double mn, mx;
  cv::minMaxLoc(small.row(101 * 64 / 256), &mn, &mx);
  EXPECT_FLOAT_EQ(static_cast<float>(mn), 1.f);  // the whole row is still a full-strength stroke
  cv::minMaxLoc(small.col(151 * 97 / 300), &mn, &mx);
  EXPECT_FLOAT_EQ(static_cast<float>(mn), 1.f);
  cv::Mat area;  // what INTER_AREA would have done: the line fades to about 1/4
  cv::resize(map, area, {97, 64}, 0, 0, cv::INTER_AREA);
  cv::minMaxLoc(area, &mn, &mx);
  EXPECT_LT(mx, 0.5);
}

TEST(ResizeStrokes, GrowingIsSmoothAndBounded) {
  cv::Mat map = cv::Mat::zeros(32, 32, CV_32FC1);
  map.at<float>(16, 16) = 1.f;
  const cv::Mat big = resize_strokes(map, {128, 96});
  ASSERT_EQ(big.size(), cv::Size(128, 96));
  double mn, mx;
  cv::minMaxLoc(big, &mn, &mx);
  EXPECT_GE(mn, 0.0);
  EXPECT_LE(mx, 1.0);
  EXPECT_GT(mx, 0.5);
  EXPECT_THROW(resize_strokes(map, {0, 10}), dsk::edit::InputError);
}
