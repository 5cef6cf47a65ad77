// Converting official torch.save checkpoints to model folders, and describing weight files.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "core/formats/model_info.h"

namespace dsk {

struct ConvertOptions {
  std::string input;   // IN.pt (torch.save zip; unpickled: trusted files only)
  std::string out_dir;
  std::string preset;  // or:
  std::string config;  // a JSON file {"kind": ..., "flags": {...}} (model.json's shape)
  std::string dtype = "keep";  // keep | f32 | f16 | bf16
};

// Reads the checkpoint, checks every tensor against the network the flags describe (names and
// shapes, finite values), and writes OUT_DIR/model.json + weights.safetensors. Nothing is left in
// OUT_DIR when it fails.
ModelInfo convert_checkpoint(const ConvertOptions& options, std::ostream& log);

// `diffsketch info`: tensors, dtypes, shapes, parameter count, and which preset (if any) it matches.
void print_safetensors_info(const std::string& path, bool all, std::ostream& out);

}  // namespace dsk
