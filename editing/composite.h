// Putting generated pixels back into the original image.
//
// Guarantees: the result has the original's size, depth (8-bit in -> 8-bit out, 16-bit in -> 16-bit
// out) and channel layout; an alpha channel is kept unchanged everywhere; every pixel where the
// soft mask is 0 is bit-identical to the original. The blend weight lives inside the selection
// only: it is exactly 0 wherever the mask is 0, so feathering never reaches outside.
#pragma once

#include <opencv2/core.hpp>

namespace dsk::edit {

// The per-pixel blend weight, CV_32FC1 in [0, 1]: w = min(soft, f(d)), soft = to_soft_mask(mask),
// d = Euclidean distance to the nearest pixel where soft == 0 (the image border does not count, so
// a selection touching the border is not faded there), f(d) = smoothstep(clamp((d - 0.5) /
// feather_px, 0, 1)) and f = 1 for feather_px = 0. This is "erode, then blur" inside the selection,
// done exactly: the ramp is feather_px wide and ends at the selection's edge.
cv::Mat blend_weight(const cv::Mat& mask, int feather_px);

// original: as read (CV_8U / CV_16U / CV_32F; gray, BGR or BGRA). generated: CV_32FC3, RGB order,
// [0, 1] (clamped), covering the rectangle (origin, generated.size()) of the image: pass
// work_to_crop's result with origin = plan.crop.tl(), or a full-size result with origin (0, 0).
// mask: soft mask of the original's size (any mask type; white = regenerate). Gray originals get
// the generated luma (BT.601). out = original + w * (generated - original) in the original's value
// range, rounded to nearest, for pixels with w > 0; all others are copied. Throws edit::InputError
// when sizes or types do not fit, the rectangle leaves the image, or the mask selects pixels
// outside the rectangle.
cv::Mat composite(const cv::Mat& original, const cv::Mat& generated, const cv::Mat& mask, int feather_px,
                  cv::Point origin = {0, 0});

}  // namespace dsk::edit
