// The framed plug-in <-> engine protocol (see protocol.h for the layout).
#include "core/protocol/protocol.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

#include "core/base/json_depth.h"

namespace dsk::proto {

static_assert(std::endian::native == std::endian::little,
              "the protocol sends samples little-endian as they lie in memory; add byte swapping for this platform");

using json = nlohmann::json;

VersionMismatch::VersionMismatch(int peer_version)
    : ProtocolError("protocol version mismatch: the peer speaks DiffSketch protocol version " + std::to_string(peer_version) +
                    ", this side speaks version " + std::to_string(kProtocolVersion) +
                    "; install the GIMP plug-in and the diffsketch engine from the same release"),
      peer_version_(peer_version) {}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::U8: return "u8";
    case DType::U16: return "u16";
    case DType::F32: return "f32";
  }
  return "?";
}

size_t dtype_size(DType d) { return d == DType::U8 ? 1 : d == DType::U16 ? 2 : 4; }

Image Image::make(int width, int height, int channels, DType dtype) {
  Image im;
  im.width = width;
  im.height = height;
  im.channels = channels;
  im.dtype = dtype;
  im.data.assign(im.byte_size(), 0);
  return im;
}

size_t Image::byte_size() const {
  return static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels) * dtype_size(dtype);
}

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::Input: return "input";
    case ErrorKind::OutOfMemory: return "out-of-memory";
    case ErrorKind::Internal: return "internal";
    case ErrorKind::Cancelled: return "cancelled";
    case ErrorKind::Protocol: return "protocol";
  }
  return "internal";
}

namespace {

ErrorKind error_kind_from_name(const std::string& s) {
  for (auto k : {ErrorKind::Input, ErrorKind::OutOfMemory, ErrorKind::Internal, ErrorKind::Cancelled, ErrorKind::Protocol})
    if (s == error_kind_name(k)) return k;
  throw ProtocolError("error message: unknown kind '" + s + "'");
}

DType dtype_from_name(const std::string& s) {
  for (auto d : {DType::U8, DType::U16, DType::F32})
    if (s == dtype_name(d)) return d;
  throw ProtocolError("payload dtype '" + s + "' is not one of u8, u16, f32");
}

// ---- encoding: message -> JSON header + list of payloads

struct Encoder {
  json payloads = json::array();
  std::vector<const Image*> images;

  json ref(const Image& im) {
    if (im.empty()) return nullptr;
    if (im.data.size() != im.byte_size())
      throw ProtocolError("image of " + std::to_string(im.width) + "x" + std::to_string(im.height) + "x" +
                          std::to_string(im.channels) + " " + dtype_name(im.dtype) + " holds " +
                          std::to_string(im.data.size()) + " bytes, expected " + std::to_string(im.byte_size()));
    payloads.push_back({{"width", im.width}, {"height", im.height}, {"channels", im.channels}, {"dtype", dtype_name(im.dtype)}});
    images.push_back(&im);
    return images.size() - 1;
  }
};

json sampling_json(const Sampling& s) {
  return {{"steps", s.steps},       {"respacing", s.respacing},   {"sampler", s.sampler},
          {"eta", s.eta},           {"seed", s.seed},             {"device", s.device},
          {"classifier", s.classifier}, {"class", s.class_label}, {"classifier_scale", s.classifier_scale}};
}

json guidance_json(const SketchGuidance& g) {
  return {{"scale", g.scale}, {"mode", g.exact ? "exact" : "cheap"}, {"features", g.features}};
}

json generate_json(const GenerateRequest& g, Encoder& enc) {
  return {{"model", g.model},   {"sampling", sampling_json(g.sampling)}, {"sketch", enc.ref(g.sketch)},
          {"width", g.width},   {"height", g.height},                    {"sketch_scale", g.sketch_scale},
          {"sketch_guidance", guidance_json(g.sketch_guidance)},
          {"variants", g.variants}, {"preview", g.preview}};
}

json to_json(const Message& msg, Encoder& enc) {
  json j;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, EditRequest>) {
          j = {{"model", m.model},       {"sampling", sampling_json(m.sampling)},
               {"image", enc.ref(m.image)}, {"mask", enc.ref(m.mask)},
               {"sketch", enc.ref(m.sketch)}, {"image_x", m.image_x},
               {"image_y", m.image_y},   {"sketch_scale", m.sketch_scale},
               {"sketch_guidance", guidance_json(m.sketch_guidance)},
               {"variants", m.variants}, {"context_margin", m.context_margin},
               {"feather", m.feather},   {"init_strength", m.init_strength},
               {"refine_strength", m.refine_strength}, {"refine_steps", m.refine_steps},
               {"harmonize", m.harmonize},   {"detail", m.detail},   {"preview", m.preview}};
        } else if constexpr (std::is_same_v<T, GenerateRequest>) {
          j = generate_json(m, enc);
        } else if constexpr (std::is_same_v<T, InterpolateRequest>) {
          j = {{"generate", generate_json(m.generate, enc)},
               {"seed_a", m.seed_a}, {"seed_b", m.seed_b}, {"frames", m.frames}, {"mode", m.mode}};
        } else if constexpr (std::is_same_v<T, ModelList>) {
          json models = json::array();
          for (const auto& i : m.models)
            models.push_back({{"id", i.id}, {"kind", i.kind}, {"name", i.name}, {"path", i.path}, {"resolution", i.resolution},
                              {"classes", i.classes}, {"card", i.card}, {"problem", i.problem}});
          j = {{"models", models}, {"search_path", m.search_path}};
        } else if constexpr (std::is_same_v<T, ProgressUpdate>) {
          j = {{"step", m.step}, {"total", m.total}, {"queue", m.queue},
               {"preview", m.preview ? enc.ref(*m.preview) : json(nullptr)}};
        } else if constexpr (std::is_same_v<T, Result>) {
          json images = json::array();
          for (const auto& im : m.images) images.push_back(enc.ref(im));
          j = {{"images", images}, {"seeds", m.seeds}, {"warnings", m.warnings}};
        } else if constexpr (std::is_same_v<T, ErrorReply>) {
          j = {{"kind", error_kind_name(m.kind)}, {"message", m.message}};
        } else if constexpr (std::is_same_v<T, EngineHello>) {
          j = {{"version", m.version}, {"executable", m.executable}, {"executable_mtime", m.executable_mtime},
               {"pid", m.pid}, {"exit_when_idle", m.exit_when_idle}};
        } else if constexpr (std::is_same_v<T, HelloRequest>) {
          j = {{"token", m.token}};
        } else {
          j = json::object();  // models, cancel: no fields
        }
      },
      msg);
  j["type"] = message_type(msg);
  j["payloads"] = enc.payloads;
  return j;
}

void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// The fixed header and the JSON text of a message, and the payloads to send after them.
std::vector<uint8_t> frame_head(const Message& msg, std::vector<const Image*>& payloads) {
  Encoder enc;
  const std::string text = to_json(msg, enc).dump();
  if (text.size() > Limits{}.max_json_bytes) throw ProtocolError("message header of " + std::to_string(text.size()) + " bytes is over the 1 MiB limit");
  if (enc.images.size() > Limits{}.max_payloads) throw ProtocolError("message has more than 64 images");
  std::vector<uint8_t> head(kFrameHeaderBytes + text.size());
  std::memcpy(head.data(), kMagic, 4);
  put_le(head.data() + 4, kProtocolVersion, 2);
  put_le(head.data() + 6, enc.images.size(), 2);
  put_le(head.data() + 8, text.size(), 4);
  std::memcpy(head.data() + kFrameHeaderBytes, text.data(), text.size());
  payloads = enc.images;
  return head;
}

// ---- decoding: JSON header + payloads -> message

// A JSON value as T when it is one: an integer field takes only a JSON integer within T's range
// (nlohmann would cast 1e20 or -1 to an int or an unsigned without a word), a floating-point field
// any finite number, a bool a boolean. std::nullopt otherwise.
template <typename T>
std::optional<T> checked(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return std::nullopt;
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return std::nullopt;
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    } else {
      const auto i = v.get<int64_t>();
      if (i < 0 ? (std::is_unsigned_v<T> || i < static_cast<int64_t>(std::numeric_limits<T>::min()))
                : static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return std::nullopt;
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return std::nullopt;
  }
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

struct Decoder {
  const json& root;
  std::vector<Image>& payloads;
  std::vector<bool> used = std::vector<bool>(payloads.size(), false);

  // The message's type for error messages; "?" when it has none or it is not a string.
  std::string type_name() const {
    const auto it = root.find("type");
    return it != root.end() && it->is_string() ? it->get<std::string>() : "?";
  }

  template <typename T>
  T get(const json& j, const char* key) const {
    if (!j.is_object() || !j.contains(key))
      throw ProtocolError(type_name() + " message: field '" + key + "' is missing");
    if (auto v = checked<T>(j.at(key))) return std::move(*v);
    throw ProtocolError(type_name() + " message: field '" + key + "' has the wrong type or is out of range");
  }

  Image image(const json& j, const char* key) {
    if (!j.contains(key) || j.at(key).is_null()) return {};
    const auto index = get<size_t>(j, key);
    if (index >= payloads.size() || used[index])
      throw ProtocolError(type_name() + " message: field '" + key + "' names payload " +
                          std::to_string(index) + ", which is missing or already used");
    used[index] = true;
    return std::move(payloads[index]);
  }

  Sampling sampling(const json& j) const {
    Sampling s;
    s.steps = get<int>(j, "steps");
    s.respacing = get<std::string>(j, "respacing");
    s.sampler = get<std::string>(j, "sampler");
    s.eta = get<double>(j, "eta");
    s.seed = get<uint64_t>(j, "seed");
    s.device = get<std::string>(j, "device");
    s.classifier = get<std::string>(j, "classifier");
    s.class_label = get<int>(j, "class");
    s.classifier_scale = get<double>(j, "classifier_scale");
    return s;
  }

  // An optional field: absent or null = `fallback`.
  template <typename T>
  T get_or(const json& j, const char* key, T fallback) const {
    if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return fallback;
    return get<T>(j, key);
  }

  SketchGuidance sketch_guidance(const json& j) const {
    SketchGuidance g;
    if (!j.contains("sketch_guidance") || j.at("sketch_guidance").is_null()) return g;  // absent: off
    const json& o = j.at("sketch_guidance");
    g.scale = get<double>(o, "scale");
    const auto mode = get_or<std::string>(o, "mode", "cheap");
    if (mode != "cheap" && mode != "exact")
      throw ProtocolError(type_name() + " message: sketch_guidance mode '" + mode +
                          "' is not cheap or exact");
    g.exact = mode == "exact";
    g.features = get_or<std::string>(o, "features", "");
    return g;
  }

  GenerateRequest generate(const json& j) {
    GenerateRequest g;
    g.model = get<std::string>(j, "model");
    g.sampling = sampling(get<json>(j, "sampling"));
    g.sketch = image(j, "sketch");
    g.width = get<int>(j, "width");
    g.height = get<int>(j, "height");
    g.sketch_scale = get<double>(j, "sketch_scale");
    g.sketch_guidance = sketch_guidance(j);
    g.variants = get<int>(j, "variants");
    g.preview = get<bool>(j, "preview");
    return g;
  }

  Message message() {
    const auto type = get<std::string>(root, "type");
    const json& j = root;
    if (type == "models") return ModelsRequest{};
    if (type == "cancel") return CancelRequest{};
    if (type == "hello") return HelloRequest{get_or<std::string>(j, "token", "")};
    if (type == "engine") {
      EngineHello m;
      m.version = get<std::string>(j, "version");
      m.executable = get<std::string>(j, "executable");
      m.executable_mtime = get<int64_t>(j, "executable_mtime");
      m.pid = get<int64_t>(j, "pid");
      m.exit_when_idle = get<int>(j, "exit_when_idle");
      return m;
    }
    if (type == "edit") {
      EditRequest m;
      m.model = get<std::string>(j, "model");
      m.sampling = sampling(get<json>(j, "sampling"));
      m.image = image(j, "image");
      m.mask = image(j, "mask");
      m.sketch = image(j, "sketch");
      m.image_x = get_or<int>(j, "image_x", 0);
      m.image_y = get_or<int>(j, "image_y", 0);
      m.sketch_scale = get<double>(j, "sketch_scale");
      m.sketch_guidance = sketch_guidance(j);
      m.variants = get<int>(j, "variants");
      m.context_margin = get<double>(j, "context_margin");
      m.feather = get<int>(j, "feather");
      m.init_strength = get_or<double>(j, "init_strength", m.init_strength);
      m.refine_strength = get_or<double>(j, "refine_strength", m.refine_strength);
      m.refine_steps = get_or<int>(j, "refine_steps", m.refine_steps);
      m.harmonize = get_or<double>(j, "harmonize", m.harmonize);
      m.detail = get_or<std::string>(j, "detail", m.detail);
      m.preview = get<bool>(j, "preview");
      return m;
    }
    if (type == "generate") return generate(j);
    if (type == "interpolate") {
      InterpolateRequest m;
      m.generate = generate(get<json>(j, "generate"));
      m.seed_a = get<uint64_t>(j, "seed_a");
      m.seed_b = get<uint64_t>(j, "seed_b");
      m.frames = get<int>(j, "frames");
      m.mode = get<std::string>(j, "mode");
      return m;
    }
    if (type == "model-list") {
      ModelList m;
      for (const auto& e : get<json>(j, "models"))
        m.models.push_back({get<std::string>(e, "id"), get<std::string>(e, "kind"), get<std::string>(e, "name"),
                            get<std::string>(e, "path"), get<int>(e, "resolution"), get_or<int>(e, "classes", 0),
                            get_or<std::string>(e, "card", ""), get_or<std::string>(e, "problem", "")});
      m.search_path = get<std::vector<std::string>>(j, "search_path");
      return m;
    }
    if (type == "progress") {
      ProgressUpdate m;
      m.step = get<int>(j, "step");
      m.total = get<int>(j, "total");
      m.queue = get_or<int>(j, "queue", 0);
      if (Image p = image(j, "preview"); !p.empty()) m.preview = std::move(p);
      return m;
    }
    if (type == "result") {
      Result m;
      const auto images = get<json>(j, "images");
      if (!images.is_array()) throw ProtocolError("result message: field 'images' is not an array");
      for (size_t i = 0; i < images.size(); ++i) {
        const json holder = {{"image", images[i]}};
        m.images.push_back(image(holder, "image"));
      }
      m.seeds = get<std::vector<uint64_t>>(j, "seeds");
      m.warnings = get<std::vector<std::string>>(j, "warnings");
      return m;
    }
    if (type == "error") return ErrorReply{error_kind_from_name(get<std::string>(j, "kind")), get<std::string>(j, "message")};
    throw ProtocolError("unknown message type '" + type + "'");
  }
};

struct FrameHeader {
  uint16_t payload_count = 0;
  uint32_t json_bytes = 0;
};

FrameHeader parse_head(const uint8_t* p, const Limits& limits) {
  if (std::memcmp(p, kMagic, 4) != 0)
    throw ProtocolError("not a DiffSketch protocol frame (bad magic); is the other side a diffsketch engine or plug-in?");
  const int version = static_cast<int>(get_le(p + 4, 2));
  if (version != kProtocolVersion) throw VersionMismatch(version);
  FrameHeader h;
  h.payload_count = static_cast<uint16_t>(get_le(p + 6, 2));
  h.json_bytes = static_cast<uint32_t>(get_le(p + 8, 4));
  if (h.payload_count > limits.max_payloads)
    throw ProtocolError("frame declares " + std::to_string(h.payload_count) + " payloads, the limit is " +
                        std::to_string(limits.max_payloads));
  if (h.json_bytes > limits.max_json_bytes)
    throw ProtocolError("frame declares a JSON header of " + std::to_string(h.json_bytes) + " bytes, the limit is " +
                        std::to_string(limits.max_json_bytes));
  return h;
}

// The payload descriptors of a parsed header, checked against the limits before any allocation.
std::vector<Image> payload_shapes(const json& root, uint16_t count, const Limits& limits) {
  const auto it = root.find("payloads");
  if (it == root.end() || !it->is_array() || it->size() != count)
    throw ProtocolError("frame declares " + std::to_string(count) + " payloads but its JSON header describes " +
                        (it != root.end() && it->is_array() ? std::to_string(it->size()) : std::string("none")));
  std::vector<Image> out;
  for (const auto& d : *it) {
    Image im;
    const auto field = [&](const char* key) { return d.is_object() && d.contains(key) ? d.at(key) : json(); };
    const auto w = checked<int>(field("width")), h = checked<int>(field("height")), c = checked<int>(field("channels"));
    const auto dtype = checked<std::string>(field("dtype"));
    if (!w || !h || !c || !dtype)
      throw ProtocolError("payload descriptor " + d.dump() + " needs integer width, height, channels and a dtype");
    im.width = *w;
    im.height = *h;
    im.channels = *c;
    im.dtype = dtype_from_name(*dtype);
    if (im.width < 1 || im.height < 1 || im.width > limits.max_side || im.height > limits.max_side)
      throw ProtocolError("payload of " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                          " px: each side must be in 1.." + std::to_string(limits.max_side));
    if (im.channels < 1 || im.channels > 4) throw ProtocolError("payload with " + std::to_string(im.channels) + " channels; 1..4 expected");
    if (im.byte_size() > limits.max_payload_bytes)
      throw ProtocolError("payload of " + std::to_string(im.byte_size()) + " bytes is over the limit of " +
                          std::to_string(limits.max_payload_bytes) + " bytes");
    out.push_back(std::move(im));
  }
  return out;
}

json parse_json(const uint8_t* p, size_t n, const Limits& limits) {
  // Refused before parsing: nothing recursive (a dump for an error message, a destructor) sees it.
  if (json_nesting_depth({reinterpret_cast<const char*>(p), n}, limits.max_json_depth) > limits.max_json_depth)
    throw ProtocolError("the frame's JSON header is nested deeper than " + std::to_string(limits.max_json_depth) +
                        " levels");
  json root = json::parse(p, p + n, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) throw ProtocolError("the frame's JSON header is not a JSON object");
  return root;
}

// Reads exactly n bytes; false when the stream ends before the first byte (only if allow_eof).
bool read_exact(ByteSource& in, uint8_t* buf, size_t n, bool allow_eof, const char* what) {
  size_t got = 0;
  while (got < n) {
    const size_t r = in.read_some(buf + got, n - got);
    if (r == 0) {
      if (got == 0 && allow_eof) return false;
      throw ProtocolError(std::string("truncated frame: the stream ended inside the ") + what + " (" +
                          std::to_string(got) + " of " + std::to_string(n) + " bytes)");
    }
    got += r;
  }
  return true;
}

// Fills a payload in chunks, so memory grows with the bytes that really arrive.
void read_payload(ByteSource& in, Image& im) {
  constexpr size_t kChunk = 16u << 20;
  const size_t total = im.byte_size();
  im.data.clear();
  while (im.data.size() < total) {
    const size_t at = im.data.size(), n = std::min(kChunk, total - at);
    im.data.resize(at + n);
    read_exact(in, im.data.data() + at, n, false, "image data");
  }
}

}  // namespace

const char* message_type(const Message& m) {
  static constexpr const char* names[] = {"models", "edit", "generate", "interpolate", "cancel",
                                          "model-list", "progress", "result", "error", "hello", "engine"};
  return names[m.index()];
}

void wait_readable(int fd, const std::function<int()>& timeout_ms) {
  auto idle_since = std::chrono::steady_clock::now();
  for (;;) {
    const int limit = timeout_ms();
    const auto now = std::chrono::steady_clock::now();
    if (limit < 0) idle_since = now;
    const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - idle_since).count();
    if (limit >= 0 && idle >= limit)
      throw ProtocolError("the client sent nothing for " + std::to_string(limit / 1000) +
                          " s; it is dropped so that other clients can be served");
    pollfd p{fd, POLLIN, 0};
    const int slice = limit < 0 ? 1000 : static_cast<int>(std::min<int64_t>(1000, limit - idle));
    const int r = ::poll(&p, 1, slice);
    if (r > 0) return;  // data, an end or an error: read() tells which
    if (r < 0 && errno != EINTR) throw ProtocolError(std::string("poll failed: ") + std::strerror(errno));
  }
}

size_t FdSource::read_some(uint8_t* buf, size_t n) {
  if (timeout_ms_) wait_readable(fd_, timeout_ms_);
  for (;;) {
    const ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return 0;  // the peer went away: the same as an end of stream
    throw ProtocolError(std::string("read failed: ") + std::strerror(errno));
  }
}

void FdSink::write_all(const uint8_t* buf, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw ProtocolError(std::string("write failed (the other side is gone?): ") + std::strerror(errno));
    }
    buf += w;
    n -= static_cast<size_t>(w);
  }
}

std::optional<Message> read_message(ByteSource& in, const Limits& limits) {
  uint8_t head[kFrameHeaderBytes];
  if (!read_exact(in, head, kFrameHeaderBytes, true, "frame header")) return std::nullopt;
  const FrameHeader h = parse_head(head, limits);
  std::vector<uint8_t> text(h.json_bytes);
  read_exact(in, text.data(), text.size(), false, "JSON header");
  const json root = parse_json(text.data(), text.size(), limits);
  try {
    std::vector<Image> payloads = payload_shapes(root, h.payload_count, limits);
    for (auto& im : payloads) read_payload(in, im);
    Decoder dec{root, payloads};
    Message m = dec.message();
    if (std::find(dec.used.begin(), dec.used.end(), false) != dec.used.end())
      throw ProtocolError(std::string(message_type(m)) + " message: the frame carries images that no field names");
    return m;
  } catch (const json::exception& e) {  // a field of an unexpected kind that no check above foresaw
    throw ProtocolError(std::string("the frame's JSON header does not make a message: ") + e.what());
  }
}

void write_message(ByteSink& out, const Message& m) {
  std::vector<const Image*> payloads;
  const auto head = frame_head(m, payloads);
  out.write_all(head.data(), head.size());
  for (const Image* im : payloads) out.write_all(im->data.data(), im->data.size());
}

std::vector<uint8_t> encode(const Message& m) {
  std::vector<const Image*> payloads;
  auto frame = frame_head(m, payloads);
  for (const Image* im : payloads) frame.insert(frame.end(), im->data.begin(), im->data.end());
  return frame;
}

Message decode(std::span<const uint8_t> frame, const Limits& limits) {
  struct SpanSource : ByteSource {
    std::span<const uint8_t> rest;
    size_t read_some(uint8_t* buf, size_t n) override {
      n = std::min(n, rest.size());
      if (n == 0) return 0;  // an empty span's data() may be null, which memcpy may not get
      std::memcpy(buf, rest.data(), n);
      rest = rest.subspan(n);
      return n;
    }
  } src;
  src.rest = frame;
  auto m = read_message(src, limits);
  if (!m) throw ProtocolError("truncated frame: no bytes");
  if (!src.rest.empty()) throw ProtocolError(std::to_string(src.rest.size()) + " bytes after the end of the frame");
  return std::move(*m);
}

}  // namespace dsk::proto
