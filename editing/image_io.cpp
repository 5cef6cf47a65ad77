#include "editing/image_io.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "editing/error.h"

namespace dsk::edit {
namespace fs = std::filesystem;

namespace {

std::string describe_type(const cv::Mat& m) {
  static const char* names[] = {"8U", "8S", "16U", "16S", "32S", "32F", "64F", "16F"};
  return std::string(names[m.depth()]) + "C" + std::to_string(m.channels());
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint32_t be16(const unsigned char* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }
std::int32_t le32(const unsigned char* p) {
  return static_cast<std::int32_t>(std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
                                   (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24));
}

std::uint32_t le16(const unsigned char* p) { return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8); }

cv::Size clamped_size(std::int64_t w, std::int64_t h) {
  return cv::Size(static_cast<int>(std::clamp<std::int64_t>(w, 0, INT32_MAX)),
                  static_cast<int>(std::clamp<std::int64_t>(h, 0, INT32_MAX)));
}

// Width and height from the header of a PNG, JPEG or BMP file.
std::optional<cv::Size> probe_png_jpeg_bmp(const std::vector<unsigned char>& d) {
  const std::size_t n = d.size();
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 24 && std::equal(png_sig, png_sig + 8, d.begin()) && d[12] == 'I' && d[13] == 'H' &&
      d[14] == 'D' && d[15] == 'R') {
    return cv::Size(static_cast<int>(std::min<std::uint32_t>(be32(&d[16]), INT32_MAX)),
                    static_cast<int>(std::min<std::uint32_t>(be32(&d[20]), INT32_MAX)));
  }
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
    if (le32(&d[14]) == 12)  // OS/2 1.x BITMAPCOREHEADER: 16-bit sides
      return cv::Size(static_cast<int>(le16(&d[18])), static_cast<int>(le16(&d[20])));
    const std::int64_t w = le32(&d[18]), h = le32(&d[22]);
    return cv::Size(static_cast<int>(std::min<std::int64_t>(std::abs(w), INT32_MAX)),
                    static_cast<int>(std::min<std::int64_t>(std::abs(h), INT32_MAX)));
  }
  if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
    std::size_t i = 2;
    while (i + 1 < n) {
      if (d[i] != 0xFF) return std::nullopt;  // not at a marker: give up, let the decoder decide
      while (i < n && d[i] == 0xFF) ++i;    // fill bytes
      if (i >= n) break;
      const unsigned char m = d[i++];
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
      if (m == 0xD9 || m == 0xDA) break;  // end of image / start of scan before any frame header
      if (i + 2 > n) break;
      const std::size_t len = be16(&d[i]);
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        if (i + 7 > n) break;
        return cv::Size(static_cast<int>(be16(&d[i + 5])), static_cast<int>(be16(&d[i + 3])));
      }
      if (len < 2) return std::nullopt;
      i += len;
    }
  }
  return std::nullopt;
}


// TIFF: the first image file directory's ImageWidth (256) and ImageLength (257), SHORT or LONG
// (OpenCV reads the first page).
std::optional<cv::Size> probe_tiff(const std::vector<unsigned char>& d) {
  const std::size_t n = d.size();
  if (n < 8) return std::nullopt;
  const bool le = d[0] == 'I' && d[1] == 'I' && d[2] == 42 && d[3] == 0;
  const bool be = d[0] == 'M' && d[1] == 'M' && d[2] == 0 && d[3] == 42;
  if (!le && !be) return std::nullopt;
  auto u16 = [&](std::size_t i) { return le ? le16(&d[i]) : be16(&d[i]); };
  auto u32 = [&](std::size_t i) { return le ? static_cast<std::uint32_t>(le32(&d[i])) : be32(&d[i]); };
  const std::size_t ifd = u32(4);
  if (ifd + 2 > n) return std::nullopt;
  const std::size_t count = u16(ifd);
  std::int64_t w = -1, h = -1;
  for (std::size_t k = 0; k < count && ifd + 2 + 12 * (k + 1) <= n; ++k) {
    const std::size_t e = ifd + 2 + 12 * k;
    const std::uint32_t tag = u16(e), type = u16(e + 2);
    const std::int64_t v = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : -1;
    if (tag == 256) w = v;
    if (tag == 257) h = v;
  }
  if (w < 0 || h < 0) return std::nullopt;
  return clamped_size(w, h);
}

// WebP: RIFF....WEBP and the first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended).
std::optional<cv::Size> probe_webp(const std::vector<unsigned char>& d) {
  if (d.size() < 30 || std::memcmp(d.data(), "RIFF", 4) != 0 || std::memcmp(&d[8], "WEBP", 4) != 0)
    return std::nullopt;
  const unsigned char* c = &d[12];
  if (std::memcmp(c, "VP8 ", 4) == 0) return clamped_size(le16(&d[26]) & 0x3FFF, le16(&d[28]) & 0x3FFF);
  if (std::memcmp(c, "VP8L", 4) == 0) {
    const std::uint32_t b = static_cast<std::uint32_t>(le32(&d[21]));
    return clamped_size((b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1);
  }
  if (std::memcmp(c, "VP8X", 4) == 0) {
    const std::int64_t w = 1 + (std::int64_t{d[24]} | (std::int64_t{d[25]} << 8) | (std::int64_t{d[26]} << 16));
    const std::int64_t h = 1 + (std::int64_t{d[27]} | (std::int64_t{d[28]} << 8) | (std::int64_t{d[29]} << 16));
    return clamped_size(w, h);
  }
  return std::nullopt;
}

// Netpbm (P1-P6), PFM (PF / Pf) and PAM (P7: WIDTH / HEIGHT lines).
std::optional<cv::Size> probe_pnm(const std::vector<unsigned char>& d) {
  if (d.size() < 3 || d[0] != 'P') return std::nullopt;
  const unsigned char kind = d[1];
  const bool pnm = kind >= '1' && kind <= '6', pfm = kind == 'F' || kind == 'f', pam = kind == '7';
  if (!pnm && !pfm && !pam) return std::nullopt;
  const std::string head(d.begin(), d.begin() + static_cast<long>(std::min<std::size_t>(d.size(), 4096)));
  std::size_t i = 2;
  auto next_number = [&]() -> std::int64_t {  // skips blanks and comments; -1 if none
    while (i < head.size()) {
      if (head[i] == '#') {
        while (i < head.size() && head[i] != '\n') ++i;
      } else if (std::isspace(static_cast<unsigned char>(head[i]))) {
        ++i;
      } else {
        break;
      }
    }
    if (i >= head.size() || !std::isdigit(static_cast<unsigned char>(head[i]))) return -1;
    std::int64_t v = 0;
    while (i < head.size() && std::isdigit(static_cast<unsigned char>(head[i])) && v < (std::int64_t{1} << 40))
      v = v * 10 + (head[i++] - '0');
    return v;
  };
  if (pam) {
    std::int64_t w = -1, h = -1;
    for (const char* key : {"WIDTH", "HEIGHT"}) {
      const auto at = head.find(std::string("\n") + key);
      if (at == std::string::npos) return std::nullopt;
      i = at + 1 + std::strlen(key);
      (key[0] == 'W' ? w : h) = next_number();
    }
    if (w < 0 || h < 0) return std::nullopt;
    return clamped_size(w, h);
  }
  const std::int64_t w = next_number(), h = next_number();
  if (w < 0 || h < 0) return std::nullopt;
  return clamped_size(w, h);
}

// JPEG 2000: a JP2 file's ihdr box (height, then width), or a raw codestream's SIZ marker.
std::optional<cv::Size> probe_jp2(const std::vector<unsigned char>& d) {
  const std::size_t n = d.size();
  static const unsigned char jp2_sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  if (n >= 12 && std::equal(jp2_sig, jp2_sig + 12, d.begin())) {
    const unsigned char ihdr[4] = {'i', 'h', 'd', 'r'};
    const auto it = std::search(d.begin(), d.begin() + static_cast<long>(std::min<std::size_t>(n, 65536)), ihdr, ihdr + 4);
    const std::size_t at = static_cast<std::size_t>(it - d.begin());
    if (at + 12 > n) return std::nullopt;
    return clamped_size(be32(&d[at + 8]), be32(&d[at + 4]));
  }
  if (n >= 16 && d[0] == 0xFF && d[1] == 0x4F && d[2] == 0xFF && d[3] == 0x51) {
    // SIZ: Lsiz (2), Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz (4 each).
    const std::int64_t xs = be32(&d[8]), ys = be32(&d[12]);
    if (n < 24) return clamped_size(xs, ys);
    return clamped_size(xs - be32(&d[16]), ys - be32(&d[20]));
  }
  return std::nullopt;
}

// OpenEXR: the header's dataWindow attribute (box2i: xMin, yMin, xMax, yMax).
std::optional<cv::Size> probe_exr(const std::vector<unsigned char>& d) {
  const std::size_t n = d.size();
  if (n < 8 || !(d[0] == 0x76 && d[1] == 0x2F && d[2] == 0x31 && d[3] == 0x01)) return std::nullopt;
  std::size_t i = 8;
  auto cstring = [&]() -> std::optional<std::string> {
    const std::size_t start = i;
    while (i < n && d[i] != 0 && i - start < 256) ++i;
    if (i >= n || d[i] != 0) return std::nullopt;
    return std::string(d.begin() + static_cast<long>(start), d.begin() + static_cast<long>(i++));
  };
  while (i < n && d[i] != 0) {
    const auto name = cstring(), type = cstring();
    if (!name || !type || i + 4 > n) return std::nullopt;
    const std::size_t size = static_cast<std::uint32_t>(le32(&d[i]));
    i += 4;
    if (size > n - i) return std::nullopt;
    if (*name == "dataWindow" && *type == "box2i" && size == 16)
      return clamped_size(std::int64_t{le32(&d[i + 8])} - le32(&d[i]) + 1, std::int64_t{le32(&d[i + 12])} - le32(&d[i + 4]) + 1);
    i += size;
  }
  return std::nullopt;
}

// Radiance HDR: header lines up to an empty line, then "-Y H +X W" (or another orientation).
std::optional<cv::Size> probe_hdr(const std::vector<unsigned char>& d) {
  if (d.size() < 11 || d[0] != '#' || d[1] != '?') return std::nullopt;
  const std::string head(d.begin(), d.begin() + static_cast<long>(std::min<std::size_t>(d.size(), 65536)));
  const auto blank = head.find("\n\n");
  if (blank == std::string::npos) return std::nullopt;
  char a[3] = {}, b[3] = {};
  long long first = -1, second = -1;
  if (std::sscanf(head.c_str() + blank + 2, "%2s %lld %2s %lld", a, &first, b, &second) != 4) return std::nullopt;
  if (first < 0 || second < 0) return std::nullopt;
  const bool y_first = a[1] == 'Y';
  return y_first ? clamped_size(second, first) : clamped_size(first, second);
}

// Sun raster: magic, then width and height (big-endian).
std::optional<cv::Size> probe_sun_raster(const std::vector<unsigned char>& d) {
  if (d.size() < 12 || be32(&d[0]) != 0x59A66A95u) return std::nullopt;
  return clamped_size(be32(&d[4]), be32(&d[8]));
}

// Width and height from the file's header, without decoding it; nullopt for a format none of the
// probes knows (read_image refuses those: their size could only be learnt by decoding).
std::optional<cv::Size> probe_size(const std::vector<unsigned char>& d) {
  for (auto probe : {probe_png_jpeg_bmp, probe_tiff, probe_webp, probe_pnm, probe_jp2, probe_exr, probe_hdr, probe_sun_raster})
    if (auto s = probe(d)) return s;
  return std::nullopt;
}

void check_size(cv::Size s, const std::string& path, const ReadLimits& limits) {
  const std::int64_t pixels = std::int64_t{s.width} * s.height;
  if (pixels > limits.max_pixels) {
    throw InputError("image '" + path + "' is " + std::to_string(s.width) + "x" +
                     std::to_string(s.height) + " = " + std::to_string(pixels) +
                     " pixels, over the limit of " + std::to_string(limits.max_pixels) +
                     "; scale it down (or crop it) before editing, or raise the pixel limit");
  }
  if (s.width < limits.min_side || s.height < limits.min_side) {
    throw InputError("image '" + path + "' is " + std::to_string(s.width) + "x" +
                     std::to_string(s.height) + ", smaller than the minimum of " +
                     std::to_string(limits.min_side) + "x" + std::to_string(limits.min_side) +
                     " pixels; use a larger image");
  }
}

}  // namespace

double depth_max(int depth) {
  switch (depth) {
    case CV_8U: return 255.0;
    case CV_16U: return 65535.0;
    case CV_32F:
    case CV_64F: return 1.0;
    default:
      throw InputError("unsupported sample type (OpenCV depth " + std::to_string(depth) +
                       "); use 8-bit or 16-bit unsigned, or 32-bit float in [0, 1]");
  }
}

cv::Mat read_image(const std::string& path, const ReadLimits& limits) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw InputError("image file '" + path + "' does not exist; check the path");
  }
  if (!fs::is_regular_file(path, ec)) {
    throw InputError("'" + path + "' is not a regular file; pass the path of an image file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError("cannot open image file '" + path + "' for reading; check its permissions");
  }
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError("error while reading '" + path + "'; check the file and the disk");
  if (bytes.empty()) throw InputError("image file '" + path + "' is empty; export the image again");

  // The pixel budget is checked from the header, before anything is decoded: a small file can
  // claim a huge image. A format whose header no probe reads is refused.
  const auto header_size = probe_size(bytes);
  if (!header_size)
    throw InputError("'" + path + "' is not an image file DiffSketch can check before decoding (its header is not "
                     "PNG, JPEG, BMP, TIFF, WebP, PNM/PAM/PFM, JPEG 2000, OpenEXR, Radiance HDR or Sun raster, or "
                     "it is truncated); re-export it as PNG, JPEG, TIFF or WebP");
  check_size(*header_size, path, limits);

  cv::Mat img;
  try {
    img = cv::imdecode(bytes, cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw InputError("cannot decode '" + path + "' (" + e.what() +
                     "); re-export it as PNG, JPEG, TIFF or WebP");
  }
  if (img.empty()) {
    throw InputError("cannot decode '" + path +
                     "': not an image format OpenCV reads, or the file is truncated or corrupt; "
                     "re-export it as PNG, JPEG, TIFF or WebP");
  }
  check_size(img.size(), path, limits);

  switch (img.depth()) {
    case CV_8U:
    case CV_16U: break;
    case CV_32F:
    case CV_64F: {
      cv::Mat f;
      img.convertTo(f, CV_32F);
      cv::patchNaNs(f, 0.0);
      f = cv::min(cv::max(f, 0.0), 1.0);
      f.convertTo(img, CV_16U, 65535.0);
      break;
    }
    default:
      throw InputError("image '" + path + "' has unsupported samples (" + describe_type(img) +
                       "); re-export it with 8-bit or 16-bit unsigned integer samples");
  }
  switch (img.channels()) {
    case 1:
    case 3:
    case 4: break;
    case 2: {  // gray + alpha
      std::vector<cv::Mat> ga;
      cv::split(img, ga);
      cv::merge(std::vector<cv::Mat>{ga[0], ga[0], ga[0], ga[1]}, img);
      break;
    }
    default:
      throw InputError("image '" + path + "' has " + std::to_string(img.channels()) +
                       " channels; re-export it as gray, RGB or RGBA");
  }
  return img;
}

bool is_image_path(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".jp2"})
    if (ext == e) return true;
  return false;
}

namespace {

// The PNG of `image` written completely to a temporary file beside `path` (checked, flushed);
// returns the temporary's path. Nothing is at `path` yet.
fs::path write_temporary(const std::string& path, const cv::Mat& image) {
  if (image.empty()) throw InputError("write_image: the image to write to '" + path + "' is empty");
  if (image.depth() != CV_8U && image.depth() != CV_16U) {
    throw InputError("write_image: '" + path + "' gets a " + describe_type(image) +
                     " image; convert it to 8-bit or 16-bit first (from_float_rgb)");
  }
  if (image.channels() != 1 && image.channels() != 3 && image.channels() != 4) {
    throw InputError("write_image: '" + path + "' gets " + std::to_string(image.channels()) +
                     " channels; PNG takes gray, BGR or BGRA");
  }
  const fs::path target(path);
  std::string ext = target.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext != ".png") {
    throw InputError("write_image writes PNG only, but '" + path + "' does not end in .png; use a .png name");
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InputError("cannot write '" + path + "': directory '" + dir.string() +
                     "' does not exist; create it first");
  }

  std::vector<unsigned char> buf;
  if (!cv::imencode(".png", image, buf)) throw Error("PNG encoding of '" + path + "' failed");

  static std::atomic<unsigned> counter{0};
  const auto stamp = static_cast<unsigned long long>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(stamp) +
                              "-" + std::to_string(counter++) + "-" + std::to_string(std::random_device{}()));
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot create '" + tmp.string() + "'; check that the directory is writable");
  out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  out.flush();
  out.close();
  if (!out) {
    fs::remove(tmp, ec);
    throw Error("writing '" + tmp.string() + "' failed (disk full?); nothing was written to '" + path + "'");
  }
  return tmp;
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

// Renames the finished temporary onto `path`.
void commit(const fs::path& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, fs::path(path), ec);
  if (ec) {
    remove_quietly(tmp);
    throw Error("cannot rename the finished PNG onto '" + path + "': " + ec.message() +
                "; check that the path is not a directory and is writable");
  }
}

}  // namespace

void write_image(const std::string& path, const cv::Mat& image) { commit(write_temporary(path, image), path); }

void write_images(const std::vector<std::string>& paths, const std::vector<cv::Mat>& images) {
  if (paths.size() != images.size()) throw InputError("write_images: one path per image");
  std::vector<fs::path> tmps;
  try {
    for (size_t i = 0; i < paths.size(); ++i) tmps.push_back(write_temporary(paths[i], images[i]));
  } catch (...) {
    for (const auto& t : tmps) remove_quietly(t);
    throw;
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      commit(tmps[i], paths[i]);
    } catch (...) {
      for (size_t j = i + 1; j < tmps.size(); ++j) remove_quietly(tmps[j]);
      for (size_t j = 0; j < i; ++j) remove_quietly(paths[j]);  // all or none
      throw;
    }
  }
}

FloatImage to_float_rgb(const cv::Mat& image) {
  if (image.empty()) throw InputError("to_float_rgb: the image is empty");
  const double scale = 1.0 / depth_max(image.depth());
  FloatImage out;
  cv::Mat f;
  image.convertTo(f, CV_32F, scale);
  switch (image.channels()) {
    case 1: cv::cvtColor(f, out.rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(f, out.rgb, cv::COLOR_BGR2RGB); break;
    case 4:
      cv::cvtColor(f, out.rgb, cv::COLOR_BGRA2RGB);
      cv::extractChannel(f, out.alpha, 3);
      break;
    default:
      throw InputError("to_float_rgb: " + std::to_string(image.channels()) +
                       " channels; expected gray, BGR or BGRA");
  }
  if (out.alpha.empty()) out.alpha = cv::Mat(image.size(), CV_32FC1, cv::Scalar(1.0));
  return out;
}

cv::Mat to_luma(const cv::Mat& image) {
  if (image.empty()) throw InputError("to_luma: the image is empty");
  cv::Mat f, luma;
  image.convertTo(f, CV_32F, 1.0 / depth_max(image.depth()));
  switch (image.channels()) {
    case 1: luma = f; break;
    case 3: cv::cvtColor(f, luma, cv::COLOR_BGR2GRAY); break;
    case 4: cv::cvtColor(f, luma, cv::COLOR_BGRA2GRAY); break;
    default:
      throw InputError("to_luma: " + std::to_string(image.channels()) +
                       " channels; expected gray, BGR or BGRA");
  }
  return luma;
}

cv::Mat from_float_rgb(const cv::Mat& rgb, const cv::Mat& alpha, int depth, int channels) {
  if (rgb.empty() || rgb.type() != CV_32FC3) {
    throw InputError("from_float_rgb: expected a CV_32FC3 RGB image in [0, 1]");
  }
  if (!alpha.empty() && (alpha.type() != CV_32FC1 || alpha.size() != rgb.size())) {
    throw InputError("from_float_rgb: alpha must be CV_32FC1 of the image's size, or empty");
  }
  if (depth != CV_8U && depth != CV_16U && depth != CV_32F) {
    throw InputError("from_float_rgb: target depth must be CV_8U, CV_16U or CV_32F");
  }
  const double scale = depth_max(depth);
  cv::Mat c = cv::min(cv::max(rgb, 0.0), 1.0), f;
  switch (channels) {
    case 1: cv::cvtColor(c, f, cv::COLOR_RGB2GRAY); break;
    case 3: cv::cvtColor(c, f, cv::COLOR_RGB2BGR); break;
    case 4: {
      cv::Mat bgr, a = alpha.empty() ? cv::Mat(rgb.size(), CV_32FC1, cv::Scalar(1.0))
                                     : cv::Mat(cv::min(cv::max(alpha, 0.0), 1.0));
      cv::cvtColor(c, bgr, cv::COLOR_RGB2BGR);
      std::vector<cv::Mat> ch;
      cv::split(bgr, ch);
      ch.push_back(a);
      cv::merge(ch, f);
      break;
    }
    default:
      throw InputError("from_float_rgb: target channels must be 1, 3 or 4, not " + std::to_string(channels));
  }
  cv::Mat out;
  f.convertTo(out, depth, scale);
  return out;
}

}  // namespace dsk::edit
