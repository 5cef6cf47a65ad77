// The plug-in's remote engine client (plugin/engine_client.h, remote_engine.cpp) against a real
// `diffsketch serve --listen` on loopback: the token, TLS with the certificate pinned by file and by
// fingerprint, a wrong pin refused, the settings' bad values named, DSK_ENGINE_URL for batch use,
// and a server that dies mid-job ending the job with a message.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "plugin/engine_client.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
namespace proto = dsk::proto;
using dsk::gimp::EngineConnection;
using dsk::gimp::PluginError;
using dsk::gimp::RemoteEngine;

namespace {

const std::string kToken = "plugin-remote-test-token-0123456789";

void write_private(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), 0600);
}

// A `serve --listen 127.0.0.1:0` in the background; its port (and fingerprint) read from its log.
class Server {
 public:
  Server(const fs::path& dir, bool tls) : log_(dir / (tls ? "tls.log" : "plain.log")) {
    std::vector<std::string> args = {DSK_ENGINE_PATH, "serve", "--listen", "127.0.0.1:0", "--token-file", (dir / "token").string()};
    if (tls) args.insert(args.end(), {"--tls-cert", (dir / "server.crt").string(), "--tls-key", (dir / "server.key").string()});
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // not left running when the test dies
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::setenv("DSK_MODEL_PATH", DSK_TEST_DATA "/models", 1);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::stringstream text;
      text << std::ifstream(log_).rdbuf();
      std::smatch m;
      const std::string s = text.str();
      if (std::regex_search(s, m, std::regex("listening on 127\\.0\\.0\\.1:(\\d+)"))) port_ = std::stoi(m[1]);
      if (std::regex_search(s, m, std::regex("fingerprint (sha256:[0-9A-F:]+)"))) fingerprint_ = m[1];
    }
  }
  ~Server() { kill(SIGTERM); }
  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  fs::path log_;
  pid_t pid_ = 0;
  int port_ = 0;
  std::string fingerprint_;
};

class Remote : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(dsk::test::temp_dir("plugin", "remote"));
    write_private(*dir_ / "token", kToken + "\n");
    write_private(*dir_ / "wrong-token", "another-token-0123456789abcdef\n");
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost "
                            "-keyout " + (*dir_ / "server.key").string() + " -out " + (*dir_ / "server.crt").string() +
                            " 2>/dev/null && chmod 600 " + (*dir_ / "server.key").string();
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    plain_ = new Server(*dir_, false);
    tls_ = new Server(*dir_, true);
    ASSERT_GT(plain_->port(), 0);
    ASSERT_GT(tls_->port(), 0);
    ASSERT_FALSE(tls_->fingerprint().empty());
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete tls_;
    delete dir_;
  }
  static RemoteEngine remote(const Server& s, const std::string& cert = "") {
    return {s.address(), (*dir_ / "token").string(), cert, "the Engine setting"};
  }
  static std::string error_of(const RemoteEngine& r) {
    try {
      dsk::gimp::open_remote(r);
    } catch (const PluginError& e) {
      return e.what();
    }
    return "";
  }
  static fs::path* dir_;
  static Server* plain_;
  static Server* tls_;
};
fs::path* Remote::dir_ = nullptr;
Server* Remote::plain_ = nullptr;
Server* Remote::tls_ = nullptr;

bool lists_models(EngineConnection& c) {
  const proto::Message reply = c.request(proto::ModelsRequest{});
  const auto* list = std::get_if<proto::ModelList>(&reply);
  return list && !list->models.empty();
}

TEST_F(Remote, LoopbackWithTheTokenServes) {
  auto c = dsk::gimp::open_remote(remote(*plain_));
  EXPECT_TRUE(lists_models(*c));
  EXPECT_NE(c->describe().find(plain_->address()), std::string::npos) << c->describe();
}

TEST_F(Remote, AWrongOrMissingTokenIsNamed) {
  RemoteEngine r = remote(*plain_);
  r.token_file = (*dir_ / "wrong-token").string();
  EXPECT_NE(error_of(r).find("refused the token"), std::string::npos) << error_of(r);
  r.token_file = "";
  EXPECT_NE(error_of(r).find("Engine token file"), std::string::npos) << error_of(r);
  r.token_file = (*dir_ / "loose-token").string();
  std::ofstream(r.token_file) << kToken;
  ::chmod(r.token_file.c_str(), 0644);
  EXPECT_NE(error_of(r).find("chmod 600"), std::string::npos) << error_of(r);
}

TEST_F(Remote, TlsWithThePinnedCertificateServes) {
  for (const std::string& pin : {tls_->fingerprint(), (*dir_ / "server.crt").string()}) {
    auto c = dsk::gimp::open_remote(remote(*tls_, pin));
    EXPECT_TRUE(lists_models(*c)) << pin;
    EXPECT_NE(c->describe().find("TLS"), std::string::npos);
  }
  // The fingerprint in other spellings: lower case, without "sha256:" and colons.
  std::string bare;
  for (const char ch : tls_->fingerprint().substr(7))
    if (ch != ':') bare += static_cast<char>(std::tolower(ch));
  EXPECT_EQ(dsk::gimp::pinned_fingerprint(bare, "the Engine setting"), tls_->fingerprint());
}

TEST_F(Remote, AnotherCertificateIsRefused) {
  std::string wrong = tls_->fingerprint();
  wrong[7] = wrong[7] == 'A' ? 'B' : 'A';
  const std::string e = error_of(remote(*tls_, wrong));
  EXPECT_NE(e.find("not the pinned"), std::string::npos) << e;
  EXPECT_NE(e.find(tls_->fingerprint()), std::string::npos) << e;
  const std::string bad = error_of(remote(*tls_, "not-a-fingerprint"));
  EXPECT_NE(bad.find("is neither"), std::string::npos) << bad;
  const std::string no_tls = error_of(remote(*plain_, tls_->fingerprint()));
  EXPECT_NE(no_tls.find("handshake"), std::string::npos) << no_tls;
  const std::string plain_to_tls = error_of(remote(*tls_));
  EXPECT_FALSE(plain_to_tls.empty());
}

TEST_F(Remote, BadAddressesAreNamed) {
  RemoteEngine r = remote(*plain_);
  r.address = "127.0.0.1";
  EXPECT_NE(error_of(r).find("HOST:PORT"), std::string::npos) << error_of(r);
  r.address = "127.0.0.1:1";
  EXPECT_NE(error_of(r).find("cannot reach"), std::string::npos) << error_of(r);
}

TEST_F(Remote, DskEngineUrlWinsOverTheSettings) {
  ::setenv("DSK_ENGINE_URL", tls_->address().c_str(), 1);
  ::setenv("DSK_ENGINE_TOKEN_FILE", (*dir_ / "token").c_str(), 1);
  ::setenv("DSK_ENGINE_CERT", tls_->fingerprint().c_str(), 1);
  dsk::gimp::EngineOptions o;
  o.remote.address = "127.0.0.1:1";  // the setting: not used
  const RemoteEngine eff = dsk::gimp::effective_remote(o.remote);
  EXPECT_EQ(eff.address, tls_->address());
  EXPECT_NE(dsk::gimp::describe_remote(eff).find("DSK_ENGINE_URL"), std::string::npos);
  auto c = EngineConnection::open(o);
  EXPECT_TRUE(lists_models(*c));
  ::unsetenv("DSK_ENGINE_CERT");
  ::unsetenv("DSK_ENGINE_TOKEN_FILE");
  const std::string e = [&] {
    try {
      EngineConnection::open(o);
    } catch (const PluginError& err) {
      return std::string(err.what());
    }
    return std::string();
  }();
  EXPECT_NE(e.find("DSK_ENGINE_TOKEN_FILE"), std::string::npos) << e;
  ::unsetenv("DSK_ENGINE_URL");
}

proto::EditRequest long_edit() {
  proto::EditRequest r;
  r.model = DSK_TEST_DATA "/models/adm-small";
  r.sampling.steps = 1000;
  r.sampling.device = "cpu";
  r.sampling.sampler = "ddim";
  r.sampling.class_label = 3;
  r.variants = 8;
  r.init_strength = 1.0;
  r.image = proto::Image::make(32, 32, 4, proto::DType::F32);
  r.mask = proto::Image::make(32, 32, 1, proto::DType::F32);
  for (int i = 0; i < 32 * 32; ++i) r.mask.f32()[i] = (i % 32 >= 8 && i % 32 < 24 && i / 32 >= 8 && i / 32 < 24) ? 1.f : 0.f;
  return r;
}

TEST_F(Remote, CancelFromAnotherThreadOverTls) {
  auto c = dsk::gimp::open_remote(remote(*tls_, tls_->fingerprint()));
  std::atomic<bool> started{false};
  std::thread canceller([&] {
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    c->cancel();  // written while the other thread reads, as the dialog's Cancel does
  });
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    c->request(long_edit(), [&](const proto::ProgressUpdate& p) {
      if (p.step > 0) started = true;
    });
  } catch (const PluginError& e) {
    error = e.what();
  }
  started = true;
  canceller.join();
  EXPECT_NE(error.find("cancelled"), std::string::npos) << error;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30);
  EXPECT_TRUE(lists_models(*c));  // the connection serves on
}

// Last: it stops the plain server.
TEST_F(Remote, ZServerDyingMidJobEndsTheJobWithAMessage) {
  auto c = dsk::gimp::open_remote(remote(*plain_));
  const proto::EditRequest r = long_edit();
  bool started = false;
  std::string error;
  try {
    c->request(r, [&](const proto::ProgressUpdate& p) {
      if (!started && p.step > 0) {
        started = true;
        plain_->kill(SIGKILL);
      }
    });
  } catch (const PluginError& e) {
    error = e.what();
  }
  EXPECT_TRUE(started);
  EXPECT_NE(error.find("was lost"), std::string::npos) << error;
}

}  // namespace
