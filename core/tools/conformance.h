// `diffsketch conformance`: recompute a reference case (tests/data/conformance/*) and compare.
#pragma once

#include <ostream>
#include <string>

namespace dsk {

struct ConformanceResult {
  int passed = 0, failed = 0;
};

// Builds both networks from DIR/config.json, loads unet.safetensors and classifier.safetensors,
// recomputes every key of config.json's KEYS found in io.safetensors, prints one line per key
// with its relative error ||a-b||/||b||, then "conformance: N passed, M failed".
ConformanceResult run_conformance(const std::string& dir, std::ostream& out);

}  // namespace dsk
