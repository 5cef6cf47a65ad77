// Every check a request gets before the engine loads a model or allocates anything for it,
// however the request arrived (CLI, stdio, socket): each field's range and finiteness (the ranges
// are core/base/limits.h's), the images' sizes, depths and pixel values, and the memory the
// request would need. Torch-free, so that the request fuzzer (tests/fuzz/fuzz_request.cpp) runs
// it under the sanitizers. Every refusal is one InputError naming the field, its range and the
// value. The engine's request handlers (edit.cpp, engine.cpp) call these first.
#pragma once

#include <sstream>
#include <string>

#include "core/base/error.h"
#include "core/engine/engine.h"

namespace dsk {

// `value` must be in `range`, else an InputError: "<what> must be in <range><hint>; got <value>".
template <class T>
void require_in(const Range<T>& range, T value, const std::string& what, const std::string& hint) {
  if (range.contains(value)) return;
  std::ostringstream msg;
  msg << what << " must be in " << range_text(range) << hint << "; got " << value;
  throw InputError(msg.str());
}

// The sampling settings every request shares.
void check_sampling(const SamplingParams& sampling);
// w x h: at least kMinImageSide on each side, at most kMaxImagePixels.
void check_image_size(int w, int h, const std::string& what);

void check_edit_request(const EditRequest& request);
void check_generate_request(const GenerateRequest& request);
void check_interpolate_request(const InterpolateRequest& request);
void check_sample_request(const SampleRequest& request);
// An edit of a crop at `image_at` of the sketch layer (Engine::edit_crop): the crop's geometry.
void check_edit_crop(const EditRequest& request, cv::Point image_at);

// The bytes an edit of a w x h image with `variants` results plans on: per pixel, the float copies
// of image, mask, sketch, blend weights and each variant's result, and the patch detail's features,
// matches and pyramid; plus kRequestOverheadBytes.
double request_memory_bytes(cv::Size size, int variants);
// Refuses the request when it would need more than `available_bytes` (<= 0: unknown, not checked).
void check_request_memory(cv::Size size, int variants, double available_bytes);

}  // namespace dsk
