// User sketches -> stroke maps, the one sketch convention of the engine.
//
// A stroke map is CV_32FC1 in [0, 1], same size as the layer: 1 = stroke, 0 = no stroke, values in
// between are anti-aliasing or faint strokes. Binarised, a pixel is a stroke when map > 0.5.
#pragma once

#include <opencv2/core.hpp>

namespace dsk::edit {

// How stroke_map read a layer.
enum class SketchKind {
  Paper,        // strokes differ from a paper level: dark on light, or light on dark (auto polarity)
  Transparent,  // RGBA with >= 10% (nearly) transparent pixels: stroke = alpha, whatever the colour
};

// Decides how `layer` is read (see SketchKind). Any depth as read (8U/16U/32F), 1, 3 or 4 channels.
SketchKind detect_sketch_kind(const cv::Mat& layer);

// Converts a sketch layer (as read: gray, BGR or BGRA, 8/16-bit or float in [0, 1]) to a stroke
// map. Paper: the paper level is estimated locally (a max filter of the lightly blurred luma over
// about 1/8 of the short side, on a copy at most 512 px long, then smoothed) and darkness is
// measured relative to it, (paper - luma) / paper, so uneven lighting of a scan or photo is not
// read as strokes; darkness below a noise floor (median + 4 robust sigmas of the darkness, in
// [0.06, 0.3]) is zero and the 90th percentile of what lies above maps to 1. If the median luma
// is below 0.35 the layer is taken to be light strokes on dark paper and inverted first. RGBA that
// is not Transparent is composited over white first. A blank layer (uniform paper, fully
// transparent) gives all zeros. `kind`, if given, receives how the layer was read.
// Limitation: strokes wider than ~1/8 of the short side are read as paper in their middle.
cv::Mat stroke_map(const cv::Mat& layer, SketchKind* kind = nullptr);

// true when fewer than `min_pixels` pixels are strokes (> 0.5). Throws on a non-CV_32FC1 map.
bool is_blank(const cv::Mat& map, int min_pixels = 1);

// Thins map > threshold to a 1-pixel-wide, 8-connected skeleton (Zhang-Suen, 1984). Every
// connected stroke keeps at least one pixel (Zhang-Suen alone erases 2x2 dots). CV_8UC1 0 / 255.
cv::Mat skeletonize(const cv::Mat& map, float threshold = 0.5f);

// Draws a skeleton (CV_8UC1, non-zero = on) as anti-aliased strokes of diameter width_px (> 0):
// value = clamp(width/2 + 0.5 - distance to the skeleton, 0, 1). CV_32FC1.
cv::Mat render_skeleton(const cv::Mat& skeleton, double width_px);
// Same with a per-pixel width (CV_32FC1 of the skeleton's size, in pixels; a smooth field).
cv::Mat render_skeleton(const cv::Mat& skeleton, const cv::Mat& width_px);

// Thins the strokes (map > 0.5) to a skeleton and redraws them at a fixed width, so a sketch drawn
// with a 2 px or a 12 px brush reaches the model alike. Throws edit::InputError if width_px <= 0.
cv::Mat normalize_stroke_width(const cv::Mat& map, double width_px);

// The stroke width (px) the editing model sees at its working resolution `size`.
double sketch_width_for(int size);

// Restricts a stroke map to where it matters: strokes inside the hole (CV_8U 0/255 or float
// 0..1), grown by max(1, size / 32) px so that strokes on its border count.
cv::Mat sketch_in_hole(const cv::Mat& sketch, const cv::Mat& hole, int size);

// Resizes a stroke map (CV_32FC1) without losing thin strokes: along an axis that shrinks each
// output pixel is the max over the input pixels it covers (max pooling), along an axis that grows
// it is bilinear. A 1-px stroke stays at full strength at any reduction.
cv::Mat resize_strokes(const cv::Mat& map, cv::Size size);

}  // namespace dsk::edit
