// The plug-in <-> engine protocol: framed messages over a byte stream (a pipe or a UNIX socket).
// Torch-, OpenCV- and GLib-free, so the GIMP plug-in and the engine link the same code.
//
// A frame (all integers little-endian):
//
//   offset  size  field
//   0       4     magic "DSKP"
//   4       2     protocol version (kProtocolVersion)
//   6       2     payload count P (<= Limits::max_payloads)
//   8       4     JSON length J (<= Limits::max_json_bytes)
//   12      J     JSON header, UTF-8: {"type": "...", ..., "payloads": [{"width", "height",
//                 "channels", "dtype"}, ...]}; message fields name payloads by index
//   12+J    ...   the P payloads, raw, in order: row-major, channels interleaved, width * height *
//                 channels samples of dtype (u8, u16 or f32, little-endian)
//
// The first 8 bytes keep this layout in every future version, so a peer of another version is
// always recognised and named ("the peer speaks protocol version 1, this side speaks 2").
//
//   dsk::proto::FdSink out(fd);
//   dsk::proto::write_message(out, dsk::proto::ModelsRequest{});
//   dsk::proto::FdSource in(fd);
//   while (auto msg = dsk::proto::read_message(in)) { ... std::get_if<dsk::proto::Result>(&*msg) ... }
//
// A conversation: the client sends one request (hello, models, edit, generate, interpolate); the
// engine answers with progress messages and then exactly one final message (engine, model-list,
// result or error). A cancel request, or the client closing its end, stops the running job: it ends with
// an error of kind "cancelled" (when the client is still there to read it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/base/error.h"
#include "core/engine/defaults.h"

namespace dsk::proto {

// 2: edit requests may carry a crop of the layer (image_x, image_y; the sketch covers the whole
//    layer), and edit / generate requests carry sketch guidance. A version-1 engine would read the
//    crop's larger sketch as one to resize, so the version says it instead.
// 3: hello / engine messages (the engine's release version, its executable and its idle exit), so
//    the plug-in can tell whether a running server is the engine it was installed with.
// 4: a remote engine (serve --listen): hello carries the client's token (the first message on a
//    TCP connection, and the only one an engine that needs a token answers before it), and
//    progress carries the job's place in the queue of a server that several clients share.
inline constexpr uint16_t kProtocolVersion = 4;
inline constexpr char kMagic[4] = {'D', 'S', 'K', 'P'};
inline constexpr size_t kFrameHeaderBytes = 12;

// Bounds a reader enforces before it trusts a header; memory grows only with bytes received.
// The defaults are core/base/limits.h's; tests and the fuzzer use smaller ones.
struct Limits {
  uint32_t max_json_bytes = kMaxFrameJsonBytes;
  int max_json_depth = kMaxJsonDepth;
  uint16_t max_payloads = kMaxFramePayloads;
  uint64_t max_payload_bytes = kMaxPayloadBytes;
  int max_side = kMaxPayloadSide;
};

// A malformed, truncated or oversized frame.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// The peer speaks another protocol version.
class VersionMismatch : public ProtocolError {
 public:
  explicit VersionMismatch(int peer_version);
  int peer_version() const { return peer_version_; }

 private:
  int peer_version_;
};

enum class DType : uint8_t { U8, U16, F32 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

// A raw image: row-major, channels interleaved (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
struct Image {
  int width = 0, height = 0, channels = 0;
  DType dtype = DType::F32;
  std::vector<uint8_t> data;

  static Image make(int width, int height, int channels, DType dtype);  // zero-filled
  bool empty() const { return width == 0 || height == 0; }
  size_t byte_size() const;
  float* f32() { return reinterpret_cast<float*>(data.data()); }
  const float* f32() const { return reinterpret_cast<const float*>(data.data()); }
  bool operator==(const Image&) const = default;
};

// ---- requests (plug-in -> engine)

struct ModelsRequest {
  bool operator==(const ModelsRequest&) const = default;
};

// The engine's SamplingParams, with the same names.
struct Sampling {
  int steps = kDefaultSteps;
  std::string respacing;
  std::string sampler{kDefaultSampler};
  double eta = 0.0;
  uint64_t seed = 0;
  std::string device = "auto";
  std::string classifier;  // "" = none
  int class_label = -1;    // -1 = none
  double classifier_scale = kDefaultClassifierScale;
  bool operator==(const Sampling&) const = default;
};
inline Sampling edit_sampling() {  // an edit's defaults (core/engine/defaults.h)
  Sampling s;
  s.steps = kDefaultEditSteps;
  s.sampler = kDefaultEditSampler;
  return s;
}

// Training-free sketch guidance (the engine's SketchGuidance). JSON: {"scale", "mode": "cheap" |
// "exact", "features"}; a request without it has none (scale 0).
struct SketchGuidance {
  double scale = 0;      // 0 = off
  bool exact = false;    // mode "exact": the gradient through the U-Net; "cheap": eps held constant
  std::string features;  // sketch-features model folder; "" = the built-in edge pyramid
  bool operator==(const SketchGuidance&) const = default;
};

// Inpaint. The sketch covers the layer; image and mask (the same size) are the part of it the
// engine needs, at (image_x, image_y) in the sketch's coordinates: the whole layer (0, 0 and the
// sketch's size) or a crop that contains the region the model works on (the plug-in sends the
// selection's context: editing/region.h). The sketch stays whole because its stroke map depends on
// the whole layer (paper level, polarity, how much of it is transparent). Results have the image's
// size. Without a sketch the offsets do not matter.
struct EditRequest {
  std::string model;
  Sampling sampling = edit_sampling();
  Image image;   // RGBA float, perceptual
  Image mask;    // 1 channel, white = regenerate, soft values blend
  Image sketch;  // empty = none
  int image_x = 0, image_y = 0;
  double sketch_scale = kDefaultSketchScale;
  SketchGuidance sketch_guidance;
  int variants = 1;
  double context_margin = kDefaultContextMargin;
  int feather = kDefaultFeather;
  double init_strength = kDefaultInitStrength;  // optional in the JSON: older clients get the defaults
  double refine_strength = kDefaultRefineStrength;
  int refine_steps = kDefaultRefineSteps;  // optional in the JSON, as the two above
  double harmonize = kDefaultHarmonize;    // optional in the JSON, as the three above
  std::string detail{kDefaultDetail};      // optional: patch | tiles | none (checked by the engine)
  bool preview = false;
  bool operator==(const EditRequest&) const = default;
};

struct GenerateRequest {
  std::string model;
  Sampling sampling;
  Image sketch;  // sets the output size unless width/height are given
  int width = 0, height = 0;
  double sketch_scale = kDefaultGenerateSketchScale;
  SketchGuidance sketch_guidance;
  int variants = 1;
  bool preview = false;
  bool operator==(const GenerateRequest&) const = default;
};

struct InterpolateRequest {
  GenerateRequest generate;
  uint64_t seed_a = 0, seed_b = 1;
  int frames = kDefaultFrames;
  std::string mode{kDefaultInterpolationMode};  // slerp | linear | trig
  bool operator==(const InterpolateRequest&) const = default;
};

struct CancelRequest {
  bool operator==(const CancelRequest&) const = default;
};

// Asks the engine who it is; the answer is an EngineHello. On a TCP engine (`serve --listen`) it is
// the first message and carries the token; "" = none (a local engine needs none).
struct HelloRequest {
  std::string token;
  bool operator==(const HelloRequest&) const = default;
};

// ---- responses (engine -> plug-in)

struct ModelInfo {
  std::string id, kind, name, path;
  int resolution = 0;
  // Optional on the wire (an older engine leaves them out): the number of classes of a
  // class-conditional model (0: not one), the first line of its card, and why its files fail their
  // manifest ("" when they do not, or it has none).
  int classes = 0;
  std::string card, problem;
  bool operator==(const ModelInfo&) const = default;
};

struct ModelList {
  std::vector<ModelInfo> models;
  std::vector<std::string> search_path;  // where the engine looked
  bool operator==(const ModelList&) const = default;
};

// A job's progress; while it waits in a shared server's queue, `queue` = the jobs ahead of it (the
// running one included) and step = total = 0.
struct ProgressUpdate {
  int step = 0, total = 0;
  int queue = 0;
  std::optional<Image> preview;  // small RGB u8 image of the current prediction
  bool operator==(const ProgressUpdate&) const = default;
};

struct Result {
  std::vector<Image> images;  // same layout as the request's image
  std::vector<uint64_t> seeds;
  std::vector<std::string> warnings;
  bool operator==(const Result&) const = default;
};

// Who the engine is: its release (DiffSketch's version), the executable it runs from and that
// file's modification time when it started (a later one on disk means the engine was upgraded or
// rebuilt since), its process id, and after how many idle seconds it exits (0: never).
struct EngineHello {
  std::string version;
  std::string executable;
  int64_t executable_mtime = 0;  // seconds since the epoch
  int64_t pid = 0;
  int exit_when_idle = 0;
  bool operator==(const EngineHello&) const = default;
};

enum class ErrorKind { Input, OutOfMemory, Internal, Cancelled, Protocol };
const char* error_kind_name(ErrorKind k);  // "input", "out-of-memory", "internal", "cancelled", "protocol"

struct ErrorReply {
  ErrorKind kind = ErrorKind::Internal;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

using Message = std::variant<ModelsRequest, EditRequest, GenerateRequest, InterpolateRequest, CancelRequest, ModelList,
                             ProgressUpdate, Result, ErrorReply, HelloRequest, EngineHello>;

// The JSON "type" of a message: "models", "edit", "generate", "interpolate", "cancel",
// "model-list", "progress", "result", "error", "hello", "engine".
const char* message_type(const Message& m);

// ---- byte streams

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns 0 only at the end of the stream. Throws on an I/O error.
  virtual size_t read_some(uint8_t* buf, size_t n) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write_all(const uint8_t* buf, size_t n) = 0;  // throws ProtocolError when the peer is gone
};

// Waits until `fd` has data or its end, in slices of a second, asking `timeout_ms` each time (it
// may change: no limit while a job runs; negative: no limit); throws ProtocolError when the limit
// passes with nothing to read (a stalled client is dropped so that the others are served).
void wait_readable(int fd, const std::function<int()>& timeout_ms);

// POSIX file descriptors (pipes, sockets); EINTR is retried. The fd is not closed.
class FdSource : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  size_t read_some(uint8_t* buf, size_t n) override;
  // A read waits at most timeout_ms() for data (asked again every second; negative: no limit),
  // then throws ProtocolError: a stalled client is dropped and the next one served.
  void set_timeout(std::function<int()> timeout_ms) { timeout_ms_ = std::move(timeout_ms); }

 private:
  int fd_;
  std::function<int()> timeout_ms_;
};

class FdSink : public ByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  void write_all(const uint8_t* buf, size_t n) override;

 private:
  int fd_;
};

// Reads one message. std::nullopt when the stream ends cleanly before a frame; ProtocolError
// (VersionMismatch for another version) for a bad magic, a truncated frame, a length over the
// limits or a malformed JSON header.
std::optional<Message> read_message(ByteSource& in, const Limits& limits = {});
void write_message(ByteSink& out, const Message& m);

// A whole frame in memory (tests, small messages).
std::vector<uint8_t> encode(const Message& m);
Message decode(std::span<const uint8_t> frame, const Limits& limits = {});

}  // namespace dsk::proto
