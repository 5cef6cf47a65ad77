// editing/region: planning the working square, crop <-> work transforms.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/region.h"
#include "editing/sketch.h"

using namespace dsk::edit;

namespace {

cv::Mat box_mask(cv::Size image, cv::Rect box) {
  cv::Mat m = cv::Mat::zeros(image, CV_8UC1);
  m(box).setTo(255);
  return m;
}

// A smooth color image whose value identifies the position: B = x / W, G = y / H, R = 0.5.
cv::Mat coordinate_image(cv::Size s) {
  cv::Mat img(s, CV_32FC3);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x)
      img.at<cv::Vec3f>(y, x) = {static_cast<float>(x) / static_cast<float>(s.width),
                                 static_cast<float>(y) / static_cast<float>(s.height), 0.5f};
  return img;
}

}  // namespace

TEST(PlanRegion, SmallSelectionGetsNativeResolutionContext) {
  const cv::Size image(1000, 800);
  const cv::Rect sel(480, 380, 40, 30);
  const RegionPlan p = plan_region(image, box_mask(image, sel), 256, 0.25, 16);
  EXPECT_EQ(p.bbox, sel);
  EXPECT_EQ(p.context, cv::Rect(480 - 16, 380 - 16, 40 + 32, 30 + 32));  // 0.25*40 = 10 < 16 px
  EXPECT_EQ(p.side, 256);  // grown to R rather than upscaling a 72 px crop 3.5x
  EXPECT_DOUBLE_EQ(p.scale, 1.0);
  EXPECT_EQ(p.crop, p.square);  // fits: no padding
  EXPECT_EQ(p.crop & p.context, p.context);
  EXPECT_EQ(cv::countNonZero(p.valid < 1.f), 0);

  const RegionPlan q = plan_region(image, box_mask(image, sel), 256, 0.25, 16, false);
  EXPECT_EQ(q.side, 72);
  EXPECT_NEAR(q.scale, 256.0 / 72.0, 1e-12);
}

TEST(PlanRegion, MarginIsAFractionOfTheSelection) {
  const cv::Size image(2000, 2000);
  const RegionPlan p = plan_region(image, box_mask(image, {800, 900, 400, 200}), 128, 0.25, 16);
  EXPECT_EQ(p.context, cv::Rect(700, 800, 600, 400));
  EXPECT_EQ(p.side, 600);
  EXPECT_EQ(p.square, cv::Rect(700, 700, 600, 600));  // squared with real pixels, not padding
  EXPECT_EQ(p.crop, p.square);
}

TEST(PlanRegion, SquareShiftsInsideTheImageNearBorders) {
  const cv::Size image(1000, 1000);
  const RegionPlan p = plan_region(image, box_mask(image, {0, 0, 300, 100}), 256, 0.25, 16);
  EXPECT_EQ(p.context, cv::Rect(0, 0, 375, 175));
  EXPECT_EQ(p.square, cv::Rect(0, 0, 375, 375));
  EXPECT_EQ(p.crop, p.square);
}

TEST(PlanRegion, WideImagePadsInsteadOfStretching) {
  const cv::Size image(1000, 300);
  const cv::Rect sel(100, 50, 800, 200);
  const RegionPlan p = plan_region(image, box_mask(image, sel), 256, 0.1, 0);
  EXPECT_EQ(p.side, 960);
  EXPECT_EQ(p.square.height, 960);
  EXPECT_EQ(p.crop, cv::Rect(20, 0, 960, 300));
  EXPECT_LT(p.square.y, 0);
  // Rows of padding above and below are invalid; the middle rows are valid.
  EXPECT_FLOAT_EQ(p.valid.at<float>(0, 128), 0.f);
  EXPECT_FLOAT_EQ(p.valid.at<float>(255, 128), 0.f);
  EXPECT_FLOAT_EQ(p.valid.at<float>(128, 128), 1.f);
  const double real = cv::sum(p.valid)[0] / (256.0 * 256.0) * 960.0 * 960.0;
  EXPECT_NEAR(real, 960.0 * 300.0, 1.0);

  // Uniform scale: the work pixel of image pixel (x, y) carries that pixel's coordinates.
  const cv::Mat img = coordinate_image(image);
  cv::Mat bgr8;
  img.convertTo(bgr8, CV_16U, 65535.0);
  const cv::Mat work = to_work_image(p, bgr8);
  ASSERT_EQ(work.type(), CV_32FC3);
  ASSERT_EQ(work.size(), cv::Size(256, 256));
  for (const cv::Point pt : {cv::Point(100, 150), cv::Point(500, 60), cv::Point(900, 250)}) {
    const double u = (pt.x - p.square.x + 0.5) * p.scale - 0.5, v = (pt.y - p.square.y + 0.5) * p.scale - 0.5;
    const cv::Vec3f w = work.at<cv::Vec3f>(static_cast<int>(std::lround(v)), static_cast<int>(std::lround(u)));
    EXPECT_NEAR(w[2], static_cast<double>(pt.x) / 1000.0, 0.01) << pt;  // RGB order: R = B channel
    EXPECT_NEAR(w[1], static_cast<double>(pt.y) / 300.0, 0.02) << pt;
  }

  // Padding: mask says "generate", sketch has no strokes.
  cv::Mat sketch = cv::Mat::ones(image, CV_32FC1);
  const cv::Mat wm = to_work_mask(p, box_mask(image, sel)), ws = to_work_sketch(p, sketch);
  EXPECT_FLOAT_EQ(wm.at<float>(2, 128), 1.f);
  EXPECT_FLOAT_EQ(ws.at<float>(2, 128), 0.f);
  EXPECT_FLOAT_EQ(ws.at<float>(128, 128), 1.f);
  EXPECT_FLOAT_EQ(wm.at<float>(128, 4), 0.f);  // left of the selection, real pixels: keep
}

TEST(PlanRegion, NativeRoundTripIsExact) {
  const cv::Size image(600, 500);
  cv::Mat img(image, CV_8UC3);
  cv::RNG(4).fill(img, cv::RNG::UNIFORM, 0, 256);
  const RegionPlan p = plan_region(image, box_mask(image, {250, 200, 50, 50}), 128, 0.25, 16);
  ASSERT_EQ(p.side, 128);
  const cv::Mat work = to_work_image(p, img);
  const cv::Mat back = work_to_crop(p, work);
  ASSERT_EQ(back.size(), p.crop.size());
  cv::Mat expect, rgb;
  img(p.crop).convertTo(expect, CV_32F, 1.0 / 255);
  cv::cvtColor(expect, rgb, cv::COLOR_BGR2RGB);
  EXPECT_EQ(cv::norm(back, rgb, cv::NORM_INF), 0.0);
}

TEST(PlanRegion, ResampledRoundTripIsClose) {
  const cv::Size image(900, 700);
  const cv::Mat img = coordinate_image(image);
  const RegionPlan down = plan_region(image, box_mask(image, {100, 100, 600, 500}), 128);
  const cv::Mat back = work_to_crop(down, to_work_image(down, img));
  cv::Mat rgb;
  cv::cvtColor(img(down.crop), rgb, cv::COLOR_BGR2RGB);
  cv::Mat diff;
  cv::absdiff(back, rgb, diff);
  EXPECT_LT(cv::mean(diff)[0], 0.003);

  const RegionPlan up = plan_region(image, box_mask(image, {400, 300, 20, 20}), 256, 0.25, 4, false);
  ASSERT_GT(up.scale, 4.0);
  const cv::Mat back_up = work_to_crop(up, to_work_image(up, img));
  cv::cvtColor(img(up.crop), rgb, cv::COLOR_BGR2RGB);
  cv::absdiff(back_up, rgb, diff);
  EXPECT_LT(cv::mean(diff)[0], 0.003);
}

TEST(PlanRegion, SketchDownscaleKeepsThinStrokes) {
  const cv::Size image(2048, 2048);
  cv::Mat sketch = cv::Mat::zeros(image, CV_32FC1);
  cv::line(sketch, {100, 1000}, {1900, 1003}, cv::Scalar(1.0), 1);
  const RegionPlan p = plan_region(image, box_mask(image, {50, 50, 1948, 1948}), 128, 0.0, 0);
  ASSERT_LT(p.scale, 0.1);
  const cv::Mat ws = to_work_sketch(p, sketch);
  double mn, mx;
  cv::minMaxLoc(ws, &mn, &mx);
  EXPECT_FLOAT_EQ(static_cast<float>(mx), 1.f);
  EXPECT_GT(cv::countNonZero(ws > 0.99f), 100);
}

TEST(PlanRegion, ErrorsNameTheProblem) {
  const cv::Size image(100, 100);
  EXPECT_THROW(plan_region(image, cv::Mat::zeros(image, CV_8UC1), 64), dsk::edit::InputError);
  EXPECT_THROW(plan_region(image, cv::Mat::zeros(50, 50, CV_8UC1), 64), dsk::edit::InputError);
  EXPECT_THROW(plan_region(image, box_mask(image, {1, 1, 5, 5}), 4), dsk::edit::InputError);
  EXPECT_THROW(plan_region(image, box_mask(image, {1, 1, 5, 5}), 64, -0.1), dsk::edit::InputError);
  try {
    plan_region(image, cv::Mat::zeros(image, CV_32FC1), 64);
  } catch (const dsk::edit::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("selects nothing"), std::string::npos);
  }
  const RegionPlan p = plan_region(image, box_mask(image, {10, 10, 5, 5}), 64);
  EXPECT_THROW(to_work_image(p, cv::Mat(50, 50, CV_8UC3)), dsk::edit::InputError);
  EXPECT_THROW(to_work_sketch(p, cv::Mat(image, CV_8UC1)), dsk::edit::InputError);
  EXPECT_THROW(work_to_crop(p, cv::Mat(64, 32, CV_32FC3)), dsk::edit::InputError);
}

TEST(PlanRegion, SoftMaskBoundingBoxIncludesFaintPixels) {
  const cv::Size image(300, 300);
  cv::Mat soft = cv::Mat::zeros(image, CV_32FC1);
  soft(cv::Rect(100, 100, 50, 50)).setTo(1.0);
  soft(cv::Rect(200, 200, 10, 10)).setTo(0.1);  // faint, but the composite touches it
  const RegionPlan p = plan_region(image, soft, 64);
  EXPECT_EQ(p.bbox, cv::Rect(100, 100, 110, 110));
}
