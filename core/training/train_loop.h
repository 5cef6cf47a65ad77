// What every training loop of the engine shares (train, finetune, train-sketch-features), so that
// each algorithm's file keeps only its step: the checkpoint folder's resume rule, the loss log and
// its plot, rate / ETA / checkpoint timing, the policy for steps that are not finite, and autocast
// held for a scope.
#pragma once


#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "core/training/train_state.h"
#include "models/autocast.h"

namespace dsk {

class DataParallel;

// Held for a run's life: a second run on the same OUT (two --resume runs, a run started twice) is
// refused, instead of both writing the same checkpoint. An flock on OUT/.lock, which the kernel
// drops when the process ends, however it ends. Creates OUT.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& out_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// OUT/checkpoint for a run: an interrupted save is put back first (Checkpointer::recover); then
// --resume needs a checkpoint, and a new run refuses to overwrite one. True: the caller loads it.
bool open_checkpoint(const Checkpointer& ckpt, const std::string& out_dir, bool resume, std::ostream& log);

// Initialises `model` from a model folder of one of `kinds`: every parameter and buffer of the same
// name and shape is copied (load_matching_weights), the others keep their initialisation; says
// how many of each on `log`. `what` names the option in errors ("train init_from").
void init_weights_from(torch::nn::Module& model, const std::string& dir, const std::vector<ModelKind>& kinds,
                       const std::string& what, std::ostream& log);

// Data-parallel: rank 0's training state into every rank (in place): parameters and buffers, the
// EMA, Adam's moments and step counts (created where a rank has none), the std rng and the torch
// generator. After it, every rank continues exactly as rank 0 would.
void share_state(DataParallel& dp, torch::nn::Module& model, std::vector<torch::Tensor>& ema, torch::optim::Adam& adam,
                 std::mt19937_64& rng, at::Generator& gen);

// A CSV loss log: the header on a new run, rows appended on a resumed one; every row is flushed,
// so a kill loses none.
class LossLog {
 public:
  LossLog(std::filesystem::path file, const std::string& header, bool resume);
  template <class First, class... Rest>
  void row(const First& first, const Rest&... rest) {
    out_ << first;
    ((out_ << ',' << rest), ...);
    out_ << std::endl;
  }
  // The plot of the log's loss column beside it (loss.png); a failure is said on `log`, never
  // thrown: a plot does not stop a run.
  void plot(const std::string& title, std::ostream& log);

 private:
  std::filesystem::path file_;
  std::ofstream out_;
};

// Rate and ETA of a loop from step `first` to `total`, and when the next timed checkpoint is due.
class LoopClock {
 public:
  LoopClock(long first, long total, double checkpoint_minutes);
  double elapsed() const;  // seconds since the start
  double rate(long step) const;  // steps per second since the start
  double eta_minutes(long step) const;
  bool checkpoint_due() const;  // checkpoint_minutes since the start or the last checkpointed()
  void checkpointed();

 private:
  using Clock = std::chrono::steady_clock;
  long first_, total_;
  double checkpoint_seconds_;
  Clock::time_point start_, last_checkpoint_;
};

// Steps whose loss or gradient norm is not finite are skipped, up to `allowed` in a row; the next
// one stops the run with an Error naming the step and what to do.
class NonFiniteGuard {
 public:
  static constexpr int kAllowedInARow = 20;
  // what: "training" / "fine-tuning"; unit: "step" / "iteration".
  NonFiniteGuard(std::string what, std::string unit, int allowed = kAllowedInARow);
  // False: skip this step's update. `hint` ends the error message ("lower --lr, ...").
  bool accept(double loss, double grad_norm, long step, const std::string& hint);
  long skipped() const { return skipped_; }

 private:
  std::string what_, unit_;
  int allowed_, in_a_row_ = 0;
  long skipped_ = 0;
};

}  // namespace dsk
