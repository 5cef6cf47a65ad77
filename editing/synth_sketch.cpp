#include "editing/synth_sketch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/random.h"
#include "editing/sketch.h"

namespace dsk::edit {
namespace {

void check_photo(const cv::Mat& img, const char* fn) {
  if (img.empty()) throw InputError(std::string(fn) + ": the image is empty; pass a photo");
}

// Removes 8-connected blobs with fewer than min_px pixels from a CV_8UC1 0/255 image.
void drop_small_components(cv::Mat& bin, int min_px) {
  if (min_px <= 1) return;
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(bin, labels, stats, centroids, 8, CV_32S);
  std::vector<uchar> keep(n, 0);
  for (int i = 1; i < n; ++i) keep[i] = stats.at<int>(i, cv::CC_STAT_AREA) >= min_px;
  for (int y = 0; y < bin.rows; ++y) {
    uchar* b = bin.ptr<uchar>(y);
    const int* l = labels.ptr<int>(y);
    for (int x = 0; x < bin.cols; ++x)
      if (b[x] && !keep[l[x]]) b[x] = 0;
  }
}

// A smooth random field of the given size: normal (or uniform in [-1, 1]) values on a coarse grid
// with cells of about `cell` pixels, upsampled bicubically.
cv::Mat smooth_field(cv::Size size, double cell, std::mt19937_64& rng, bool normal) {
  const int gw = std::max(2, static_cast<int>(std::lround(size.width / cell)) + 1);
  const int gh = std::max(2, static_cast<int>(std::lround(size.height / cell)) + 1);
  cv::Mat grid(gh, gw, CV_32FC1);
  for (int y = 0; y < gh; ++y)
    for (int x = 0; x < gw; ++x)
      grid.at<float>(y, x) = static_cast<float>(normal ? rnd::normal(rng) : rnd::uniform(rng, -1.0, 1.0));
  cv::Mat out;
  cv::resize(grid, out, size, 0, 0, cv::INTER_CUBIC);
  return out;
}

}  // namespace

cv::Mat xdog_sketch(const cv::Mat& bgr, const XDoGParams& params, std::mt19937_64* rng) {
  check_photo(bgr, "xdog_sketch");
  XDoGParams p = params;
  if (!(p.sigma > 0) || !(p.k > 1) || !(p.phi > 0) || !(p.tau > 0 && p.tau < 1.5)) {
    throw InputError("xdog_sketch: need sigma > 0, k > 1, phi > 0 and 0 < tau < 1.5; "
                     "the defaults (0.8, 1.6, 200, 0.98) are a good start");
  }
  if (rng) {
    p.sigma *= rnd::uniform(*rng, 0.75, 1.5);
    p.tau = rnd::uniform(*rng, 0.97, 0.99);
    p.phi *= std::exp2(rnd::uniform(*rng, -1.0, 1.0));
  }
  const cv::Mat luma = to_luma(bgr);
  cv::Mat g1, g2;
  cv::GaussianBlur(luma, g1, {0, 0}, p.sigma, p.sigma, cv::BORDER_REPLICATE);
  cv::GaussianBlur(luma, g2, {0, 0}, p.sigma * p.k, p.sigma * p.k, cv::BORDER_REPLICATE);
  cv::Mat bin(luma.size(), CV_8UC1);
  for (int y = 0; y < luma.rows; ++y) {
    const float* a = g1.ptr<float>(y);
    const float* b = g2.ptr<float>(y);
    uchar* o = bin.ptr<uchar>(y);
    for (int x = 0; x < luma.cols; ++x) {
      const double d = a[x] - p.tau * b[x];
      const double t = d >= p.epsilon ? 1.0 : 1.0 + std::tanh(p.phi * (d - p.epsilon));
      o[x] = (1.0 - t) > p.threshold ? 255 : 0;
    }
  }
  drop_small_components(bin, p.min_component_px);
  cv::Mat out;
  bin.convertTo(out, CV_32F, 1.0 / 255.0);
  return out;
}

cv::Mat canny_sketch(const cv::Mat& bgr, const CannyParams& params) {
  check_photo(bgr, "canny_sketch");
  if (!(params.sigma >= 0) || params.blur_sigma < 0) {
    throw InputError("canny_sketch: sigma and blur_sigma must be >= 0; the defaults are 0.33 and 1.0");
  }
  cv::Mat g8;
  to_luma(bgr).convertTo(g8, CV_8U, 255.0);
  if (params.blur_sigma > 0) {
    cv::GaussianBlur(g8, g8, {0, 0}, params.blur_sigma, params.blur_sigma, cv::BORDER_REPLICATE);
  }
  std::int64_t hist[256] = {};
  for (int y = 0; y < g8.rows; ++y) {
    const uchar* p = g8.ptr<uchar>(y);
    for (int x = 0; x < g8.cols; ++x) ++hist[p[x]];
  }
  const std::int64_t half = (static_cast<std::int64_t>(g8.total()) + 1) / 2;
  std::int64_t acc = 0;
  int median = 255;
  for (int v = 0; v < 256; ++v) {
    acc += hist[v];
    if (acc >= half) {
      median = v;
      break;
    }
  }
  const double low = std::max(params.min_low, (1.0 - params.sigma) * median);
  const double high = std::max({params.min_high, (1.0 + params.sigma) * median, low + 1.0});
  cv::Mat edges, out;
  cv::Canny(g8, edges, low, high, 3, params.l2_gradient);
  edges.convertTo(out, CV_32F, 1.0 / 255.0);
  return out;
}

cv::Mat scribble_augment(const cv::Mat& map, std::mt19937_64& rng, double strength) {
  if (map.empty() || map.type() != CV_32FC1) {
    throw InputError("scribble_augment: expected a CV_32FC1 stroke map (see stroke_map)");
  }
  if (!(strength >= 0)) {
    throw InputError("scribble_augment: strength must be in [0, 1], got " + std::to_string(strength));
  }
  strength = std::min(strength, 1.0);
  if (strength == 0.0 || is_blank(map)) return map.clone();

  const cv::Size size = map.size();
  const double s = std::clamp(std::min(size.width, size.height) / 256.0, 0.25, 8.0);

  // 1. Smooth warp of the whole drawing (hand wobble, imprecise placement).
  const double amp = 3.0 * strength * std::max(s, 0.5);
  const cv::Mat dx = smooth_field(size, 40.0 * s, rng, true) * (amp * 0.6);
  const cv::Mat dy = smooth_field(size, 40.0 * s, rng, true) * (amp * 0.6);
  cv::Mat mx(size, CV_32FC1), my(size, CV_32FC1);
  for (int y = 0; y < size.height; ++y) {
    float* px = mx.ptr<float>(y);
    float* py = my.ptr<float>(y);
    const float* ddx = dx.ptr<float>(y);
    const float* ddy = dy.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      px[x] = static_cast<float>(x) + ddx[x];
      py[x] = static_cast<float>(y) + ddy[x];
    }
  }
  cv::Mat warped;
  cv::remap(map, warped, mx, my, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));

  // 2. Skeleton, broken by small gaps.
  cv::Mat skel = skeletonize(warped, 0.4f);
  std::vector<cv::Point> on;
  cv::findNonZero(skel, on);
  if (on.empty()) return cv::Mat::zeros(size, CV_32FC1);
  const double gaps_mean = static_cast<double>(on.size()) * strength / (60.0 * s);
  const int n_gaps = static_cast<int>(gaps_mean * rnd::uniform(rng, 0.5, 1.5));
  const int max_r = std::max(1, static_cast<int>(std::lround(1.0 + 2.0 * strength * s)));
  for (int i = 0; i < n_gaps; ++i) {
    const cv::Point c = on[static_cast<std::size_t>(rnd::uniform_int(rng, 0, static_cast<int>(on.size()) - 1))];
    cv::circle(skel, c, rnd::uniform_int(rng, 1, max_r), cv::Scalar(0), cv::FILLED, cv::LINE_8);
  }

  // 3. Drop whole pieces; never all of them.
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(skel, labels, stats, centroids, 8, CV_32S);
  if (n > 1) {
    std::vector<uchar> keep(n, 1);
    int kept = 0, largest = 1;
    for (int i = 1; i < n; ++i) {
      keep[i] = !rnd::bernoulli(rng, 0.3 * strength);
      kept += keep[i];
      if (stats.at<int>(i, cv::CC_STAT_AREA) > stats.at<int>(largest, cv::CC_STAT_AREA)) largest = i;
    }
    if (kept == 0) keep[largest] = 1;
    for (int y = 0; y < size.height; ++y) {
      uchar* sp = skel.ptr<uchar>(y);
      const int* l = labels.ptr<int>(y);
      for (int x = 0; x < size.width; ++x)
        if (sp[x] && !keep[l[x]]) sp[x] = 0;
    }
  }

  // 4. Redraw with a varying width and pressure.
  const double base = std::max(1.0, rnd::uniform(rng, 1.0, 1.0 + 3.0 * strength) * s);
  cv::Mat width = smooth_field(size, 60.0 * s, rng, false) * (0.5 * strength * base) + base;
  width = cv::max(width, 0.75);
  cv::Mat pressure = smooth_field(size, 60.0 * s, rng, false) * (0.15 * strength) + (1.0 - 0.15 * strength);
  cv::Mat out = render_skeleton(skel, width).mul(pressure);
  return cv::min(cv::max(out, 0.0), 1.0);
}

}  // namespace dsk::edit
