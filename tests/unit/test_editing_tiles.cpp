// editing/tiles: tile geometry, blending weights, refine-resolution choice.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/tiles.h"

using namespace dsk::edit;

TEST(PlanTiles, CoversTheAreaWithTheRequestedOverlap) {
  for (const cv::Size area : {cv::Size(1000, 700), cv::Size(256, 256), cv::Size(257, 600), cv::Size(2048, 2048)}) {
    const int R = 256, ov = 32;
    const auto tiles = plan_tiles(area, R, ov);
    cv::Mat cover = cv::Mat::zeros(area, CV_32SC1);
    for (const Tile& t : tiles) {
      ASSERT_EQ(t.rect.size(), cv::Size(R, R));
      ASSERT_EQ(t.rect & cv::Rect(cv::Point(0, 0), area), t.rect);
      cover(t.rect) += 1;
    }
    double mn, mx;
    cv::minMaxLoc(cover, &mn, &mx);
    EXPECT_GE(mn, 1.0) << area;
    // Horizontal and vertical neighbours overlap by at least `ov`.
    for (std::size_t i = 0; i < tiles.size(); ++i)
      for (std::size_t j = 0; j < tiles.size(); ++j) {
        const Tile &a = tiles[i], &b = tiles[j];
        if (a.row == b.row && b.col == a.col + 1) {
          EXPECT_GE(a.rect.br().x - b.rect.x, ov);
        }
        if (a.col == b.col && b.row == a.row + 1) {
          EXPECT_GE(a.rect.br().y - b.rect.y, ov);
        }
      }
    EXPECT_EQ(tiles.back().rect.br(), cv::Point(area.width, area.height));
  }
  EXPECT_EQ(plan_tiles({1000, 700}, 256, 32).size(), 5u * 3u);
  EXPECT_EQ(plan_tiles({256, 256}, 256, 32).size(), 1u);
}

TEST(PlanTiles, RejectsBadGeometry) {
  EXPECT_THROW(plan_tiles({200, 500}, 256, 32), dsk::edit::InputError);
  EXPECT_THROW(plan_tiles({500, 500}, 256, 129), dsk::edit::InputError);
  EXPECT_THROW(plan_tiles({500, 500}, 256, -1), dsk::edit::InputError);
}

TEST(TileWeight, SmoothPositiveAndOneInside) {
  const cv::Mat w = tile_weight(64, 16);
  ASSERT_EQ(w.size(), cv::Size(64, 64));
  double mn, mx;
  cv::minMaxLoc(w, &mn, &mx);
  EXPECT_GT(mn, 0.0);
  EXPECT_FLOAT_EQ(static_cast<float>(mx), 1.f);
  EXPECT_FLOAT_EQ(w.at<float>(32, 32), 1.f);
  EXPECT_FLOAT_EQ(w.at<float>(16, 40), 1.f);
  EXPECT_LT(w.at<float>(0, 32), 0.01f);
  EXPECT_LT(w.at<float>(32, 0), w.at<float>(32, 8));
  EXPECT_FLOAT_EQ(w.at<float>(5, 20), w.at<float>(58, 43));  // symmetric
  EXPECT_EQ(cv::countNonZero(tile_weight(32, 0) != 1.f), 0);
}

TEST(BlendTiles, CropsOfOneImageBlendBackToIt) {
  const cv::Size area(700, 520);
  cv::Mat img(area, CV_32FC3);
  cv::RNG(8).fill(img, cv::RNG::UNIFORM, 0.0, 1.0);
  const auto tiles = plan_tiles(area, 128, 24);
  std::vector<cv::Mat> parts;
  for (const Tile& t : tiles) parts.push_back(img(t.rect).clone());
  const cv::Mat out = blend_tiles(tiles, parts, area, 24);
  EXPECT_LT(cv::norm(out, img, cv::NORM_INF), 1e-5);
}

TEST(BlendTiles, SeamsAreSmooth) {
  const cv::Size area(400, 128);
  const auto tiles = plan_tiles(area, 128, 32);
  std::vector<cv::Mat> parts;
  for (std::size_t i = 0; i < tiles.size(); ++i)
    parts.emplace_back(128, 128, CV_32FC1, cv::Scalar(static_cast<double>(i % 2)));  // 0, 1, 0, ...
  const cv::Mat out = blend_tiles(tiles, parts, area, 32);
  // Along a row the value never jumps by more than a raised-cosine step allows.
  float max_step = 0.f;
  for (int x = 1; x < area.width; ++x)
    max_step = std::max(max_step, std::abs(out.at<float>(64, x) - out.at<float>(64, x - 1)));
  EXPECT_LT(max_step, 0.1f);
  EXPECT_FLOAT_EQ(out.at<float>(64, 0), 0.f);
  EXPECT_THROW(blend_tiles(tiles, {parts[0]}, area, 32), dsk::edit::InputError);
  std::vector<cv::Mat> wrong = parts;
  wrong[1] = cv::Mat(64, 64, CV_32FC1);
  EXPECT_THROW(blend_tiles(tiles, wrong, area, 32), dsk::edit::InputError);
}

TEST(PlanRefinement, NativeWhenAffordableAtMostTwoTimesDownscaled) {
  const RefinePlan small = plan_refinement(200, 256, 32);
  EXPECT_FALSE(small.needed);
  EXPECT_TRUE(small.tiles.empty());

  const RefinePlan native = plan_refinement(700, 256, 32, 16);
  EXPECT_TRUE(native.needed);
  EXPECT_DOUBLE_EQ(native.scale, 1.0);
  EXPECT_EQ(native.size, 700);
  EXPECT_EQ(native.tiles.size(), 9u);

  const RefinePlan mid = plan_refinement(1300, 256, 32, 16);  // native needs 6x6 = 36 tiles
  EXPECT_GE(mid.scale, 0.5);
  EXPECT_LT(mid.scale, 1.0);
  EXPECT_LE(mid.tiles.size(), 16u);
  EXPECT_EQ(mid.size, 4 * (256 - 32) + 32);  // the largest square 4x4 tiles cover

  const RefinePlan huge = plan_refinement(8000, 256, 32, 16);
  EXPECT_DOUBLE_EQ(huge.scale, 0.5);  // the 2x cap wins over max_tiles
  EXPECT_EQ(huge.size, 4000);
  EXPECT_GT(huge.tiles.size(), 16u);
  EXPECT_THROW(plan_refinement(1000, 256, 32, 0), dsk::edit::InputError);
}
