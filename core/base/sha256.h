// SHA-256 (FIPS 180-4) for model manifests: the digest of a byte stream and of a file, as
// lower-case hex (what sha256sum prints). Torch-free, so the plug-in side could use it too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsk {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // The digest as 64 hex digits; the object is spent afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes
};

// The hex SHA-256 of a file's bytes; `size` (when given) receives how many bytes were read.
// Throws dsk::Error naming the file when it cannot be opened or read.
std::string sha256_file(const std::string& path, uint64_t* size = nullptr);

}  // namespace dsk
