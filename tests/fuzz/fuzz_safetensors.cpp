// libFuzzer target for the safetensors reader: any input must either load or throw dsk::InputError
// (or dsk::Error).
// Anything else (another exception, a crash, a sanitizer report) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/base/error.h"
#include "core/formats/safetensors.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = dsk::st::File::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors()) {
      for (uint8_t b : file.bytes(t)) sink = sink ^ b;  // every byte must be in bounds
      (void)t.numel();
      (void)file.at(t.name);
      file.check_finite(t);
    }
    for (const auto& [k, v] : file.metadata()) sink = sink ^ static_cast<uint8_t>(k.size() + v.size());
  } catch (const dsk::Error&) {
  } catch (const std::invalid_argument&) {  // dsk::InputError: a file refused with its reason
  }
  return 0;
}

// Structure-aware mutation: a plain mutation almost always breaks the header length prefix, so
// most of the time mutate the JSON header (or the data buffer) alone and rewrite the prefix.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  std::minstd_rand rng(seed);
  if (size < 8 || rng() % 4 == 0) return LLVMFuzzerMutate(data, size, max_size);
  uint64_t n;
  std::memcpy(&n, data, 8);
  n = std::min<uint64_t>(n, size - 8);
  std::vector<uint8_t> header(data + 8, data + 8 + n), buffer(data + 8 + n, data + size);
  bool on_header = rng() % 4 != 0;
  auto& part = on_header ? header : buffer;
  size_t other = on_header ? buffer.size() : header.size();
  if (max_size < 8 + other + 1) return LLVMFuzzerMutate(data, size, max_size);
  if (part.empty()) part.push_back(on_header ? '{' : 0);
  size_t used = part.size();
  part.resize(max_size - 8 - other);
  part.resize(LLVMFuzzerMutate(part.data(), used, part.size()));
  uint64_t len = header.size();
  std::memcpy(data, &len, 8);
  std::copy(header.begin(), header.end(), data + 8);
  std::copy(buffer.begin(), buffer.end(), data + 8 + header.size());
  return 8 + header.size() + buffer.size();
}
