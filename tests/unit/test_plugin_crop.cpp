// The plug-in's crop (plugin/crop.h) is the engine's working region (editing/region.h), and a
// crop that contains it plans the same square: what lets the plug-in send a crop of the layer
// instead of the whole layer and get the same pixels.
#include <gtest/gtest.h>

#include <random>

#include "editing/region.h"
#include "plugin/crop.h"

namespace {

cv::Rect to_cv(const dsk::gimp::Rect& r) { return {r.x, r.y, r.width, r.height}; }

struct Case {
  cv::Size layer;
  cv::Rect bbox;
  double margin;
  int res;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  std::mt19937 rng(5);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const double margins[] = {0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 0.37};
  const int resolutions[] = {8, 16, 32, 64, 128, 256};
  for (int i = 0; i < 4000; ++i) {
    // Mostly small layers, so the square often reaches past the layer or its edges.
    const cv::Size layer(uniform(1, i % 4 == 0 ? 900 : 200), uniform(1, i % 4 == 0 ? 700 : 200));
    const int w = uniform(1, layer.width), h = uniform(1, layer.height);
    const cv::Rect bbox(uniform(0, layer.width - w), uniform(0, layer.height - h), w, h);
    out.push_back({layer, bbox, margins[i % 7], resolutions[uniform(0, 5)]});
  }
  return out;
}

cv::Mat mask_of(cv::Size size, cv::Rect box) {
  cv::Mat m = cv::Mat::zeros(size, CV_8UC1);
  m(box).setTo(255);
  return m;
}

}  // namespace

TEST(PluginCrop, IsTheEnginesWorkingRegion) {
  for (const Case& c : cases()) {
    const auto plan = dsk::edit::plan_region(c.layer, mask_of(c.layer, c.bbox), c.res, c.margin);
    const auto crop = dsk::gimp::edit_crop(c.layer.width, c.layer.height,
                                           {c.bbox.x, c.bbox.y, c.bbox.width, c.bbox.height}, c.margin, c.res);
    ASSERT_EQ(to_cv(crop), plan.crop) << "layer " << c.layer << " bbox " << c.bbox << " margin " << c.margin << " R "
                                      << c.res;
  }
}

// The engine given only the crop plans the same square (shifted), reads the same pixels and
// scales them the same way; so do larger crops that still lie in the layer.
TEST(PluginCrop, ACropContainingItPlansTheSameSquare) {
  std::mt19937 rng(9);
  for (const Case& c : cases()) {
    const cv::Mat mask = mask_of(c.layer, c.bbox);
    const auto full = dsk::edit::plan_region(c.layer, mask, c.res, c.margin);
    cv::Rect x = full.crop;
    for (int grow = 0; grow < 2; ++grow) {
      const auto sub = dsk::edit::plan_region(x.size(), mask(x), c.res, c.margin);
      ASSERT_EQ(sub.crop + x.tl(), full.crop) << "layer " << c.layer << " bbox " << c.bbox << " crop " << x;
      ASSERT_EQ(sub.square + x.tl(), full.square);
      ASSERT_EQ(sub.crop_in_square, full.crop_in_square);
      ASSERT_EQ(sub.side, full.side);
      ASSERT_EQ(sub.scale, full.scale);
      // A larger crop: the working region grown by a few pixels on random sides, clipped.
      const int l = std::uniform_int_distribution<int>(0, 9)(rng), t = std::uniform_int_distribution<int>(0, 9)(rng);
      x = cv::Rect(x.x - l, x.y - t, x.width + l + std::uniform_int_distribution<int>(0, 9)(rng),
                   x.height + t + std::uniform_int_distribution<int>(0, 9)(rng)) &
          cv::Rect(cv::Point(0, 0), c.layer);
    }
  }
}
