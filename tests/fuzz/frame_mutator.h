// A structure-aware libFuzzer mutation for protocol frames (core/protocol/protocol.h), shared by
// the targets that read frames (fuzz_protocol, fuzz_request).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/protocol/protocol.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace dsk::fuzz {

// Structure-aware mutation: a plain mutation almost always breaks the magic or the JSON length, so
// most of the time the JSON header (or the payload bytes) alone is mutated and the length rewritten.
inline size_t mutate_frame(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  constexpr size_t kHead = dsk::proto::kFrameHeaderBytes;
  std::minstd_rand rng(seed);
  if (size < kHead || rng() % 5 == 0) return LLVMFuzzerMutate(data, size, max_size);
  uint32_t n;
  std::memcpy(&n, data + 8, 4);
  n = static_cast<uint32_t>(std::min<size_t>(n, size - kHead));
  std::vector<uint8_t> text(data + kHead, data + kHead + n), rest(data + kHead + n, data + size);
  const bool on_text = rng() % 4 != 0;
  auto& part = on_text ? text : rest;
  const size_t other = on_text ? rest.size() : text.size();
  if (max_size < kHead + other + 1) return LLVMFuzzerMutate(data, size, max_size);
  if (part.empty()) part.push_back(on_text ? '{' : 0);
  const size_t used = part.size();
  part.resize(max_size - kHead - other);
  part.resize(LLVMFuzzerMutate(part.data(), used, part.size()));
  const uint32_t len = static_cast<uint32_t>(text.size());
  std::memcpy(data + 8, &len, 4);
  std::copy(text.begin(), text.end(), data + kHead);
  std::copy(rest.begin(), rest.end(), data + kHead + text.size());
  return kHead + text.size() + rest.size();
}

}  // namespace dsk::fuzz
