// Evaluation of sketch-guided inpainting (diffsketch eval-inpaint) and classical baselines.
//
// All metrics compare a result with the reference (the original photo) inside the hole = mask >
// 0.5 (binary_mask), on float RGB in [0, 1] (to_float_rgb; alpha ignored). result and reference
// must have the same size and channel count (any depth), the mask the same size. An empty hole is
// a edit::InputError.
#pragma once

#include <string>

#include <vector>

#include <opencv2/core.hpp>

#include "editing/synth_sketch.h"

namespace dsk::edit {

// PSNR of identical images would be +inf; it is capped here so averages stay finite.
inline constexpr double kPsnrCapDb = 100.0;

// 10 log10(1 / MSE) over the hole's pixels and the 3 color channels, capped at kPsnrCapDb.
double hole_psnr(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask);

// SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, C1 = 0.01^2, C2 = 0.03^2 on [0, 1]),
// per channel, the SSIM map averaged over channels and then over the hole's pixels. The window
// sees pixels outside the hole too (the seam counts).
double hole_ssim(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask);

// hole_psnr after downsampling result, reference and mask by `factor` (INTER_AREA): how well the
// layout and colors match, forgiving texture detail. The coarse hole is the downsampled mask >=
// 0.5, or > 0 if that is empty (a hole thinner than the factor).
double coarse_psnr(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask, int factor = 4);

struct EdgeScore {
  double precision = 0, recall = 0, f1 = 0;
  int edge_px = 0;      // result edge pixels in the hole
  int sketch_px = 0;    // sketch pixels in the hole
  int edge_hits = 0;    // of those edge pixels, within the tolerance of a sketch pixel
  int sketch_hits = 0;  // of those sketch pixels, within the tolerance of an edge pixel
};

// The edge F1 of many crops pooled (micro-averaged): precision and recall over the summed pixel
// counts, so that a crop whose hole holds a few sketch pixels weighs a few pixels, where the mean
// of the per-crop F1s gives its 0-or-1 score a whole crop's weight. Empty sums as edge_f1_maps.
EdgeScore pooled_edge_f1(const std::vector<EdgeScore>& scores);

// The definition on binary maps (non-zero = on; any single-channel type): precision = fraction of
// edge pixels in the hole within tolerance_px (Euclidean) of a sketch pixel; recall = fraction of
// sketch pixels in the hole within tolerance_px of an edge pixel (distances reach outside the
// hole). Empty cases: no edge pixels -> precision 1; no sketch pixels -> recall 1; F1 = 2PR/(P+R),
// 0 when P + R = 0. So both empty -> 1; only one empty -> 0.
EdgeScore edge_f1_maps(const cv::Mat& edges, const cv::Mat& sketch, const cv::Mat& mask,
                       double tolerance_px = 2.0);

// Edge F1 of a result against the sketch (CV_32FC1 stroke map of the image's size): edges =
// canny_sketch(result, canny) (the evaluation extractor), sketch = skeletonize(sketch) so the
// user's brush width does not matter; then edge_f1_maps with a 2 px tolerance.
EdgeScore edge_f1(const cv::Mat& result, const cv::Mat& sketch, const cv::Mat& mask, double tolerance_px = 2.0,
                  const CannyParams& canny = {});

// Variance of the Laplacian (3x3, on the luma) of the result over that of the reference, inside
// the hole eroded by 2 px (the seam excluded; the whole hole if erosion empties it). < 1: the fill
// is blurrier than the original. Reference variance ~0 (< 1e-12): 1 if the result's is too, else
// +inf.
double sharpness_ratio(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask);

// Position-free texture distance: inside the hole eroded by 2 px (as sharpness_ratio), the
// 1-Wasserstein distance between the distributions of Sobel gradient magnitudes (3x3, on the luma
// in [0, 1]) of the result and of the reference, over the reference's mean gradient magnitude.
// 0 = the same texture statistics; a blur and added noise both raise it; a texture that is
// plausible but not pixel-aligned with the reference is not punished as PSNR punishes it.
// Calibration: docs/editing.md ("Texture distance"). Reference mean ~0 (< 1e-12): 0 if the
// result's is too, else +inf.
double texture_distance(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask);

// Classical fill with cv::inpaint: method "telea" or "ns" (Navier-Stokes), radius in pixels (> 0).
// Any as-read image (8/16-bit or float, gray / BGR / BGRA; 16-bit and float color are filled per
// channel, alpha is kept); pixels outside the hole are copied unchanged.
cv::Mat inpaint_baseline(const cv::Mat& image, const cv::Mat& mask, const std::string& method,
                         double radius = 3.0);

struct InpaintScores {
  double psnr = 0, ssim = 0, coarse_psnr = 0, sharpness = 0, texture = 0;
  EdgeScore edge;  // all NaN / 0 when no sketch is given
};

// All of the above; `sketch` may be empty (edge scores are then NaN).
InpaintScores score_inpaint(const cv::Mat& result, const cv::Mat& reference, const cv::Mat& mask,
                            const cv::Mat& sketch);

}  // namespace dsk::edit
