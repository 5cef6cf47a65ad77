// Data-parallel training on LibTorch's c10d: the ranks' rendezvous from the environment that
// torchrun and SLURM set, a Gloo process group (CPU tensors), and the collectives a data-parallel
// step needs: the gradients averaged over the ranks in buckets, a few numbers summed, tensors
// broadcast from rank 0.
//
//   const DistEnv env = dist_env_from_environment();       // world 1 when nothing is set
//   if (env.world_size > 1) {
//     DataParallel dp(env, std::chrono::seconds(120));
//     dp.broadcast(params);                                 // every rank starts from rank 0's weights
//     loss.backward();
//     dp.average_gradients(params);                         // then the same optimiser step everywhere
//   }
#pragma once

#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace dsk {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  int local_world_size = 1;  // ranks on this machine (torchrun's LOCAL_WORLD_SIZE; 1 when not known)
  std::string master_addr;  // the host of rank 0's store
  int master_port = 0;
  bool active() const { return world_size > 1; }
};

// torchrun's variables (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), else SLURM's
// (SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID; MASTER_ADDR and MASTER_PORT still needed), else one
// process. Throws InputError naming the variable that is missing or out of range.
DistEnv dist_env_from_environment();

class DataParallel {
 public:
  // Joins the group: rank 0 hosts the TCP store at MASTER_ADDR:MASTER_PORT, every rank connects to
  // it; Gloo's transport binds to the address this host reaches the master by (GLOO_SOCKET_IFNAME
  // names an interface instead). A collective that waits longer than `timeout` (a rank died) throws
  // dsk::Error naming the rank and the timeout.
  DataParallel(const DistEnv& env, std::chrono::milliseconds timeout);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }

  // Each tensor's .grad() replaced by its mean over the ranks (a missing gradient counts as zeros),
  // all-reduced in flat buckets of about `bucket_bytes` (fewer, larger messages than one a tensor).
  void average_gradients(const std::vector<torch::Tensor>& params, size_t bucket_bytes = 25u << 20);
  // The element-wise sum over the ranks.
  std::vector<double> sum(const std::vector<double>& values);
  // Each tensor replaced by its element-wise sum over the ranks, in place (one message).
  void sum_tensors(const std::vector<torch::Tensor>& tensors);
  // Rank `root`'s values into every rank's tensors (same shapes on every rank), in place.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Rank `root`'s bytes into every rank's string (any length on the others).
  void broadcast(std::string& bytes, int root = 0);
  void barrier();
  // Every rank's `text` (a run's settings) against rank 0's: when any differs, every rank throws
  // InputError naming `what` and how many ranks differ, instead of a collective on mismatched
  // tensors failing later without a reason.
  void check_same(const std::string& what, const std::string& text);

  // The all-reduce of one flat tensor (summed in place), started and not waited for; wait() it.
  class Pending {
   public:
    void wait();
   private:
    friend class DataParallel;
    c10::intrusive_ptr<c10d::Work> work_;
    const DataParallel* dp_ = nullptr;
  };
  Pending start_sum(torch::Tensor& flat);

 private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

// Gradients averaged while backward still runs, as PyTorch's DistributedDataParallel does: the
// parameters are grouped in buckets in reverse order (backward produces the last layers'
// gradients first); a hook after each gradient's accumulation marks it ready, and a bucket whose
// gradients are all ready is all-reduced at once on Gloo's threads while autograd goes on with the
// earlier layers. Buckets start in the same order on every rank (a ready bucket waits for the ones
// before it): Gloo pairs the ranks' messages by order.
//
//   GradientReducer reducer(dp, model->parameters());
//   adam.zero_grad();
//   reducer.arm();       // this backward's gradients are reduced as they come
//   loss.backward();
//   reducer.finish();    // the rest started, everything waited for: .grad holds the ranks' mean
//
// A parameter without a gradient counts as zeros (an unused one holds up the buckets after it
// until finish(): keep such parameters first). Autograd sums a parameter's uses in one graph before
// accumulating, so a hook fires once a backward; when several backward passes run between arm()
// and finish(), a bucket that receives more after it left is reduced again, from the whole
// gradient (correct, but the overlap is lost: arm() before the last pass instead).
class GradientReducer {
 public:
  GradientReducer(DataParallel& dp, std::vector<torch::Tensor> params, size_t bucket_bytes = 25u << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void arm();
  void finish();
  size_t buckets() const;
  size_t started_during_backward() const { return started_early_; }  // of the last backward

 private:
  struct Bucket;
  void ready(size_t param);
  void start(Bucket& b);
  DataParallel& dp_;
  std::vector<torch::Tensor> params_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<size_t> bucket_of_;  // parameter -> bucket
  size_t next_ = 0;                // the next bucket to start
  size_t started_early_ = 0;
  bool armed_ = false;
};

}  // namespace dsk
