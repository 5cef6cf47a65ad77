#include "editing/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/masks.h"
#include "editing/sketch.h"

namespace dsk::edit {
namespace {

struct Pair {
  cv::Mat res, ref;  // CV_32FC3 RGB [0, 1]
  cv::Mat hole;      // CV_8UC1 0 / 255
};

Pair prepare(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask, const char* fn) {
  if (result.empty() || reference.empty()) throw InputError(std::string(fn) + ": an image is empty");
  if (result.size() != reference.size() || result.channels() != reference.channels()) {
    throw InputError(std::string(fn) + ": result and reference differ in size or channels (" +
                     std::to_string(result.cols) + "x" + std::to_string(result.rows) + "x" +
                     std::to_string(result.channels()) + " vs " + std::to_string(reference.cols) + "x" +
                     std::to_string(reference.rows) + "x" + std::to_string(reference.channels()) +
                     "); compare the composited result with its original");
  }
  if (mask.size() != result.size()) {
    throw InputError(std::string(fn) + ": the mask size differs from the images'; pass the mask used for the edit");
  }
  Pair p{to_float_rgb(result).rgb, to_float_rgb(reference).rgb, binary_mask(mask)};
  if (cv::countNonZero(p.hole) == 0) {
    throw InputError(std::string(fn) + ": the hole is empty (no mask pixel > 0.5); pass the edit's mask");
  }
  return p;
}

double psnr_of(const cv::Mat& a, const cv::Mat& b, const cv::Mat& hole) {
  cv::Mat d = a - b;
  d = d.mul(d);
  const cv::Scalar s = cv::sum(d.setTo(cv::Scalar::all(0), hole == 0));
  const double mse = (s[0] + s[1] + s[2]) / (3.0 * cv::countNonZero(hole));
  if (mse <= 1e-10) return kPsnrCapDb;
  return std::min(kPsnrCapDb, 10.0 * std::log10(1.0 / mse));
}

cv::Mat ssim_map(const cv::Mat& x, const cv::Mat& y) {  // single channel CV_32F
  constexpr double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto g = [](const cv::Mat& m) {
    cv::Mat o;
    cv::GaussianBlur(m, o, {11, 11}, 1.5, 1.5, cv::BORDER_REFLECT);
    return o;
  };
  const cv::Mat mx = g(x), my = g(y);
  const cv::Mat mx2 = mx.mul(mx), my2 = my.mul(my), mxy = mx.mul(my);
  const cv::Mat sx = g(x.mul(x)) - mx2, sy = g(y.mul(y)) - my2, sxy = g(x.mul(y)) - mxy;
  cv::Mat num = (2 * mxy + c1).mul(2 * sxy + c2);
  cv::Mat den = (mx2 + my2 + c1).mul(sx + sy + c2);
  cv::Mat out;
  cv::divide(num, den, out);
  return out;
}

cv::Rect grown_bbox(const cv::Mat& hole, int by) {
  const cv::Rect b = cv::boundingRect(hole);
  return cv::Rect(b.x - by, b.y - by, b.width + 2 * by, b.height + 2 * by) & cv::Rect(cv::Point(0, 0), hole.size());
}

// The hole eroded by 2 px: the seam excluded (the whole hole if erosion empties it).
cv::Mat inner_hole(const cv::Mat& hole) {
  cv::Mat inner;
  cv::erode(hole, inner, cv::getStructuringElement(cv::MORPH_RECT, {5, 5}), {-1, -1}, 1, cv::BORDER_CONSTANT,
            cv::Scalar(255));
  return cv::countNonZero(inner) == 0 ? hole : inner;
}

// Sobel (3x3) gradient magnitudes of the luma (of an as-read image) at the region's pixels, sorted.
std::vector<float> sorted_gradients(const cv::Mat& image, const cv::Mat& region) {
  const cv::Mat luma = to_luma(image);
  cv::Mat gx, gy, mag;
  cv::Sobel(luma, gx, CV_32F, 1, 0, 3, 1.0, 0.0, cv::BORDER_REFLECT);
  cv::Sobel(luma, gy, CV_32F, 0, 1, 3, 1.0, 0.0, cv::BORDER_REFLECT);
  cv::magnitude(gx, gy, mag);
  std::vector<float> v;
  v.reserve(cv::countNonZero(region));
  for (int y = 0; y < mag.rows; ++y) {
    const float* m = mag.ptr<float>(y);
    const uchar* r = region.ptr<uchar>(y);
    for (int x = 0; x < mag.cols; ++x)
      if (r[x]) v.push_back(m[x]);
  }
  std::sort(v.begin(), v.end());
  return v;
}

double laplacian_var(const cv::Mat& image, const cv::Mat& region) {
  cv::Mat lap;
  cv::Laplacian(to_luma(image), lap, CV_32F, 1, 1.0, 0.0, cv::BORDER_REFLECT);
  cv::Scalar mean, dev;
  cv::meanStdDev(lap, mean, dev, region);
  return dev[0] * dev[0];
}

// Precision, recall and F1 from the pixel counts (edge_f1_maps's rules for empty maps).
void finish_edge_score(EdgeScore& r) {
  r.precision = r.edge_px == 0 ? 1.0 : static_cast<double>(r.edge_hits) / r.edge_px;
  r.recall = r.sketch_px == 0 ? 1.0 : static_cast<double>(r.sketch_hits) / r.sketch_px;
  r.f1 = r.precision + r.recall > 0 ? 2 * r.precision * r.recall / (r.precision + r.recall) : 0.0;
}

}  // namespace

double hole_psnr(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask) {
  const Pair p = prepare(result, reference, mask, "hole_psnr");
  return psnr_of(p.res, p.ref, p.hole);
}

double hole_ssim(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask) {
  const Pair p = prepare(result, reference, mask, "hole_ssim");
  const cv::Rect roi = grown_bbox(p.hole, 8);  // SSIM only where it is averaged, plus the window
  std::vector<cv::Mat> a, b;
  cv::split(p.res(roi), a);
  cv::split(p.ref(roi), b);
  cv::Mat acc = cv::Mat::zeros(roi.size(), CV_32FC1);
  for (std::size_t c = 0; c < 3; ++c) acc += ssim_map(a[c], b[c]);
  return cv::mean(acc / 3.0, p.hole(roi))[0];
}

double coarse_psnr(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask, int factor) {
  if (factor < 1) throw InputError("coarse_psnr: the factor must be >= 1 (e.g. 4)");
  const Pair p = prepare(result, reference, mask, "coarse_psnr");
  const cv::Size small(std::max(1, static_cast<int>(std::lround(static_cast<double>(p.res.cols) / factor))),
                       std::max(1, static_cast<int>(std::lround(static_cast<double>(p.res.rows) / factor))));
  cv::Mat a, b, m;
  cv::resize(p.res, a, small, 0, 0, cv::INTER_AREA);
  cv::resize(p.ref, b, small, 0, 0, cv::INTER_AREA);
  cv::Mat hole_f;
  p.hole.convertTo(hole_f, CV_32F, 1.0 / 255.0);
  cv::resize(hole_f, m, small, 0, 0, cv::INTER_AREA);
  cv::Mat hole = m >= 0.5f;
  if (cv::countNonZero(hole) == 0) hole = m > 0.f;
  return psnr_of(a, b, hole);
}

EdgeScore edge_f1_maps(const cv::Mat& edges, const cv::Mat& sketch, const cv::Mat& mask, double tolerance_px) {
  if (edges.empty() || edges.size() != sketch.size() || edges.size() != mask.size() || edges.channels() != 1 ||
      sketch.channels() != 1) {
    throw InputError("edge_f1_maps: edges, sketch and mask must be single-channel maps of one size");
  }
  if (!(tolerance_px >= 0)) throw InputError("edge_f1_maps: the tolerance must be >= 0 pixels (e.g. 2)");
  const cv::Mat hole = binary_mask(mask);
  if (cv::countNonZero(hole) == 0) throw InputError("edge_f1_maps: the hole is empty; pass the edit's mask");
  const cv::Mat e = edges != 0, s = sketch != 0;
  cv::Mat to_sketch, to_edge;
  cv::distanceTransform(s == 0, to_sketch, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  cv::distanceTransform(e == 0, to_edge, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  const bool no_sketch = cv::countNonZero(s) == 0, no_edge = cv::countNonZero(e) == 0;
  EdgeScore r;
  int tp_edge = 0, tp_sketch = 0;
  const auto tol = static_cast<float>(tolerance_px + 1e-6);
  for (int y = 0; y < hole.rows; ++y) {
    const uchar* h = hole.ptr<uchar>(y);
    const uchar* ep = e.ptr<uchar>(y);
    const uchar* sp = s.ptr<uchar>(y);
    const float* ds = to_sketch.ptr<float>(y);
    const float* de = to_edge.ptr<float>(y);
    for (int x = 0; x < hole.cols; ++x) {
      if (!h[x]) continue;
      if (ep[x]) {
        ++r.edge_px;
        tp_edge += !no_sketch && ds[x] <= tol;
      }
      if (sp[x]) {
        ++r.sketch_px;
        tp_sketch += !no_edge && de[x] <= tol;
      }
    }
  }
  r.edge_hits = tp_edge;
  r.sketch_hits = tp_sketch;
  finish_edge_score(r);
  return r;
}

EdgeScore pooled_edge_f1(const std::vector<EdgeScore>& scores) {
  EdgeScore r;
  for (const auto& s : scores) {
    r.edge_px += s.edge_px, r.sketch_px += s.sketch_px;
    r.edge_hits += s.edge_hits, r.sketch_hits += s.sketch_hits;
  }
  finish_edge_score(r);
  return r;
}

EdgeScore edge_f1(const cv::Mat& result, const cv::Mat& sketch, const cv::Mat& mask, double tolerance_px,
                  const CannyParams& canny) {
  if (sketch.type() != CV_32FC1 || sketch.size() != result.size()) {
    throw InputError("edge_f1: the sketch must be a CV_32FC1 stroke map of the result's size (see stroke_map)");
  }
  return edge_f1_maps(canny_sketch(result, canny) > 0.5f, skeletonize(sketch), mask, tolerance_px);
}

double sharpness_ratio(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask) {
  if (result.empty() || result.size() != reference.size() || result.size() != mask.size()) {
    throw InputError("sharpness_ratio: result, reference and mask must have one size");
  }
  const cv::Mat hole = binary_mask(mask);
  if (cv::countNonZero(hole) == 0) throw InputError("sharpness_ratio: the hole is empty; pass the edit's mask");
  const cv::Mat inner = inner_hole(hole);
  const double vr = laplacian_var(result, inner), vo = laplacian_var(reference, inner);
  if (vo < 1e-12) return vr < 1e-12 ? 1.0 : std::numeric_limits<double>::infinity();
  return vr / vo;
}

double texture_distance(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask) {
  const Pair p = prepare(result, reference, mask, "texture_distance");
  const cv::Mat inner = inner_hole(p.hole);
  const auto a = sorted_gradients(result, inner), b = sorted_gradients(reference, inner);
  // Both samples have one size: W1 is the mean distance between equal quantiles.
  double w1 = 0, mean_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) w1 += std::abs(static_cast<double>(a[i]) - b[i]), mean_ref += b[i];
  w1 /= static_cast<double>(a.size());
  mean_ref /= static_cast<double>(b.size());
  if (mean_ref < 1e-12) return w1 < 1e-12 ? 0.0 : std::numeric_limits<double>::infinity();
  return w1 / mean_ref;
}

cv::Mat inpaint_baseline(const cv::Mat& image, const cv::Mat& mask, const std::string& method, double radius) {
  int flag = 0;
  if (method == "telea") {
    flag = cv::INPAINT_TELEA;
  } else if (method == "ns") {
    flag = cv::INPAINT_NS;
  } else {
    throw InputError("unknown inpainting baseline '" + method + "'; use telea or ns");
  }
  if (!(radius > 0)) throw InputError("inpaint_baseline: the radius must be > 0 pixels (e.g. 3)");
  if (image.empty()) throw InputError("inpaint_baseline: the image is empty");
  const int depth = image.depth(), cn = image.channels();
  if ((depth != CV_8U && depth != CV_16U && depth != CV_32F) || (cn != 1 && cn != 3 && cn != 4)) {
    throw InputError("inpaint_baseline: the image must be 8-bit, 16-bit or float, gray / BGR / BGRA");
  }
  if (mask.size() != image.size()) {
    throw InputError("inpaint_baseline: the mask size differs from the image's; pass the edit's mask");
  }
  const cv::Mat hole = binary_mask(mask);
  cv::Mat out = image.clone();
  if (cv::countNonZero(hole) == 0) return out;

  std::vector<cv::Mat> ch;
  cv::split(image, ch);
  const int color = cn == 4 ? 3 : cn;
  cv::Mat filled;
  if (depth == CV_8U && color == 3) {
    cv::Mat bgr;
    cv::merge(std::vector<cv::Mat>(ch.begin(), ch.begin() + 3), bgr);
    cv::inpaint(bgr, hole, filled, radius, flag);
    std::vector<cv::Mat> f;
    cv::split(filled, f);
    std::copy(f.begin(), f.end(), ch.begin());
  } else {
    for (int c = 0; c < color; ++c) {
      cv::Mat src = ch[static_cast<std::size_t>(c)], dst;
      if (depth == CV_16U && color == 3) src.convertTo(src, CV_32F);  // 16-bit: 1-channel only in OpenCV
      cv::inpaint(src, hole, dst, radius, flag);
      if (dst.depth() != depth) dst.convertTo(dst, depth);
      ch[static_cast<std::size_t>(c)] = dst;
    }
  }
  cv::merge(ch, filled);
  filled.copyTo(out, hole);
  return out;
}

InpaintScores score_inpaint(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask,
                            const cv::Mat& sketch) {
  InpaintScores s;
  s.psnr = hole_psnr(result, reference, mask);
  s.ssim = hole_ssim(result, reference, mask);
  s.coarse_psnr = coarse_psnr(result, reference, mask);
  s.sharpness = sharpness_ratio(result, reference, mask);
  s.texture = texture_distance(result, reference, mask);
  if (sketch.empty()) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    s.edge = {nan, nan, nan, 0, 0};
  } else {
    s.edge = edge_f1(result, sketch, mask);
  }
  return s;
}

}  // namespace dsk::edit
