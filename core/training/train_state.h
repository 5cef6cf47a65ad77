// What every training loop shares (train, finetune, train-sketch-features): atomic resumable
// checkpoints, the EMA with warm-up, model export, and the CPU's bf16 capability.
#pragma once

#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/device/precision.h"
#include "core/formats/model_info.h"

namespace dsk {

// ema <- decay ema + (1 - decay) params, decay = min(rate, (1 + step) / (10 + step)).
// warmup: the decay is min(rate, (1 + step) / (10 + step)), so a fresh EMA forgets its random
// start; without it (an EMA that starts from trained weights) the decay is `rate` from step 0.
void ema_update(std::vector<torch::Tensor>& ema, const std::vector<torch::Tensor>& params, double rate, long step,
                bool warmup = true);

// DIR holds weights (parameters and buffers, e.g. BatchNorm statistics), EMA (none when `ema` is
// empty), Adam state, the torch generator, the std rng and the step (state.json with any `extra`
// fields). Written to DIR.tmp and renamed into place: a kill leaves the previous one.
// oneDNN's CPU kernels (Debian's LibTorch 2.6) return non-finite gradients on some runs and not
// others, with the same inputs and seeds (whole-graph back-propagation through a sampling chain gave
// NaN in every parameter under ctest and finite values from a shell; a kill-and-resume training
// test diverged once in four full suites). Training and fine-tuning hold one of these for their
// duration (fine-tuning measured faster without them: 19 s instead of 35 s an iteration), unless
// DSK_ONEDNN=1 asks for them: the default model's training is ~5x faster with them, and its
// training loop skips a step whose loss is not finite.
// The cause looks like reads of uninitialised memory: the share of skipped steps grew with the
// process's age (2% -> 45% over ~1,500 steps, as freed buffers that held NaN are handed out again),
// restarted low, and dropped to none when glibc zero-fills every allocation (M_PERTURB; measured
// side by side in models/default/MODEL_CARD.md). So with DSK_ONEDNN=1 allocations are zero-filled.
struct WithoutOneDnn {
  bool was = at::globalContext().userEnabledMkldnn();
  WithoutOneDnn() {
    const char* v = std::getenv("DSK_ONEDNN");
    if (!(v && std::string(v) == "1")) {
      at::globalContext().setUserEnabledMkldnn(false);
    } else {
#ifdef __GLIBC__
      // For the rest of the process: malloc fills with 0xff ^ 0xff = 0, free with 0xff.
      mallopt(M_PERTURB, 0xff);
#endif
    }
  }
  ~WithoutOneDnn() { at::globalContext().setUserEnabledMkldnn(was); }
  WithoutOneDnn(const WithoutOneDnn&) = delete;
  WithoutOneDnn& operator=(const WithoutOneDnn&) = delete;
};

struct Checkpointer {
  std::filesystem::path dir;
  // A kill inside save(), between moving DIR to DIR.old and DIR.tmp to DIR, leaves no DIR: puts
  // back the newest complete one (DIR.tmp when its state.json, written last, is there, else
  // DIR.old). Call before looking for a checkpoint; says what it did on `log`.
  void recover(std::ostream& log) const;
  // `files`: more safetensors files (name -> tensors) that belong to the same checkpoint.
  void save(torch::nn::Module& model, const std::vector<torch::Tensor>& ema, torch::optim::Adam& adam, long step,
            const std::mt19937_64& rng, const at::Generator& gen, const nlohmann::json& extra,
            const std::map<std::string, std::map<std::string, torch::Tensor>>& files = {});
  // Returns state.json (step and the extra fields).
  nlohmann::json load(torch::nn::Module& model, std::vector<torch::Tensor>& ema, torch::optim::Adam& adam,
                      std::mt19937_64& rng, at::Generator& gen);
};

// Writes a model folder `out` (atomically) from the model's parameters (or `ema` when given) and buffers,
// in `dtype`, with model.json from `base` and `note`; `extra_tensors` go to extra files in it.
void export_model(const ModelInfo& base, const std::filesystem::path& out, torch::nn::Module& model,
                  const std::vector<torch::Tensor>* ema, long step, const std::string& note, torch::ScalarType dtype,
                  const std::map<std::string, std::map<std::string, torch::Tensor>>& extra_files = {});

}  // namespace dsk
