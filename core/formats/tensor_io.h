// LibTorch tensors <-> safetensors files, and strict loading of a module's weights.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/formats/safetensors.h"

namespace dsk {

torch::ScalarType scalar_type_of(st::DType dtype, const std::string& where);
st::DType dtype_of(torch::ScalarType type);

// A CPU tensor holding a copy of one tensor of the file.
torch::Tensor read_tensor(const st::File& file, const st::TensorInfo& info);
std::map<std::string, torch::Tensor> read_tensors(const st::File& file);

// Writes tensors (moved to CPU, made contiguous) atomically.
void write_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

// Loads every parameter and buffer of `module` from `file`. All-or-nothing: names must match
// exactly (no missing, no extra), shapes must equal, float values must be finite; nothing is
// copied unless every tensor checks out. Each problem names the file, the tensor and what was expected.
void load_weights(torch::nn::Module& module, const st::File& file);

// Copies each parameter and buffer of `module` that `file` holds under the same name and shape
// (values must be finite); the others keep their values (fine-tuning from a network with another
// head). Returns the names that were not copied.
std::vector<std::string> load_matching_weights(torch::nn::Module& module, const st::File& file);

// The module's parameters and buffers under their state_dict names, converted to `dtype`
// (floating tensors only; kFloat32 keeps them as they are).
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module,
                                                torch::ScalarType dtype = torch::kFloat32);

}  // namespace dsk
