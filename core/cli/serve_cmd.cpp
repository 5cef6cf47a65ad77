// `diffsketch serve`: the engine behind the GIMP plug-in, speaking the framed protocol
// (core/protocol/protocol.h) over stdin/stdout (--stdio, one client, the plug-in's subprocess) or a UNIX
// socket (one client at a time, the process stays up between edits).
//
// A job runs on a worker thread while the connection's reader keeps watching the input: a cancel
// request, or the input closing (GIMP kills a cancelled plug-in outright), cancels the job through
// its CancelToken; the engine checks it every step. Then --stdio exits and the socket server goes
// back to accepting.
//
// Loaded models stay in memory between requests: the engine caches the two most recently used
// networks per process (core/formats/model_folder.cpp).
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "core/base/error.h"
#include "core/cli/commands.h"
#include "core/engine/engine.h"
#include "core/formats/model_info.h"
#include "core/formats/model_registry.h"
#include "core/protocol/protocol.h"
#include "editing/masks.h"
#include "editing/region.h"
#include "editing/sketch.h"

namespace dsk::cli {

namespace {

namespace fs = std::filesystem;
namespace proto = dsk::proto;

// ---- images: protocol (RGB order, any of u8/u16/f32) <-> the engine's as-read cv::Mat (BGR order)

int cv_depth(proto::DType d) { return d == proto::DType::U8 ? CV_8U : d == proto::DType::U16 ? CV_16U : CV_32F; }

cv::Mat to_mat(const proto::Image& im) {
  if (im.empty()) return {};
  cv::Mat m(im.height, im.width, CV_MAKETYPE(cv_depth(im.dtype), im.channels), const_cast<uint8_t*>(im.data.data()));
  cv::Mat out;
  switch (im.channels) {
    case 1: out = m.clone(); break;
    case 2: {  // gray + alpha: the engine reads gray, BGR or BGRA
      std::vector<cv::Mat> ga;
      cv::split(m, ga);
      cv::merge(std::vector<cv::Mat>{ga[0], ga[0], ga[0], ga[1]}, out);
      break;
    }
    case 3: cv::cvtColor(m, out, cv::COLOR_RGB2BGR); break;
    default: cv::cvtColor(m, out, cv::COLOR_RGBA2BGRA); break;
  }
  return out;
}

proto::Image from_mat(const cv::Mat& mat) {
  cv::Mat m;
  if (mat.channels() == 3) cv::cvtColor(mat, m, cv::COLOR_BGR2RGB);
  else if (mat.channels() == 4) cv::cvtColor(mat, m, cv::COLOR_BGRA2RGBA);
  else m = mat.isContinuous() ? mat : mat.clone();
  const auto dtype = m.depth() == CV_8U ? proto::DType::U8 : m.depth() == CV_16U ? proto::DType::U16 : proto::DType::F32;
  if (m.depth() != CV_8U && m.depth() != CV_16U && m.depth() != CV_32F) throw Error("engine returned an image of unexpected depth");
  proto::Image im = proto::Image::make(m.cols, m.rows, m.channels(), dtype);
  std::memcpy(im.data.data(), m.data, im.byte_size());
  return im;
}

proto::Image preview_image(const ImageF32& p) {
  proto::Image im = proto::Image::make(p.width, p.height, p.channels, proto::DType::U8);
  for (size_t i = 0; i < im.data.size() && i < p.data.size(); ++i)
    im.data[i] = static_cast<uint8_t>(std::clamp(p.data[i], 0.0f, 1.0f) * 255.0f + 0.5f);
  return im;
}

SamplingParams sampling(const proto::Sampling& s) {
  SamplingParams p;
  p.steps = s.steps;
  p.respacing = s.respacing;
  p.sampler = s.sampler;
  p.eta = s.eta;
  p.seed = s.seed;
  p.device = s.device;
  p.classifier = s.classifier;
  p.class_label = s.class_label;
  p.classifier_scale = s.classifier_scale;
  return p;
}

SketchGuidance sketch_guidance(const proto::SketchGuidance& g) {
  if (!(g.scale >= 0 && g.scale <= 1000)) {
    std::ostringstream msg;
    msg << "sketch guidance " << g.scale << " must be in 0..1000 (0 = off)";
    throw InputError(msg.str());
  }
  return {g.scale, g.exact, g.features};
}

GenerateRequest generate_request(const proto::GenerateRequest& g) {
  GenerateRequest r;
  r.model = g.model;
  r.sampling = sampling(g.sampling);
  r.sketch = to_mat(g.sketch);
  r.width = g.width;
  r.height = g.height;
  r.sketch_scale = g.sketch_scale;
  r.sketch_guidance = sketch_guidance(g.sketch_guidance);
  r.variants = g.variants;
  r.preview = g.preview;
  return r;
}

// ---- an edit of a crop of the layer (proto::EditRequest: image and mask are the part of the layer
// at image_x, image_y that the engine needs; the sketch covers the whole layer)
//
// Why the result equals the whole layer's: plan_region (editing/region.h) reads the image only
// inside plan.crop, and for any image X with plan.crop <= X <= layer it plans the same square
// (context = bbox grown & clipped, the same side since X is at least plan.crop's extent, the same
// placement since plan.crop touches X's edge only where it touches the layer's); the composite's
// feathering looks only near the selection, where X and the layer agree. So the checks below are:
// the crop lies in the layer and contains plan.crop. What does depend on the whole layer is the
// sketch's stroke map (paper level, polarity, transparent fraction), hence the whole sketch is sent
// and converted here, and handed to the engine as the crop of that stroke map.

// The region the model works on for this mask in the whole layer, in layer coordinates.
cv::Rect planned_crop(const proto::EditRequest& e, const cv::Mat& mask, cv::Size layer, cv::Rect where) {
  const cv::Rect bbox = edit::mask_support_bbox(edit::soft_mask_from_image(mask));
  if (bbox.empty()) return {};  // the engine says what is wrong with the mask
  cv::Mat layer_mask = cv::Mat::zeros(layer, CV_8UC1);  // only the selection's bounds matter to the plan
  layer_mask(bbox + where.tl()).setTo(255);
  const int res = read_model_info(resolve_model(e.model)).resolution;
  return edit::plan_region(layer, layer_mask, res, e.context_margin).crop;
}

// A stroke map as a sketch layer that stroke_map reads back unchanged: strokes = alpha (a
// Transparent sketch); false when too little of it is transparent for stroke_map to read it so.
bool as_alpha_sketch(const cv::Mat& strokes, cv::Mat& sketch) {
  const cv::Mat zero = cv::Mat::zeros(strokes.size(), CV_32FC1);
  cv::merge(std::vector<cv::Mat>{zero, zero, zero, strokes}, sketch);
  return edit::detect_sketch_kind(sketch) == edit::SketchKind::Transparent;
}

// Runs an edit whose image and mask are a crop of the sketch's layer; results have the crop's size.
EditResult edit_crop(EditRequest req, const proto::EditRequest& e, const ProgressFn& progress, const CancelToken* cancel) {
  const cv::Mat layer_sketch = req.sketch;
  const cv::Rect layer(cv::Point(0, 0), layer_sketch.size());
  const cv::Rect where(e.image_x, e.image_y, req.image.cols, req.image.rows);
  if ((where & layer) != where)
    throw InputError("edit request: the image (" + std::to_string(where.width) + "x" + std::to_string(where.height) +
                     " at " + std::to_string(where.x) + "," + std::to_string(where.y) +
                     ") does not lie inside the sketch layer (" + std::to_string(layer.width) + "x" +
                     std::to_string(layer.height) + "); send the sketch over the whole layer and the image as a crop of it");
  if (req.mask.size() != req.image.size()) return edit_region(req, progress, cancel);  // the engine names the mismatch
  if (const cv::Rect need = planned_crop(e, req.mask, layer.size(), where); (need & where) != need)
    throw InputError("edit request: the crop sent (" + std::to_string(where.width) + "x" + std::to_string(where.height) +
                     " at " + std::to_string(where.x) + "," + std::to_string(where.y) +
                     ") does not contain the region the model works on (" + std::to_string(need.width) + "x" +
                     std::to_string(need.height) + " at " + std::to_string(need.x) + "," + std::to_string(need.y) +
                     "); install the GIMP plug-in and the engine from the same release");
  const cv::Mat strokes = edit::stroke_map(layer_sketch)(where);
  if (as_alpha_sketch(strokes, req.sketch)) return edit_region(req, progress, cancel);
  // Strokes cover over 90% of the crop, so they cannot pass as a transparent sketch: edit the whole
  // layer, the image known only inside the crop (all the engine reads of it), and cut the results.
  cv::Mat image = cv::Mat::zeros(layer.size(), req.image.type()), mask = cv::Mat::zeros(layer.size(), req.mask.type());
  req.image.copyTo(image(where));
  req.mask.copyTo(mask(where));
  req.image = image;
  req.mask = mask;
  req.sketch = layer_sketch;
  EditResult r = edit_region(req, progress, cancel);
  for (auto& im : r.images) im = im(where).clone();
  return r;
}

InterpolationMode interpolation_mode(const std::string& m) {
  if (m == "slerp") return InterpolationMode::Slerp;
  if (m == "linear") return InterpolationMode::Linear;
  if (m == "trig") return InterpolationMode::Trig;
  throw InputError("interpolation mode '" + m + "': expected slerp, linear or trig");
}

// LibTorch's messages carry a C++ backtrace after their first lines; the user needs the start.
std::string short_message(std::string msg) {
  if (auto at = msg.find("\nException raised from"); at != std::string::npos) msg.resize(at);
  if (msg.size() > 2000) msg = msg.substr(0, 2000) + "...";
  return msg;
}

bool looks_like_oom(const std::string& msg) {
  return msg.find("out of memory") != std::string::npos || msg.find("can't allocate memory") != std::string::npos ||
         msg.find("Tried to allocate") != std::string::npos;
}

// One client: reads requests, runs one job at a time on a worker thread, writes the replies.
class Session {
 public:
  Session(proto::ByteSource& in, proto::ByteSink& out) : in_(in), out_(out) {}

  void run() {
    for (;;) {
      std::optional<proto::Message> msg;
      try {
        msg = proto::read_message(in_);
      } catch (const proto::VersionMismatch& e) {
        reply(proto::ErrorReply{proto::ErrorKind::Protocol,
                                "the plug-in speaks DiffSketch protocol version " + std::to_string(e.peer_version()) +
                                    ", this engine speaks version " + std::to_string(proto::kProtocolVersion) +
                                    "; install the GIMP plug-in and the diffsketch engine from the same release"});
        std::cerr << "diffsketch serve: " << e.what() << "\n";
        break;
      } catch (const proto::ProtocolError& e) {
        reply(proto::ErrorReply{proto::ErrorKind::Protocol, e.what()});
        std::cerr << "diffsketch serve: " << e.what() << "\n";
        break;
      }
      if (!msg) break;  // the client closed its end
      if (std::holds_alternative<proto::CancelRequest>(*msg)) {
        cancel_.cancel();
        continue;
      }
      if (busy_) {
        reply(proto::ErrorReply{proto::ErrorKind::Input, "a job is already running; wait for its result or send cancel"});
        continue;
      }
      if (worker_.joinable()) worker_.join();
      if (std::holds_alternative<proto::ModelsRequest>(*msg)) {
        reply(model_list());
        continue;
      }
      cancel_.reset();
      busy_ = true;
      worker_ = std::thread([this, m = std::move(*msg)] { job(m); });
    }
    if (busy_) std::cerr << "diffsketch serve: the client went away; cancelling its job\n";
    cancel_.cancel();
    if (worker_.joinable()) worker_.join();
  }

 private:
  // A CancelToken that can be re-armed between jobs.
  struct Cancel {
    std::unique_ptr<CancelToken> token = std::make_unique<CancelToken>();
    std::mutex mu;
    void cancel() {
      std::lock_guard lock(mu);
      token->cancel();
    }
    void reset() {
      std::lock_guard lock(mu);
      token = std::make_unique<CancelToken>();
    }
    const CancelToken* get() {
      std::lock_guard lock(mu);
      return token.get();
    }
  };

  // false when the client is gone; the running job is then cancelled.
  bool reply(const proto::Message& m) {
    std::lock_guard lock(write_mu_);
    if (peer_gone_) return false;
    try {
      proto::write_message(out_, m);
      return true;
    } catch (const proto::ProtocolError&) {
      peer_gone_ = true;
      cancel_.cancel();
      return false;
    }
  }

  static proto::ModelList model_list() {
    proto::ModelList list;
    for (const auto& m : list_models()) list.models.push_back({m.id, m.kind, m.name, m.path, m.resolution});
    list.search_path = model_search_path();
    return list;
  }

  void job(const proto::Message& msg) {
    const CancelToken* cancel = cancel_.get();
    const ProgressFn progress = [this](const Progress& p) {
      proto::ProgressUpdate u{p.step, p.total, std::nullopt};
      if (p.preview) u.preview = preview_image(*p.preview);
      reply(u);
    };
    proto::Message answer;
    try {
      EditResult r;
      if (const auto* e = std::get_if<proto::EditRequest>(&msg)) {
        EditRequest req;
        req.model = e->model;
        req.sampling = sampling(e->sampling);
        req.image = to_mat(e->image);
        req.mask = to_mat(e->mask);
        req.sketch = to_mat(e->sketch);
        req.sketch_scale = e->sketch_scale;
        req.sketch_guidance = sketch_guidance(e->sketch_guidance);
        req.variants = e->variants;
        req.context_margin = e->context_margin;
        req.feather = e->feather;
        req.init_strength = e->init_strength;
        req.refine_strength = e->refine_strength;
        req.refine_steps = e->refine_steps;
        req.harmonize = e->harmonize;
        req.preview = e->preview;
        // Without a sketch a crop needs nothing else (the offsets do not matter).
        const bool whole = req.image.empty() || req.sketch.empty() || req.sketch.size() == req.image.size();
        if (!req.sketch.empty() && whole && (e->image_x != 0 || e->image_y != 0))
          throw InputError("edit request: image_x, image_y must be 0 when the sketch has the image's size");
        r = whole ? edit_region(req, progress, cancel) : edit_crop(std::move(req), *e, progress, cancel);
      } else if (const auto* g = std::get_if<proto::GenerateRequest>(&msg)) {
        r = generate_image(generate_request(*g), progress, cancel);
      } else if (const auto* i = std::get_if<proto::InterpolateRequest>(&msg)) {
        InterpolateRequest req;
        req.generate = generate_request(i->generate);
        req.seed_a = i->seed_a;
        req.seed_b = i->seed_b;
        req.frames = i->frames;
        req.mode = interpolation_mode(i->mode);
        r = interpolate_seeds(req, progress, cancel);
      } else {
        throw InputError(std::string("'") + proto::message_type(msg) + "' is not a request the engine answers");
      }
      proto::Result res;
      for (const auto& im : r.images) res.images.push_back(from_mat(im));
      res.seeds = r.seeds;
      res.warnings = r.warnings;
      answer = std::move(res);
    } catch (const Cancelled&) {
      answer = proto::ErrorReply{proto::ErrorKind::Cancelled, "cancelled"};
    } catch (const InputError& e) {
      answer = proto::ErrorReply{proto::ErrorKind::Input, e.what()};
    } catch (const std::bad_alloc&) {
      answer = proto::ErrorReply{proto::ErrorKind::OutOfMemory,
                                 "the engine ran out of memory (try a smaller selection, fewer variants or --device cpu)"};
    } catch (const std::exception& e) {
      const std::string what = short_message(e.what());
      answer = looks_like_oom(what) ? proto::ErrorReply{proto::ErrorKind::OutOfMemory, "the engine ran out of memory: " + what}
                                    : proto::ErrorReply{proto::ErrorKind::Internal, what};
    }
    if (const auto* err = std::get_if<proto::ErrorReply>(&answer))
      std::cerr << "diffsketch serve: " << proto::error_kind_name(err->kind) << ": " << err->message << "\n";
    busy_ = false;  // before the reply: the client's next request may follow it at once
    reply(answer);
  }

  proto::ByteSource& in_;
  proto::ByteSink& out_;
  std::mutex write_mu_;
  bool peer_gone_ = false;
  Cancel cancel_;
  std::atomic<bool> busy_{false};
  std::thread worker_;
};

// ---- the socket server

std::string default_socket_path() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime) return std::string(runtime) + "/diffsketch.sock";
  return "/tmp/diffsketch-" + std::to_string(getuid()) + "/diffsketch.sock";
}

// The /tmp fallback folder: ours and private, or refused (another user could otherwise plant it).
void make_private_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw InputError(dir.string() + ": cannot create the socket folder: " + std::strerror(errno));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw InputError(dir.string() + " is not a folder; remove it or pass --socket PATH");
  if (st.st_uid != getuid())
    throw InputError(dir.string() + " belongs to another user; remove it or pass --socket PATH");
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
    throw InputError(dir.string() + ": cannot make it private (mode 0700): " + std::strerror(errno));
}

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw InputError("socket path " + path + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

char g_socket_path[sizeof(sockaddr_un::sun_path)] = {};

void remove_socket_and_exit(int) {
  if (g_socket_path[0]) ::unlink(g_socket_path);
  _exit(0);
}

int listen_on(const std::string& path) {
  const sockaddr_un addr = socket_address(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw InputError(path + " exists and is not a socket; remove it or pass --socket PATH");
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(probe);
    if (live) throw InputError("a diffsketch server already listens at " + path);
    ::unlink(path.c_str());  // stale, from a server that was killed
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  const mode_t old = ::umask(0177);  // the socket is created 0600
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) throw InputError(path + ": cannot listen there: " + std::strerror(errno));
  ::chmod(path.c_str(), 0600);
  if (::listen(fd, 4) != 0) throw Error(std::string("listen: ") + std::strerror(errno));
  std::strncpy(g_socket_path, path.c_str(), sizeof g_socket_path - 1);
  ::signal(SIGINT, remove_socket_and_exit);
  ::signal(SIGTERM, remove_socket_and_exit);
  return fd;
}

int serve_socket(std::string path) {
  if (path.empty()) {
    path = default_socket_path();
    if (!std::getenv("XDG_RUNTIME_DIR") || !*std::getenv("XDG_RUNTIME_DIR")) make_private_dir(fs::path(path).parent_path());
  }
  const int listener = listen_on(path);
  std::cerr << "diffsketch serve: listening on " << path << " (Ctrl+C to stop)\n";
  for (;;) {
    const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      throw Error(std::string("accept: ") + std::strerror(errno));
    }
    proto::FdSource in(client);
    proto::FdSink out(client);
    Session(in, out).run();
    ::close(client);
  }
}

int serve_stdio() {
  // Frames own the real stdout; anything else the process prints goes to stderr.
  const int out_fd = ::dup(STDOUT_FILENO);
  if (out_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) throw Error("serve --stdio: cannot set up stdout");
  proto::FdSource in(STDIN_FILENO);
  proto::FdSink out(out_fd);
  Session(in, out).run();
  ::close(out_fd);
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("serve", "serve the GIMP plug-in: framed protocol over stdin/stdout or a UNIX socket");
  static bool stdio = false;
  static std::string socket_path;
  auto* stdio_flag = cmd->add_flag("--stdio", stdio, "one client on stdin/stdout (how the plug-in starts the engine)");
  cmd->add_option("--socket", socket_path,
                  "UNIX socket path (default $XDG_RUNTIME_DIR/diffsketch.sock, or /tmp/diffsketch-$UID/diffsketch.sock)")
      ->excludes(stdio_flag);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a dead engine
    return stdio ? serve_stdio() : serve_socket(socket_path);
  });
}

}  // namespace dsk::cli
