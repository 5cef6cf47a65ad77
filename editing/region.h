// Planning the region the model works on, and moving pixels between the image and the model's
// R x R working square.
//
// Geometry: bbox = bounding box of mask > 0 (every pixel the composite may change); context = bbox
// grown on each side by max(context_margin * max(bbox w, h), min_margin_px), clipped to the image;
// square = a side x side window, side = max(context w, h) (and at least min(R, longest image side)
// when grow_small is set, so a small selection is seen at native resolution with more context
// instead of being upscaled), centred on the context and shifted to lie inside the image where it
// fits. Only where the square is larger than the image is it padded: never stretched, so the aspect
// ratio of the content is kept. crop = square & image = the real pixels the model sees.
// Padding: image pixels are filled by reflection (cv::BORDER_REFLECT_101) so their statistics are
// plausible, but they are marked unknown: valid = 0 there, the work mask is 1 there (the model
// generates them, the result is thrown away), the sketch is 0 there (no fake strokes).
// The square is resampled to R x R with INTER_AREA when shrinking and INTER_CUBIC (image; clamped
// to [0, 1]) / INTER_LINEAR (mask) when growing; the sketch with resize_strokes.
#pragma once

#include <opencv2/core.hpp>

namespace dsk::edit {

struct RegionPlan {
  cv::Size image;         // full image size
  cv::Rect bbox;          // bounding box of mask > 0, image coordinates
  cv::Rect context;       // bbox grown by the margin, clipped to the image
  cv::Rect square;        // side x side window in image coordinates; may reach outside the image
  cv::Rect crop;          // square & image: the real pixels, image coordinates (contains context)
  cv::Rect crop_in_square;  // crop relative to square.tl()
  int side = 0;           // square side in image pixels
  int work_res = 0;       // R
  double scale = 1.0;     // work_res / side (> 1: upscaled, < 1: downscaled)
  cv::Mat valid;          // CV_32FC1 R x R: fraction of each work pixel covered by real pixels
};

// Plans the region for `mask` (any mask type, white = regenerate; size must equal `image`). R =
// work_res >= 8. Throws edit::InputError for an empty mask (nothing > 0), a size mismatch, or a bad
// parameter.
RegionPlan plan_region(cv::Size image, const cv::Mat& mask, int work_res, double context_margin = 0.25,
                       int min_margin_px = 16, bool grow_small = true);

// The valid fraction of each pixel of the square resampled to res x res (res = 0: work_res).
cv::Mat valid_mask(const RegionPlan& plan, int res = 0);

// Full-size inputs -> the square at res x res (res = 0: work_res; the tiled refinement asks for its
// refine size). The image is as read (any depth; gray / BGR / BGRA; alpha ignored) -> CV_32FC3 RGB
// [0, 1]. The mask is any mask type -> CV_32FC1 [0, 1], padding = 1. The sketch is a stroke map
// (CV_32FC1, image size) -> CV_32FC1, padding = 0.
cv::Mat to_work_image(const RegionPlan& plan, const cv::Mat& image, int res = 0);
cv::Mat to_work_mask(const RegionPlan& plan, const cv::Mat& mask, int res = 0);
cv::Mat to_work_sketch(const RegionPlan& plan, const cv::Mat& sketch, int res = 0);

// A square result (res x res, any type; normally the model's CV_32FC3 RGB output) -> crop.size():
// resampled to side x side (INTER_CUBIC up, INTER_AREA down, none when res == side; float results
// are not clamped) and cut to the crop. Place it at plan.crop.tl() in the image (see composite).
cv::Mat work_to_crop(const RegionPlan& plan, const cv::Mat& work);

}  // namespace dsk::edit
