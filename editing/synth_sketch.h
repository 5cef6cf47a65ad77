// Synthetic sketches from photos, for training pairs and for the evaluation set.
//
// Both extractors return the stroke-map convention of sketch.h: CV_32FC1, 1 = stroke, 0 = none, here
// strictly binary (0 or 1) and about 1 pixel wide (Canny) or a few pixels (XDoG). The engine feeds
// the model what normalize_stroke_width makes of them, exactly as it does for user sketches.
#pragma once

#include <random>

#include <opencv2/core.hpp>

namespace dsk::edit {

// eXtended Difference of Gaussians (Winnemoeller et al. 2012), DoG form D = G_s - tau * G_(k s) on
// the luma in [0, 1]; soft threshold T = 1 where D >= epsilon, else 1 + tanh(phi (D - epsilon));
// stroke = (1 - T) > threshold; connected blobs smaller than min_component_px are removed.
struct XDoGParams {
  double sigma = 0.8;         // inner Gaussian sigma in pixels (> 0)
  double k = 1.6;             // outer / inner sigma ratio (> 1)
  double tau = 0.98;          // weight of the outer Gaussian, < 1; closer to 1 = more lines
  double epsilon = 0.0;       // threshold on D
  double phi = 200.0;         // steepness of the soft threshold (> 0)
  double threshold = 0.5;     // binarisation of 1 - T
  int min_component_px = 8;   // 8-connected stroke blobs with fewer pixels are dropped
};

// `bgr`: an as-read image (gray, BGR or BGRA; 8/16-bit or float in [0, 1]). With an rng the
// parameters are jittered per call (sigma x[0.75, 1.5], tau in [0.97, 0.99], phi x[0.5, 2]) for
// training diversity; without one the result is a pure function of the input.
cv::Mat xdog_sketch(const cv::Mat& bgr, const XDoGParams& params = {}, std::mt19937_64* rng = nullptr);

// Canny edges with automatic thresholds from the median luma m of the (pre-blurred, 8-bit) image:
// low = max(min_low, (1 - sigma) m), high = max(min_high, (1 + sigma) m). Deterministic: a pure
// function of the input pixels, whatever OpenCV's thread count. This is the evaluation extractor
// (sketches for eval sets, and the edge map of edge F1 in metrics.h).
struct CannyParams {
  double blur_sigma = 1.0;  // Gaussian pre-blur sigma in pixels (0 = none)
  double sigma = 0.33;      // relative spread of the thresholds around the median
  double min_low = 20.0;    // floors (8-bit units) so flat or dark images do not give noise edges
  double min_high = 50.0;
  bool l2_gradient = true;
};
cv::Mat canny_sketch(const cv::Mat& bgr, const CannyParams& params = {});

// Makes a clean stroke map look hand-drawn: a smooth random warp (amplitude up to ~3 px x strength
// at 256 px, scaled with the image), strokes broken by small gaps, whole stroke pieces dropped
// (probability 0.3 x strength; never all of them), and the strokes redrawn with a smoothly varying
// width and pressure. strength in [0, 1] (clamped); 0 returns the input unchanged. Deterministic
// for a given rng state. A blank map stays blank.
cv::Mat scribble_augment(const cv::Mat& map, std::mt19937_64& rng, double strength);

}  // namespace dsk::edit
