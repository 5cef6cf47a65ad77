// Every default of a request, once; the ranges they lie in are core/base/limits.h's (included
// here). The engine checks every request against those (core/engine/request_checks.cpp); the
// CLI's flags, the protocol's fields (core/protocol/protocol.h) and the GIMP plug-in's arguments
// (plugin/plugin.cpp) take their defaults and limits from here. No dependencies: the plug-in
// includes it without LibTorch or OpenCV.
// The edit defaults are measured in docs/editing.md ("Where sampling starts, and how hard the
// refinement re-noises") and models/default/MODEL_CARD.md.
#pragma once

#include <string_view>

#include "core/base/limits.h"

namespace dsk {

// ---- sampling (every command that samples)
inline constexpr int kDefaultSteps = 25;  // DDIM steps: section respacing "25" of the trained steps
inline constexpr std::string_view kDefaultSampler = "ddim";
inline constexpr std::string_view kSamplers[] = {"ddim", "ddpm", "dpm++2m", "unipc", "unipc-bh1"};
inline constexpr double kDefaultClassifierScale = 1.0;
// An edit's own: UniPC in 12 steps (10 network evaluations from the smooth fill at 0.8) scored as
// DDIM's 25 on two validation samples and is 1.7x faster (docs/sampling.md, "The edit's sampler
// and steps"). Whole-image generation and sampling keep DDIM 25 (interpolation needs DDIM).
inline constexpr int kDefaultEditSteps = 12;
inline constexpr std::string_view kDefaultEditSampler = "unipc";

// ---- the sketch
// Sketch strength (classifier-free guidance on the sketch) of an edit: 2 scored better than 1 on
// every score of eval-inpaint with the default model (models/default/MODEL_CARD.md, "Sketch
// strength"), at 1.7x the time (docs/benchmarks.md). Whole-image generation keeps 1.
inline constexpr double kDefaultSketchScale = 2.0;
inline constexpr double kDefaultGenerateSketchScale = 1.0;

// ---- edit
inline constexpr double kDefaultContextMargin = 0.25;  // context around the selection, x its size
inline constexpr int kDefaultFeather = 8;  // px, inside the selection
inline constexpr double kDefaultInitStrength = 0.8;    // start from a smooth fill noised to 80%
inline constexpr double kDefaultRefineStrength = 0.3;  // refinement tiles re-noised to 30%
inline constexpr int kDefaultRefineSteps = 2;  // denoised back in 2 DDIM steps
// Detail at native resolution for selections larger than the model's working size: "patch"
// (exemplar synthesis from the picture, guided by the model's result and the sketch), "tiles"
// (the model re-run SDEdit-style on tiles), "none" (the model's result upscaled). Measured in
// docs/editing.md ("Detail").
inline constexpr std::string_view kDetailModes[] = {"patch", "tiles", "none"};
inline constexpr std::string_view kDefaultDetail = "patch";
// The GIMP dialog's live preview: the coarse pass alone in this many steps (plugin/live.h).
inline constexpr int kLivePreviewSteps = 10;
inline constexpr double kDefaultHarmonize = 1.0;  // full colour matching to the surroundings
inline constexpr int kDefaultRepaintLength = 10;  // RePaint jump length in steps

// ---- interpolate
inline constexpr int kDefaultFrames = 5;  // both end points included
inline constexpr std::string_view kDefaultInterpolationMode = "slerp";  // slerp | linear | trig

}  // namespace dsk
