// Pixels between GIMP drawables and protocol images, through GEGL in a perceptual float format
// ("R'G'B'A float" in the image's colour space), whatever the image's precision (8/16/32-bit,
// linear or perceptual) or base type (RGB, grayscale): the model sees the same tone curve as for an
// 8-bit sRGB image, and babl converts back to the layer's own format on writing.
#pragma once

#include <libgimp/gimp.h>

#include "core/protocol/protocol.h"
#include "plugin/crop.h"

namespace dsk::gimp {

// RGBA float of `r` in the drawable's own coordinates; outside the drawable is transparent black.
proto::Image read_rgba(GimpDrawable* drawable, const Rect& r);

// The selection's coverage (1 channel float, 0..1) over `r` in image coordinates.
proto::Image read_selection(GimpImage* image, const Rect& r);

// Writes RGBA float pixels into a layer, their top-left corner at (x, y) in its coordinates.
void write_rgba(GimpDrawable* drawable, const proto::Image& rgba, int x = 0, int y = 0);

// true when no pixel over the area differs from the first one, or every pixel is transparent:
// nothing was drawn there.
bool is_blank(const proto::Image& rgba);

}  // namespace dsk::gimp
