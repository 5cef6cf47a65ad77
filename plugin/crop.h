// The part of a layer the engine needs for an inpaint, so the plug-in sends that crop rather than
// the whole layer. Torch-, OpenCV- and GIMP-free (tests/unit/test_plugin_crop.cpp checks it against
// the engine's own planning).
#pragma once

namespace dsk::gimp {

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

// The engine's working region for a selection: editing/region.cpp's plan_region(...).crop, as
// core/engine/edit.cpp calls it (at least 16 px of context, small selections grown to the model's
// resolution), redone here without OpenCV. `bbox` is the bounding box of the selected pixels
// (coverage > 0) in layer coordinates, not empty and inside the layer; `work_res` is the model's
// resolution (flags.image_size). Any crop that contains this one and lies in the layer gives the
// engine the same square, so the results equal those of the whole layer (serve_cmd.cpp says why,
// and refuses a crop that does not contain it).
Rect edit_crop(int layer_width, int layer_height, const Rect& bbox, double context_margin, int work_res);

}  // namespace dsk::gimp
