#include "editing/composite.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/masks.h"

namespace dsk::edit {
namespace {

// Blends the pixels of `roi` (image coordinates) where weight (roi-sized) > 0; gen covers `where`.
template <typename T>
void blend_rows(cv::Mat& out, const cv::Mat& gen, cv::Point where, const cv::Mat& weight, cv::Rect roi,
                int color_ch, double scale) {
  const int cn = out.channels();
  for (int y = 0; y < roi.height; ++y) {
    T* o = out.ptr<T>(roi.y + y) + static_cast<std::ptrdiff_t>(roi.x) * cn;
    const float* g = gen.ptr<float>(roi.y + y - where.y) + static_cast<std::ptrdiff_t>(roi.x - where.x) * color_ch;
    const float* w = weight.ptr<float>(y);
    for (int x = 0; x < roi.width; ++x) {
      if (!(w[x] > 0.f)) continue;
      for (int c = 0; c < color_ch; ++c) {
        const double orig = o[x * cn + c];
        const double v = orig + w[x] * (g[x * color_ch + c] * scale - orig);
        o[x * cn + c] = cv::saturate_cast<T>(v);
      }
    }
  }
}

// The blend weight over `roi` only: the mask's support bounding box (empty when nothing is
// selected). Outside it the weight is 0.
cv::Mat weight_in_support(const cv::Mat& mask, int feather_px, cv::Rect& roi) {
  if (feather_px < 0) {
    throw InputError("feather must be >= 0 pixels, got " + std::to_string(feather_px) + "; 0 disables it");
  }
  roi = mask_support_bbox(mask);
  if (roi.empty()) return {};
  if (feather_px == 0) return to_soft_mask(mask(roi));
  // Distances need the surroundings: a window grown by feather + 1, clipped to the image, where
  // replicating the border makes the outside of the image "inside" wherever the selection touches
  // it (and copies zeros elsewhere, since the window reaches past the selection there).
  const int pad = feather_px + 1;
  const cv::Rect bounds(cv::Point(0, 0), mask.size());
  const cv::Rect win = cv::Rect(roi.x - pad, roi.y - pad, roi.width + 2 * pad, roi.height + 2 * pad) & bounds;
  const cv::Mat soft = to_soft_mask(mask(win));
  cv::Mat padded, dist;
  cv::copyMakeBorder(soft > 0.f, padded, pad, pad, pad, pad, cv::BORDER_REPLICATE);
  cv::distanceTransform(padded, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  cv::Mat out = cv::Mat::zeros(roi.size(), CV_32FC1);
  const cv::Point off = roi.tl() - win.tl();
  for (int y = 0; y < roi.height; ++y) {
    const float* d = dist.ptr<float>(y + off.y + pad) + off.x + pad;
    const float* s = soft.ptr<float>(y + off.y) + off.x;
    float* o = out.ptr<float>(y);
    for (int x = 0; x < roi.width; ++x) {
      if (!(s[x] > 0.f)) continue;
      const double r = std::clamp((d[x] - 0.5) / feather_px, 0.0, 1.0);
      o[x] = std::min(s[x], static_cast<float>(r * r * (3.0 - 2.0 * r)));
    }
  }
  return out;
}

}  // namespace

cv::Mat blend_weight(const cv::Mat& mask, int feather_px) {
  cv::Rect roi;
  const cv::Mat w = weight_in_support(mask, feather_px, roi);
  cv::Mat out = cv::Mat::zeros(mask.size(), CV_32FC1);
  if (!roi.empty()) w.copyTo(out(roi));
  return out;
}

cv::Mat composite(const cv::Mat& original, const cv::Mat& generated, const cv::Mat& mask, int feather_px,
                  cv::Point origin) {
  if (original.empty()) throw InputError("composite: the original image is empty");
  const int depth = original.depth(), cn = original.channels();
  if ((depth != CV_8U && depth != CV_16U && depth != CV_32F) || (cn != 1 && cn != 3 && cn != 4)) {
    throw InputError("composite: the original must be 8-bit, 16-bit or float with 1, 3 or 4 channels");
  }
  if (generated.empty() || generated.type() != CV_32FC3) {
    throw InputError("composite: the generated image must be CV_32FC3 RGB in [0, 1] (see work_to_crop)");
  }
  if (mask.size() != original.size()) {
    throw InputError("composite: the mask is " + std::to_string(mask.cols) + "x" + std::to_string(mask.rows) +
                     " but the image is " + std::to_string(original.cols) + "x" + std::to_string(original.rows) +
                     "; pass the mask at the image's size");
  }
  const cv::Rect where(origin, generated.size()), bounds(cv::Point(0, 0), original.size());
  if ((where & bounds) != where) {
    throw InputError("composite: the generated rectangle (" + std::to_string(where.x) + ", " +
                     std::to_string(where.y) + ", " + std::to_string(where.width) + "x" +
                     std::to_string(where.height) + ") leaves the image; place the crop at plan.crop.tl()");
  }
  cv::Rect roi;
  const cv::Mat weight = weight_in_support(mask, feather_px, roi);
  if (roi.empty()) return original.clone();
  if ((roi & where) != roi) {
    throw InputError("composite: the mask selects pixels outside the generated rectangle; generate the "
                     "region planned from this mask (plan_region) or shrink the mask");
  }

  cv::Mat gen = cv::min(cv::max(generated, 0.0), 1.0);
  cv::patchNaNs(gen, 0.0);
  cv::Mat gen_layout;  // the original's color channels, in its order
  int color_ch = 3;
  if (cn == 1) {
    cv::cvtColor(gen, gen_layout, cv::COLOR_RGB2GRAY);
    color_ch = 1;
  } else {
    cv::cvtColor(gen, gen_layout, cv::COLOR_RGB2BGR);
  }
  cv::Mat out = original.clone();
  const double scale = depth_max(depth);
  switch (depth) {
    case CV_8U: blend_rows<uchar>(out, gen_layout, origin, weight, roi, color_ch, scale); break;
    case CV_16U: blend_rows<ushort>(out, gen_layout, origin, weight, roi, color_ch, scale); break;
    default: blend_rows<float>(out, gen_layout, origin, weight, roi, color_ch, scale); break;
  }
  return out;
}

}  // namespace dsk::edit
