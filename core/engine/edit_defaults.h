// Defaults of edit's sampling settings shared by the engine (core/engine/engine.h), the engine protocol
// (core/protocol/protocol.h) and the GIMP plug-in's arguments; no dependencies, so the plug-in includes it too.
// Measured in docs/editing.md ("Where sampling starts, and how hard the refinement re-noises").
#pragma once

namespace dsk {

inline constexpr double kDefaultInitStrength = 0.8;    // start from a smooth fill noised to 80%
inline constexpr double kDefaultRefineStrength = 0.3;  // refinement tiles re-noised to 30%
inline constexpr int kDefaultRefineSteps = 2;           // denoised back in 2 DDIM steps
inline constexpr double kDefaultHarmonize = 1.0;       // full colour matching to the surroundings
// Sketch strength (classifier-free guidance on the sketch) of an edit: 2 scored better than 1 on
// every score of eval-inpaint with the default model (models/default/MODEL_CARD.md, "Sketch
// strength"), at 1.7x the time (docs/benchmarks.md). Whole-image generation keeps 1.
inline constexpr double kDefaultSketchScale = 2.0;

}  // namespace dsk
