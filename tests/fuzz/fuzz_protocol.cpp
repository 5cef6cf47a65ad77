// libFuzzer target for the protocol decoder (frames from the plug-in or any client): any input
// must either decode or throw proto::ProtocolError. A decoded message must encode and decode back
// to itself. Anything else (another exception, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/protocol/protocol.h"
#include "tests/fuzz/frame_mutator.h"

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

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  return dsk::fuzz::mutate_frame(data, size, max_size, seed);
}
