#include "core/formats/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "core/base/error.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace dsk::st {
namespace {

using json = nlohmann::json;

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeRow kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},   {DType::I64, "I64", 8},   {DType::U64, "U64", 8},
    {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2}, {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeRow* row_of(DType t) {
  for (const auto& r : kDTypes)
    if (r.dtype == t) return &r;
  return nullptr;
}

std::string known_dtype_list() {
  std::string s;
  for (const auto& r : kDTypes) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

// How many leading bytes of s to keep so that it is at most max bytes and UTF-8 stays whole.
size_t cut_point(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

// A file-derived string made safe for a message: quoted, control bytes escaped, long ones cut.
std::string quote(std::string_view s) {
  std::string out = "'";
  size_t n = cut_point(s, 120);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (n < s.size() ? "...'" : "'");
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw InputError(label + ": " + what);
}

// Bytes for numel elements of the given shape and dtype, or nullopt past 2^63.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t elem) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  if (n > (uint64_t{1} << 63)) return std::nullopt;
  return n;
}

// ---- file prefix --------------------------------------------------------------------------------

uint64_t read_u64le(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool looks_like_pytorch(const uint8_t* d, size_t size) {
  if (size >= 4 && std::memcmp(d, "PK\x03\x04", 4) == 0) return true;  // torch.save zip
  if (size < 2 || d[0] != 0x80 || d[1] < 1 || d[1] > 5) return false;  // pickle PROTO opcode
  // A real safetensors header length can also start with 0x80; such a file has its '{' in place.
  bool plausible = size >= 9 && read_u64le(d) <= size - 8 && d[8] == '{';
  return !plausible;
}

// Checks the 8-byte prefix; returns the header length.
uint64_t check_prefix(const std::string& label, const uint8_t* d, size_t size) {
  if (size == 0)
    fail(label, "file is empty (0 bytes); expected a safetensors file (8-byte header length, JSON "
                "header, tensor data)");
  if (looks_like_pytorch(d, size))
    fail(label, "this is a PyTorch pickle/zip checkpoint, not safetensors; convert it once with "
                "'diffsketch convert IN.pt OUT_DIR --preset NAME'");
  if (size < 8)
    fail(label, "file is only " + std::to_string(size) +
                    " bytes; expected at least the 8-byte header length of a safetensors file");
  uint64_t n = read_u64le(d);
  if (n > kMaxHeaderBytes)
    fail(label, "header length " + std::to_string(n) + " is over the 100 MB (" +
                    std::to_string(kMaxHeaderBytes) + " bytes) limit; not a safetensors file or corrupt");
  if (n > size - 8)
    fail(label, "header length " + std::to_string(n) + " runs past the end of the file (only " +
                    std::to_string(size - 8) + " bytes follow the length); truncated file?");
  return n;
}

// ---- header JSON --------------------------------------------------------------------------------

// Parser callback state: nlohmann keeps only one of two equal keys, so duplicates are caught here.
class KeyTracker {
 public:
  explicit KeyTracker(const std::string& label) : label_(label) {}

  bool operator()(int depth, json::parse_event_t event, const json& parsed) {
    using E = json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && depth >= kMaxSafetensorsDepth)
      fail(label_, "header JSON nests deeper than " + std::to_string(kMaxSafetensorsDepth) +
                       " levels; expected {name: {dtype, shape, data_offsets}}");
    if (event == E::object_start) open_.emplace_back();
    if (event == E::object_end && !open_.empty()) open_.pop_back();
    if (event == E::key && !open_.empty()) on_key(parsed.get_ref<const std::string&>());
    return true;
  }

 private:
  void on_key(const std::string& key) {
    bool top = open_.size() == 1;
    if (!open_.back().insert(key).second) {
      if (top && key == "__metadata__") fail(label_, "header has '__metadata__' twice; expected it once");
      if (top) fail(label_, "header lists tensor " + quote(key) + " twice (duplicate key); expected unique names");
      fail(label_, "header has duplicate key " + quote(key) + " inside " + quote(top_key_) +
                       "; expected each key once");
    }
    if (top) top_key_ = key;
  }

  const std::string& label_;
  std::vector<std::set<std::string>> open_;  // keys seen in each open object
  std::string top_key_;                      // the top-level entry being parsed
};

json parse_header(const std::string& label, const uint8_t* begin, size_t n) {
  auto first = reinterpret_cast<const char*>(begin);
  KeyTracker tracker(label);
  try {
    return json::parse(first, first + n, std::ref(tracker));
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    for (char& c : what)  // nlohmann quotes the raw bytes it stopped at
      if (auto u = static_cast<unsigned char>(c); u < 0x20 || u >= 0x7F) c = '?';
    fail(label, "header is not valid JSON (" + what + "); expected a JSON object of tensor entries");
  }
}

const char* type_of(const json& j) { return j.type_name(); }

// A JSON value for a message, cut short if long.
std::string brief(const json& j) {
  std::string s = j.dump();
  size_t n = cut_point(s, 80);
  return n < s.size() ? s.substr(0, n) + "..." : s;
}

std::map<std::string, std::string> parse_metadata(const std::string& label, const json& j) {
  std::map<std::string, std::string> out;
  if (j.is_null()) return out;
  if (!j.is_object())
    fail(label, std::string("'__metadata__' is ") + type_of(j) + "; expected an object of strings");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string())
      fail(label, "'__metadata__' value " + quote(k) + " is " + type_of(v) + "; expected a string");
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

// A non-negative integer that fits int64 (nlohmann stores non-negative literals as unsigned).
std::optional<uint64_t> as_count(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

const json& field(const std::string& label, const std::string& name, const json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end())
    fail(label, "tensor " + quote(name) + " has no '" + key + "'; expected dtype, shape and data_offsets");
  return *it;
}

DType parse_dtype(const std::string& label, const std::string& name, const json& j) {
  if (!j.is_string())
    fail(label, "tensor " + quote(name) + " has a dtype that is " + type_of(j) + "; expected a string like \"F32\"");
  const auto& s = j.get_ref<const std::string&>();
  auto t = dtype_from_name(s);
  if (!t) fail(label, "tensor " + quote(name) + " has unknown dtype " + quote(s) + "; expected one of " + known_dtype_list());
  return *t;
}

std::vector<int64_t> parse_shape(const std::string& label, const std::string& name, const json& j) {
  if (!j.is_array())
    fail(label, "tensor " + quote(name) + " has a shape that is " + type_of(j) + "; expected an array of dims");
  std::vector<int64_t> shape;
  for (size_t i = 0; i < j.size(); ++i) {
    auto d = as_count(j[i]);
    if (!d || *d > static_cast<uint64_t>(INT64_MAX))
      fail(label, "tensor " + quote(name) + " has shape dim " + std::to_string(i) + " = " + brief(j[i]) +
                      "; expected a non-negative integer");
    shape.push_back(static_cast<int64_t>(*d));
  }
  return shape;
}

std::pair<uint64_t, uint64_t> parse_offsets(const std::string& label, const std::string& name, const json& j) {
  std::optional<uint64_t> b, e;
  if (j.is_array() && j.size() == 2) b = as_count(j[0]), e = as_count(j[1]);
  if (!b || !e)
    fail(label, "tensor " + quote(name) + " has data_offsets " + brief(j) +
                    "; expected two non-negative integers [begin, end]");
  if (*b > *e)
    fail(label, "tensor " + quote(name) + " has reversed data_offsets " + offsets_str(*b, *e) +
                    "; expected begin <= end");
  return {*b, *e};
}

TensorInfo parse_tensor(const std::string& label, const std::string& name, const json& entry) {
  if (!entry.is_object())
    fail(label, "header entry " + quote(name) + " is " + type_of(entry) +
                    "; expected an object {dtype, shape, data_offsets}");
  TensorInfo t;
  t.name = name;
  t.dtype = parse_dtype(label, name, field(label, name, entry, "dtype"));
  t.shape = parse_shape(label, name, field(label, name, entry, "shape"));
  std::tie(t.begin, t.end) = parse_offsets(label, name, field(label, name, entry, "data_offsets"));
  auto need = byte_size(t.shape, dtype_size(t.dtype));
  if (!need)
    fail(label, "tensor " + quote(name) + " has dtype " + dtype_name(t.dtype) + " x shape " + shape_str(t.shape) +
                    " which overflows (more than 2^63 bytes); expected a realistic shape");
  if (*need != t.end - t.begin)
    fail(label, "tensor " + quote(name) + " has data_offsets " + offsets_str(t.begin, t.end) + " but dtype " +
                    dtype_name(t.dtype) + " x shape " + shape_str(t.shape) + " needs " +
                    std::to_string(*need) + " bytes");
  return t;
}

// Tensors, sorted by offsets, must tile [0, buffer) exactly: no overlap, no gap, no slack.
void check_layout(const std::string& label, std::vector<TensorInfo>& ts, uint64_t buffer) {
  std::sort(ts.begin(), ts.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : ts) {
    if (t.begin < cursor)
      fail(label, "tensor " + quote(t.name) + " data_offsets " + offsets_str(t.begin, t.end) + " overlap tensor " +
                      quote(prev->name) + " " + offsets_str(prev->begin, prev->end) +
                      "; expected each tensor to start where the previous one ends");
    if (t.begin > cursor)
      fail(label, "gap of " + std::to_string(t.begin - cursor) + " bytes in the data buffer before tensor " +
                      quote(t.name) + " " + offsets_str(t.begin, t.end) + ", " +
                      (prev ? "after tensor " + quote(prev->name) + " which ends at " + std::to_string(cursor)
                            : std::string("the first tensor")) +
                      "; expected tensors packed back to back from offset 0");
    if (t.end > buffer)
      fail(label, "tensor " + quote(t.name) + " data_offsets " + offsets_str(t.begin, t.end) +
                      " run past the end of the data buffer (" + std::to_string(buffer) +
                      " bytes); buffer too short, truncated file?");
    cursor = t.end;
    prev = &t;
  }
  if (cursor != buffer)
    fail(label, "data buffer has " + std::to_string(buffer) + " bytes but the tensors cover " +
                    std::to_string(cursor) + " (" + std::to_string(buffer - cursor) +
                    " trailing bytes); expected the tensors to cover the buffer exactly");
}

// ---- finiteness ---------------------------------------------------------------------------------

template <typename U>
U load_le(const uint8_t* p) {
  U v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Index of the first NaN/Inf element, if any: exponent bits all ones (E4M3 has only NaN, S1111111).
std::optional<size_t> first_non_finite(DType t, std::span<const uint8_t> b) {
  auto scan = [&](size_t width, auto bad) -> std::optional<size_t> {
    for (size_t i = 0, n = b.size() / width; i < n; ++i)
      if (bad(b.data() + i * width)) return i;
    return std::nullopt;
  };
  switch (t) {
    case DType::F16: return scan(2, [](const uint8_t* p) { return (load_le<uint16_t>(p) & 0x7C00) == 0x7C00; });
    case DType::BF16: return scan(2, [](const uint8_t* p) { return (load_le<uint16_t>(p) & 0x7F80) == 0x7F80; });
    case DType::F32: return scan(4, [](const uint8_t* p) { return !std::isfinite(load_le<float>(p)); });
    case DType::F64: return scan(8, [](const uint8_t* p) { return !std::isfinite(load_le<double>(p)); });
    case DType::F8_E4M3: return scan(1, [](const uint8_t* p) { return (*p & 0x7F) == 0x7F; });
    case DType::F8_E5M2: return scan(1, [](const uint8_t* p) { return (*p & 0x7C) == 0x7C; });
    default: return std::nullopt;
  }
}

// ---- writing ------------------------------------------------------------------------------------

[[noreturn]] void io_fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& path, const void* data, size_t n) {
  auto p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) io_fail(path, "cannot write");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string json_string(const std::string& s, const std::string& path) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    throw Error(path + ": cannot write " + quote(s) + ": not valid UTF-8");
  }
}

std::vector<const TensorView*> checked_views(const std::string& path, const std::vector<TensorView>& tensors) {
  std::vector<const TensorView*> views;
  for (const auto& t : tensors) views.push_back(&t);
  std::sort(views.begin(), views.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (size_t i = 0; i < views.size(); ++i) {
    const TensorView& v = *views[i];
    auto where = path + ": cannot write tensor " + quote(v.name) + ": ";
    if (v.name == "__metadata__") throw Error(where + "the name is reserved");
    if (i > 0 && views[i - 1]->name == v.name) throw Error(where + "the name appears twice");
    if (!row_of(v.dtype)) throw Error(where + "invalid dtype");
    auto need = byte_size(v.shape, dtype_size(v.dtype));
    if (!need || *need != v.nbytes)
      throw Error(where + "dtype " + dtype_name(v.dtype) + " x shape " + shape_str(v.shape) + " does not match " +
                  std::to_string(v.nbytes) + " bytes");
    if (v.nbytes > 0 && !v.data) throw Error(where + "no data");
  }
  return views;
}

std::string header_json(const std::string& path, const std::vector<const TensorView*>& views,
                         const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      h += (h.back() == '{' ? "" : ",") + json_string(k, path) + ":" + json_string(v, path);
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const auto* v : views) {
    h += (h.back() == '{' ? "" : ",") + json_string(v->name, path) + ":{\"dtype\":\"" + dtype_name(v->dtype) +
         "\",\"shape\":" + json(v->shape).dump() + ",\"data_offsets\":[" + std::to_string(offset) + "," +
         std::to_string(offset + v->nbytes) + "]}";
    offset += v->nbytes;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the rename itself has happened
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

// ---- dtypes -------------------------------------------------------------------------------------

size_t dtype_size(DType t) {
  auto r = row_of(t);
  return r ? r->size : 0;
}

const char* dtype_name(DType t) {
  auto r = row_of(t);
  return r ? r->name : "?";
}

std::optional<DType> dtype_from_name(std::string_view s) {
  for (const auto& r : kDTypes)
    if (s == r.name) return r.dtype;
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- File ---------------------------------------------------------------------------------------

// The file is read into memory rather than mapped: a file rewritten or truncated by another
// program while it is in use then gives an error here, never a SIGBUS later. Every caller copies
// the tensors out anyway, so the cost is the file's size for as long as the File lives.
File File::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block us
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno) + "; expected a safetensors file");
  struct stat before {};
  if (::fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)) {
    ::close(fd);
    throw InputError(path + ": not a regular file; expected a safetensors file");
  }
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(static_cast<size_t>(before.st_size));
  } catch (const std::bad_alloc&) {
    ::close(fd);
    throw InputError(path + ": " + std::to_string(before.st_size) + " bytes do not fit in memory");
  }
  size_t got = 0;
  int err = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : 0;
      break;
    }
    got += static_cast<size_t>(n);
  }
  struct stat after {};
  const bool stat_ok = ::fstat(fd, &after) == 0;
  ::close(fd);
  if (err != 0) throw InputError(path + ": cannot read: " + std::strerror(err));
  if (got < bytes.size() || !stat_ok || after.st_size != before.st_size ||
      after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
    throw InputError(path + ": the file changed while it was being read (is another program writing it?); "
                     "try again once it is complete");
  return from_bytes(std::move(bytes), path);
}

File File::from_bytes(std::vector<uint8_t> bytes, std::string label) {
  File f;
  f.label_ = std::move(label);
  f.owned_ = std::move(bytes);
  f.data_ = f.owned_.data();
  f.size_ = f.owned_.size();
  f.load();
  return f;
}

void File::load() {
  uint64_t n = check_prefix(label_, data_, size_);
  json header = parse_header(label_, data_ + 8, n);
  if (!header.is_object())
    fail(label_, std::string("header is a JSON ") + type_of(header) + "; expected an object of tensor entries");
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__")
      metadata = parse_metadata(label_, value);
    else
      tensors.push_back(parse_tensor(label_, key, value));
  }
  buffer_start_ = 8 + n;
  check_layout(label_, tensors, size_ - buffer_start_);
  for (size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);
  tensors_ = std::move(tensors);
  metadata_ = std::move(metadata);
}

File::~File() = default;

File::File(File&& o) noexcept { *this = std::move(o); }

File& File::operator=(File&& o) noexcept {
  if (this == &o) return *this;
  label_ = std::move(o.label_);
  owned_ = std::move(o.owned_);  // moving keeps the heap buffer, so data_ stays valid
  data_ = std::exchange(o.data_, nullptr);
  size_ = std::exchange(o.size_, 0);
  buffer_start_ = std::exchange(o.buffer_start_, 0);
  tensors_ = std::move(o.tensors_);
  index_ = std::move(o.index_);
  metadata_ = std::move(o.metadata_);
  return *this;
}

const TensorInfo* File::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::at(std::string_view name) const {
  if (auto t = find(name)) return *t;
  fail(label_, "no tensor " + quote(name));
}

std::span<const uint8_t> File::bytes(const TensorInfo& t) const {
  if (t.begin > t.end || t.end > size_ - buffer_start_)
    throw Error(label_ + ": tensor " + quote(t.name) + " offsets " + offsets_str(t.begin, t.end) +
                " are outside this file's data buffer");
  return {data_ + buffer_start_ + t.begin, static_cast<size_t>(t.end - t.begin)};
}

void File::check_finite(const TensorInfo& t) const {
  if (auto i = first_non_finite(t.dtype, bytes(t)))
    fail(label_, "tensor " + quote(t.name) + " contains NaN or Inf at element " + std::to_string(*i));
}

// ---- write --------------------------------------------------------------------------------------

void write(const std::string& path, const std::vector<TensorView>& tensors,
           const std::map<std::string, std::string>& metadata) {
  auto views = checked_views(path, tensors);
  std::string header = header_json(path, views, metadata);

  std::filesystem::path target(path);
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) io_fail(path, "cannot create a temporary file next to it");
  try {
    uint64_t n = header.size();
    uint8_t len[8];
    std::memcpy(len, &n, 8);
    write_all(fd, path, len, 8);
    write_all(fd, path, header.data(), header.size());
    for (const auto* v : views) write_all(fd, path, v->data, v->nbytes);
    if (::fchmod(fd, 0644) != 0) io_fail(path, "cannot set permissions");
    if (::fsync(fd) != 0) io_fail(path, "cannot flush to disk");
    if (::close(fd) != 0) {
      fd = -1;
      io_fail(path, "cannot close");
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) io_fail(path, "cannot rename the temporary file into place");
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(target.parent_path());
}

}  // namespace dsk::st
