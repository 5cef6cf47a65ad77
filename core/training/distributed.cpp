#include "core/training/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <cstdlib>
#include <cstring>

#include "core/base/error.h"

namespace dsk {

namespace {

// An environment variable as an int in [lo, hi]; `fallback` when unset.
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end || x < lo || x > hi)
    throw InputError(std::string(name) + "=" + v + " is not a number in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(x);
}

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv e;
  const bool torchrun = std::getenv("WORLD_SIZE") && *std::getenv("WORLD_SIZE");
  const bool slurm = !torchrun && std::getenv("SLURM_NTASKS") && std::getenv("SLURM_PROCID");
  if (!torchrun && !slurm) return e;
  const char* world = torchrun ? "WORLD_SIZE" : "SLURM_NTASKS";
  const char* rank = torchrun ? "RANK" : "SLURM_PROCID";
  const char* local = torchrun ? "LOCAL_RANK" : "SLURM_LOCALID";
  e.world_size = env_int(world, 1, 1, 65536);
  if (e.world_size == 1) return e;
  if (!std::getenv(rank)) throw InputError(std::string(world) + " is " + std::to_string(e.world_size) + " but " + rank + " is not set");
  e.rank = env_int(rank, 0, 0, e.world_size - 1);
  e.local_rank = env_int(local, 0, 0, 65535);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, 1, 65536);
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr)
    throw InputError(std::string("data-parallel training (") + world + "=" + std::to_string(e.world_size) +
                     ") needs MASTER_ADDR, the host of rank 0 (torchrun sets it; under srun, set it to the first node)");
  e.master_addr = addr;
  if (!std::getenv("MASTER_PORT")) throw InputError("data-parallel training needs MASTER_PORT, a free port on MASTER_ADDR");
  e.master_port = env_int("MASTER_PORT", 0, 1, 65535);
  return e;
}

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  std::chrono::milliseconds timeout;
};

namespace {

// Waits for a collective; a rank that is gone (or stalled past the timeout) becomes one message.
void wait(const c10::intrusive_ptr<c10d::Work>& work, const DistEnv& env, std::chrono::milliseconds timeout,
          const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto at = msg.find("\nException raised from"); at != std::string::npos) msg.resize(at);
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": the " + what +
                " failed (another rank died, or did not answer within " + std::to_string(timeout.count() / 1000) +
                " s): " + msg);
  }
}

}  // namespace

DataParallel::DataParallel(const DistEnv& env, std::chrono::milliseconds timeout) : env_(env), impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  // Under torchrun the launcher's agent already hosts the store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank is its client, and a restarted attempt keeps
  // its keys apart, as PyTorch's own env:// rendezvous does.
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  const bool agent_store = agent && std::string(agent) == "True";
  const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0 && !agent_store;
  so.numWorkers = env.world_size;
  so.waitWorkers = !agent_store;
  so.timeout = timeout;
  so.useLibUV = false;  // Debian's LibTorch is built without libuv
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (agent_store)
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(
          std::string("/worker/attempt_") + (attempt && *attempt ? attempt : "0"), impl_->store);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto at = msg.find("\nException raised from"); at != std::string::npos) msg.resize(at);
    throw Error("rank " + std::to_string(env.rank) + ": cannot meet the other ranks at " + env.master_addr + ":" +
                std::to_string(env.master_port) + " (" + msg + "); is MASTER_ADDR:MASTER_PORT rank 0's host and a free port?");
  }
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname)
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  options->threads = 2;
  impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, options);
}

DataParallel::~DataParallel() = default;

void DataParallel::average_gradients(const std::vector<torch::Tensor>& params, size_t bucket_bytes) {
  const torch::NoGradGuard no_grad;
  const double scale = 1.0 / env_.world_size;
  size_t i = 0;
  while (i < params.size()) {
    // One bucket: consecutive tensors of one dtype up to bucket_bytes (at least one tensor).
    std::vector<torch::Tensor> grads;
    size_t bytes = 0;
    const auto dtype = params[i].scalar_type();
    size_t j = i;
    for (; j < params.size() && params[j].scalar_type() == dtype && (grads.empty() || bytes < bucket_bytes); ++j) {
      auto& p = const_cast<torch::Tensor&>(params[j]);
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
      bytes += static_cast<size_t>(p.numel()) * p.element_size();
    }
    std::vector<torch::Tensor> flat{torch::cat([&] {
      std::vector<torch::Tensor> v;
      for (const auto& g : grads) v.push_back(g.reshape({-1}));
      return v;
    }())};
    wait(impl_->group->allreduce(flat), env_, impl_->timeout, "gradient all-reduce");
    flat[0].mul_(scale);
    int64_t at = 0;
    for (auto& g : grads) {
      g.copy_(flat[0].narrow(0, at, g.numel()).view_as(g));
      at += g.numel();
    }
    i = j;
  }
}

std::vector<double> DataParallel::sum(const std::vector<double>& values) {
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  wait(impl_->group->allreduce(t), env_, impl_->timeout, "all-reduce");
  const auto a = t[0].accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t k = 0; k < out.size(); ++k) out[k] = a[static_cast<int64_t>(k)];
  return out;
}

void DataParallel::sum_tensors(const std::vector<torch::Tensor>& tensors) {
  const torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.reshape({-1}).to(torch::kFloat64));
  std::vector<torch::Tensor> flat{torch::cat(parts)};
  wait(impl_->group->allreduce(flat), env_, impl_->timeout, "all-reduce");
  int64_t at = 0;
  for (const auto& t : tensors) {
    const_cast<torch::Tensor&>(t).copy_(flat[0].narrow(0, at, t.numel()).view_as(t));
    at += t.numel();
  }
}

DataParallel::Pending DataParallel::start_sum(torch::Tensor& flat) {
  std::vector<torch::Tensor> one{flat};
  Pending p;
  p.work_ = impl_->group->allreduce(one);
  p.dp_ = this;
  return p;
}

void DataParallel::Pending::wait() {
  if (!work_) return;
  dsk::wait(work_, dp_->env_, dp_->impl_->timeout, "gradient all-reduce");
  work_.reset();
}

void DataParallel::broadcast(std::string& bytes, int root) {
  auto n = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64);
  broadcast(std::vector<torch::Tensor>{n}, root);
  auto t = torch::zeros({n.item<int64_t>()}, torch::kUInt8);
  if (env_.rank == root) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  broadcast(std::vector<torch::Tensor>{t}, root);
  bytes.assign(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()));
}

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  const torch::NoGradGuard no_grad;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> one{t.is_contiguous() ? t.detach() : t.detach().contiguous()};
    wait(impl_->group->broadcast(one, o), env_, impl_->timeout, "broadcast");
    if (!t.is_contiguous()) const_cast<torch::Tensor&>(t).detach().copy_(one[0]);
  }
}

void DataParallel::check_same(const std::string& what, const std::string& text) {
  std::string root = text;
  broadcast(root);
  const bool differs = root != text;
  const double count = sum({differs ? 1.0 : 0.0})[0];
  if (count > 0)
    throw InputError("the ranks were started with different " + what + ": " + std::to_string(static_cast<int>(count)) +
                     " of " + std::to_string(env_.world_size) + " differ from rank 0's" +
                     (differs ? " (this rank, " + std::to_string(env_.rank) + ", among them)" : std::string()) +
                     "; start every rank with the same " + what);
}

void DataParallel::barrier() {
  std::vector<torch::Tensor> t{torch::zeros({1})};
  wait(impl_->group->allreduce(t), env_, impl_->timeout, "barrier");
}

// ---------------------------------------------------------------------------------------------
// Gradients reduced during backward

struct GradientReducer::Bucket {
  std::vector<size_t> params;  // indices into params_
  torch::Tensor flat;          // the bucket's gradients, summed over the ranks in place
  size_t waiting = 0;          // gradients not yet ready in this backward
  bool started = false, late = false;
  DataParallel::Pending pending;
};

namespace {

// Called by autograd after a parameter's gradient was accumulated into .grad.
class ReadyHook : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit ReadyHook(std::function<void()> fn) : fn_(std::move(fn)) {}
  void operator()(const torch::autograd::Variable&) override { fn_(); }

 private:
  std::function<void()> fn_;
};

}  // namespace

GradientReducer::GradientReducer(DataParallel& dp, std::vector<torch::Tensor> params, size_t bucket_bytes)
    : dp_(dp), params_(std::move(params)), bucket_of_(params_.size()) {
  // Reverse order, one dtype a bucket, up to bucket_bytes (at least one tensor).
  size_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    const size_t size = static_cast<size_t>(p.numel()) * p.element_size();
    if (buckets_.empty() || bytes >= bucket_bytes || params_[buckets_.back()->params.back()].scalar_type() != p.scalar_type()) {
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    buckets_.back()->params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (size_t k : b->params) n += params_[k].numel();
    b->flat = torch::empty({n}, params_[b->params.front()].options().requires_grad(false));
  }
  // Checked before any hook is set: a hook must not outlive a reducer whose constructor threw.
  for (size_t k = 0; k < params_.size(); ++k)
    if (!params_[k].requires_grad())
      throw Error("GradientReducer: parameter " + std::to_string(k) + " does not require a gradient");
  for (size_t k = 0; k < params_.size(); ++k)
    torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<ReadyHook>([this, k] { ready(k); }));
}

GradientReducer::~GradientReducer() {
  for (auto& p : params_) torch::autograd::impl::post_acc_grad_hooks(p).reset();
  for (auto& b : buckets_) {
    try {
      b->pending.wait();  // never leave Gloo writing into a freed buffer
    } catch (...) {
    }
  }
}

size_t GradientReducer::buckets() const { return buckets_.size(); }

void GradientReducer::arm() {
  for (auto& b : buckets_) {
    b->waiting = b->params.size();
    b->started = b->late = false;
  }
  next_ = 0;
  started_early_ = 0;
  armed_ = true;
}

void GradientReducer::start(Bucket& b) {
  const torch::NoGradGuard no_grad;
  int64_t at = 0;
  for (size_t k : b.params) {
    auto& p = params_[k];
    auto flat_part = b.flat.narrow(0, at, p.numel());
    if (p.grad().defined()) flat_part.copy_(p.grad().reshape({-1}));
    else flat_part.zero_();
    at += p.numel();
  }
  b.pending = dp_.start_sum(b.flat);
  b.started = true;
}

void GradientReducer::ready(size_t k) {
  if (!armed_) return;
  Bucket& b = *buckets_[bucket_of_[k]];
  if (b.started) {  // a second contribution after the bucket left: redo it in finish()
    b.late = true;
    return;
  }
  if (b.waiting > 0) --b.waiting;
  while (next_ < buckets_.size() && buckets_[next_]->waiting == 0) {
    start(*buckets_[next_++]);
    ++started_early_;
  }
}

void GradientReducer::finish() {
  if (!armed_) throw Error("GradientReducer::finish without arm()");
  armed_ = false;
  // The buckets backward left (unused parameters, or waiting behind one), in order on every rank.
  for (; next_ < buckets_.size(); ++next_) start(*buckets_[next_]);
  for (auto& b : buckets_) b->pending.wait();
  // A bucket that had a gradient accumulated after it left: reduced again from the whole gradient
  // (every rank's graph is the same, so every rank redoes the same buckets).
  for (auto& b : buckets_)
    if (b->late) start(*b);
  for (auto& b : buckets_) b->pending.wait();
  const torch::NoGradGuard no_grad;
  const double scale = 1.0 / dp_.world_size();
  for (auto& b : buckets_) {
    b->flat.mul_(scale);
    int64_t at = 0;
    for (size_t k : b->params) {
      auto& p = params_[k];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.grad().copy_(b->flat.narrow(0, at, p.numel()).view_as(p));
      at += p.numel();
    }
  }
}

}  // namespace dsk
