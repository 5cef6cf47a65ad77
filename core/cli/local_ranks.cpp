// `train --nproc N` and `finetune --nproc N`: N local ranks of this same command, as torchrun
// would start them.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "core/base/error.h"
#include "core/cli/commands.h"

namespace dsk::cli {

namespace {

// This process's command line without `--nproc N` (or --nproc=N).
std::vector<std::string> argv_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

// A free TCP port on loopback for the ranks' store (the system's choice, released for rank 0).
int free_loopback_port(const std::string& command) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw Error(command + " --nproc: no free port on 127.0.0.1: " + std::strerror(errno));
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

// The ranks get torchrun's variables (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT); rank 0's last checkpoint stays as it was written when another fails.
int launch_local_ranks(const std::string& command, int nproc, const std::string& out_dir) {
  if (std::getenv("WORLD_SIZE"))
    throw InputError(command + ": --nproc starts the ranks itself; under torchrun or srun, leave it out");
  const auto args = argv_without_nproc();
  const int port = free_loopback_port(command);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));
  std::cerr << command << ": starting " << nproc << " ranks on this machine (Gloo over 127.0.0.1:" << port << ", " << threads
            << " thread(s) each)" << std::endl;
  std::vector<pid_t> ranks;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(command + " --nproc: fork: " + std::strerror(errno));
    if (pid == 0) {
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (!std::getenv("DSK_THREADS")) ::setenv("DSK_THREADS", threads.c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    ranks.push_back(pid);
  }
  // Ctrl-C reaches the ranks too (one process group): they stop together and rank 0 checkpoints.
  ::signal(SIGINT, SIG_IGN);
  int failed_rank = -1, failed_status = 0;
  for (size_t left = ranks.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        ++left;
        continue;
      }
      break;
    }
    const auto it = std::find(ranks.begin(), ranks.end(), pid);
    if (it == ranks.end()) {
      ++left;
      continue;
    }
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failed_rank < 0) {
      failed_rank = static_cast<int>(it - ranks.begin());
      failed_status = status;
      for (const pid_t other : ranks)
        if (other != pid) ::kill(other, SIGTERM);
    }
    *it = -1;
  }
  if (failed_rank < 0) return 0;
  std::cerr << command << ": rank " << failed_rank << " of " << nproc << " " << how_it_ended(failed_status)
            << "; the other ranks were stopped. " << out_dir
            << "/checkpoint holds the last checkpoint rank 0 wrote: continue with --resume" << std::endl;
  return 1;
}


}  // namespace dsk::cli
