// The engine's public API: request structs, a progress callback and a cancel token. Torch-free,
// so hosts (CLI, server, tests) include it without LibTorch.
//
//   dsk::SampleRequest req;
//   req.model = "models/adm-256-uncond";
//   req.sampling.steps = 25;
//   req.sampling.seed = 42;
//   dsk::CancelToken cancel;
//   auto images = dsk::sample(req, [](const dsk::Progress& p) { ... }, &cancel);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/cancel.h"

namespace dsk {

// An RGB image, float32 in [0, 1], row-major HWC.
struct ImageF32 {
  int width = 0, height = 0, channels = 3;
  std::vector<float> data;
};

// Flags shared by every command that samples (same names on the CLI).
struct SamplingParams {
  int steps = 50;              // section respacing "N"; ignored when respacing is set
  std::string respacing;       // any guided-diffusion string: "ddim25", "10,15,20"
  std::string sampler = "ddim";  // ddim | ddpm
  double eta = 0.0;
  uint64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda
  std::string classifier;       // classifier model folder, "" = none
  int class_label = -1;         // -1 = none
  double classifier_scale = 1.0;
};

struct Progress {
  int step = 0, total = 0;
  const ImageF32* preview = nullptr;  // predicted x0 of the first image, when asked for
};
using ProgressFn = std::function<void(const Progress&)>;

struct SampleRequest {
  std::string model;
  SamplingParams sampling;
  int batch = 1;
  bool preview = false;
};

// Unconditional or class-conditional synthesis from a plain ADM model, with optional classifier
// guidance. Throws dsk::InputError for bad requests and dsk::Cancelled when cancelled.
std::vector<ImageF32> sample(const SampleRequest& request, const ProgressFn& progress = {},
                             const CancelToken* cancel = nullptr);

}  // namespace dsk
