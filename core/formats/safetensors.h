// The safetensors format, torch-free: a strict validating reader (of a file read into memory, or of bytes) and
// an atomic writer. Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
//   {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
// then the data buffer; offsets are relative to the buffer start; row-major little-endian data.
// Every problem with a file is reported as one dsk::InputError that starts with the file's label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/limits.h"

namespace dsk::st {

enum class DType { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };

inline constexpr DType kAllDTypes[] = {
    DType::BOOL, DType::U8,   DType::I8,  DType::I16, DType::U16,     DType::I32,     DType::U32, DType::I64,
    DType::U64,  DType::F16, DType::BF16, DType::F32, DType::F64, DType::F8_E4M3, DType::F8_E5M2};

size_t dtype_size(DType);
const char* dtype_name(DType);  // "F32", ...
std::optional<DType> dtype_from_name(std::string_view);

// The largest header a reader accepts (same limit as the reference implementation).
inline constexpr uint64_t kMaxHeaderBytes = kMaxSafetensorsHeaderBytes;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
  int64_t numel() const;
};

// A validated, read-only safetensors file, held in memory. Move-only.
class File {
 public:
  // Reads the whole file (not a mapping: a file changed underneath is an error, not a SIGBUS);
  // throws dsk::InputError naming the path.
  static File open(const std::string& path);
  static File from_bytes(std::vector<uint8_t> bytes, std::string label);  // label used in messages

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& label() const { return label_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in order of data offsets
  const TensorInfo* find(std::string_view name) const;                 // nullptr if absent
  const TensorInfo& at(std::string_view name) const;  // throws InputError "<file>: no tensor 'x'"
  std::span<const uint8_t> bytes(const TensorInfo&) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // F16/BF16/F32/F64/F8: throws InputError "<file>: tensor 'x' contains NaN or Inf at element i".
  void check_finite(const TensorInfo&) const;

 private:
  File() = default;
  void load();  // validates data_/size_ and fills tensors_, index_, metadata_

  std::string label_;
  std::vector<uint8_t> owned_;  // the file's bytes
  const uint8_t* data_ = nullptr;  // the whole file
  size_t size_ = 0;
  size_t buffer_start_ = 0;  // 8 + header length
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes atomically (temp file in the same folder + fsync + rename); tensors sorted by name; header
// padded with spaces to a multiple of 8. Throws dsk::Error on I/O failure or an inconsistent view.
void write(const std::string& path, const std::vector<TensorView>& tensors,
           const std::map<std::string, std::string>& metadata = {});

}  // namespace dsk::st
