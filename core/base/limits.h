// Every limit DiffSketch enforces, once: the ranges of a request's settings (however the request
// arrives: CLI, stdio, socket), the bounds of a protocol frame, the size of an image, of a model's
// files and of the network a model.json may describe. Each is checked before anything is
// allocated for it. The defaults that live inside these ranges are in core/engine/defaults.h.
// What is not here is a property of the mathematics, not a limit (a dropout below 1, a
// DDIM eta's meaning); those stay beside the code they describe.
// No dependencies and no code: the GIMP plug-in, editing/ and models/ include it (the one header
// of core/ they include).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

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

// ---- a request's settings (core/engine/request_checks.cpp checks them all)
// DDIM steps; the engine also refuses more steps than the model was trained with (ADM: 1000).
inline constexpr Range<int> kStepsRange{1, 1000};
inline constexpr Range<double> kEtaRange{0, 1};  // DDIM's eta: 0 deterministic, 1 DDPM's noise
inline constexpr Range<double> kClassifierScaleRange{0, 100};
inline constexpr Range<int> kBatchRange{1, 64};  // sample's images per request
inline constexpr Range<double> kSketchScaleRange{0, 20};
inline constexpr Range<double> kSketchGuidanceRange{0, 1000};  // 0 = off
inline constexpr Range<int> kVariantsRange{1, 8};
inline constexpr Range<double> kContextMarginRange{0, 2};  // x the selection's size
inline constexpr Range<int> kFeatherRange{0, 256};         // px
inline constexpr Range<double> kInitStrengthRange{0, 1, true};
inline constexpr Range<double> kRefineStrengthRange{0, 1, true};
inline constexpr Range<int> kRefineStepsRange{1, 100};
inline constexpr Range<double> kHarmonizeRange{0, 1};
inline constexpr Range<int> kRepaintLengthRange{1, 1000};
inline constexpr Range<int> kRepaintJumpsRange{0, 20};
inline constexpr Range<int> kFramesRange{2, 64};  // interpolate, both end points included

// ---- images (every request's images, and every file read_image decodes)
inline constexpr int kMinImageSide = 8;                   // px, each side of a request's image
inline constexpr std::int64_t kMaxImagePixels = 64'000'000;  // 64 megapixels, files too (editing/image_io.h)
// Memory a request may plan on: besides its per-pixel buffers (check_request_memory), this much for
// the model, LibTorch and the process itself.
inline constexpr double kRequestOverheadBytes = 512e6;

// ---- protocol frames (core/protocol/protocol.h's Limits take their defaults from here)
inline constexpr std::uint32_t kMaxFrameJsonBytes = 1u << 20;  // 1 MiB
inline constexpr int kMaxJsonDepth = 16;  // nested arrays and objects of a frame or model.json (they use 3)
inline constexpr std::uint16_t kMaxFramePayloads = 64;
inline constexpr std::uint64_t kMaxPayloadBytes = 1ull << 30;  // 1 GiB: a 64-megapixel RGBA float image
inline constexpr int kMaxPayloadSide = 65536;

// ---- the socket server the plug-in starts (serve --exit-when-idle; the plug-in's setting, minutes)
inline constexpr Range<int> kExitWhenIdleRange{0, 7 * 24 * 3600};  // s; 0 = never
inline constexpr Range<int> kEngineIdleMinutesRange{0, 24 * 60};   // 0 = no server: a private engine per edit
inline constexpr int kDefaultEngineIdleMinutes = 10;
// ---- a server several clients share (serve --max-queue: jobs waiting behind the running one)
inline constexpr Range<int> kMaxQueueRange{0, 1000};
inline constexpr int kDefaultMaxQueue = 16;

// ---- model files
inline constexpr std::uintmax_t kMaxModelJsonBytes = 1u << 20;  // model.json holds a few flags
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;  // the reference reader's limit
inline constexpr int kMaxSafetensorsDepth = 32;  // {name: {dtype, shape, data_offsets}} nests 3 deep

// ---- networks (model.json's flags, models/adm_config.cpp): far beyond any ADM model (the 512 px
// one: 256 channels, 2 blocks, 559 M parameters), so that a typo is refused before it allocates.
inline constexpr Range<int> kImageSizeRange{1, 4096};
inline constexpr Range<int> kInChannelsRange{1, 64};
inline constexpr Range<int> kNumChannelsRange{1, 4096};
inline constexpr Range<int> kNumResBlocksRange{1, 16};
inline constexpr int kMaxHeads = 1024;
inline constexpr int kMaxHeadChannels = 4096;
inline constexpr int kMaxClasses = 100000;
inline constexpr int kMaxLevels = 12;          // entries of channel_mult
inline constexpr double kMaxChannelMult = 64;  // each entry
inline constexpr double kMaxNetworkParams = 4e9;
inline constexpr Range<int> kEdgePyramidLevelsRange{1, 8};  // the fixed sketch-feature pyramid
// Fine-tuning back-propagates through the whole sampling chain: on a CPU, at most this many parameters.
inline constexpr double kMaxCpuFinetuneParams = 150e6;

}  // namespace dsk
