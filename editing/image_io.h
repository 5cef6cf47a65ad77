// Reading and writing images, and the float RGB layout the model side works in.
//
// "As read" images keep OpenCV's layout: CV_8U or CV_16U, 1 channel (gray), 3 (BGR) or 4 (BGRA).
// EXIF orientation is never applied (cv::IMREAD_IGNORE_ORIENTATION), identically for the image,
// its mask and its sketch, so the three always line up pixel for pixel.
// Float images (FloatImage) are RGB order, CV_32FC3 in [0, 1], with a separate CV_32FC1 alpha.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "core/base/limits.h"

namespace dsk::edit {

inline constexpr std::int64_t kDefaultMaxPixels = kMaxImagePixels;  // core/base/limits.h

struct ReadLimits {
  std::int64_t max_pixels = kDefaultMaxPixels;  // width * height above this is refused
  int min_side = 1;                             // width and height must both be >= this
};

// Reads any format OpenCV decodes (PNG, JPEG, TIFF, WebP, BMP, ...), with
// cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION. Returns CV_8U or CV_16U with 1, 3 or 4
// channels: 2-channel (gray + alpha) becomes BGRA, float images (CV_32F / CV_64F, e.g. EXR or float
// TIFF) are clamped to [0, 1] and converted to CV_16U. The size is checked from the PNG / JPEG /
// BMP header before decoding where possible, so an oversized file is refused without allocating
// it. Throws edit::InputError for a missing or unreadable file, an undecodable one, an unsupported
// sample type or channel count, more than limits.max_pixels pixels, or a side below
// limits.min_side.
cv::Mat read_image(const std::string& path, const ReadLimits& limits = {});

// Whether a folder's file is taken as a picture, by its extension in any case: .png, .jpg, .jpeg,
// .bmp, .tif, .tiff, .webp, .pgm, .ppm, .pbm, .jp2 (the formats this OpenCV reads). Every command
// that reads a folder of pictures or sketches lists it with this.
bool is_image_path(const std::string& path);

// Writes a CV_8U or CV_16U image with 1, 3 (BGR) or 4 (BGRA) channels as PNG. The file name must end
// in ".png". The data goes to a temporary file in the same directory which is then renamed over
// `path`, so a failed or interrupted write never leaves a partial file behind. Throws
// edit::InputError on a bad image or path, edit::Error when the file system refuses.
void write_image(const std::string& path, const cv::Mat& image);

// All or none: every image is written completely to a temporary beside its path first; only when
// all are written are they renamed onto their paths (a full disk leaves no result and no
// temporary). The same checks as write_image.
void write_images(const std::vector<std::string>& paths, const std::vector<cv::Mat>& images);

struct FloatImage {
  cv::Mat rgb;    // CV_32FC3, RGB order, [0, 1]
  cv::Mat alpha;  // CV_32FC1, [0, 1]; all 1 when the source has no alpha
};

// Converts an as-read image (CV_8U, CV_16U or CV_32F in [0, 1]; gray, BGR or BGRA) to float RGB +
// alpha. Gray is replicated into R = G = B.
FloatImage to_float_rgb(const cv::Mat& image);

// The inverse: float RGB (+ optional alpha, empty = opaque) to `depth` (CV_8U, CV_16U or CV_32F) and
// `channels` (1 = gray by BT.601 luma as cv::cvtColor, 3 = BGR, 4 = BGRA). Values are clamped to
// [0, 1] and rounded to nearest, so to_float_rgb -> from_float_rgb round-trips 8 and 16 bit exactly.
cv::Mat from_float_rgb(const cv::Mat& rgb, const cv::Mat& alpha, int depth, int channels);

// BT.601 luma (as cv::COLOR_BGR2GRAY) of an as-read image, CV_32FC1 in [0, 1]; alpha is ignored.
cv::Mat to_luma(const cv::Mat& image);

// The scale of a depth's full white: 255 for CV_8U, 65535 for CV_16U, 1 for CV_32F / CV_64F.
double depth_max(int depth);

}  // namespace dsk::edit
