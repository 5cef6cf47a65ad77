// Data-parallel collectives (core/training/distributed.h) over a real c10d Gloo group: two ranks
// as two threads of this process on loopback. The rendezvous variables (torchrun's and SLURM's),
// gradients averaged in several buckets, sums, broadcast, and a rank that never answers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <thread>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/base/error.h"
#include "core/training/distributed.h"

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs fn(rank) on two threads, each with its own group, meeting at `port` (0: a free one);
// rethrows the first failure.
void two_ranks(const std::function<void(dsk::DataParallel&)>& fn, std::chrono::milliseconds timeout = std::chrono::seconds(60),
               int port = 0) {
  if (port == 0) port = free_port();
  std::exception_ptr failure[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        dsk::DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        dsk::DataParallel dp(env, timeout);
        fn(dp);
      } catch (...) {
        failure[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& f : failure)
    if (f) std::rethrow_exception(f);
}

void clear_env() {
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                        "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID"})
    ::unsetenv(v);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Distributed, RendezvousFromTorchrunOrSlurm) {
  clear_env();
  EXPECT_EQ(dsk::dist_env_from_environment().world_size, 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "2", 1);
  ::setenv("LOCAL_RANK", "0", 1);
  ::setenv("MASTER_ADDR", "node0", 1);
  ::setenv("MASTER_PORT", "29500", 1);
  auto e = dsk::dist_env_from_environment();
  EXPECT_EQ(e.local_world_size, 1);  // not known
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  e = dsk::dist_env_from_environment();
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 2);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29500);
  ::setenv("RANK", "4", 1);
  EXPECT_NE(error_of([] { dsk::dist_env_from_environment(); }).find("RANK=4 is not a number in 0..3"), std::string::npos);
  ::setenv("RANK", "1", 1);
  ::unsetenv("MASTER_ADDR");
  EXPECT_NE(error_of([] { dsk::dist_env_from_environment(); }).find("needs MASTER_ADDR"), std::string::npos);
  clear_env();
  ::setenv("SLURM_NTASKS", "2", 1);
  ::setenv("SLURM_PROCID", "1", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  ::setenv("MASTER_ADDR", "node0", 1);
  ::setenv("MASTER_PORT", "29501", 1);
  e = dsk::dist_env_from_environment();
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.local_rank, 1);
  clear_env();
}

TEST(Distributed, GradientsAreAveragedInBuckets) {
  two_ranks([](dsk::DataParallel& dp) {
    const double r = dp.rank();
    std::vector<torch::Tensor> params;
    for (int k = 0; k < 5; ++k) {
      auto p = torch::zeros({3, 7 + k}, torch::requires_grad());
      if (!(k == 2 && dp.rank() == 1))  // rank 1 has no gradient for tensor 2: it counts as zeros
        p.mutable_grad() = torch::full({3, 7 + k}, (k + 1) * (r + 1));
      params.push_back(p);
    }
    dp.average_gradients(params, /*bucket_bytes=*/100);  // several buckets
    for (int k = 0; k < 5; ++k) {
      const double expected = k == 2 ? (k + 1) * 1.0 / 2 : (k + 1) * 1.5;
      EXPECT_TRUE(torch::allclose(params[k].grad(), torch::full({3, 7 + k}, expected))) << "tensor " << k;
    }
    const auto s = dp.sum({r, 10 * r + 1});
    EXPECT_DOUBLE_EQ(s[0], 1);
    EXPECT_DOUBLE_EQ(s[1], 12);
    auto w = torch::full({4}, r);
    dp.broadcast({w});
    EXPECT_TRUE(torch::equal(w, torch::zeros({4})));
  });
}

TEST(Distributed, RanksStartedWithDifferentSettingsAreOneClearError) {
  two_ranks([](dsk::DataParallel& dp) { dp.check_same("settings", "batch 4"); });
  const std::string e = error_of([] {
    two_ranks([](dsk::DataParallel& dp) { dp.check_same("training config", dp.rank() == 0 ? "batch 4" : "batch 8"); });
  });
  EXPECT_NE(e.find("the ranks were started with different training config: 1 of 2 differ from rank 0's"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("start every rank with the same training config"), std::string::npos) << e;
}

TEST(Distributed, ARankThatNeverAnswersIsNamedAfterTheTimeout) {
  const std::string e = error_of([] {
    two_ranks(
        [](dsk::DataParallel& dp) {
          if (dp.rank() == 1) return;  // gone
          dp.sum({1.0});
        },
        std::chrono::seconds(3));
  });
  EXPECT_NE(e.find("rank 0 of 2"), std::string::npos) << e;
  EXPECT_NE(e.find("another rank died"), std::string::npos) << e;
}

// Gradients reduced while backward runs (GradientReducer) equal gradients averaged after it, with
// a parameter used twice in the graph, one used by no one (zeros), several buckets, two steps in a
// row, and two backward passes between arm() and finish() (the buckets are redone).
TEST(Distributed, GradientsReducedDuringBackwardEqualThoseReducedAfter) {
  two_ranks([](dsk::DataParallel& dp) {
    torch::manual_seed(0);  // the same weights on both ranks
    torch::nn::Linear a(16, 32), b(32, 32), c(32, 4), unused(4, 4);
    std::vector<torch::Tensor> params;
    for (auto* m : {&unused, &a, &b, &c})  // unused in the last bucket: it holds up no other
      for (const auto& p : (*m)->parameters()) params.push_back(p);
    auto loss_of = [&](int iteration) {
      const auto x = torch::full({3, 16}, 0.1 * (dp.rank() + 1) + iteration) + torch::arange(48).view({3, 16}) / 48.0;
      auto h = torch::tanh(b(torch::tanh(b(torch::tanh(a(x))))));  // b twice
      return c(h).pow(2).mean();
    };
    dsk::GradientReducer reducer(dp, params, /*bucket_bytes=*/2048);
    EXPECT_EQ(reducer.buckets(), 3u);  // {c, b}, {a}, {unused}
    for (int iteration = 0; iteration < 2; ++iteration) {
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      loss_of(iteration).backward();
      dp.average_gradients(params);
      std::vector<torch::Tensor> after;
      for (auto& p : params) after.push_back(p.grad().clone());
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      reducer.arm();
      loss_of(iteration).backward();
      reducer.finish();
      EXPECT_GT(reducer.started_during_backward(), 0u) << "no bucket left before backward ended";
      for (size_t k = 0; k < params.size(); ++k)
        EXPECT_TRUE(torch::allclose(params[k].grad(), after[k], 1e-6, 1e-7)) << "parameter " << k << ", iteration " << iteration;
      EXPECT_TRUE(torch::equal(params.front().grad(), torch::zeros_like(params.front())));
      // the ranks' inputs differ, so the mean differs from this rank's own gradient
      EXPECT_FALSE(torch::allclose(params[2].grad(), torch::zeros_like(params[2])));
    }
    // Two backward passes in one arm(): the gradients accumulate, and every bucket that left after
    // the first is reduced again from the sum.
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    loss_of(0).backward();
    loss_of(1).backward();
    dp.average_gradients(params);
    std::vector<torch::Tensor> after;
    for (auto& p : params) after.push_back(p.grad().clone());
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    reducer.arm();
    loss_of(0).backward();
    loss_of(1).backward();
    reducer.finish();
    for (size_t k = 0; k < params.size(); ++k)
      EXPECT_TRUE(torch::allclose(params[k].grad(), after[k], 1e-6, 1e-7)) << "parameter " << k << ", two passes";
    std::string text = dp.rank() == 0 ? std::string("rank 0's state\0with a zero", 26) : "";
    dp.broadcast(text);
    EXPECT_EQ(text, std::string("rank 0's state\0with a zero", 26));
    auto t = torch::full({2, 3}, dp.rank() + 1.0);
    dp.sum_tensors({t});
    EXPECT_TRUE(torch::equal(t, torch::full({2, 3}, 3.0)));
  });
}

// Under torchrun the launcher's agent hosts the store at MASTER_ADDR:MASTER_PORT and says so
// (TORCHELASTIC_USE_AGENT_STORE=True): the ranks are its clients. Rank 0 hosting its own store
// there failed with "Address already in use" under a real torchrun.
TEST(Distributed, RanksUseTheStoreOfTorchrunsAgent) {
  const int port = free_port();
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = true;
  so.waitWorkers = false;
  so.useLibUV = false;
  c10d::TCPStore agent("127.0.0.1", so);  // what torchrun's agent holds
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  ::setenv("TORCHELASTIC_RESTART_COUNT", "1", 1);
  std::exception_ptr failure;
  try {
    two_ranks([](dsk::DataParallel& dp) { EXPECT_DOUBLE_EQ(dp.sum({dp.rank() + 1.0})[0], 3.0); },
              std::chrono::seconds(30), port);
  } catch (...) {
    failure = std::current_exception();
  }
  ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
  ::unsetenv("TORCHELASTIC_RESTART_COUNT");
  if (failure) std::rethrow_exception(failure);
}
