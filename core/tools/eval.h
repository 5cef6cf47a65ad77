// `diffsketch eval-inpaint`: how well a model inpaints, and how much the sketch steers it.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/engine/engine.h"

namespace dsk {

struct EvalOptions {
  std::string model;
  std::vector<std::string> image_dirs;
  int count = 20;
  int size = 256;
  uint64_t seed = 0;
  std::vector<std::string> baselines = {"telea", "ns"};
  bool json = false;
  std::string split = "all";  // all | val | train: pictures of a training data folder, split by picture
  double val_fraction = 0.1;
  SamplingParams sampling = edit_sampling_defaults();
  double sketch_scale = EditRequest{}.sketch_scale;
  SketchGuidance sketch_guidance;  // the "model" method only (model-no-sketch has no sketch to follow)
  double init_strength = EditRequest{}.init_strength;  // the model methods: see EditRequest
  double harmonize = EditRequest{}.harmonize;
  double refine_strength = EditRequest{}.refine_strength;
  int refine_steps = EditRequest{}.refine_steps;
  double refine_sketch_scale = EditRequest{}.refine_sketch_scale;
  DetailMode detail = EditRequest{}.detail;  // the model methods: detail at native resolution
  std::string save_dir;  // optional: each case's input, sketch, mask and results as PNG
};

// Deterministic cases: seeded square crops (count, size), masks covering 10-40% of the area, and
// edge-map sketches (editing/'s Canny extractor on the original). Methods: the model with the
// sketch, the model with an empty sketch, and the OpenCV baselines. Per method, inside the hole:
// PSNR, SSIM, coarse PSNR (4x down), edge F1 against the sketch (2 px), sharpness ratio, texture
// distance (mean, and the median in the JSON), s/image. Calibration baselines (they see the
// original): shift, blur, noise.
// Means over the crops, except the sharpness ratio: its geometric mean (a ratio of 4 and one of
// 1/4 average to 1; an arithmetic mean is ruled by the flattest crops), with the arithmetic mean
// beside it in the JSON ("sharpness_arith"). Prints a table (or JSON) and returns the JSON summary.
nlohmann::json eval_inpaint(const EvalOptions& options, std::ostream& out);

}  // namespace dsk
