#include "core/tools/doctor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/base/env.h"
#include "core/base/version.h"
#include "core/device/cpu_kernels.h"
#include "core/device/precision.h"
#include "core/device/device.h"
#include "core/formats/manifest.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_info.h"
#include "core/formats/model_registry.h"
#include "core/formats/sketch_features_model.h"
#include "core/protocol/protocol.h"
#include "core/tools/models.h"

extern char** environ;

namespace dsk {

namespace fs = std::filesystem;
using Status = DoctorCheck::Status;

namespace {

// Peak memory of a default edit measured with bench-edit (docs/benchmarks.md, "Memory"): a 512 px
// selection 392 MiB, a 1024 px one below 1 GiB. Asked with room for GIMP beside it.
constexpr double kEditMemoryBytes = 1.5 * (1u << 30);
constexpr double kModelDiskBytes = 1.0 * (1u << 30);  // room for one more converted model

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string gib(double bytes) {
  std::ostringstream o;
  o.precision(1);
  o << std::fixed << bytes / (1u << 30) << " GiB";
  return o.str();
}

struct Ran {
  int status = -1;  // exit status; -1: could not start; 124: timed out
  std::string output;  // stdout and stderr together (the last 64 KiB)
};

// Runs argv (PATH searched) in its own process group with stdin from /dev/null; stops the whole
// group after `timeout_s`.
Ran run_program(const std::vector<std::string>& argv, int timeout_s) {
  Ran r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (err != 0) {
    ::close(pipefd[0]);
    r.output = std::strerror(err);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    const ssize_t got = ::read(pipefd[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    r.output.append(buf, static_cast<size_t>(got));
    if (r.output.size() > (64u << 10)) r.output.erase(0, r.output.size() - (64u << 10));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!timed_out) ::kill(-pid, SIGKILL);  // helpers it left behind (GIMP's plug-in processes)
  r.status = timed_out ? 124 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string which(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  for (const auto& dir : split_search_path(env_or("PATH"))) {
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// GIMP's own plug-in folder (gimplibdir/plug-ins): GIMP3_PLUGINDIR, else where pkg-config said at
// build time, else Debian's.
std::vector<std::string> gimp_system_plugin_dirs() {
  if (!env_or("GIMP3_PLUGINDIR").empty()) return {env_or("GIMP3_PLUGINDIR") + "/plug-ins"};
  std::vector<std::string> out;
#ifdef DSK_GIMP_LIBDIR
  out.push_back(std::string(DSK_GIMP_LIBDIR) + "/plug-ins");
#endif
  for (const char* d : {"/usr/lib/x86_64-linux-gnu/gimp/3.0/plug-ins", "/usr/lib/gimp/3.0/plug-ins"})
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  return out;
}

// The folders this GIMP reads plug-ins from: the profile's gimprc plug-in-path when it sets one
// (${gimp_dir} and ${gimp_plug_in_dir} expanded), else GIMP's default: the profile's plug-ins
// folder, then the system one.
std::vector<std::string> gimp_plugin_dirs(std::string* where) {
  const std::string profile = gimp3_profile_dir();
  const auto system = gimp_system_plugin_dirs();
  std::ifstream rc(profile + "/gimprc");
  std::string line;
  static const std::regex re("^\\s*\\(plug-in-path\\s+\"([^\"]*)\"\\s*\\)");
  while (std::getline(rc, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, re)) continue;
    std::vector<std::string> out;
    std::stringstream ss(m[1].str());
    for (std::string d; std::getline(ss, d, ':');) {
      d = std::regex_replace(d, std::regex("\\$\\{gimp_dir\\}"), profile);
      d = std::regex_replace(d, std::regex("\\$\\{gimp_plug_in_dir\\}/plug-ins"), system.front());
      if (!d.empty()) out.push_back(d);
    }
    *where = profile + "/gimprc (plug-in-path)";
    return out;
  }
  *where = "GIMP's default plug-in path";
  std::vector<std::string> out{profile + "/plug-ins"};
  out.insert(out.end(), system.begin(), system.end());
  return out;
}

// The engine the plug-in at `plugin` starts: DSK_ENGINE, engine_candidates() (core/base/env.h, as
// the plug-in's find_engine), then PATH. The plug-in's compiled-in paths come before PATH there;
// the doctor does not know them (a package's engine-path names its engine anyway).
std::string plugin_engine(const std::string& plugin, std::string* how) {
  if (!env_or("DSK_ENGINE").empty()) {
    *how = "DSK_ENGINE";
    return env_or("DSK_ENGINE");
  }
  for (const auto& c : engine_candidates(plugin.empty() ? "" : fs::path(plugin).parent_path().string()))
    if (is_executable_file(c.path)) {
      *how = c.source;
      return c.path;
    }
  *how = "PATH";
  return which("diffsketch");
}

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.string();
}

// ---- the checks; each returns one or more entries and throws nothing it does not catch itself

DoctorCheck version_check() {
  DoctorCheck c{"version", "DiffSketch", Status::Info, "", ""};
  c.detail = std::string("diffsketch ") + kVersion + ", protocol " + std::to_string(proto::kProtocolVersion) + ", " + self_exe();
  return c;
}

DoctorCheck gimp_check(std::string* console) {
  DoctorCheck c{"gimp", "GIMP 3", Status::Ok, "", ""};
  std::string found;
  for (const char* name : {"gimp-console-3.0", "gimp-console", "gimp-3.0", "gimp"})
    if (!(found = which(name)).empty()) break;
  if (found.empty()) {
    c.status = Status::Fail;
    c.detail = "no gimp-console-3.0, gimp-console, gimp-3.0 or gimp on PATH";
    c.fix = "install GIMP 3 from your distribution (Debian 13, Ubuntu 25.04 or later: sudo apt install gimp); the "
            "Flatpak and Snap builds cannot load this plug-in";
    return c;
  }
  const Ran r = run_program({found, "--version"}, 30);
  std::smatch m;
  static const std::regex re("version ([0-9]+)\\.([0-9]+)(\\.[0-9]+)?");
  if (r.status != 0 || !std::regex_search(r.output, m, re)) {
    c.status = Status::Fail;
    c.detail = found + " --version failed (exit " + std::to_string(r.status) + "): " + trim(r.output).substr(0, 200);
    c.fix = "reinstall GIMP 3 (sudo apt install --reinstall gimp)";
    return c;
  }
  const std::string version = m[1].str() + "." + m[2].str() + m[3].str();
  c.detail = "GIMP " + version + " (" + found + ")";
  if (m[1].str() != "3") {
    c.status = Status::Fail;
    c.fix = "DiffSketch is a GIMP 3 plug-in; GIMP " + version + " cannot load it. Install GIMP 3 (Debian 13, Ubuntu 25.04 or later)";
    return c;
  }
  *console = found;
  const std::string home = env_or("HOME");
  for (const char* sandboxed : {"/.var/app/org.gimp.GIMP", "/snap/gimp"})
    if (!home.empty() && fs::exists(home + sandboxed)) {
      c.status = Status::Warn;
      c.detail += "; a Flatpak or Snap GIMP is installed too (" + home + sandboxed + ")";
      c.fix = "start the distribution's GIMP 3 (" + found + "), not the Flatpak or Snap one: their sandbox cannot run the plug-in";
    }
  return c;
}

DoctorCheck plugin_check(std::string* plugin) {
  DoctorCheck c{"plug-in", "GIMP plug-in installed", Status::Ok, "", ""};
  std::string where;
  const auto dirs = gimp_plugin_dirs(&where);
  std::vector<std::string> found, broken;
  for (const auto& d : dirs) {
    const fs::path p = fs::path(d) / "diffsketch" / "diffsketch";
    std::error_code ec;
    if (!fs::exists(p, ec)) continue;
    if (is_executable_file(p))
      found.push_back(p.string());
    else
      broken.push_back(p.string());
  }
  std::string searched;
  for (const auto& d : dirs) searched += (searched.empty() ? "" : ", ") + d;
  if (!broken.empty()) {
    c.status = Status::Fail;
    c.detail = broken.front() + " is not an executable file";
    c.fix = "make it executable (chmod +x " + broken.front() + ") or reinstall DiffSketch";
    return c;
  }
  if (found.empty()) {
    c.status = Status::Fail;
    c.detail = "no diffsketch/diffsketch in the folders GIMP reads (" + where + "): " + searched;
    c.fix = "install the diffsketch package (sudo apt install ./diffsketch_VERSION_amd64.deb) or run ./dsk install; "
            "a plug-in must sit in a folder of its own name, plug-ins/diffsketch/diffsketch";
    // A plug-in in another profile than the one GIMP uses is the classic "not in the menu".
    const std::string home_plugin = env_or("XDG_CONFIG_HOME", env_or("HOME") + "/.config") + "/GIMP/3.0/plug-ins/diffsketch/diffsketch";
    if (!env_or("GIMP3_DIRECTORY").empty() && fs::exists(home_plugin))
      c.fix += "; note: one is installed in " + home_plugin + ", but GIMP3_DIRECTORY points GIMP at " + env_or("GIMP3_DIRECTORY");
    return c;
  }
  *plugin = found.front();
  c.detail = found.front() + (found.size() > 1 ? " (also " + found[1] + "; GIMP uses the first)" : "") + ", read via " + where;
  return c;
}

DoctorCheck registered_check(const std::string& console, const std::string& plugin, const DoctorOptions& o) {
  DoctorCheck c{"registered", "Procedures registered in GIMP", Status::Ok, "", ""};
  if (o.from_plugin) {
    c.detail = "asked from inside GIMP: the plug-in is running, so GIMP registered it";
    return c;
  }
  if (console.empty() || plugin.empty()) {
    c.status = Status::Fail;
    c.detail = "not asked: " + std::string(console.empty() ? "no GIMP 3" : "the plug-in is not installed");
    c.fix = "fix the checks above first";
    return c;
  }
  const std::string script =
      "(display (list \"DSK-REGISTERED\" (car (gimp-pdb-procedure-exists \"plug-in-diffsketch-inpaint\")) "
      "(car (gimp-pdb-procedure-exists \"plug-in-diffsketch-generate\")) "
      "(car (gimp-pdb-procedure-exists \"plug-in-diffsketch-interpolate\")))) (newline)";
  const Ran r = run_program({console, "-i", "-d", "-f", "--quit", "--batch-interpreter=plug-in-script-fu-eval", "-b", script},
                            o.gimp_timeout_s);
  std::smatch m;
  static const std::regex re("DSK-REGISTERED ([01]) ([01]) ([01])");
  if (r.status == 124) {
    c.status = Status::Fail;
    c.detail = "GIMP did not answer in " + std::to_string(o.gimp_timeout_s) + " s (" + console + " in batch mode)";
    c.fix = "start GIMP once by hand (the first start of a profile queries every plug-in) and run doctor again";
    return c;
  }
  if (!std::regex_search(r.output, m, re)) {
    c.status = Status::Fail;
    c.detail = "GIMP in batch mode gave no answer (exit " + std::to_string(r.status) + "): " + trim(r.output).substr(0, 300);
    c.fix = "run GIMP from a terminal and read what it says about plug-ins/diffsketch";
    return c;
  }
  if (m[1] == "1" && m[2] == "1" && m[3] == "1") {
    c.detail = "plug-in-diffsketch-inpaint, -generate and -interpolate (Filters > DiffSketch)";
    return c;
  }
  c.status = Status::Fail;
  c.detail = "GIMP knows " + std::string(m[1] == "1" ? "inpaint " : "") + (m[2] == "1" ? "generate " : "") +
             (m[3] == "1" ? "interpolate" : "") + (m[1] == "0" && m[2] == "0" && m[3] == "0" ? "none of the three procedures" : "");
  // The plug-in refused to start: its libraries are the usual cause.
  const Ran ldd = run_program({"ldd", plugin}, 30);
  std::string missing;
  std::stringstream ss(ldd.output);
  for (std::string line; std::getline(ss, line);)
    if (line.find("not found") != std::string::npos) missing += (missing.empty() ? "" : ", ") + trim(line);
  c.fix = missing.empty() ? "run GIMP from a terminal: it prints why plug-ins/diffsketch/diffsketch did not register"
                          : "the plug-in's libraries are missing (" + missing + "): install GIMP 3's libgimp (sudo apt install libgimp-3.0-0)";
  return c;
}

DoctorCheck engine_check(const std::string& plugin) {
  DoctorCheck c{"engine", "Engine the plug-in starts", Status::Ok, "", ""};
  std::string how;
  const std::string engine = plugin_engine(plugin, &how);
  if (engine.empty()) {
    c.status = Status::Fail;
    c.detail = "none found (DSK_ENGINE, engine-path beside the plug-in, the data folders, PATH)";
    c.fix = "install the diffsketch package or run ./dsk install; or set DSK_ENGINE to the engine's path";
    return c;
  }
  const Ran r = run_program({engine, "--version"}, 60);
  std::smatch m;
  static const std::regex re("diffsketch ([^ \n]+)(?: \\(protocol ([0-9]+)\\))?");
  if (r.status != 0 || !std::regex_search(r.output, m, re)) {
    c.status = Status::Fail;
    c.detail = engine + " (" + how + ") does not run: exit " + std::to_string(r.status) + ": " + trim(r.output).substr(0, 300);
    c.fix = "reinstall DiffSketch; if a library is named above, install it (apt-get -f install)";
    return c;
  }
  const std::string protocol = m[2].matched ? m[2].str() : "?";
  c.detail = engine + " (" + how + "): diffsketch " + m[1].str() + ", protocol " + protocol;
  if (protocol != std::to_string(proto::kProtocolVersion)) {
    c.status = Status::Fail;
    c.fix = "the plug-in and that engine speak different protocol versions: install both from one release";
  } else if (m[1].str() != kVersion) {
    c.status = Status::Warn;
    c.fix = "that engine is release " + m[1].str() + ", this one " + kVersion + ": install the plug-in and engine together";
  }
  return c;
}

DoctorCheck server_check() {
  DoctorCheck c{"server", "Warm engine (diffsketch serve)", Status::Info, "", ""};
  const std::string runtime = env_or("XDG_RUNTIME_DIR");
  const std::string path = !runtime.empty() ? runtime + "/diffsketch.sock" : "/tmp/diffsketch-" + std::to_string(::getuid()) + "/diffsketch.sock";
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    c.detail = "none running (" + path + "); the plug-in starts one on its first edit";
    return c;
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  c.detail = path + ": owner uid " + std::to_string(st.st_uid) + ", mode " + mode;
  if (!S_ISSOCK(st.st_mode)) {
    c.status = Status::Fail;
    c.fix = path + " is not a socket: remove it (rm " + path + ")";
    return c;
  }
  if (st.st_uid != ::getuid()) {
    c.status = Status::Fail;
    c.fix = "the socket belongs to another user: remove it (its folder should be private to you), or set XDG_RUNTIME_DIR";
    return c;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    c.detail += "; nobody listens (a server that ended without removing it)";
    c.fix = "harmless: the next server replaces it";
    return c;
  }
  try {
    proto::FdSink out(fd);
    proto::FdSource in(fd);
    in.set_timeout([] { return 10000; });
    proto::write_message(out, proto::HelloRequest{});
    const auto reply = proto::read_message(in);
    ::close(fd);
    if (const auto* h = reply ? std::get_if<proto::EngineHello>(&*reply) : nullptr) {
      c.status = Status::Ok;
      c.detail += "; diffsketch " + h->version + " (pid " + std::to_string(h->pid) + ", " + h->executable + ")" +
                  (h->exit_when_idle > 0 ? ", exits after " + std::to_string(h->exit_when_idle) + " s idle" : "");
      if (h->version != kVersion) {
        c.status = Status::Warn;
        c.fix = "a server of another release runs; the plug-in replaces it on its next edit";
      }
    } else {
      c.status = Status::Warn;
      c.detail += "; it did not answer hello";
      c.fix = "stop it (kill the diffsketch serve process); the plug-in starts a fresh one";
    }
  } catch (const std::exception& e) {
    ::close(fd);
    c.status = Status::Warn;
    c.detail += std::string("; hello failed: ") + e.what();
    c.fix = "a server of another protocol version runs; the plug-in replaces it on its next edit";
  }
  return c;
}

std::vector<DoctorCheck> model_checks() {
  std::vector<DoctorCheck> out;
  std::vector<std::string> skipped;
  const auto models = list_models(&skipped);
  for (const auto& why : skipped)
    out.push_back({"model-folder", "A model folder", Status::Fail, why,
                   "repair or remove that folder (diffsketch models remove ID, or delete it), then add the model again"});
  if (models.empty()) {
    std::string searched;
    for (const auto& d : model_search_path()) searched += (searched.empty() ? "" : ", ") + d;
    out.push_back({"models", "Models", Status::Fail, "none found in " + searched,
                   "install the diffsketch package (it brings the default model) or add one: diffsketch models add FOLDER"});
    return out;
  }
  for (const auto& m : models) {
    DoctorCheck c{"model:" + m.id, "Model " + m.id, Status::Ok, "", ""};
    c.detail = m.kind + ", " + std::to_string(m.resolution) + " px, " + m.path;
    try {
      const ManifestCheck check = check_manifest(m.path, true);
      if (check.failed()) {
        c.status = Status::Fail;
        c.detail += ": " + check.summary();
        c.fix = damaged_model_message(m.path, check);
        out.push_back(c);
        continue;
      }
      const auto cpu = torch::Device(torch::kCPU);
      const ModelInfo info = read_model_info(m.path);
      if (info.kind == ModelKind::AdmClassifier) load_classifier(m.path, cpu, "doctor");
      else if (info.kind == ModelKind::SketchFeatures) load_sketch_resnet(m.path);
      else load_unet(m.path, cpu, "doctor");
      c.detail += check.ok() ? "; loads; manifest verified" : "; loads; no manifest (files not checked)";
      if (!check.ok()) {
        c.status = Status::Info;
        c.fix = "add it with 'diffsketch models add' to get a manifest";
      }
    } catch (const std::exception& e) {
      c.status = Status::Fail;
      c.detail += std::string(": does not load: ") + e.what();
      c.fix = "reinstall the model (diffsketch models remove " + m.id + ", then diffsketch models add SOURCE)";
    }
    out.push_back(c);
  }
  return out;
}

DoctorCheck cpu_check() {
  DoctorCheck c{"cpu", "CPU", Status::Ok, "", ""};
  std::ifstream in("/proc/cpuinfo");
  std::string line, model, flags;
  while (std::getline(in, line)) {
    if (model.empty() && line.rfind("model name", 0) == 0) model = trim(line.substr(line.find(':') + 1));
    if (flags.empty() && line.rfind("flags", 0) == 0) flags = " " + line.substr(line.find(':') + 1) + " ";
  }
  std::string isa;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"})
    if (flags.find(std::string(" ") + f + " ") != std::string::npos) isa += (isa.empty() ? "" : " ") + std::string(f);
  configure_threads();
  c.detail = (model.empty() ? "unknown CPU" : model) + "; " + (isa.empty() ? "no AVX2" : isa) + "; " + describe(cpu_kernels());
  if (flags.find(" avx2 ") == std::string::npos) {
    c.status = Status::Warn;
    c.fix = "this CPU has no AVX2: edits work but take several times longer";
  }
  return c;
}

DoctorCheck precision_check() {
  DoctorCheck c{"precision", "Inference precision", Status::Ok, "", ""};
  try {
    c.detail = inference_precision(torch::kCPU).why;
  } catch (const InputError& e) {
    c.status = Status::Fail;
    const std::string what = e.what();
    c.detail = what.substr(0, what.find(". Fix:"));
    c.fix = "unset DSK_PRECISION (bf16 where the CPU computes it natively, else fp32) or set it to fp32";
  }
  return c;
}

DoctorCheck blas_check() {
  DoctorCheck c{"blas", "BLAS library", Status::Ok, "", ""};
  torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));  // makes sure the BLAS is mapped
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> libs;
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = fs::path(path).filename().string();
    if (file.find("blas") != std::string::npos) libs.insert(fs::weakly_canonical(path).string());
  }
  std::string list;
  for (const auto& l : libs) list += (list.empty() ? "" : ", ") + l;
  c.detail = list.empty() ? "no BLAS library mapped" : list;
  const bool openblas = list.find("openblas") != std::string::npos;
  const bool reference = std::any_of(libs.begin(), libs.end(), [](const std::string& l) {
    return l.find("/blas/libblas.so") != std::string::npos;  // Debian's reference BLAS (libblas3)
  });
  if (!openblas || reference) {
    c.status = Status::Warn;
    c.fix = "the reference BLAS is in use, which makes edits several times slower: sudo apt install libopenblas0-pthread "
            "(or choose it: sudo update-alternatives --config libblas.so.3-x86_64-linux-gnu)";
  }
  return c;
}

DoctorCheck memory_check() {
  DoctorCheck c{"memory", "Free memory", Status::Ok, "", ""};
  const double avail = available_memory();
  if (avail <= 0) {
    c.status = Status::Info;
    c.detail = "unknown (/proc/meminfo has no MemAvailable)";
    return c;
  }
  c.detail = gib(avail) + " available; a default edit needs up to about " + gib(kEditMemoryBytes) + " with GIMP beside it";
  if (avail < kEditMemoryBytes) {
    c.status = Status::Warn;
    c.fix = "close other programs, or edit smaller selections";
  }
  return c;
}

std::vector<DoctorCheck> disk_checks() {
  std::vector<DoctorCheck> out;
  std::set<std::string> seen;  // file systems already reported
  std::string user;
  try {
    user = user_models_dir();
  } catch (const std::exception&) {
  }
  std::vector<std::string> folders = model_search_path();
  if (!user.empty()) folders.insert(folders.begin(), user);
  for (const auto& dir : folders) {
    std::error_code ec;
    const bool exists = fs::exists(dir, ec);
    if (!exists && dir != user) continue;
    fs::path p = dir;
    while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();  // where `models add` would create it
    struct statvfs sv {};
    if (p.empty() || ::statvfs(p.c_str(), &sv) != 0) continue;
    if (!seen.insert(std::to_string(sv.f_fsid)).second) continue;
    const double free = static_cast<double>(sv.f_bavail) * sv.f_frsize;
    DoctorCheck c{"disk:" + dir, "Disk space for models", Status::Ok,
                  gib(free) + " free at " + dir + (exists ? "" : " (created by the first 'models add')"), ""};
    if (free < kModelDiskBytes && ::access(p.c_str(), W_OK) == 0) {
      c.status = Status::Warn;
      c.fix = "under " + gib(kModelDiskBytes) + " free: a converted ADM model needs up to 2 GiB; free some space";
    }
    out.push_back(c);
  }
  return out;
}

template <class F>
void guarded(std::vector<DoctorCheck>& out, const char* id, const char* title, F f) {
  try {
    f();
  } catch (const std::exception& e) {
    out.push_back({id, title, Status::Fail, std::string("the check itself failed: ") + e.what(),
                   "report this with the whole doctor output"});
  }
}

}  // namespace

const char* status_name(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::Info: return "info";
    case Status::Warn: return "warn";
    case Status::Fail: return "fail";
  }
  return "?";
}

std::vector<DoctorCheck> run_doctor(const DoctorOptions& o) {
  std::vector<DoctorCheck> out;
  std::string console, plugin;
  guarded(out, "version", "DiffSketch", [&] { out.push_back(version_check()); });
  guarded(out, "gimp", "GIMP 3", [&] { out.push_back(gimp_check(&console)); });
  guarded(out, "plug-in", "GIMP plug-in installed", [&] { out.push_back(plugin_check(&plugin)); });
  guarded(out, "registered", "Procedures registered in GIMP", [&] { out.push_back(registered_check(console, plugin, o)); });
  guarded(out, "engine", "Engine the plug-in starts", [&] { out.push_back(engine_check(plugin)); });
  guarded(out, "server", "Warm engine", [&] { out.push_back(server_check()); });
  guarded(out, "models", "Models", [&] {
    for (auto& c : model_checks()) out.push_back(std::move(c));
  });
  guarded(out, "cpu", "CPU", [&] { out.push_back(cpu_check()); });
  guarded(out, "precision", "Inference precision", [&] { out.push_back(precision_check()); });
  guarded(out, "blas", "BLAS library", [&] { out.push_back(blas_check()); });
  guarded(out, "memory", "Free memory", [&] { out.push_back(memory_check()); });
  guarded(out, "disk", "Disk space", [&] {
    for (auto& c : disk_checks()) out.push_back(std::move(c));
  });
  return out;
}

bool all_well(const std::vector<DoctorCheck>& checks) {
  return std::none_of(checks.begin(), checks.end(), [](const DoctorCheck& c) { return c.status == Status::Fail; });
}

void print_doctor(const std::vector<DoctorCheck>& checks, std::ostream& out) {
  for (const auto& c : checks) {
    const char* tag = c.status == Status::Ok ? "[ ok ]" : c.status == Status::Info ? "[info]" : c.status == Status::Warn ? "[warn]" : "[FAIL]";
    out << tag << " " << c.title << ": " << c.detail << "\n";
    if (!c.fix.empty() && c.status != Status::Ok) out << "       fix: " << c.fix << "\n";
  }
  const auto count = [&](Status s) { return std::count_if(checks.begin(), checks.end(), [&](const DoctorCheck& c) { return c.status == s; }); };
  out << (all_well(checks) ? "All well" : "Something needs fixing") << ": " << count(Status::Fail) << " problem(s), "
      << count(Status::Warn) << " warning(s)\n";
}

nlohmann::json doctor_json(const std::vector<DoctorCheck>& checks) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : checks)
    list.push_back({{"id", c.id}, {"title", c.title}, {"status", status_name(c.status)}, {"detail", c.detail}, {"fix", c.fix}});
  return {{"ok", all_well(checks)}, {"version", kVersion}, {"checks", list}};
}

}  // namespace dsk
