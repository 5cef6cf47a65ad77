// `diffsketch serve`'s requests (core/protocol/protocol.h) as engine requests (core/engine/engine.h)
// and the engine's images as the protocol's. Torch-free: the request fuzzer (tests/fuzz) runs it
// with the engine's checks (core/engine/request_checks.h).
#pragma once

#include "core/engine/engine.h"
#include "core/protocol/protocol.h"

namespace dsk::cli {

// A field the engine cannot represent (an unknown detail or interpolation mode) is an InputError.
EditRequest to_engine(const proto::EditRequest& request);
GenerateRequest to_engine(const proto::GenerateRequest& request);
InterpolateRequest to_engine(const proto::InterpolateRequest& request);

proto::Image from_mat(const cv::Mat& image);          // 8/16-bit or float, gray/BGR/BGRA
proto::Image preview_image(const ImageF32& preview);  // RGB [0,1] -> u8

}  // namespace dsk::cli
