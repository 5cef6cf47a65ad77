// Engine::edit_crop: an edit whose image and mask are the part of the layer the model needs (at
// `image_at` in the layer that the sketch covers), as the GIMP plug-in sends them.
//
// Why the result equals the whole layer's: plan_region (editing/region.h) reads the image only
// inside plan.crop, and for any image X with plan.crop <= X <= layer it plans the same square
// (context = bbox grown & clipped, the same side since X is at least plan.crop's extent, the same
// placement since plan.crop touches X's edge only where it touches the layer's); the composite's
// feathering looks only near the selection, where X and the layer agree. So the checks below are:
// the crop lies in the layer and contains plan.crop. What does depend on the whole layer is the
// sketch's stroke map (paper level, polarity, transparent fraction), hence the whole sketch comes
// with the request, and the edit gets the crop of its stroke map.
#include "core/base/error.h"
#include "core/engine/engine.h"
#include "core/engine/request_checks.h"
#include "core/formats/model_info.h"
#include "core/formats/model_registry.h"
#include "editing/masks.h"
#include "editing/region.h"
#include "editing/sketch.h"

namespace dsk {

namespace {

std::string rect_text(const cv::Rect& r) {
  return std::to_string(r.width) + "x" + std::to_string(r.height) + " at " + std::to_string(r.x) + "," +
         std::to_string(r.y);
}

// The region the model works on for this mask in the whole layer, in layer coordinates.
cv::Rect planned_crop(const EditRequest& req, cv::Size layer, cv::Rect where) {
  const cv::Rect bbox = edit::mask_support_bbox(edit::soft_mask_from_image(req.mask));
  if (bbox.empty()) return {};  // the edit says what is wrong with the mask
  cv::Mat layer_mask = cv::Mat::zeros(layer, CV_8UC1);  // only the selection's bounds matter to the plan
  layer_mask(bbox + where.tl()).setTo(255);
  const int res = read_model_info(resolve_model(req.model)).resolution;
  return edit::plan_region(layer, layer_mask, res, req.context_margin).crop;
}

// A stroke map as a sketch layer that stroke_map reads back unchanged: strokes = alpha (a
// Transparent sketch); false when too little of it is transparent for stroke_map to read it so.
bool as_alpha_sketch(const cv::Mat& strokes, cv::Mat& sketch) {
  const cv::Mat zero = cv::Mat::zeros(strokes.size(), CV_32FC1);
  cv::merge(std::vector<cv::Mat>{zero, zero, zero, strokes}, sketch);
  return edit::detect_sketch_kind(sketch) == edit::SketchKind::Transparent;
}

}  // namespace

EditResult Engine::edit_crop(EditRequest req, cv::Point image_at, const ProgressFn& progress,
                             const CancelToken* cancel) {
  // Without a sketch, or with one of the image's size, the image is all there is.
  check_edit_crop(req, image_at);
  if (req.image.empty() || req.sketch.empty() || req.sketch.size() == req.image.size()) return edit(req, progress, cancel);
  const cv::Mat layer_sketch = req.sketch;
  const cv::Rect layer(cv::Point(0, 0), layer_sketch.size());
  const cv::Rect where(image_at, req.image.size());
  if (req.mask.size() != req.image.size()) return edit(req, progress, cancel);  // the edit names the mismatch
  if (const cv::Rect need = planned_crop(req, layer.size(), where); (need & where) != need)
    throw InputError("edit request: the crop sent (" + rect_text(where) +
                     ") does not contain the region the model works on (" + rect_text(need) +
                     "); install the GIMP plug-in and the engine from the same release");
  const cv::Mat strokes = edit::stroke_map(layer_sketch)(where);
  if (as_alpha_sketch(strokes, req.sketch)) return edit(req, progress, cancel);
  // Strokes cover over 90% of the crop, so they cannot pass as a transparent sketch: edit the whole
  // layer, the image known only inside the crop (all the edit reads of it), and cut the results.
  cv::Mat image = cv::Mat::zeros(layer.size(), req.image.type()), mask = cv::Mat::zeros(layer.size(), req.mask.type());
  req.image.copyTo(image(where));
  req.mask.copyTo(mask(where));
  req.image = image;
  req.mask = mask;
  req.sketch = layer_sketch;
  EditResult r = edit(req, progress, cancel);
  for (auto& im : r.images) im = im(where).clone();
  return r;
}

}  // namespace dsk
