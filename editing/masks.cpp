#include "editing/masks.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/random.h"

namespace dsk::edit {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Sets (grow) or clears (trim) exactly `count` pixels of `mask`, those closest to the mask (grow) or
// to the outside (trim) first; ties go in raster order, so the result is deterministic.
void adjust_area(cv::Mat& mask, int count, bool grow) {
  if (count <= 0) return;
  cv::Mat src = grow ? (mask == 0) : (mask != 0), dist;
  cv::distanceTransform(src, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  std::vector<std::pair<float, int>> cand;
  for (int y = 0; y < mask.rows; ++y) {
    const uchar* m = mask.ptr<uchar>(y);
    const float* d = dist.ptr<float>(y);
    for (int x = 0; x < mask.cols; ++x)
      if ((m[x] == 0) == grow) cand.emplace_back(d[x], y * mask.cols + x);
  }
  count = std::min<int>(count, static_cast<int>(cand.size()));
  std::nth_element(cand.begin(), cand.begin() + (count - 1), cand.end());
  for (int i = 0; i < count; ++i) {
    const int idx = cand[static_cast<std::size_t>(i)].second;
    mask.at<uchar>(idx / mask.cols, idx % mask.cols) = grow ? 255 : 0;
  }
}

void draw_stroke(cv::Mat& mask, std::mt19937_64& rng) {
  const int h = mask.rows, w = mask.cols;
  const double short_side = std::min(h, w), long_side = std::max(h, w);
  const int width = std::max(1, static_cast<int>(std::lround(rnd::uniform(rng, 0.04, 0.15) * short_side)));
  const int vertices = rnd::uniform_int(rng, 4, 10);
  cv::Point2d p(rnd::uniform(rng, 0, w), rnd::uniform(rng, 0, h));
  double angle = rnd::uniform(rng, 0, 2 * kPi);
  for (int i = 0; i < vertices; ++i) {
    angle += rnd::uniform(rng, -0.6 * kPi, 0.6 * kPi);
    const double len = rnd::uniform(rng, 0.05, 0.25) * long_side;
    cv::Point2d q(std::clamp(p.x + len * std::cos(angle), 0.0, w - 1.0),
                  std::clamp(p.y + len * std::sin(angle), 0.0, h - 1.0));
    const cv::Point a(static_cast<int>(std::lround(p.x)), static_cast<int>(std::lround(p.y)));
    const cv::Point b(static_cast<int>(std::lround(q.x)), static_cast<int>(std::lround(q.y)));
    cv::line(mask, a, b, cv::Scalar(255), width, cv::LINE_8);
    cv::circle(mask, b, std::max(0, width / 2), cv::Scalar(255), cv::FILLED, cv::LINE_8);
    p = q;
  }
}

void draw_box(cv::Mat& mask, std::mt19937_64& rng) {
  const int h = mask.rows, w = mask.cols;
  const cv::Point2f c(static_cast<float>(rnd::uniform(rng, 0, w)), static_cast<float>(rnd::uniform(rng, 0, h)));
  const cv::Size2f s(static_cast<float>(std::max(1.0, rnd::uniform(rng, 0.1, 0.5) * w)),
                     static_cast<float>(std::max(1.0, rnd::uniform(rng, 0.1, 0.5) * h)));
  const float angle = rnd::bernoulli(rng, 0.5) ? static_cast<float>(rnd::uniform(rng, -30, 30)) : 0.f;
  cv::Point2f pts[4];
  cv::RotatedRect(c, s, angle).points(pts);
  std::vector<cv::Point> poly;
  for (const auto& q : pts) poly.emplace_back(static_cast<int>(std::lround(q.x)), static_cast<int>(std::lround(q.y)));
  cv::fillConvexPoly(mask, poly, cv::Scalar(255), cv::LINE_8);
}

template <typename T>
cv::Rect support_bbox(const cv::Mat& m) {
  int x0 = m.cols, x1 = -1, y0 = m.rows, y1 = -1;
  for (int y = 0; y < m.rows; ++y) {
    const T* p = m.ptr<T>(y);
    int first = -1, last = -1;
    for (int x = 0; x < m.cols; ++x)
      if (p[x] > T(0)) {
        first = x;
        break;
      }
    if (first < 0) continue;
    for (int x = m.cols - 1; x >= first; --x)
      if (p[x] > T(0)) {
        last = x;
        break;
      }
    x0 = std::min(x0, first);
    x1 = std::max(x1, last);
    y0 = std::min(y0, y);
    y1 = y;
  }
  return x1 < 0 ? cv::Rect() : cv::Rect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}

}  // namespace

cv::Rect mask_support_bbox(const cv::Mat& mask) {
  if (mask.empty()) throw InputError("the mask is empty; pass a mask image (white = regenerate)");
  if (mask.channels() != 1) return support_bbox<float>(soft_mask_from_image(mask));
  switch (mask.depth()) {
    case CV_8U: return support_bbox<uchar>(mask);
    case CV_16U: return support_bbox<ushort>(mask);
    case CV_32F: return support_bbox<float>(mask);  // NaN compares false: not selected
    case CV_64F: return support_bbox<double>(mask);
    default: return support_bbox<float>(to_soft_mask(mask));
  }
}

cv::Mat to_soft_mask(const cv::Mat& mask) {
  if (mask.empty()) throw InputError("the mask is empty; pass a mask image (white = regenerate)");
  if (mask.channels() != 1) return soft_mask_from_image(mask);
  cv::Mat out;
  mask.convertTo(out, CV_32F, 1.0 / depth_max(mask.depth()));
  cv::patchNaNs(out, 0.0);
  return cv::min(cv::max(out, 0.0), 1.0);
}

cv::Mat soft_mask_from_image(const cv::Mat& image) {
  cv::Mat soft = to_luma(image);
  if (image.channels() == 4) {
    cv::Mat alpha;
    cv::extractChannel(image, alpha, 3);
    alpha.convertTo(alpha, CV_32F, 1.0 / depth_max(image.depth()));
    soft = soft.mul(alpha);
  }
  return cv::min(cv::max(soft, 0.0), 1.0);
}

cv::Mat binary_mask(const cv::Mat& soft) { return to_soft_mask(soft) > 0.5f; }

double mask_fraction(const cv::Mat& mask) {
  if (mask.empty() || mask.type() != CV_8UC1) throw InputError("mask_fraction: expected a CV_8UC1 mask");
  return static_cast<double>(cv::countNonZero(mask)) / static_cast<double>(mask.total());
}

cv::Mat random_training_mask(int h, int w, std::mt19937_64& rng, double min_frac, double max_frac) {
  if (h < 1 || w < 1) {
    throw InputError("random_training_mask: size " + std::to_string(w) + "x" + std::to_string(h) +
                     " is empty; pass a positive height and width");
  }
  if (!(min_frac > 0 && min_frac <= max_frac && max_frac <= 1)) {
    throw InputError("random_training_mask: need 0 < min_frac <= max_frac <= 1, got [" +
                     std::to_string(min_frac) + ", " + std::to_string(max_frac) + "]");
  }
  const double n = static_cast<double>(h) * w;
  const auto lo = static_cast<long long>(std::ceil(min_frac * n - 1e-9));
  const auto hi = static_cast<long long>(std::floor(max_frac * n + 1e-9));
  if (lo > hi || hi < 1) {
    throw InputError("random_training_mask: a " + std::to_string(w) + "x" + std::to_string(h) +
                     " image has no pixel count in [" + std::to_string(min_frac) + ", " +
                     std::to_string(max_frac) + "] of its area; use a larger image or a wider range");
  }
  const long long target =
      std::clamp(static_cast<long long>(std::llround(rnd::uniform(rng, min_frac, max_frac) * n)), lo, hi);

  cv::Mat mask = cv::Mat::zeros(h, w, CV_8UC1);
  for (int shape = 0; shape < 40 && cv::countNonZero(mask) < target; ++shape) {
    if (rnd::bernoulli(rng, 0.3)) {
      draw_box(mask, rng);
    } else {
      draw_stroke(mask, rng);
    }
  }
  const long long area = cv::countNonZero(mask);
  if (area == 0) mask.at<uchar>(h / 2, w / 2) = 255;
  if (area < lo) adjust_area(mask, static_cast<int>(target - std::max(area, 1LL)), true);
  if (area > hi) adjust_area(mask, static_cast<int>(area - target), false);
  return mask;
}

cv::Mat eval_mask(int h, int w, std::uint64_t seed, double min_frac, double max_frac) {
  std::mt19937_64 rng(seed);
  return random_training_mask(h, w, rng, min_frac, max_frac);
}

}  // namespace dsk::edit
