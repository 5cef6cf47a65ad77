#include "editing/sketch.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"

namespace dsk::edit {
namespace {

// Histogram of values in [0, 1] at 1/4095 resolution, for robust quantiles without sorting.
struct Hist01 {
  static constexpr int kBins = 4096;
  std::vector<std::int64_t> n = std::vector<std::int64_t>(kBins, 0);
  std::int64_t total = 0;

  static int bin(float v) { return std::clamp(static_cast<int>(v * (kBins - 1) + 0.5f), 0, kBins - 1); }
  static double value(int b) { return static_cast<double>(b) / (kBins - 1); }

  explicit Hist01(const cv::Mat& m) {  // CV_32FC1
    for (int y = 0; y < m.rows; ++y) {
      const float* p = m.ptr<float>(y);
      for (int x = 0; x < m.cols; ++x) ++n[static_cast<std::size_t>(bin(p[x]))];
    }
    total = static_cast<std::int64_t>(m.total());
  }
  Hist01() = default;

  // q-quantile of the bins >= first_bin; 0 when they are empty.
  double quantile(double q, int first_bin = 0) const {
    std::int64_t count = 0;
    for (int b = first_bin; b < kBins; ++b) count += n[static_cast<std::size_t>(b)];
    if (count == 0) return 0.0;
    const auto target = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * static_cast<double>(count))));
    std::int64_t acc = 0;
    for (int b = first_bin; b < kBins; ++b) {
      acc += n[static_cast<std::size_t>(b)];
      if (acc >= target) return value(b);
    }
    return 1.0;
  }
  // Histogram of |v - c| over the same values.
  Hist01 deviation(double c) const {
    Hist01 d;
    for (int b = 0; b < kBins; ++b) d.n[static_cast<std::size_t>(bin(static_cast<float>(std::abs(value(b) - c))))] += n[static_cast<std::size_t>(b)];
    d.total = total;
    return d;
  }
};

void check_layer(const cv::Mat& layer, const char* fn) {
  if (layer.empty()) throw InputError(std::string(fn) + ": the sketch layer is empty; pass an image");
  if (layer.channels() != 1 && layer.channels() != 3 && layer.channels() != 4) {
    throw InputError(std::string(fn) + ": the sketch layer has " + std::to_string(layer.channels()) +
                     " channels; pass gray, BGR or BGRA");
  }
}

void check_map(const cv::Mat& map, const char* fn) {
  if (map.empty() || map.type() != CV_32FC1) {
    throw InputError(std::string(fn) + ": expected a CV_32FC1 stroke map (see stroke_map)");
  }
}

cv::Mat paper_strokes(const cv::Mat& layer) {
  // Luma in [0, 1]; RGBA composited over white paper.
  cv::Mat luma = to_luma(layer);
  if (layer.channels() == 4) {
    cv::Mat alpha;
    cv::extractChannel(layer, alpha, 3);
    alpha.convertTo(alpha, CV_32F, 1.0 / depth_max(layer.depth()));
    luma = luma.mul(alpha) + (1.0 - alpha);
  }
  cv::min(luma, 1.0, luma);
  cv::max(luma, 0.0, luma);
  if (Hist01(luma).quantile(0.5) < 0.35) luma = 1.0 - luma;  // light strokes on dark paper

  // Local paper level: max filter over ~1/8 of the short side, on a lightly blurred copy at most
  // 512 px long (the blur keeps the max from riding on the paper's noise).
  const double reduce = std::min(1.0, 512.0 / std::max(luma.rows, luma.cols));
  cv::Mat small;
  if (reduce < 1.0) {
    cv::Size s(std::max(1, static_cast<int>(std::lround(luma.cols * reduce))),
               std::max(1, static_cast<int>(std::lround(luma.rows * reduce))));
    cv::resize(luma, small, s, 0, 0, cv::INTER_AREA);
  } else {
    small = luma.clone();
  }
  cv::GaussianBlur(small, small, {0, 0}, 1.0, 1.0, cv::BORDER_REPLICATE);
  const int k = std::max(3, static_cast<int>(std::lround(std::min(small.rows, small.cols) / 8.0))) | 1;
  cv::Mat bg;
  cv::dilate(small, bg, cv::getStructuringElement(cv::MORPH_RECT, {k, k}), {-1, -1}, 1,
             cv::BORDER_REPLICATE);
  cv::blur(bg, bg, {k, k}, {-1, -1}, cv::BORDER_REPLICATE);
  if (bg.size() != luma.size()) cv::resize(bg, bg, luma.size(), 0, 0, cv::INTER_LINEAR);

  // Darkness relative to the local paper (ink reflectance: invariant to the lighting), in place.
  cv::Mat dark = luma;
  for (int y = 0; y < dark.rows; ++y) {
    float* d = dark.ptr<float>(y);
    const float* b = bg.ptr<float>(y);
    for (int x = 0; x < dark.cols; ++x) {
      const float paper = std::max(b[x], d[x]);
      d[x] = std::clamp((paper - d[x]) / std::max(paper, 0.05f), 0.f, 1.f);
    }
  }
  bg.release();
  // Paper statistics (most of a sketch is paper): median darkness and its spread (MAD); the
  // strokes' strength is the 90th percentile of what lies above the noise floor.
  const Hist01 hist(dark);
  const double centre = hist.quantile(0.5);
  const double spread = 1.4826 * hist.deviation(centre).quantile(0.5);
  const double noise_floor = std::clamp(centre + 4.0 * spread, 0.06, 0.3);
  const int first = Hist01::bin(static_cast<float>(noise_floor)) + 1;
  double ref = hist.quantile(0.9, first);
  if (ref == 0.0) ref = 1.0;
  ref = std::max(ref, noise_floor + 0.2);
  const auto f0 = static_cast<float>(noise_floor), inv = static_cast<float>(1.0 / (ref - noise_floor));
  for (int y = 0; y < dark.rows; ++y) {
    float* d = dark.ptr<float>(y);
    for (int x = 0; x < dark.cols; ++x) d[x] = std::clamp((d[x] - f0) * inv, 0.f, 1.f);
  }
  return dark;
}

// Zhang-Suen thinning in place on a CV_8UC1 0/1 image with a zero 1-pixel border.
void zhang_suen(cv::Mat& img) {
  std::vector<cv::Point> fg, del;
  for (int y = 1; y < img.rows - 1; ++y) {
    const uchar* p = img.ptr<uchar>(y);
    for (int x = 1; x < img.cols - 1; ++x)
      if (p[x]) fg.emplace_back(x, y);
  }
  bool changed = true;
  while (changed) {
    changed = false;
    for (int sub = 0; sub < 2; ++sub) {
      del.clear();
      for (const cv::Point& q : fg) {
        const uchar* up = img.ptr<uchar>(q.y - 1);
        const uchar* mid = img.ptr<uchar>(q.y);
        const uchar* dn = img.ptr<uchar>(q.y + 1);
        if (!mid[q.x]) continue;
        const int x = q.x;
        // p2 N, p3 NE, p4 E, p5 SE, p6 S, p7 SW, p8 W, p9 NW
        const std::array<int, 8> n = {up[x], up[x + 1], mid[x + 1], dn[x + 1],
                                      dn[x], dn[x - 1], mid[x - 1], up[x - 1]};
        const int b = n[0] + n[1] + n[2] + n[3] + n[4] + n[5] + n[6] + n[7];
        if (b < 2 || b > 6) continue;
        int a = 0;
        for (int i = 0; i < 8; ++i) a += (n[i] == 0 && n[(i + 1) % 8] == 1);
        if (a != 1) continue;
        const int p2 = n[0], p4 = n[2], p6 = n[4], p8 = n[6];
        const bool ok = sub == 0 ? (p2 * p4 * p6 == 0 && p4 * p6 * p8 == 0)
                                 : (p2 * p4 * p8 == 0 && p2 * p6 * p8 == 0);
        if (ok) del.push_back(q);
      }
      for (const cv::Point& q : del) img.at<uchar>(q) = 0;
      if (!del.empty()) changed = true;
    }
    fg.erase(std::remove_if(fg.begin(), fg.end(), [&](const cv::Point& q) { return !img.at<uchar>(q); }),
             fg.end());
  }
}

}  // namespace

SketchKind detect_sketch_kind(const cv::Mat& layer) {
  check_layer(layer, "detect_sketch_kind");
  if (layer.channels() != 4) return SketchKind::Paper;
  cv::Mat alpha;
  cv::extractChannel(layer, alpha, 3);
  const double half = depth_max(layer.depth()) * 0.5;
  const double transparent = static_cast<double>(cv::countNonZero(alpha < half)) / static_cast<double>(alpha.total());
  return transparent >= 0.10 ? SketchKind::Transparent : SketchKind::Paper;
}

cv::Mat stroke_map(const cv::Mat& layer, SketchKind* kind) {
  const SketchKind k = detect_sketch_kind(layer);
  if (kind) *kind = k;
  if (k == SketchKind::Transparent) {
    cv::Mat alpha, out;
    cv::extractChannel(layer, alpha, 3);
    alpha.convertTo(out, CV_32F, 1.0 / depth_max(layer.depth()));
    return cv::min(cv::max(out, 0.0), 1.0);
  }
  return paper_strokes(layer);
}

bool is_blank(const cv::Mat& map, int min_pixels) {
  check_map(map, "is_blank");
  return cv::countNonZero(map > 0.5f) < std::max(1, min_pixels);
}

cv::Mat skeletonize(const cv::Mat& map, float threshold) {
  check_map(map, "skeletonize");
  cv::Mat bin = map > threshold;  // 0/255
  cv::Mat work;
  cv::copyMakeBorder(bin / 255, work, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
  zhang_suen(work);
  cv::Mat skel = work(cv::Rect(1, 1, map.cols, map.rows)).clone();

  // Keep one pixel of every stroke that thinning erased completely (2x2 dots and the like).
  cv::Mat labels;
  const int n = cv::connectedComponents(bin, labels, 8, CV_32S);
  if (n > 1) {
    std::vector<char> kept(n, 0);
    for (int y = 0; y < skel.rows; ++y) {
      const uchar* s = skel.ptr<uchar>(y);
      const int* l = labels.ptr<int>(y);
      for (int x = 0; x < skel.cols; ++x)
        if (s[x]) kept[l[x]] = 1;
    }
    if (std::count(kept.begin() + 1, kept.end(), 0) > 0) {
      cv::Mat dist;
      cv::distanceTransform(bin, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
      std::vector<float> best(n, -1.f);
      std::vector<cv::Point> at(n);
      for (int y = 0; y < bin.rows; ++y) {
        const int* l = labels.ptr<int>(y);
        const float* d = dist.ptr<float>(y);
        for (int x = 0; x < bin.cols; ++x)
          if (l[x] > 0 && !kept[l[x]] && d[x] > best[l[x]]) best[l[x]] = d[x], at[l[x]] = {x, y};
      }
      for (int i = 1; i < n; ++i)
        if (!kept[i]) skel.at<uchar>(at[i]) = 1;
    }
  }
  return skel * 255;
}

namespace {

// value = clamp(width/2 + 0.5 - distance to the skeleton, 0, 1), computed in the distance buffer.
template <typename Width>
cv::Mat render(const cv::Mat& skeleton, Width width_at) {
  if (skeleton.empty() || skeleton.type() != CV_8UC1) {
    throw InputError("render_skeleton: expected a CV_8UC1 skeleton (see skeletonize)");
  }
  if (cv::countNonZero(skeleton) == 0) return cv::Mat::zeros(skeleton.size(), CV_32FC1);
  cv::Mat dist;
  cv::distanceTransform(skeleton == 0, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  for (int y = 0; y < dist.rows; ++y) {
    float* d = dist.ptr<float>(y);
    for (int x = 0; x < dist.cols; ++x) d[x] = std::clamp(width_at(y, x) * 0.5f + 0.5f - d[x], 0.f, 1.f);
  }
  return dist;
}

}  // namespace

cv::Mat render_skeleton(const cv::Mat& skeleton, double width_px) {
  if (!(width_px > 0)) {
    throw InputError("stroke width must be > 0 pixels, got " + std::to_string(width_px) +
                     "; pass e.g. 3");
  }
  const auto w = static_cast<float>(width_px);
  return render(skeleton, [w](int, int) { return w; });
}

cv::Mat render_skeleton(const cv::Mat& skeleton, const cv::Mat& width_px) {
  if (width_px.type() != CV_32FC1 || width_px.size() != skeleton.size()) {
    throw InputError("render_skeleton: the width field must be CV_32FC1 of the skeleton's size");
  }
  return render(skeleton, [&width_px](int y, int x) { return width_px.at<float>(y, x); });
}

cv::Mat normalize_stroke_width(const cv::Mat& map, double width_px) {
  check_map(map, "normalize_stroke_width");
  if (!(width_px > 0)) {
    throw InputError("normalize_stroke_width: width must be > 0 pixels, got " +
                     std::to_string(width_px) + "; pass e.g. 3");
  }
  return render_skeleton(skeletonize(map), width_px);
}

namespace {

// Resizes along x only (transpose for y): max pooling when shrinking, bilinear when growing.
cv::Mat resize_axis_x(const cv::Mat& src, int dst_w) {
  const int src_w = src.cols;
  if (dst_w == src_w) return src;
  if (dst_w > src_w) {
    cv::Mat out;
    cv::resize(src, out, {dst_w, src.rows}, 0, 0, cv::INTER_LINEAR);
    return out;
  }
  cv::Mat out(src.rows, dst_w, CV_32FC1);
  std::vector<int> x0(dst_w), x1(dst_w);
  for (int i = 0; i < dst_w; ++i) {
    x0[i] = static_cast<int>(std::int64_t{i} * src_w / dst_w);
    x1[i] = static_cast<int>((std::int64_t{i + 1} * src_w + dst_w - 1) / dst_w);
    x1[i] = std::max(x1[i], x0[i] + 1);
  }
  for (int y = 0; y < src.rows; ++y) {
    const float* s = src.ptr<float>(y);
    float* d = out.ptr<float>(y);
    for (int i = 0; i < dst_w; ++i) d[i] = *std::max_element(s + x0[i], s + x1[i]);
  }
  return out;
}

}  // namespace

cv::Mat resize_strokes(const cv::Mat& map, cv::Size size) {
  check_map(map, "resize_strokes");
  if (size.width <= 0 || size.height <= 0) {
    throw InputError("resize_strokes: target size must be positive, got " +
                     std::to_string(size.width) + "x" + std::to_string(size.height));
  }
  cv::Mat a = resize_axis_x(map, size.width);
  cv::Mat t = a.t();
  cv::Mat b = resize_axis_x(t, size.height);
  cv::Mat out = b.t();
  return cv::min(cv::max(out, 0.0), 1.0);
}

double sketch_width_for(int size) { return std::max(1.0, size / 64.0); }

cv::Mat sketch_in_hole(const cv::Mat& sketch, const cv::Mat& hole, int size) {
  cv::Mat grown;
  const int r = std::max(1, size / 32);
  cv::dilate(hole, grown, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1}));
  cv::Mat weight;
  grown.convertTo(weight, CV_32F, grown.depth() == CV_8U ? 1.0 / 255 : 1.0);
  return sketch.mul(weight);
}

}  // namespace dsk::edit
