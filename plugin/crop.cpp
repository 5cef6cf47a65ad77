// Mirrors plan_region in editing/region.cpp (min_margin_px = 16, grow_small = true); keep the two
// in step: tests/unit/test_plugin_crop.cpp compares them.
#include "plugin/crop.h"

#include <algorithm>
#include <cmath>

namespace dsk::gimp {

namespace {

constexpr int kMinMarginPx = 16;

// Start of a `side`-long window on an axis of length `dim`, centred on [c0, c0 + clen) and kept
// inside the axis where it fits (region.cpp's place()).
int place(int c0, int clen, int side, int dim) {
  if (side <= dim) return std::clamp(c0 + clen / 2 - side / 2, 0, dim - side);
  return -((side - dim) / 2);
}

}  // namespace

Rect edit_crop(int layer_width, int layer_height, const Rect& bbox, double context_margin, int work_res) {
  const int m = std::max(static_cast<int>(std::lround(context_margin * std::max(bbox.width, bbox.height))), kMinMarginPx);
  // The context: the selection's box grown by the margin, clipped to the layer.
  const int cx0 = std::max(bbox.x - m, 0), cy0 = std::max(bbox.y - m, 0);
  const int cx1 = std::min(bbox.x + bbox.width + m, layer_width), cy1 = std::min(bbox.y + bbox.height + m, layer_height);
  const int cw = cx1 - cx0, ch = cy1 - cy0;
  // The square: the context's longer side, at least the model's resolution where the layer has it.
  const int side = std::max(std::max(cw, ch), std::min(work_res, std::max(layer_width, layer_height)));
  const int sx = place(cx0, cw, side, layer_width), sy = place(cy0, ch, side, layer_height);
  // The crop: the square's part inside the layer.
  const int x0 = std::max(sx, 0), y0 = std::max(sy, 0);
  const int x1 = std::min(sx + side, layer_width), y1 = std::min(sy + side, layer_height);
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace dsk::gimp
