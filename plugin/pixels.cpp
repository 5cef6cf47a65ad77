// GEGL reads and writes in "R'G'B'A float" (see pixels.h).
#include "plugin/pixels.h"

#include <cstring>

namespace dsk::gimp {

namespace {

// The perceptual RGBA float format in the drawable's colour space.
const Babl* rgba_format(GimpDrawable* drawable) {
  return babl_format_with_space("R'G'B'A float", gimp_drawable_get_format(drawable));
}

}  // namespace

proto::Image read_rgba(GimpDrawable* drawable, const Rect& r) {
  proto::Image im = proto::Image::make(r.width, r.height, 4, proto::DType::F32);
  GeglBuffer* buffer = gimp_drawable_get_buffer(drawable);
  const GeglRectangle rect = {r.x, r.y, r.width, r.height};
  gegl_buffer_get(buffer, &rect, 1.0, rgba_format(drawable), im.data.data(), GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buffer);
  return im;
}

proto::Image read_selection(GimpImage* image, const Rect& r) {
  proto::Image im = proto::Image::make(r.width, r.height, 1, proto::DType::F32);
  GimpSelection* selection = gimp_image_get_selection(image);
  GeglBuffer* buffer = gimp_drawable_get_buffer(GIMP_DRAWABLE(selection));
  const GeglRectangle rect = {r.x, r.y, r.width, r.height};
  // Coverage is linear data: "Y float" reads the channel's values unchanged.
  gegl_buffer_get(buffer, &rect, 1.0, babl_format("Y float"), im.data.data(), GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buffer);
  return im;
}

void write_rgba(GimpDrawable* drawable, const proto::Image& rgba, int x, int y) {
  GeglBuffer* buffer = gimp_drawable_get_buffer(drawable);
  const GeglRectangle rect = {x, y, rgba.width, rgba.height};
  gegl_buffer_set(buffer, &rect, 0, rgba_format(drawable), rgba.data.data(), GEGL_AUTO_ROWSTRIDE);
  g_object_unref(buffer);  // flushes to GIMP
  gimp_drawable_update(drawable, x, y, rgba.width, rgba.height);
}

bool is_blank(const proto::Image& rgba) {
  const float* p = rgba.f32();
  const size_t n = static_cast<size_t>(rgba.width) * rgba.height;
  bool any_opaque = false, any_different = false;
  for (size_t i = 0; i < n && !(any_opaque && any_different); ++i) {
    if (p[4 * i + 3] > 0.0f) any_opaque = true;
    if (std::memcmp(p + 4 * i, p, 4 * sizeof(float)) != 0) any_different = true;
  }
  return !any_opaque || !any_different;
}

}  // namespace dsk::gimp
