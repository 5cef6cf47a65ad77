// editing/composite: exactness outside the selection, feathering inside, depth and layout kept.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/composite.h"

using namespace dsk::edit;

namespace {

cv::Mat random_mat(cv::Size s, int type, std::uint64_t seed) {
  cv::Mat m(s, type);
  const double hi = CV_MAT_DEPTH(type) == CV_16U ? 65536 : CV_MAT_DEPTH(type) == CV_32F ? 1.0 : 256;
  cv::RNG(seed).fill(m, cv::RNG::UNIFORM, 0, hi);
  return m;
}

// Per-pixel "all channels equal" between a and b (same type), CV_8UC1 0/255.
cv::Mat pixels_equal(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat ne;
  cv::compare(a.reshape(1), b.reshape(1), ne, cv::CMP_NE);
  ne = ne.reshape(a.channels());
  std::vector<cv::Mat> ch;
  cv::split(ne, ch);
  cv::Mat any = ch[0];
  for (std::size_t i = 1; i < ch.size(); ++i) any |= ch[i];
  return any == 0;
}

cv::Mat blob_mask(cv::Size s) {  // an irregular selection, 0 / 255
  cv::Mat m = cv::Mat::zeros(s, CV_8UC1);
  cv::ellipse(m, {60, 50}, {35, 25}, 30, 0, 360, cv::Scalar(255), cv::FILLED);
  cv::rectangle(m, cv::Rect(70, 60, 30, 25), cv::Scalar(255), cv::FILLED);
  return m;
}

}  // namespace

TEST(Composite, OutsideTheMaskIsBitIdenticalForEveryLayout) {
  const cv::Size size(140, 110);
  const cv::Mat mask = blob_mask(size);
  const cv::Rect crop(15, 10, 110, 90);
  ASSERT_EQ(cv::countNonZero(mask) - cv::countNonZero(mask(crop)), 0);
  const cv::Mat gen = random_mat(crop.size(), CV_32FC3, 99);
  for (int depth : {CV_8U, CV_16U, CV_32F}) {
    for (int cn : {1, 3, 4}) {
      const cv::Mat orig = random_mat(size, CV_MAKETYPE(depth, cn), static_cast<std::uint64_t>(depth * 10 + cn));
      for (int feather : {0, 6}) {
        const cv::Mat out = composite(orig, gen, mask, feather, crop.tl());
        ASSERT_EQ(out.type(), orig.type());
        ASSERT_EQ(out.size(), orig.size());
        const cv::Mat same = pixels_equal(out, orig);
        EXPECT_EQ(cv::countNonZero(~same & (mask == 0)), 0) << "depth " << depth << " cn " << cn;
        EXPECT_GT(cv::countNonZero(~same & mask), cv::countNonZero(mask) * 9 / 10);
        if (cn == 4) {  // alpha kept everywhere
          cv::Mat a0, a1;
          cv::extractChannel(orig, a0, 3);
          cv::extractChannel(out, a1, 3);
          EXPECT_EQ(cv::countNonZero(a0 != a1), 0);
        }
      }
    }
  }
}

TEST(Composite, InteriorGetsTheGeneratedPixelsExactly) {
  const cv::Size size(120, 100);
  cv::Mat mask = cv::Mat::zeros(size, CV_8UC1);
  mask(cv::Rect(20, 20, 60, 50)).setTo(255);
  const cv::Mat orig = random_mat(size, CV_8UC3, 1);
  cv::Mat gen(size, CV_32FC3, cv::Scalar(0.2, 0.4, 0.6));  // RGB, full image coordinates
  const cv::Mat out = composite(orig, gen, mask, 5);
  // >= 6 px inside the edge: weight 1, BGR = (0.6, 0.4, 0.2) * 255 rounded.
  EXPECT_EQ(out.at<cv::Vec3b>(45, 50), cv::Vec3b(153, 102, 51));
  EXPECT_EQ(out.at<cv::Vec3b>(26, 26), cv::Vec3b(153, 102, 51));
  // On the selection's edge row the weight is small, but > 0.
  const cv::Mat w = blend_weight(mask, 5);
  EXPECT_GT(w.at<float>(20, 50), 0.f);
  EXPECT_LT(w.at<float>(20, 50), 0.1f);
  EXPECT_LT(w.at<float>(21, 50), w.at<float>(23, 50));
  EXPECT_FLOAT_EQ(w.at<float>(19, 50), 0.f);
  EXPECT_FLOAT_EQ(w.at<float>(25, 50), 1.f);

  cv::Mat gray16 = random_mat(size, CV_16UC1, 3);
  const cv::Mat g = composite(gray16, gen, mask, 0);
  const double luma = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6;
  EXPECT_NEAR(g.at<ushort>(20, 20), luma * 65535, 1.0);  // no feather: edge pixel fully replaced
}

TEST(Composite, FeatherStaysInsideAndIgnoresTheImageBorder) {
  const cv::Size size(80, 60);
  cv::Mat mask = cv::Mat::zeros(size, CV_8UC1);
  mask(cv::Rect(0, 0, 40, 60)).setTo(255);  // touches the left, top and bottom borders
  const cv::Mat w = blend_weight(mask, 8);
  EXPECT_FLOAT_EQ(w.at<float>(0, 0), 1.f);    // border of the image: no fade
  EXPECT_FLOAT_EQ(w.at<float>(30, 20), 1.f);
  EXPECT_LT(w.at<float>(30, 39), 0.05f);      // inner edge: faded
  EXPECT_EQ(cv::countNonZero(w(cv::Rect(40, 0, 40, 60))), 0);
}

TEST(Composite, SoftMaskValuesBlend) {
  const cv::Size size(10, 10);
  cv::Mat orig(size, CV_8UC1, cv::Scalar(100));
  cv::Mat soft(size, CV_32FC1, cv::Scalar(0.0));
  soft(cv::Rect(2, 2, 6, 6)).setTo(0.5);
  soft.at<float>(0, 0) = 0.25f;
  cv::Mat gen(size, CV_32FC3, cv::Scalar::all(200.0 / 255.0));
  const cv::Mat out = composite(orig, gen, soft, 0);
  EXPECT_EQ(out.at<uchar>(4, 4), 150);
  EXPECT_EQ(out.at<uchar>(0, 0), 125);
  EXPECT_EQ(out.at<uchar>(9, 9), 100);
  // With feathering the soft value still caps the weight.
  EXPECT_LE(composite(orig, gen, soft, 1).at<uchar>(4, 4), 150);
}

TEST(Composite, RejectsMismatches) {
  const cv::Size size(50, 40);
  const cv::Mat orig = random_mat(size, CV_8UC3, 2);
  cv::Mat mask = cv::Mat::zeros(size, CV_8UC1);
  mask(cv::Rect(5, 5, 30, 20)).setTo(255);
  const cv::Mat gen(20, 20, CV_32FC3, cv::Scalar::all(0.5));
  EXPECT_THROW(composite(orig, gen, mask, 2, {10, 10}), dsk::edit::InputError);  // mask beyond the crop
  EXPECT_THROW(composite(orig, gen, mask, 2, {40, 30}), dsk::edit::InputError);  // crop leaves the image
  EXPECT_THROW(composite(orig, cv::Mat(size, CV_8UC3), mask, 2), dsk::edit::InputError);
  EXPECT_THROW(composite(orig, cv::Mat(size, CV_32FC3), cv::Mat::zeros(10, 10, CV_8UC1), 2), dsk::edit::InputError);
  EXPECT_THROW(composite(orig, cv::Mat(size, CV_32FC3), mask, -1), dsk::edit::InputError);
  // An empty mask changes nothing.
  const cv::Mat same = composite(orig, cv::Mat(size, CV_32FC3, cv::Scalar::all(0.5)), cv::Mat::zeros(size, CV_8UC1), 3);
  EXPECT_EQ(cv::norm(same, orig, cv::NORM_INF), 0.0);
}
