#include "editing/image_io.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
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

// Width and height from the header of a PNG, JPEG or BMP file, without decoding it.
std::optional<cv::Size> probe_size(const std::vector<unsigned char>& d) {
  const std::size_t n = d.size();
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 24 && std::equal(png_sig, png_sig + 8, d.begin()) && d[12] == 'I' && d[13] == 'H' &&
      d[14] == 'D' && d[15] == 'R') {
    return cv::Size(static_cast<int>(std::min<std::uint32_t>(be32(&d[16]), INT32_MAX)),
                    static_cast<int>(std::min<std::uint32_t>(be32(&d[20]), INT32_MAX)));
  }
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
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

  if (auto s = probe_size(bytes)) check_size(*s, path, limits);

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

void write_image(const std::string& path, const cv::Mat& image) {
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
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot create '" + tmp.string() + "'; check that the directory is writable");
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      throw Error("writing '" + tmp.string() + "' failed (disk full?); nothing was written to '" + path + "'");
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ec2;
    fs::remove(tmp, ec2);
    throw Error("cannot rename the finished PNG onto '" + path + "': " + ec.message() +
                "; check that the path is not a directory and is writable");
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
