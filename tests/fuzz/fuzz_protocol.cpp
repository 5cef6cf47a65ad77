// libFuzzer target for the protocol decoder (frames from the plug-in or any client): any input
// must either decode or throw proto::ProtocolError. A decoded message must encode and decode back
// to itself. Anything else (another exception, a crash, a sanitizer report) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "core/protocol/protocol.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

// Small limits, so that the fuzzer spends its time in the decoder, not in allocating payloads.
dsk::proto::Limits fuzz_limits() {
  dsk::proto::Limits l;
  l.max_payload_bytes = 1 << 20;
  l.max_side = 4096;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace proto = dsk::proto;
  const auto limits = fuzz_limits();
  proto::Message m;
  try {
    m = proto::decode({data, size}, limits);
  } catch (const proto::ProtocolError&) {
    return 0;
  }
  const auto again = proto::decode(proto::encode(m), limits);  // must not throw
  if (!(again == m)) std::abort();
  return 0;
}

// Structure-aware mutation: a plain mutation almost always breaks the magic or the JSON length, so
// most of the time the JSON header (or the payload bytes) alone is mutated and the length rewritten.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
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
