// Masks: reading the user's selection, and random masks for training and evaluation.
//
// Convention: white = regenerate. A soft mask is CV_32FC1 in [0, 1] (1 = regenerate fully, values in
// between blend); the binary mask used for geometry and metrics is soft > 0.5. Random masks are
// CV_8UC1 with 0 / 255.
#pragma once

#include <cstdint>
#include <random>

#include <opencv2/core.hpp>

namespace dsk::edit {

// An as-read mask image (gray, BGR or BGRA; 8/16-bit or float in [0, 1]) -> soft mask CV_32FC1 in
// [0, 1]: the luma, times alpha when there is one (transparent = keep).
cv::Mat soft_mask_from_image(const cv::Mat& image);

// A soft mask (CV_32FC1 [0, 1], or CV_8UC1 0..255) -> CV_8UC1 0 / 255 with soft > 0.5.
cv::Mat binary_mask(const cv::Mat& soft);

// Any mask type -> CV_32FC1 in [0, 1]: CV_8U / 255, CV_16U / 65535, float clamped.
cv::Mat to_soft_mask(const cv::Mat& mask);

// Free-form training mask: random walks drawn with thick round brushes, and (sometimes rotated)
// boxes, added until a target fraction drawn uniformly from [min_frac, max_frac] is reached; then
// grown (pixels nearest the mask first) or trimmed (pixels nearest the outside first) so the area
// fraction is guaranteed to lie in [min_frac, max_frac]. CV_8UC1 0 / 255. Throws edit::InputError
// for 0 < min_frac <= max_frac <= 1 violated, or an image so small that no pixel count fits.
cv::Mat random_training_mask(int h, int w, std::mt19937_64& rng, double min_frac = 0.1,
                             double max_frac = 0.6);

// The evaluation mask: random_training_mask with its own rng seeded from `seed`, so the same
// (h, w, seed, fractions) give the same mask with any compiler and standard library (the draws
// use only the raw mt19937_64 output; libm's sin/cos are the one place a last-bit difference
// could in principle move a brush vertex by a pixel).
cv::Mat eval_mask(int h, int w, std::uint64_t seed, double min_frac = 0.1, double max_frac = 0.4);

// Bounding box of the pixels > 0 of a mask (any type; multi-channel masks as in
// soft_mask_from_image), without converting the whole mask: cheap on 64-megapixel images. An
// empty cv::Rect when no pixel is > 0.
cv::Rect mask_support_bbox(const cv::Mat& mask);

// The fraction of pixels > 0 (binary) of a CV_8UC1 mask.
double mask_fraction(const cv::Mat& mask);

}  // namespace dsk::edit
