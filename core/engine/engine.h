// The engine's public API: request structs, a progress callback and a cancel token. Torch-free,
// so hosts (CLI, server, tests) include it without LibTorch.
//
//   dsk::SampleRequest req;
//   req.model = "models/adm-256-uncond";
//   req.sampling.steps = 25;
//   req.sampling.seed = 42;
//   dsk::CancelToken cancel;
//   dsk::Engine engine;
//   auto images = engine.sample(req, [](const dsk::Progress& p) { ... }, &cancel);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "core/base/cancel.h"
#include "core/engine/defaults.h"
#include "editing/interp.h"

namespace dsk {

// An RGB image, float32 in [0, 1], row-major HWC.
struct ImageF32 {
  int width = 0, height = 0, channels = 3;
  std::vector<float> data;
};

// Flags shared by every command that samples (same names on the CLI).
struct SamplingParams {
  int steps = kDefaultSteps;   // section respacing "N"; ignored when respacing is set
  std::string respacing;       // any guided-diffusion string: "ddim25", "10,15,20"
  std::string sampler{kDefaultSampler};  // kSamplers
  double eta = 0.0;
  uint64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda
  std::string classifier;       // classifier model folder, "" = none
  int class_label = -1;         // -1 = none
  double classifier_scale = kDefaultClassifierScale;
};

// An edit's sampling defaults (kDefaultEditSteps, kDefaultEditSampler): the rest as SamplingParams'.
inline SamplingParams edit_sampling_defaults() {
  SamplingParams p;
  p.steps = kDefaultEditSteps;
  p.sampler = kDefaultEditSampler;
  return p;
}

// Training-free sketch guidance (a sampling option of edit and generate, any model kind):
// eps <- eps + scale * sqrt(1 - alpha_bar_t) * grad_{x_t} L_sketch(pred_x0(x_t)).
struct SketchGuidance {
  double scale = 0;           // 0 = off
  bool exact = false;         // true: gradient through the U-Net (~3x a step); false: eps held constant
  std::string features;       // sketch-features model folder; "" = the fixed edge pyramid
};

struct Progress {
  int step = 0, total = 0;
  const ImageF32* preview = nullptr;  // predicted x0 of the first image, when asked for
};
using ProgressFn = std::function<void(const Progress&)>;

struct SampleRequest {
  std::string model;
  SamplingParams sampling;
  int batch = 1;
  bool preview = false;
};

// Sketch-guided inpainting of a selection. Images are as read (8/16-bit, gray / BGR / BGRA):
// the results have the input's size, depth and channels, and every pixel outside the mask is
// bit-identical to the input.
// How an edit gets detail at native resolution (kDetailModes' names, in that order).
enum class DetailMode { Patch, Tiles, None };
// "patch" | "tiles" | "none"; anything else is an InputError naming the three.
DetailMode parse_detail_mode(std::string_view name);
std::string_view detail_mode_name(DetailMode mode);

struct EditRequest {
  std::string model;  // editing-unet (sketch conditioned) or adm-unet (known-region blending)
  SamplingParams sampling = edit_sampling_defaults();
  cv::Mat image;   // the picture
  cv::Mat mask;    // white = regenerate; soft values blend
  cv::Mat sketch;  // sketch layer: dark strokes on light paper or opaque strokes on transparency; empty = none
  double sketch_scale = kDefaultSketchScale;  // classifier-free guidance on the sketch: 0 ignore, 1 plain, > 1 harder
  SketchGuidance sketch_guidance;
  int variants = 1;           // seeds seed, seed+1, ...
  double context_margin = kDefaultContextMargin;
  int feather = kDefaultFeather;  // px, inside the selection only
  int repaint_jumps = 0;      // RePaint resampling (adm-unet): extra passes per jump
  int repaint_length = kDefaultRepaintLength;  // RePaint jump length in steps
  // Detail at native resolution for selections larger than the working size (defaults.h,
  // kDetailModes): exemplar synthesis (Patch), the model on tiles (Tiles) or a plain upscale (None).
  DetailMode detail = parse_detail_mode(kDefaultDetail);
  // How much of the diffusion process runs: 1 = the hole starts from pure noise; below 1 it starts
  // from a smooth fill of the hole (OpenCV Navier-Stokes, at the working size) noised to that
  // fraction of the process: colours and layout follow the surroundings, the model draws the rest.
  // 0.8: measured better than 1 on every score of eval-inpaint (models/default/MODEL_CARD.md).
  double init_strength = kDefaultInitStrength;
  // The fraction of the process each refinement tile is re-noised to: 0.3 sharpens the upscaled
  // coarse result; 0.45 measured grainier, with edges the sketch did not ask for.
  double refine_strength = kDefaultRefineStrength;
  // The denoising steps each refinement tile takes from there (its own evenly spaced schedule;
  // sampling.steps sets the coarse pass only). The tiles are most of an edit's time; 2, 3 and 6
  // (what 20 steps used to give) scored alike on eval-inpaint, 2 a little less sharp on photos
  // (docs/editing.md).
  int refine_steps = kDefaultRefineSteps;
  // The sketch strength of the refinement tiles (detail Tiles); below 0, sketch_scale. Above 1 every
  // tile's evaluation is a batch of 2; 1 leaves the sketch's guidance to the coarse pass
  // (docs/editing.md, "Sketch strength in the tiles").
  double refine_sketch_scale = -1;
  // Colour matching of the result to the surroundings (editing/harmonize.h): the smoothest
  // correction that makes the generated pixels meet the real ones along the selection's edge, times
  // this strength (0 = off, 1 = full).
  double harmonize = kDefaultHarmonize;
  bool preview = false;
};

// Whole-image synthesis from a sketch (editing-unet with a full mask).
struct GenerateRequest {
  std::string model;
  SamplingParams sampling;
  cv::Mat sketch;           // sets the output size unless width/height are given
  int width = 0, height = 0;
  double sketch_scale = kDefaultGenerateSketchScale;
  SketchGuidance sketch_guidance;
  int variants = 1;
  bool preview = false;
};

using InterpolationMode = edit::InterpMode;  // parse_interp_mode reads its names

// Frames between the samples of two seeds: x_T interpolated, deterministic DDIM from each.
struct InterpolateRequest {
  GenerateRequest generate;  // its sampling.seed is ignored; seeds below
  uint64_t seed_a = 0, seed_b = 1;
  int frames = kDefaultFrames;  // including both end points
  InterpolationMode mode = edit::parse_interp_mode(std::string(kDefaultInterpolationMode));
};

struct EditResult {
  std::vector<cv::Mat> images;  // one per variant / frame
  std::vector<uint64_t> seeds;
  std::vector<std::string> warnings;  // e.g. "the sketch is blank: running unconditioned"
};

class ModelCache;

// The engine: runs requests, and owns the models they load (kept between requests: the two most
// recently used of each kind, see core/engine/model_cache.h). One per process is the rule (the
// server keeps one for its life; a CLI command makes one); two engines share nothing. Every
// request throws an error derived from std::invalid_argument for bad input (dsk::InputError, or
// editing's and the networks' own), dsk::Cancelled when cancelled.
class Engine {
 public:
  struct Options {
    int models_kept = 2;  // per kind (U-Nets, classifiers, sketch-features models)
  };
  Engine();
  explicit Engine(const Options& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  EditResult edit(const EditRequest& request, const ProgressFn& progress = {}, const CancelToken* cancel = nullptr);
  // An edit whose image and mask are the part at `image_at` of the layer that request.sketch
  // covers (what the GIMP plug-in sends: the selection's context, not the whole layer). The results
  // have the image's size and equal the matching part of a whole-layer edit's.
  EditResult edit_crop(EditRequest request, cv::Point image_at, const ProgressFn& progress = {},
                       const CancelToken* cancel = nullptr);
  EditResult generate(const GenerateRequest& request, const ProgressFn& progress = {},
                      const CancelToken* cancel = nullptr);
  EditResult interpolate(const InterpolateRequest& request, const ProgressFn& progress = {},
                         const CancelToken* cancel = nullptr);
  // Unconditional or class-conditional synthesis from a plain ADM model, with optional classifier
  // guidance.
  std::vector<ImageF32> sample(const SampleRequest& request, const ProgressFn& progress = {},
                               const CancelToken* cancel = nullptr);

  int models_loaded() const;
  void unload();  // frees every loaded model

 private:
  std::unique_ptr<ModelCache> models_;
};

}  // namespace dsk
