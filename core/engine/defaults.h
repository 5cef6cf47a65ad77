// Every default and every range of a request, once. The engine checks requests against the ranges
// (core/engine/edit.cpp); the CLI's flags, the protocol's fields (core/protocol/protocol.h) and the
// GIMP plug-in's arguments (plugin/plugin.cpp) take their defaults and limits from here. No
// dependencies: the plug-in includes it without LibTorch or OpenCV.
// The edit defaults are measured in docs/editing.md ("Where sampling starts, and how hard the
// refinement re-noises") and models/default/MODEL_CARD.md.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace dsk {

// A closed range [min, max], or (min, max] when min_excluded. NaN is in no range.
template <class T>
struct Range {
  T min, max;
  bool min_excluded = false;
  constexpr bool contains(T v) const { return (min_excluded ? v > min : v >= min) && v <= max; }
};

// As messages write it: "1..8" (counts and scales), "[0, 1]" (fractions), "(0, 1]" (open at 0).
template <class T>
std::string range_text(const Range<T>& r) {
  std::ostringstream s;
  if (r.min_excluded) s << "(" << r.min << ", " << r.max << "]";
  else if (r.max - r.min <= 1) s << "[" << r.min << ", " << r.max << "]";
  else s << r.min << ".." << r.max;
  return s.str();
}

// ---- sampling (every command that samples)
inline constexpr int kDefaultSteps = 25;  // DDIM steps: section respacing "25" of the trained steps
// The engine refuses more steps than the model was trained with; 1000 is ADM's (the plug-in's limit).
inline constexpr Range<int> kStepsRange{1, 1000};
inline constexpr std::string_view kDefaultSampler = "ddim";
// DDIM's eta: 0 deterministic, 1 as much noise as DDPM's posterior.
inline constexpr Range<double> kEtaRange{0, 1};
inline constexpr double kDefaultClassifierScale = 1.0;
inline constexpr Range<double> kClassifierScaleRange{0, 100};

// ---- the sketch
// Sketch strength (classifier-free guidance on the sketch) of an edit: 2 scored better than 1 on
// every score of eval-inpaint with the default model (models/default/MODEL_CARD.md, "Sketch
// strength"), at 1.7x the time (docs/benchmarks.md). Whole-image generation keeps 1.
inline constexpr double kDefaultSketchScale = 2.0;
inline constexpr double kDefaultGenerateSketchScale = 1.0;
inline constexpr Range<double> kSketchScaleRange{0, 20};
inline constexpr Range<double> kSketchGuidanceRange{0, 1000};  // 0 = off (the default)

// ---- edit
inline constexpr Range<int> kVariantsRange{1, 8};
inline constexpr double kDefaultContextMargin = 0.25;  // context around the selection, x its size
inline constexpr Range<double> kContextMarginRange{0, 2};
inline constexpr int kDefaultFeather = 8;  // px, inside the selection
inline constexpr Range<int> kFeatherRange{0, 256};
inline constexpr double kDefaultInitStrength = 0.8;    // start from a smooth fill noised to 80%
inline constexpr Range<double> kInitStrengthRange{0, 1, true};
inline constexpr double kDefaultRefineStrength = 0.3;  // refinement tiles re-noised to 30%
inline constexpr Range<double> kRefineStrengthRange{0, 1, true};
inline constexpr int kDefaultRefineSteps = 2;  // denoised back in 2 DDIM steps
inline constexpr Range<int> kRefineStepsRange{1, 100};
// Detail at native resolution for selections larger than the model's working size: "patch"
// (exemplar synthesis from the picture, guided by the model's result and the sketch), "tiles"
// (the model re-run SDEdit-style on tiles), "none" (the model's result upscaled). Measured in
// docs/editing.md ("Detail").
inline constexpr std::string_view kDetailModes[] = {"patch", "tiles", "none"};
inline constexpr std::string_view kDefaultDetail = "patch";
inline constexpr double kDefaultHarmonize = 1.0;  // full colour matching to the surroundings
inline constexpr Range<double> kHarmonizeRange{0, 1};
inline constexpr int kDefaultRepaintLength = 10;  // RePaint jump length in steps
inline constexpr Range<int> kRepaintLengthRange{1, 1000};
inline constexpr Range<int> kRepaintJumpsRange{0, 20};  // extra passes per jump; 0 = off (the default)

// ---- interpolate
inline constexpr int kDefaultFrames = 5;  // both end points included
inline constexpr Range<int> kFramesRange{2, 64};
inline constexpr std::string_view kDefaultInterpolationMode = "slerp";  // slerp | linear | trig

}  // namespace dsk
