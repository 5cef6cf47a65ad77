#include "core/training/train_loop.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/base/error.h"
#include "core/formats/tensor_io.h"
#include "core/training/distributed.h"
#include "editing/plot.h"

namespace dsk {

namespace fs = std::filesystem;

RunLock::RunLock(const fs::path& out_dir) {
  fs::create_directories(out_dir);
  const std::string path = (out_dir / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot create the run's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw InputError(out_dir.string() + " is in use by another run" +
                     (n > 0 ? " (process " + std::string(pid, static_cast<size_t>(n)) + ")" : std::string()) +
                     "; wait for it to end, or choose another --out");
  }
  // The process number is only for a refused second run's message; the lock holds without it.
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the lock
}

bool open_checkpoint(const Checkpointer& ckpt, const std::string& out_dir, bool resume, std::ostream& log) {
  ckpt.recover(log);
  if (resume) {
    if (!fs::exists(ckpt.dir / "state.json"))
      throw InputError(out_dir + ": --resume, but there is no checkpoint in it (start without --resume)");
    return true;
  }
  if (fs::exists(ckpt.dir))
    throw InputError(out_dir + ": already holds a checkpoint; continue it with --resume or choose a new --out");
  return false;
}

void init_weights_from(torch::nn::Module& model, const std::string& dir, const std::vector<ModelKind>& kinds,
                       const std::string& what, std::ostream& log) {
  const auto info = read_model_info(dir);
  require_kind(info, kinds, what);
  const auto fresh = load_matching_weights(model, st::File::open(info.weights_path()));
  const size_t total = model.named_parameters().size() + model.named_buffers().size();
  log << "init from " << dir << ": copied " << total - fresh.size() << " tensor(s), kept " << fresh.size()
      << " tensor(s) freshly initialised";
  for (size_t i = 0; i < fresh.size() && i < 8; ++i) log << (i ? ", " : " (") << fresh[i];
  log << (fresh.empty() ? "" : fresh.size() > 8 ? ", ...)" : ")") << "\n";
}

void share_state(DataParallel& dp, torch::nn::Module& model, std::vector<torch::Tensor>& ema, torch::optim::Adam& adam,
                 std::mt19937_64& rng, at::Generator& gen) {
  const torch::NoGradGuard no_grad;
  const auto params = model.parameters();
  dp.broadcast(params);
  dp.broadcast(model.buffers());
  dp.broadcast(ema);
  // Adam: which parameters have a state on rank 0 (after a resume: all of them), then its moments.
  auto has = torch::zeros({static_cast<int64_t>(params.size())}, torch::kInt64);
  auto steps = torch::zeros_like(has);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = adam.state().find(params[i].unsafeGetTensorImpl());
    if (it == adam.state().end()) continue;
    has[static_cast<int64_t>(i)] = 1;
    steps[static_cast<int64_t>(i)] = static_cast<torch::optim::AdamParamState&>(*it->second).step();
  }
  dp.broadcast({has, steps});
  std::vector<torch::Tensor> moments;
  for (size_t i = 0; i < params.size(); ++i) {
    if (has[static_cast<int64_t>(i)].item<int64_t>() == 0) {
      adam.state().erase(params[i].unsafeGetTensorImpl());
      continue;
    }
    auto& slot = adam.state()[params[i].unsafeGetTensorImpl()];
    if (!slot) {
      auto st = std::make_unique<torch::optim::AdamParamState>();
      st->exp_avg(torch::zeros_like(params[i]));
      st->exp_avg_sq(torch::zeros_like(params[i]));
      slot = std::move(st);
    }
    auto& st = static_cast<torch::optim::AdamParamState&>(*slot);
    st.step(steps[static_cast<int64_t>(i)].item<int64_t>());
    moments.push_back(st.exp_avg());
    moments.push_back(st.exp_avg_sq());
  }
  dp.broadcast(moments);
  std::ostringstream out;
  out << rng;
  std::string text = out.str();
  dp.broadcast(text);
  std::istringstream in(text);
  in >> rng;
  auto g = gen.get_state();
  dp.broadcast({g});
  gen.set_state(g);
}

LossLog::LossLog(fs::path file, const std::string& header, bool resume)
    : file_(std::move(file)), out_(file_.string(), resume ? std::ios::app : std::ios::trunc) {
  if (!out_) throw Error(file_.string() + ": cannot be written");
  if (!resume) out_ << header << "\n";
}

void LossLog::plot(const std::string& title, std::ostream& log) {
  out_.flush();
  try {
    edit::write_loss_plot(file_.string(), (file_.parent_path() / "loss.png").string(), title);
  } catch (const std::exception& e) {
    log << "loss.png not written: " << e.what() << "\n";
  }
}

LoopClock::LoopClock(long first, long total, double checkpoint_minutes)
    : first_(first), total_(total), checkpoint_seconds_(checkpoint_minutes * 60), start_(Clock::now()),
      last_checkpoint_(start_) {}

double LoopClock::elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

double LoopClock::rate(long step) const { return (step - first_) / std::max(elapsed(), 1e-9); }

double LoopClock::eta_minutes(long step) const { return (total_ - step) / std::max(rate(step), 1e-9) / 60; }

bool LoopClock::checkpoint_due() const {
  return std::chrono::duration<double>(Clock::now() - last_checkpoint_).count() >= checkpoint_seconds_;
}

void LoopClock::checkpointed() { last_checkpoint_ = Clock::now(); }

NonFiniteGuard::NonFiniteGuard(std::string what, std::string unit, int allowed)
    : what_(std::move(what)), unit_(std::move(unit)), allowed_(allowed) {}

bool NonFiniteGuard::accept(double loss, double grad_norm, long step, const std::string& hint) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    in_a_row_ = 0;
    return true;
  }
  ++skipped_;
  if (++in_a_row_ >= allowed_)
    throw Error(what_ + " diverged: " + std::to_string(allowed_) + " consecutive " + unit_ +
                "s with a non-finite loss or gradient at " + unit_ + " " + std::to_string(step) + " (" + hint + ")");
  return false;
}

}  // namespace dsk
