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

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace dsk {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
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
  // Rank `root`'s values into every rank's tensors (same shapes on every rank), in place.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  void barrier();

 private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsk
