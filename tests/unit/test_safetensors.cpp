// The torch-free safetensors reader/writer: round trips, the real fixture, and every bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <sys/stat.h>
#include <unistd.h>

#include "core/base/error.h"
#include "core/formats/safetensors.h"

namespace fs = std::filesystem;
using namespace dsk::st;
using Bytes = std::vector<uint8_t>;

namespace {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("dsk_st_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A raw file: the header length, the header text as given, then `buffer` zero bytes.
Bytes raw(const std::string& header, size_t buffer = 0) {
  Bytes b(8 + header.size() + buffer, 0);
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

// Loading `bytes` must throw exactly a std::invalid_argument whose message contains every word.
void expect_bad(const Bytes& bytes, std::initializer_list<std::string> words) {
  try {
    File::from_bytes(bytes, "bad.safetensors");
    FAIL() << "expected std::invalid_argument containing '" << *words.begin() << "'";
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.safetensors: ", 0), 0u) << msg;
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

// One tensor entry's JSON.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31);
  return b;
}

}  // namespace

// ---- dtypes and round trips ---------------------------------------------------------------------

TEST(SafetensorsDType, NamesSizesRoundTrip) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
    EXPECT_GT(dtype_size(t), 0u);
  }
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_FALSE(dtype_from_name("F31").has_value());
  EXPECT_FALSE(dtype_from_name("f32").has_value());
}

TEST(SafetensorsRoundTrip, EveryDType) {
  TempDir dir;
  std::vector<Bytes> data;
  std::vector<TensorView> views;
  uint8_t seed = 1;
  for (DType t : kAllDTypes) {
    std::vector<int64_t> shape{2, 3};
    data.push_back(pattern(6 * dtype_size(t), seed++));
    if (t == DType::BOOL) data.back() = {0, 1, 1, 0, 1, 0};
    views.push_back({std::string("t_") + dtype_name(t), t, shape, data.back().data(), data.back().size()});
  }
  std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "ünïcode \"quoted\""}};
  write(dir / "all.safetensors", views, meta);

  File f = File::open(dir / "all.safetensors");
  EXPECT_EQ(f.label(), dir / "all.safetensors");
  ASSERT_EQ(f.tensors().size(), views.size());
  EXPECT_EQ(f.metadata(), meta);
  for (const auto& v : views) {
    const TensorInfo& t = f.at(v.name);
    EXPECT_EQ(t.dtype, v.dtype) << v.name;
    EXPECT_EQ(t.shape, v.shape) << v.name;
    EXPECT_EQ(t.numel(), 6);
    auto b = f.bytes(t);
    ASSERT_EQ(b.size(), v.nbytes) << v.name;
    EXPECT_EQ(std::memcmp(b.data(), v.data, v.nbytes), 0) << v.name;
  }
}

TEST(SafetensorsRoundTrip, ScalarAndZeroSize) {
  TempDir dir;
  float scalar = 3.5f;
  std::vector<TensorView> views{
      {"scalar", DType::F32, {}, &scalar, 4},
      {"empty_rows", DType::F16, {0, 3}, nullptr, 0},
      {"empty_cols", DType::I64, {5, 0}, nullptr, 0},
      {"huge_but_empty", DType::F64, {int64_t{1} << 62, int64_t{1} << 62, 0}, nullptr, 0},
  };
  write(dir / "z.safetensors", views);
  File f = File::open(dir / "z.safetensors");
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_TRUE(f.metadata().empty());
  const auto& s = f.at("scalar");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  float back;
  std::memcpy(&back, f.bytes(s).data(), 4);
  EXPECT_EQ(back, 3.5f);
  for (const char* name : {"empty_rows", "empty_cols", "huge_but_empty"}) {
    EXPECT_EQ(f.at(name).numel(), 0) << name;
    EXPECT_TRUE(f.bytes(f.at(name)).empty()) << name;
  }
  EXPECT_EQ(f.at("huge_but_empty").shape.size(), 3u);
}

TEST(SafetensorsRoundTrip, SortedByNameAndPadded) {
  TempDir dir;
  Bytes a = pattern(4, 1), b = pattern(8, 2), c = pattern(2, 3);
  write(dir / "s.safetensors", {{"c", DType::U8, {2}, c.data(), 2},
                                {"a", DType::U8, {4}, a.data(), 4},
                                {"b", DType::U16, {4}, b.data(), 8}});
  Bytes file = read_file(dir / "s.safetensors");
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  File f = File::open(dir / "s.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_EQ(f.tensors()[2].name, "c");
  EXPECT_EQ(f.at("b").begin, 4u);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_NE(f.find("c"), nullptr);
  File moved = std::move(f);  // move keeps the bytes valid
  EXPECT_EQ(moved.bytes(moved.at("c"))[1], c[1]);
}

TEST(SafetensorsRoundTrip, FromBytesMatchesOpen) {
  TempDir dir;
  int32_t v[3] = {1, -2, 3};
  write(dir / "m.safetensors", {{"v", DType::I32, {3}, v, sizeof v}}, {{"k", "v"}});
  File f = File::from_bytes(read_file(dir / "m.safetensors"), "mem");
  EXPECT_EQ(f.label(), "mem");
  EXPECT_EQ(std::memcmp(f.bytes(f.at("v")).data(), v, sizeof v), 0);
  EXPECT_EQ(f.metadata().at("k"), "v");
}

TEST(SafetensorsRoundTrip, AcceptsPaddedHeaderAndHeaderLength128) {
  // A header of exactly 128 bytes starts the file with 0x80 like a pickle; it must still load.
  std::string h = "{" + entry("x", "F32", "[1]", "[0,4]") + "}";
  h.append(128 - h.size(), ' ');
  Bytes b = raw(h, 4);
  ASSERT_EQ(b[0], 0x80);
  File f = File::from_bytes(b, "ok");
  EXPECT_EQ(f.at("x").numel(), 1);
}

TEST(SafetensorsRoundTrip, EmptyFileOfTensors) {
  TempDir dir;
  write(dir / "none.safetensors", {});
  EXPECT_TRUE(File::open(dir / "none.safetensors").tensors().empty());
}

// ---- writer -------------------------------------------------------------------------------------

TEST(SafetensorsWrite, AtomicLeavesNoTempFile) {
  TempDir dir;
  float x[2] = {1, 2};
  write(dir / "w.safetensors", {{"x", DType::F32, {2}, x, 8}});
  write(dir / "w.safetensors", {{"x", DType::F32, {1}, x, 4}});  // overwrite in place
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"w.safetensors"});
  EXPECT_EQ(File::open(dir / "w.safetensors").at("x").numel(), 1);
}

TEST(SafetensorsWrite, RejectsInconsistentViews) {
  TempDir dir;
  float x[4] = {};
  EXPECT_THROW(write(dir / "a", {{"x", DType::F32, {3}, x, 16}}), dsk::Error);
  EXPECT_THROW(write(dir / "b", {{"x", DType::F32, {4}, nullptr, 16}}), dsk::Error);
  EXPECT_THROW(write(dir / "c", {{"x", DType::F32, {-1}, x, 4}}), dsk::Error);
  EXPECT_THROW(write(dir / "d", {{"x", DType::F32, {1}, x, 4}, {"x", DType::F32, {1}, x, 4}}), dsk::Error);
  EXPECT_THROW(write(dir / "e", {{"__metadata__", DType::F32, {1}, x, 4}}), dsk::Error);
  EXPECT_THROW(write(dir / "f", {{"bad\xff", DType::F32, {1}, x, 4}}), dsk::Error);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(SafetensorsWrite, MissingFolderIsAnError) {
  TempDir dir;
  float x = 0;
  EXPECT_THROW(write(dir / "no/such/dir/x.safetensors", {{"x", DType::F32, {}, &x, 4}}), dsk::Error);
}

// ---- the real fixture ---------------------------------------------------------------------------

TEST(SafetensorsFixture, AdmSmallUnet) {
  std::string path = DSK_TEST_DATA "/conformance/adm-small/unet.safetensors";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is not there";
  File f = File::open(path);
  EXPECT_EQ(f.tensors().size(), 307u);
  const TensorInfo& t = f.at("time_embed.0.weight");
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(f.bytes(t).size(), 128u * 32u * 4u);
  for (const auto& ti : f.tensors()) f.check_finite(ti);
}

TEST(SafetensorsFixture, AdmSmallPyTorchCheckpointIsRecognised) {
  std::string path = DSK_TEST_DATA "/conformance/adm-small/classifier.pt";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is not there";
  try {
    File::open(path);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.pt: this is a PyTorch pickle/zip checkpoint"), std::string::npos)
        << e.what();
  }
}

// ---- lookups and finiteness ---------------------------------------------------------------------

TEST(SafetensorsFile, AtNamesTheMissingTensor) {
  File f = File::from_bytes(raw("{}"), "m.safetensors");
  try {
    f.at("missing.weight");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "m.safetensors: no tensor 'missing.weight'");
  }
}

TEST(SafetensorsFile, OpenMissingFileNamesThePath) {
  TempDir dir;
  try {
    File::open(dir / "absent.safetensors");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("absent.safetensors: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_THROW(File::open(dir.path().string()), std::invalid_argument);  // a directory
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_THROW(File::open(dir / "fifo"), std::invalid_argument);  // and does not block
}

// Another program truncating or rewriting the file in place while it is open: reading the
// tensors afterwards must give the bytes read at open, never a SIGBUS (a mapped file gave one).
TEST(SafetensorsFile, AFileTruncatedWhileOpenIsNoSignal) {
  TempDir dir;
  const Bytes w = pattern(1 << 20, 7);
  write(dir / "w.safetensors", {{"w", DType::U8, {int64_t(w.size())}, w.data(), w.size()}});
  File f = File::open(dir / "w.safetensors");
  ASSERT_EQ(::truncate((dir / "w.safetensors").c_str(), 0), 0);
  write_file(dir / "w.safetensors", raw("{}"));
  const auto bytes = f.bytes(f.at("w"));
  ASSERT_EQ(bytes.size(), w.size());
  EXPECT_EQ(std::memcmp(bytes.data(), w.data(), w.size()), 0);
  EXPECT_NO_THROW(f.check_finite(f.at("w")));
}

namespace {
File one_tensor(DType t, const Bytes& data, int64_t n) {
  std::string h = "{" + entry("w", dtype_name(t), "[" + std::to_string(n) + "]",
                              "[0," + std::to_string(data.size()) + "]") + "}";
  Bytes b = raw(h, data.size());
  std::memcpy(b.data() + 8 + h.size(), data.data(), data.size());
  return File::from_bytes(b, "f.safetensors");
}

template <typename T>
Bytes as_bytes(std::vector<T> v) {
  Bytes b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void expect_non_finite_at(const File& f, const std::string& index) {
  try {
    f.check_finite(f.at("w"));
    FAIL() << "expected NaN/Inf to be found";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "f.safetensors: tensor 'w' contains NaN or Inf at element " + index);
  }
}
}  // namespace

TEST(SafetensorsFinite, F32NaNAndInf) {
  float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  expect_non_finite_at(one_tensor(DType::F32, as_bytes<float>({1, 2, nan, 4}), 4), "2");
  expect_non_finite_at(one_tensor(DType::F32, as_bytes<float>({1, -inf}), 2), "1");
  File ok = one_tensor(DType::F32, as_bytes<float>({1, 3.4e38f, -0.0f}), 3);
  EXPECT_NO_THROW(ok.check_finite(ok.at("w")));
}

TEST(SafetensorsFinite, F16BF16F64AndIntegers) {
  expect_non_finite_at(one_tensor(DType::F16, as_bytes<uint16_t>({0x3C00, 0x7C00}), 2), "1");      // +inf
  expect_non_finite_at(one_tensor(DType::BF16, as_bytes<uint16_t>({0x7FC0}), 1), "0");             // nan
  expect_non_finite_at(one_tensor(DType::F64, as_bytes<double>({0, 1, 2, NAN}), 4), "3");
  expect_non_finite_at(one_tensor(DType::F8_E4M3, Bytes{0x00, 0xFF}, 2), "1");
  File f16 = one_tensor(DType::F16, as_bytes<uint16_t>({0x7BFF, 0xFBFF}), 2);  // +-65504
  EXPECT_NO_THROW(f16.check_finite(f16.at("w")));
  File ints = one_tensor(DType::I32, as_bytes<int32_t>({-1, 0x7FC00000}), 2);  // bits of NaN, but ints
  EXPECT_NO_THROW(ints.check_finite(ints.at("w")));
}

// ---- bad inputs: each throws one InputError naming the file and the problem ---------------------

TEST(SafetensorsBad, EmptyFile) {
  TempDir dir;
  write_file(dir / "empty.safetensors", {});
  try {
    File::open(dir / "empty.safetensors");
    FAIL();
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("empty.safetensors: file is empty"), std::string::npos) << msg;
  }
  expect_bad({}, {"empty"});
}

TEST(SafetensorsBad, ShorterThan8Bytes) { expect_bad({1, 0, 0}, {"only 3 bytes", "8-byte"}); }

TEST(SafetensorsBad, HeaderLengthPastEnd) {
  Bytes b = raw("{}");
  b[0] = 200;
  expect_bad(b, {"header length 200", "past the end"});
}

TEST(SafetensorsBad, HeaderOver100MB) {
  Bytes b = raw("{}");
  uint64_t n = 100'000'001;
  std::memcpy(b.data(), &n, 8);
  expect_bad(b, {"header length 100000001", "100 MB"});
}

TEST(SafetensorsBad, NotJson) { expect_bad(raw("{\"a\": "), {"not valid JSON"}); }
TEST(SafetensorsBad, TrailingGarbageAfterJson) { expect_bad(raw("{} x"), {"not valid JSON"}); }
TEST(SafetensorsBad, InvalidUtf8) { expect_bad(raw("{\"\xff\":1}"), {"not valid JSON"}); }
TEST(SafetensorsBad, NotAnObject) { expect_bad(raw("[1, 2]"), {"header is a JSON array", "expected an object"}); }
TEST(SafetensorsBad, EntryNotObject) { expect_bad(raw("{\"w\": 5}"), {"'w'", "number", "expected an object"}); }

TEST(SafetensorsBad, MissingDtype) {
  expect_bad(raw("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), {"'w'", "no 'dtype'"});
}
TEST(SafetensorsBad, MissingShape) {
  expect_bad(raw("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), {"'w'", "no 'shape'"});
}
TEST(SafetensorsBad, MissingOffsets) {
  expect_bad(raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), {"'w'", "no 'data_offsets'"});
}
TEST(SafetensorsBad, DtypeNotString) {
  expect_bad(raw("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), {"'w'", "dtype", "number"});
}
TEST(SafetensorsBad, ShapeNotArray) {
  expect_bad(raw("{" + entry("w", "F32", "4", "[0,4]") + "}", 4), {"'w'", "shape", "expected an array"});
}
TEST(SafetensorsBad, NegativeDim) {
  expect_bad(raw("{" + entry("w", "F32", "[2,-1]", "[0,4]") + "}", 4), {"'w'", "dim 1 = -1", "non-negative integer"});
}
TEST(SafetensorsBad, NonIntegerDim) {
  expect_bad(raw("{" + entry("w", "F32", "[1.5]", "[0,4]") + "}", 4), {"'w'", "dim 0 = 1.5", "non-negative integer"});
}
TEST(SafetensorsBad, DimTooLargeForInt64) {
  expect_bad(raw("{" + entry("w", "U8", "[9223372036854775808]", "[0,4]") + "}", 4), {"'w'", "dim 0"});
}
TEST(SafetensorsBad, OffsetsWrongCount) {
  expect_bad(raw("{" + entry("w", "F32", "[1]", "[0,4,8]") + "}", 4), {"'w'", "data_offsets [0,4,8]", "two non-negative"});
}
TEST(SafetensorsBad, OffsetsNegative) {
  expect_bad(raw("{" + entry("w", "F32", "[1]", "[-4,0]") + "}", 4), {"'w'", "data_offsets", "two non-negative"});
}
TEST(SafetensorsBad, OffsetsNotIntegers) {
  expect_bad(raw("{" + entry("w", "F32", "[1]", "[0,\"4\"]") + "}", 4), {"'w'", "data_offsets", "two non-negative"});
}

TEST(SafetensorsBad, DuplicateTensorName) {
  std::string h = "{" + entry("w", "F32", "[1]", "[0,4]") + "," + entry("w", "F32", "[1]", "[4,8]") + "}";
  expect_bad(raw(h, 8), {"tensor 'w' twice", "duplicate"});
}
TEST(SafetensorsBad, DuplicateFieldInEntry) {
  expect_bad(raw("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
             {"duplicate key 'dtype'", "inside 'w'"});
}
TEST(SafetensorsBad, DuplicateMetadataKey) {
  expect_bad(raw("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"), {"duplicate key 'k'", "inside '__metadata__'"});
}
TEST(SafetensorsBad, DuplicateMetadata) {
  expect_bad(raw("{\"__metadata__\":{},\"__metadata__\":{}}"), {"'__metadata__' twice"});
}
TEST(SafetensorsBad, SameKeyInDifferentObjectsIsFine) {
  std::string h = "{" + entry("a", "U8", "[1]", "[0,1]") + "," + entry("b", "U8", "[1]", "[1,2]") + "}";
  EXPECT_EQ(File::from_bytes(raw(h, 2), "ok").tensors().size(), 2u);
}

TEST(SafetensorsBad, UnknownDType) {
  expect_bad(raw("{" + entry("w", "F31", "[1]", "[0,4]") + "}", 4),
             {"'w'", "unknown dtype 'F31'", "expected one of", "BF16", "F32", "BOOL"});
}
TEST(SafetensorsBad, ReversedOffsets) {
  expect_bad(raw("{" + entry("w", "U8", "[0]", "[4,0]") + "}", 4), {"'w'", "reversed data_offsets [4, 0]"});
}
TEST(SafetensorsBad, SizeOverflow) {
  expect_bad(raw("{" + entry("w", "F64", "[4294967296,4294967296]", "[0,8]") + "}", 8), {"'w'", "overflows", "2^63"});
  expect_bad(raw("{" + entry("w", "U8", "[9223372036854775807,2]", "[0,8]") + "}", 8), {"'w'", "overflows"});
}
TEST(SafetensorsBad, SizeMismatch) {
  expect_bad(raw("{" + entry("a.weight", "F32", "[2,2]", "[0,12]") + "}", 12),
             {"tensor 'a.weight' has data_offsets [0, 12] but dtype F32 x shape [2,2] needs 16 bytes"});
}
TEST(SafetensorsBad, Overlap) {
  std::string h = "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}";
  expect_bad(raw(h, 12), {"'b'", "overlap tensor 'a'"});
}
TEST(SafetensorsBad, ZeroSizeInsideAnotherTensor) {
  std::string h = "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("z", "F32", "[0]", "[4,4]") + "}";
  expect_bad(raw(h, 8), {"'z'", "overlap"});
}
TEST(SafetensorsBad, Gap) {
  std::string h = "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[8,12]") + "}";
  expect_bad(raw(h, 12), {"gap of 4 bytes", "'b'", "after tensor 'a'"});
}
TEST(SafetensorsBad, GapAtStart) {
  expect_bad(raw("{" + entry("a", "F32", "[1]", "[4,8]") + "}", 8), {"gap of 4 bytes", "first tensor"});
}
TEST(SafetensorsBad, TrailingBytes) {
  expect_bad(raw("{" + entry("a", "F32", "[1]", "[0,4]") + "}", 7), {"7 bytes", "cover 4", "3 trailing"});
}
TEST(SafetensorsBad, BufferTooShort) {
  expect_bad(raw("{" + entry("a", "F32", "[4]", "[0,16]") + "}", 10), {"'a'", "past the end of the data buffer", "too short"});
}
TEST(SafetensorsBad, MetadataValueNotString) {
  expect_bad(raw("{\"__metadata__\":{\"epoch\":3}}"), {"'__metadata__' value 'epoch'", "expected a string"});
}
TEST(SafetensorsBad, MetadataNotObject) {
  expect_bad(raw("{\"__metadata__\":[\"a\"]}"), {"'__metadata__' is array", "expected an object"});
}
TEST(SafetensorsBad, DeepNesting) {
  expect_bad(raw("{\"w\":" + std::string(100, '[') + std::string(100, ']') + "}"), {"nests deeper"});
}

TEST(SafetensorsBad, PyTorchZip) {
  Bytes b{'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0};
  expect_bad(b, {"PyTorch pickle/zip checkpoint, not safetensors",
                 "convert it once with 'diffsketch convert IN.pt OUT_DIR --preset NAME'"});
}
TEST(SafetensorsBad, PyTorchPickle) {
  Bytes b{0x80, 0x02, '}', 'q', 0x00, '.'};  // pickle.dumps({}, protocol=2)
  expect_bad(b, {"PyTorch pickle/zip checkpoint"});
  Bytes legacy{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  expect_bad(legacy, {"PyTorch pickle/zip checkpoint"});
}
TEST(SafetensorsBad, PyTorchFileViaOpenNamesPath) {
  TempDir dir;
  write_file(dir / "model.pt", {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});
  try {
    File::open(dir / "model.pt");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), dir / "model.pt" +
                                         ": this is a PyTorch pickle/zip checkpoint, not safetensors; convert it "
                                         "once with 'diffsketch convert IN.pt OUT_DIR --preset NAME'");
  }
}

TEST(SafetensorsBad, EveryTruncationOfAValidFileIsRejected) {
  TempDir dir;
  float x[3] = {1, 2, 3};
  write(dir / "v.safetensors", {{"x", DType::F32, {3}, x, 12}}, {{"a", "b"}});
  Bytes good = read_file(dir / "v.safetensors");
  for (size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(File::from_bytes(cut, "cut"), std::invalid_argument) << n;
  }
}
