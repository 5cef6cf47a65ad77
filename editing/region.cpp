#include "editing/region.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/masks.h"
#include "editing/sketch.h"

namespace dsk::edit {
namespace {

// Start of a `side`-long window on an axis of length `dim`, containing [c0, c0 + clen).
int place(int c0, int clen, int side, int dim) {
  if (side <= dim) return std::clamp(c0 + clen / 2 - side / 2, 0, dim - side);
  return -((side - dim) / 2);
}

int resolve_res(const RegionPlan& plan, int res) {
  if (plan.side <= 0) throw InputError("the region plan is empty; make it with plan_region");
  if (res == 0) return plan.work_res;
  if (res < 1) throw InputError("working resolution must be positive, got " + std::to_string(res));
  return res;
}

void check_full_size(const RegionPlan& plan, const cv::Mat& m, const char* what) {
  if (m.empty()) throw InputError(std::string("the ") + what + " is empty");
  if (m.size() != plan.image) {
    throw InputError(std::string("the ") + what + " is " + std::to_string(m.cols) + "x" +
                     std::to_string(m.rows) + " but the region was planned for a " +
                     std::to_string(plan.image.width) + "x" + std::to_string(plan.image.height) +
                     " image; pass image, mask and sketch at the same size");
  }
}

// The crop of a full-size image padded to the square (side x side).
cv::Mat pad_to_square(const RegionPlan& plan, const cv::Mat& crop, int border, const cv::Scalar& value) {
  const cv::Rect& c = plan.crop_in_square;
  cv::Mat sq;
  cv::copyMakeBorder(crop, sq, c.y, plan.side - c.y - c.height, c.x, plan.side - c.x - c.width,
                     border, value);
  return sq;
}

// Fraction of each of `res` output cells of [0, side) that falls inside [a, b).
std::vector<float> coverage(int side, int res, int a, int b) {
  std::vector<float> f(static_cast<std::size_t>(res));
  const double step = static_cast<double>(side) / res;
  for (int u = 0; u < res; ++u) {
    const double lo = u * step, hi = (u + 1) * step;
    const double in = std::max(0.0, std::min(hi, static_cast<double>(b)) - std::max(lo, static_cast<double>(a)));
    f[static_cast<std::size_t>(u)] = static_cast<float>(std::min(1.0, in / step));
  }
  return f;
}

}  // namespace

RegionPlan plan_region(cv::Size image, const cv::Mat& mask, int work_res, double context_margin,
                       int min_margin_px, bool grow_small) {
  if (image.width < 1 || image.height < 1) throw InputError("plan_region: the image size is empty");
  if (work_res < 8) {
    throw InputError("plan_region: working resolution " + std::to_string(work_res) +
                     " is too small; use the model's resolution (e.g. 64, 128 or 256)");
  }
  if (!(context_margin >= 0) || min_margin_px < 0) {
    throw InputError("plan_region: the context margin must be >= 0 (e.g. 0.25 of the selection and 16 px)");
  }
  if (mask.empty() || mask.size() != image) {
    throw InputError("plan_region: the mask is " + std::to_string(mask.cols) + "x" + std::to_string(mask.rows) +
                     " but the image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                     "; pass a mask of the image's size");
  }
  const cv::Rect bbox = mask_support_bbox(mask);
  if (bbox.empty()) {
    throw InputError("the mask selects nothing (no pixel above 0); paint the area to regenerate in white");
  }
  RegionPlan p;
  p.image = image;
  p.work_res = work_res;
  p.bbox = bbox;
  const int m = std::max(static_cast<int>(std::lround(context_margin * std::max(p.bbox.width, p.bbox.height))),
                         min_margin_px);
  p.context = cv::Rect(p.bbox.x - m, p.bbox.y - m, p.bbox.width + 2 * m, p.bbox.height + 2 * m) &
              cv::Rect(cv::Point(0, 0), image);
  p.side = std::max(p.context.width, p.context.height);
  if (grow_small) p.side = std::max(p.side, std::min(work_res, std::max(image.width, image.height)));
  p.square = cv::Rect(place(p.context.x, p.context.width, p.side, image.width),
                      place(p.context.y, p.context.height, p.side, image.height), p.side, p.side);
  p.crop = p.square & cv::Rect(cv::Point(0, 0), image);
  p.crop_in_square = p.crop - p.square.tl();
  p.scale = static_cast<double>(work_res) / p.side;
  p.valid = valid_mask(p);
  return p;
}

cv::Mat valid_mask(const RegionPlan& plan, int res) {
  res = resolve_res(plan, res);
  const cv::Rect& c = plan.crop_in_square;
  const auto fx = coverage(plan.side, res, c.x, c.x + c.width);
  const auto fy = coverage(plan.side, res, c.y, c.y + c.height);
  cv::Mat v(res, res, CV_32FC1);
  for (int y = 0; y < res; ++y) {
    float* row = v.ptr<float>(y);
    for (int x = 0; x < res; ++x) row[x] = fy[static_cast<std::size_t>(y)] * fx[static_cast<std::size_t>(x)];
  }
  return v;
}

cv::Mat to_work_image(const RegionPlan& plan, const cv::Mat& image, int res) {
  res = resolve_res(plan, res);
  check_full_size(plan, image, "image");
  const cv::Mat sq = pad_to_square(plan, to_float_rgb(image(plan.crop)).rgb, cv::BORDER_REFLECT_101, {});
  if (res == plan.side) return sq;
  cv::Mat out;
  cv::resize(sq, out, {res, res}, 0, 0, res < plan.side ? cv::INTER_AREA : cv::INTER_CUBIC);
  return cv::min(cv::max(out, 0.0), 1.0);
}

cv::Mat to_work_mask(const RegionPlan& plan, const cv::Mat& mask, int res) {
  res = resolve_res(plan, res);
  check_full_size(plan, mask, "mask");
  const cv::Mat sq = pad_to_square(plan, to_soft_mask(mask(plan.crop)), cv::BORDER_CONSTANT, cv::Scalar(1.0));
  if (res == plan.side) return sq;
  cv::Mat out;
  cv::resize(sq, out, {res, res}, 0, 0, res < plan.side ? cv::INTER_AREA : cv::INTER_LINEAR);
  return cv::min(cv::max(out, 0.0), 1.0);
}

cv::Mat to_work_sketch(const RegionPlan& plan, const cv::Mat& sketch, int res) {
  res = resolve_res(plan, res);
  check_full_size(plan, sketch, "sketch");
  if (sketch.type() != CV_32FC1) {
    throw InputError("to_work_sketch: expected a CV_32FC1 stroke map; convert the layer with stroke_map");
  }
  const cv::Mat sq = pad_to_square(plan, sketch(plan.crop), cv::BORDER_CONSTANT, cv::Scalar(0.0));
  return res == plan.side ? sq : resize_strokes(sq, {res, res});
}

cv::Mat work_to_crop(const RegionPlan& plan, const cv::Mat& work) {
  resolve_res(plan, 0);
  if (work.empty() || work.rows != work.cols) {
    throw InputError("work_to_crop: expected a square model result, got " + std::to_string(work.cols) + "x" +
                     std::to_string(work.rows));
  }
  cv::Mat sq = work;
  if (work.cols != plan.side) {
    cv::resize(work, sq, {plan.side, plan.side}, 0, 0, work.cols < plan.side ? cv::INTER_CUBIC : cv::INTER_AREA);
  }
  return sq(plan.crop_in_square).clone();
}

}  // namespace dsk::edit
