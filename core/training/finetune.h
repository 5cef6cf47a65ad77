// The paper's fine-tuning (Algorithm 1): customise a model to a user's sketches by
// back-propagating through the whole DDIM sampling chain from a fixed x_T. See docs/finetune.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "core/base/cancel.h"
#include "core/diffusion/sampler.h"
#include "core/diffusion/schedule.h"
#include "models/adm_config.h"

namespace dsk {

struct FinetuneOptions {
  std::string model;           // model folder or id: adm-unet or editing-unet
  std::string sketches_dir;    // the user's sketches (any image OpenCV reads)
  std::string photos_dir;      // optional reference photos, paired with the sketches by sorted name
  std::string out_dir;
  int steps = 10;              // T: respaced DDIM steps of the chain
  long iters = 100;            // M
  bool resume = false;
  double lambda = 0.4;         // L = lambda L_identity + (1 - lambda) L_sketch
  double lr = 1e-4;
  double ema_rate = 0.9999;
  int batch = 0;               // 0: 4, or 1 when fewer than 4 sketches are given
  uint64_t seed = 0;           // fixes x_T and the order of the sketches
  int class_label = -1;        // class-conditional ADM models
  std::string device = "auto";
  std::string sketch_features;  // sketch-features model folder; "" = the fixed edge pyramid
  std::string precision = "fp32";  // fp32 | bf16 (CPU with native bf16) | fp16 (CUDA, dynamic loss scaling)
  bool recompute = true;       // per-step checkpointing: recompute each step in backward
  double checkpoint_minutes = 5;
  long checkpoint_every = 0;   // also checkpoint every N iterations (tests); 0 = by time only
};

struct FinetuneReport {
  long iters = 0;
  double first_sketch = 0, last_sketch = 0;      // L_sketch of the first and the last iteration
  double first_identity = 0, last_identity = 0;  // L_identity likewise
  double seconds = 0;
  bool primary = true;  // false on the ranks > 0 of a data-parallel run (they report nothing)
};

// Runs Algorithm 1 and writes OUT/model (a model folder of the input's kind, EMA weights, with
// x_T.safetensors: the fixed x_T, one per sketch), OUT/checkpoint and OUT/loss.csv.
FinetuneReport finetune(const FinetuneOptions& options, std::ostream& log, const CancelToken* cancel = nullptr);

// --- the chain, exposed for tests ---

// One deterministic DDIM step (eta 0) at spaced index i.
torch::Tensor ddim_chain_step(const Schedule& schedule, const Predictor& predict, const torch::Tensor& x, int index);

// Runs x_T through every spaced index of `schedule` (highest first), evaluates loss(x0) and
// back-propagates it into the parameters the predictor uses (gradients accumulate in .grad), and
// into x_T when `grad_x_T` is given. With `recompute`, only each step's input is kept and the
// step is recomputed during the backward pass (memory nearly flat in T); without, the whole graph
// is kept. `scale` multiplies the loss before back-propagation (dynamic loss scaling).
// `before_last_pass` is called before the backward pass that completes the parameters'
// gradients (data-parallel: their all-reduce starts during it). Returns the unscaled loss value.
double chain_backward(const Schedule& schedule, const Predictor& predict, const torch::Tensor& x_T,
                      const std::function<torch::Tensor(const torch::Tensor& x0)>& loss, bool recompute,
                      torch::Tensor* grad_x_T = nullptr, double scale = 1.0,
                      const std::function<void()>& before_last_pass = nullptr);

// Memory a fine-tuning run needs: weights, gradients, Adam's two moments, the EMA and the frozen
// copy (24 bytes per parameter in fp32), plus one step's activations for the batch (a formula
// over the network's blocks; docs/finetune.md compares it with measured peaks).
struct FinetuneMemory {
  double params = 0;
  double state_bytes = 0, activation_bytes = 0;
  double total() const { return state_bytes + activation_bytes; }
};
FinetuneMemory estimate_finetune_memory(const UNetConfig& net, int64_t params, int batch);

// Dynamic loss scaling for fp16 (as torch.cuda.amp.GradScaler): the loss is multiplied by
// scale(); after backward, unscale() divides the gradients and says whether they are finite; a
// non-finite step is skipped and the scale halves; after `growth_interval` finite steps it doubles.
class LossScaler {
 public:
  explicit LossScaler(double initial = 65536.0, int growth_interval = 100) : scale_(initial), interval_(growth_interval) {}
  double scale() const { return scale_; }
  bool unscale(const std::vector<torch::Tensor>& params);
  void update(bool finite);

 private:
  double scale_;
  int interval_;
  int good_ = 0;
};

}  // namespace dsk
