// Running a DiffSketch procedure: the dialog, checks of every input with a clear message, the
// request to the engine with progress, and the results as new layers in one undo group. Layers
// are created only once the engine returned a complete result, so a cancelled run (GIMP kills the
// plug-in) leaves nothing behind; the engine notices its closed input and stops.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugin/engine_client.h"
#include "plugin/live.h"
#include "plugin/pixels.h"
#include "plugin/procedures.h"
#include "ui/dialog.h"

namespace dsk::gimp {

namespace {

namespace proto = dsk::proto;

// Every argument of the three procedures (those a procedure lacks keep their defaults).
struct Args {
  GimpLayer* sketch = nullptr;  // not owned (the config holds it)
  std::string model, sampler{kDefaultSampler}, classifier, mode{kDefaultInterpolationMode}, sketch_guidance_mode = "cheap";
  std::string detail{kDefaultDetail};
  int steps = kDefaultSteps, class_label = -1, seed = -1, variants = 1, feather = kDefaultFeather;
  int refine_steps = kDefaultRefineSteps, seed_a = 0, seed_b = 1, frames = kDefaultFrames;
  double sketch_strength = kDefaultGenerateSketchScale, classifier_scale = kDefaultClassifierScale;
  double context_margin = kDefaultContextMargin, sketch_guidance = 0.0;
  double init_strength = kDefaultInitStrength, refine_strength = kDefaultRefineStrength, harmonize = kDefaultHarmonize;
};

bool has_arg(GimpProcedure* procedure, const char* name) { return gimp_procedure_find_argument(procedure, name) != nullptr; }

Args read_args(GimpProcedure* procedure, GimpProcedureConfig* config) {
  Args a;
  GimpLayer* sketch = nullptr;
  g_object_get(config, "sketch-layer", &sketch, "steps", &a.steps, "sketch-strength", &a.sketch_strength, "class",
               &a.class_label, "classifier-scale", &a.classifier_scale, nullptr);
  if (sketch) {
    a.sketch = sketch;
    g_object_unref(sketch);  // the config keeps its own reference
  }
  a.model = ui::config_string(config, "model");
  a.classifier = ui::config_string(config, "classifier");
  if (has_arg(procedure, "sampler")) a.sampler = ui::config_string(config, "sampler");
  if (has_arg(procedure, "seed")) g_object_get(config, "seed", &a.seed, "variants", &a.variants, nullptr);
  if (has_arg(procedure, "feather"))
    g_object_get(config, "feather", &a.feather, "context-margin", &a.context_margin, nullptr);
  if (has_arg(procedure, "init-strength"))
    g_object_get(config, "init-strength", &a.init_strength, "refine-strength", &a.refine_strength, "refine-steps",
                 &a.refine_steps, "harmonize", &a.harmonize, nullptr);
  if (has_arg(procedure, "detail")) a.detail = ui::config_string(config, "detail");
  if (has_arg(procedure, "frames")) {
    g_object_get(config, "seed-a", &a.seed_a, "seed-b", &a.seed_b, "frames", &a.frames, nullptr);
    a.mode = ui::config_string(config, "mode");
  }
  if (has_arg(procedure, "sketch-guidance")) {
    g_object_get(config, "sketch-guidance", &a.sketch_guidance, nullptr);
    a.sketch_guidance_mode = ui::config_string(config, "sketch-guidance-mode");
  }
  return a;
}

std::string item_name(GimpItem* item) {
  gchar* n = gimp_item_get_name(item);
  std::string s = n ? n : "";
  g_free(n);
  return s;
}

void check_image(GimpImage* image) {
  if (gimp_image_get_base_type(image) == GIMP_INDEXED)
    throw PluginError("DiffSketch works on RGB and grayscale images; this image is indexed. Convert it first "
                      "(Image > Mode > RGB).");
}

// The one layer to edit.
GimpLayer* target_layer(GimpDrawable** drawables) {
  int n = 0;
  while (drawables && drawables[n]) ++n;
  if (n != 1) throw PluginError("select exactly one layer to edit (" + std::to_string(n) + " drawables are selected)");
  GimpDrawable* d = drawables[0];
  if (GIMP_IS_LAYER_MASK(d))
    throw PluginError("the selected drawable is a layer mask; select the layer itself (DiffSketch never edits masks)");
  if (!GIMP_IS_LAYER(d)) throw PluginError("the selected drawable is a channel; select a layer");
  if (gimp_item_is_group(GIMP_ITEM(d)))
    throw PluginError("the selected layer '" + item_name(GIMP_ITEM(d)) + "' is a layer group; select a pixel layer inside it");
  return GIMP_LAYER(d);
}

GimpLayer* layer_named_sketch(GimpImage* image) {
  for (const char* name : {"sketch", "Sketch"})
    if (GimpLayer* l = gimp_image_get_layer_by_name(image, name)) return l;
  return nullptr;
}

// The sketch layer: the argument, else a layer named "sketch"/"Sketch", else `fallback`.
GimpLayer* sketch_layer(GimpImage* image, GimpLayer* given, GimpLayer* target, GimpLayer* fallback) {
  GimpLayer* s = given ? given : layer_named_sketch(image);
  if (!s) s = fallback;
  if (!s)
    throw PluginError("no sketch layer: pass sketch-layer, or name the layer with your strokes \"sketch\"");
  if (gimp_item_get_image(GIMP_ITEM(s)) != image)
    throw PluginError("the sketch layer '" + item_name(GIMP_ITEM(s)) + "' belongs to another image");
  if (gimp_item_is_group(GIMP_ITEM(s)))
    throw PluginError("the sketch layer '" + item_name(GIMP_ITEM(s)) + "' is a layer group; pick a pixel layer");
  if (target && s == target)
    throw PluginError("the sketch layer is the layer to edit; draw the sketch on a layer of its own (named \"sketch\")");
  return s;
}

Rect layer_rect(GimpDrawable* d) {
  Rect r;
  gimp_drawable_get_offsets(d, &r.x, &r.y);
  r.width = gimp_drawable_get_width(d);
  r.height = gimp_drawable_get_height(d);
  return r;
}

// The sketch over `area` (image coordinates); an error when nothing is drawn there.
proto::Image read_sketch(GimpLayer* sketch, const Rect& area) {
  const Rect s = layer_rect(GIMP_DRAWABLE(sketch));
  proto::Image im = read_rgba(GIMP_DRAWABLE(sketch), {area.x - s.x, area.y - s.y, area.width, area.height});
  if (is_blank(im))
    throw PluginError("the sketch layer '" + item_name(GIMP_ITEM(sketch)) +
                      "' is empty over the area to generate: draw strokes on it first");
  return im;
}

proto::Sampling sampling(const Args& a, uint64_t seed) {
  proto::Sampling s;
  s.steps = a.steps;
  s.sampler = a.sampler;
  s.seed = seed;
  s.classifier = a.classifier;
  s.class_label = a.class_label;
  s.classifier_scale = a.classifier_scale;
  if (const char* device = g_getenv("DSK_DEVICE")) s.device = device;
  return s;
}

proto::SketchGuidance sketch_guidance(const Args& a) {
  proto::SketchGuidance g;
  g.scale = a.sketch_guidance;
  g.exact = a.sketch_guidance_mode == "exact";
  return g;
}

// The display name of a model argument: an id, or the folder name of a path.
std::string model_label(const std::string& model) {
  gchar* base = g_path_get_basename(model.c_str());
  std::string s = base;
  g_free(base);
  return s;
}

// Names the layer after what made it and attaches the "diffsketch" parasite with the parameters.
void record(GimpLayer* layer, const char* what, const Args& a, uint64_t seed, const std::string& extra) {
  const std::string name = std::string("DiffSketch ") + what + ": seed " + std::to_string(seed) + ", " +
                           model_label(a.model) + ", " + std::to_string(a.steps) + " steps, " + a.sampler + extra;
  gimp_item_set_name(GIMP_ITEM(layer), name.c_str());
  nlohmann::json j = {{"procedure", what}, {"seed", seed},       {"model", a.model},
                      {"steps", a.steps},   {"sampler", a.sampler}, {"sketch-strength", a.sketch_strength},
                      {"classifier", a.classifier}, {"class", a.class_label}, {"classifier-scale", a.classifier_scale},
                      {"sketch-guidance", a.sketch_guidance}, {"sketch-guidance-mode", a.sketch_guidance_mode}};
  if (std::string(what) == "inpaint")
    j["init-strength"] = a.init_strength, j["refine-strength"] = a.refine_strength, j["refine-steps"] = a.refine_steps,
    j["harmonize"] = a.harmonize, j["detail"] = a.detail;
  const std::string text = j.dump();
  GimpParasite* parasite = gimp_parasite_new("diffsketch", GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE,
                                             static_cast<guint32>(text.size() + 1), text.c_str());
  gimp_item_attach_parasite(GIMP_ITEM(layer), parasite);
  gimp_parasite_free(parasite);
}

// A new layer of the image's base type with alpha, `r` in image coordinates, inserted into
// `parent` at `position`: `rgba` at (x, y) in the layer's coordinates, transparent elsewhere.
GimpLayer* new_layer(GimpImage* image, const Rect& r, GimpLayer* parent, int position, const proto::Image& rgba,
                     int x = 0, int y = 0) {
  const GimpImageType type = gimp_image_get_base_type(image) == GIMP_GRAY ? GIMP_GRAYA_IMAGE : GIMP_RGBA_IMAGE;
  GimpLayer* layer = gimp_layer_new(image, "DiffSketch", r.width, r.height, type, 100.0, GIMP_LAYER_MODE_NORMAL);
  if (!layer || !gimp_image_insert_layer(image, layer, parent, position))
    throw PluginError("GIMP could not add the result layer: " + std::string(gimp_pdb_get_last_error(gimp_get_pdb())));
  gimp_layer_set_offsets(layer, r.x, r.y);
  if (x != 0 || y != 0 || rgba.width != r.width || rgba.height != r.height)
    gimp_drawable_fill(GIMP_DRAWABLE(layer), GIMP_FILL_TRANSPARENT);
  write_rgba(GIMP_DRAWABLE(layer), rgba, x, y);
  return layer;
}

// Any engine image (1..4 channels, u8/u16/f32) as RGBA float.
proto::Image to_rgba_f32(const proto::Image& im) {
  proto::Image out = proto::Image::make(im.width, im.height, 4, proto::DType::F32);
  const size_t n = static_cast<size_t>(im.width) * im.height;
  auto sample = [&](size_t i) -> float {
    switch (im.dtype) {
      case proto::DType::U8: return im.data[i] / 255.0f;
      case proto::DType::U16: return reinterpret_cast<const uint16_t*>(im.data.data())[i] / 65535.0f;
      default: return im.f32()[i];
    }
  };
  float* o = out.f32();
  const int c = im.channels;
  for (size_t p = 0; p < n; ++p) {
    const float v0 = sample(p * c);
    o[4 * p + 0] = v0;
    o[4 * p + 1] = c >= 3 ? sample(p * c + 1) : v0;
    o[4 * p + 2] = c >= 3 ? sample(p * c + 2) : v0;
    o[4 * p + 3] = c == 2 ? sample(p * c + 1) : c == 4 ? sample(p * c + 3) : 1.0f;
  }
  return out;
}

// Progress on GIMP's progress bar, and the preview window in interactive runs.
struct ProgressSink {
  ui::PreviewWindow* preview = nullptr;
  void operator()(const proto::ProgressUpdate& p) const {
    if (p.total > 0) gimp_progress_update(static_cast<double>(p.step) / p.total);
    gchar* text = p.queue > 0 ? g_strdup_printf("DiffSketch: waiting for the engine, place %d in its queue (%d %s ahead)",
                                                p.queue + 1, p.queue, p.queue == 1 ? "job" : "jobs")
                              : g_strdup_printf("DiffSketch: step %d of %d", p.step, p.total);
    gimp_progress_set_text(text);
    g_free(text);
    if (preview && p.preview && p.preview->channels == 3 && p.preview->dtype == proto::DType::U8)
      preview->show(p.preview->width, p.preview->height, p.preview->data, p.step, p.total);
  }
};

// The plug-in's engine settings (the aux arguments "engine-idle-minutes", "engine",
// "engine-token-file", "engine-certificate"), read at the start of a run and after its dialog.
EngineOptions g_engine_options;

void read_engine_settings(GimpProcedure* procedure, GimpProcedureConfig* config) {
  if (gimp_procedure_find_aux_argument(procedure, "engine-idle-minutes"))
    g_object_get(config, "engine-idle-minutes", &g_engine_options.idle_minutes, nullptr);
  if (gimp_procedure_find_aux_argument(procedure, "engine")) {
    g_engine_options.remote.address = ui::config_string(config, "engine");
    g_engine_options.remote.token_file = ui::config_string(config, "engine-token-file");
    g_engine_options.remote.certificate = ui::config_string(config, "engine-certificate");
  }
}

std::unique_ptr<EngineConnection> start_engine() {
  gimp_progress_init("DiffSketch: connecting to the engine");
  EngineOptions o = g_engine_options;
  o.status = [](const std::string& text) { gimp_progress_set_text(text.c_str()); };
  return EngineConnection::open(o);
}

proto::Result run_engine(std::unique_ptr<EngineConnection> engine, const proto::Message& request,
                         ui::PreviewWindow* preview) {
  gimp_progress_set_text("DiffSketch: loading the model");
  proto::Message reply = engine->request(request, ProgressSink{preview});
  gimp_progress_end();
  auto* result = std::get_if<proto::Result>(&reply);
  if (!result) throw PluginError(engine->describe() + " answered a " + proto::message_type(reply) + " message to a job");
  for (const auto& w : result->warnings) g_message("DiffSketch: %s", w.c_str());
  return std::move(*result);
}

// The model argument is resolved as the engine does (core/formats/model_registry.cpp): a folder
// when it exists or has a '/', else an id.
bool is_model_folder(const std::string& model) {
  return model.find('/') != std::string::npos || g_file_test(model.c_str(), G_FILE_TEST_EXISTS);
}

// A model folder's resolution, read from its model.json; 0 when it cannot be told (or `model` is an id).
int model_folder_resolution(const std::string& model) {
  if (!is_model_folder(model)) return 0;
  gchar* text = nullptr;
  if (!g_file_get_contents((model + "/model.json").c_str(), &text, nullptr, nullptr)) return 0;
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  g_free(text);
  if (!j.is_object() || !j.contains("flags") || !j["flags"].is_object()) return 0;
  const auto& size = j["flags"].contains("image_size") ? j["flags"]["image_size"] : nlohmann::json(64);
  return size.is_number_integer() ? size.get<int>() : 0;
}

// The model's working resolution (flags.image_size, 64 when absent, as the engine reads it); 0
// when it cannot be told, and then the whole layer is sent.
int model_resolution(EngineConnection& engine, const std::string& model) {
  if (is_model_folder(model)) return model_folder_resolution(model);
  const proto::Message reply = engine.request(proto::ModelsRequest{});
  if (const auto* list = std::get_if<proto::ModelList>(&reply))
    for (const auto& m : list->models)
      if (m.id == model) return m.resolution;
  return 0;
}

uint64_t pick_seed(int seed) { return seed >= 0 ? static_cast<uint64_t>(seed) : static_cast<uint64_t>(g_random_int_range(0, G_MAXINT)); }

// ---- the three operations; each returns the new layers

// Sketch Inpaint's request as the engine gets it: the crop around the selection, its mask, the
// sketch over the whole layer, and the settings. The final edit and the live preview both use it.
struct InpaintJob {
  proto::EditRequest req;
  GimpLayer* target = nullptr;
  Rect area;  // the target layer in image coordinates
  Rect crop;  // what is sent, in layer coordinates
};

// `resolution` gives the model's working resolution (0 sends the whole layer); it is asked once
// the inputs passed their checks, so that a bad input is reported before an engine starts.
InpaintJob prepare_inpaint(GimpImage* image, GimpDrawable** drawables, const Args& a,
                           const std::function<int()>& resolution) {
  InpaintJob job;
  job.target = target_layer(drawables);
  GimpLayer* sketch = sketch_layer(image, a.sketch, job.target, nullptr);
  if (gimp_selection_is_empty(image))
    throw PluginError("the selection is empty: select the region to regenerate first");
  Rect selected;  // the bounds of the selected pixels (coverage > 0) in the layer, layer coordinates
  if (!gimp_drawable_mask_intersect(GIMP_DRAWABLE(job.target), &selected.x, &selected.y, &selected.width,
                                    &selected.height))
    throw PluginError("the selection lies outside the layer '" + item_name(GIMP_ITEM(job.target)) +
                      "': select a region on the layer, or pick the layer under the selection");
  job.area = layer_rect(GIMP_DRAWABLE(job.target));
  const Rect& area = job.area;
  proto::EditRequest& req = job.req;
  req.model = a.model;
  req.sampling = sampling(a, pick_seed(a.seed));
  // The sketch over the whole layer: its stroke map depends on all of it (protocol.h, EditRequest).
  req.sketch = read_sketch(sketch, area);
  const int res = resolution();
  // Only the part of the layer the engine works on: the selection with its context, grown to the
  // model's square (plugin/crop.h); the results are those of the whole layer.
  job.crop = res >= 8 ? edit_crop(area.width, area.height, selected, a.context_margin, res)
                      : Rect{0, 0, area.width, area.height};
  const Rect& crop = job.crop;
  req.image = read_rgba(GIMP_DRAWABLE(job.target), crop);
  req.mask = read_selection(image, {area.x + crop.x, area.y + crop.y, crop.width, crop.height});
  req.image_x = crop.x;
  req.image_y = crop.y;
  req.sketch_scale = a.sketch_strength;
  req.sketch_guidance = sketch_guidance(a);
  req.variants = a.variants;
  req.context_margin = a.context_margin;
  req.feather = a.feather;
  req.init_strength = a.init_strength;
  req.refine_strength = a.refine_strength;
  req.refine_steps = a.refine_steps;
  req.harmonize = a.harmonize;
  req.detail = a.detail;
  return job;
}

// DSK_SEND_WHOLE_LAYER=1 sends the whole layer instead of the crop (the tests compare the two).
bool send_whole_layer() {
  const char* whole = g_getenv("DSK_SEND_WHOLE_LAYER");
  return whole && *whole;
}

std::vector<GimpLayer*> inpaint(GimpImage* image, GimpDrawable** drawables, const Args& a, ui::PreviewWindow* preview) {
  std::unique_ptr<EngineConnection> engine;
  InpaintJob job = prepare_inpaint(image, drawables, a, [&] {
    engine = start_engine();
    return send_whole_layer() ? 0 : model_resolution(*engine, a.model);
  });
  job.req.preview = preview != nullptr;
  GimpLayer* target = job.target;
  const Rect area = job.area, crop = job.crop;
  const proto::Image mask = job.req.mask;
  const uint64_t seed = job.req.sampling.seed;
  proto::Result result = run_engine(std::move(engine), job.req, preview);
  for (const auto& im : result.images)
    if (im.width != crop.width || im.height != crop.height)
      throw PluginError("the engine returned a " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                        " image for a " + std::to_string(crop.width) + "x" + std::to_string(crop.height) +
                        " request; install the plug-in and the engine from the same release");

  GimpLayer* parent = GIMP_LAYER(gimp_item_get_parent(GIMP_ITEM(target)));
  const int position = gimp_image_get_item_position(image, GIMP_ITEM(target));
  std::vector<GimpLayer*> layers;
  gimp_image_undo_group_start(image);
  for (size_t i = 0; i < result.images.size(); ++i) {
    proto::Image rgba = to_rgba_f32(result.images[i]);
    // Outside the selection the new layer is transparent; inside, the engine already blended.
    float* px = rgba.f32();
    for (size_t p = 0; p < mask.data.size() / sizeof(float); ++p)
      if (mask.f32()[p] <= 0.0f) px[4 * p + 3] = 0.0f;
    GimpLayer* layer = new_layer(image, area, parent, position, rgba, crop.x, crop.y);
    record(layer, "inpaint", a, i < result.seeds.size() ? result.seeds[i] : seed + i, "");
    layers.push_back(layer);
  }
  gimp_image_undo_group_end(image);
  return layers;
}

// Generate and interpolate: the canvas, or the selection's bounds when there is a selection.
Rect generation_area(GimpImage* image) {
  gboolean non_empty = FALSE;
  int x1, y1, x2, y2;
  gimp_selection_bounds(image, &non_empty, &x1, &y1, &x2, &y2);
  if (non_empty) return {x1, y1, x2 - x1, y2 - y1};
  return {0, 0, static_cast<int>(gimp_image_get_width(image)), static_cast<int>(gimp_image_get_height(image))};
}

GimpLayer* selected_layer(GimpDrawable** drawables) {
  if (drawables && drawables[0] && !drawables[1] && GIMP_IS_LAYER(drawables[0]) && !GIMP_IS_LAYER_MASK(drawables[0]))
    return GIMP_LAYER(drawables[0]);
  return nullptr;
}

proto::GenerateRequest generate_request(GimpImage* image, GimpDrawable** drawables, const Args& a, GimpLayer** sketch_out,
                                        Rect* area_out, ui::PreviewWindow* preview) {
  GimpLayer* sketch = sketch_layer(image, a.sketch, nullptr, selected_layer(drawables));
  const Rect area = generation_area(image);
  proto::GenerateRequest g;
  g.model = a.model;
  g.sampling = sampling(a, pick_seed(a.seed));
  g.sketch = read_sketch(sketch, area);
  g.width = area.width;
  g.height = area.height;
  g.sketch_scale = a.sketch_strength;
  g.sketch_guidance = sketch_guidance(a);
  g.variants = a.variants;
  g.preview = preview != nullptr;
  *sketch_out = sketch;
  *area_out = area;
  return g;
}

// New layers go right below the sketch layer, the first one lowest (animation order).
std::vector<GimpLayer*> add_below_sketch(GimpImage* image, GimpLayer* sketch, const Rect& area, const proto::Result& result,
                                         const char* what, const Args& a, const std::vector<std::string>& extras) {
  GimpLayer* parent = GIMP_LAYER(gimp_item_get_parent(GIMP_ITEM(sketch)));
  const int position = gimp_image_get_item_position(image, GIMP_ITEM(sketch)) + 1;
  std::vector<GimpLayer*> layers;
  gimp_image_undo_group_start(image);
  for (size_t i = 0; i < result.images.size(); ++i) {
    GimpLayer* layer = new_layer(image, area, parent, position, to_rgba_f32(result.images[i]));
    record(layer, what, a, i < result.seeds.size() ? result.seeds[i] : 0, i < extras.size() ? extras[i] : "");
    layers.push_back(layer);
  }
  gimp_image_undo_group_end(image);
  return layers;
}

std::vector<GimpLayer*> generate(GimpImage* image, GimpDrawable** drawables, const Args& a, ui::PreviewWindow* preview) {
  GimpLayer* sketch = nullptr;
  Rect area;
  proto::GenerateRequest req = generate_request(image, drawables, a, &sketch, &area, preview);
  const proto::Result result = run_engine(start_engine(), req, preview);
  return add_below_sketch(image, sketch, area, result, "generate", a, {});
}

std::vector<GimpLayer*> interpolate(GimpImage* image, GimpDrawable** drawables, Args a, ui::PreviewWindow* preview) {
  a.seed = a.seed_a;
  a.variants = 1;
  a.sampler = "ddim";  // interpolation runs deterministic DDIM
  GimpLayer* sketch = nullptr;
  Rect area;
  proto::InterpolateRequest req;
  req.generate = generate_request(image, drawables, a, &sketch, &area, preview);
  req.seed_a = static_cast<uint64_t>(a.seed_a);
  req.seed_b = static_cast<uint64_t>(a.seed_b);
  req.frames = a.frames;
  req.mode = a.mode;
  const proto::Result result = run_engine(start_engine(), req, preview);
  std::vector<std::string> extras;
  for (size_t i = 0; i < result.images.size(); ++i)
    extras.push_back(", frame " + std::to_string(i + 1) + "/" + std::to_string(result.images.size()) + " " + a.mode +
                     " " + std::to_string(a.seed_a) + "-" + std::to_string(a.seed_b) + " (100ms) (replace)");
  return add_below_sketch(image, sketch, area, result, "interpolate", a, extras);
}

GimpValueArray* failure(GimpProcedure* procedure, const std::string& message) {
  GError* error = g_error_new_literal(GIMP_PLUG_IN_ERROR, 0, message.c_str());
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_EXECUTION_ERROR, error);
}

// ---- the live preview of Sketch Inpaint (plugin/live.h; the dialog's side is ui::LiveHooks)

ui::RgbImage to_rgb8(const proto::Image& im) {
  const proto::Image rgba = to_rgba_f32(im);
  ui::RgbImage out;
  out.width = rgba.width;
  out.height = rgba.height;
  out.rgb.resize(static_cast<size_t>(rgba.width) * rgba.height * 3);
  const float* px = rgba.f32();
  for (size_t p = 0; p < out.rgb.size() / 3; ++p)
    for (int c = 0; c < 3; ++c) out.rgb[3 * p + c] = static_cast<unsigned char>(std::clamp(px[4 * p + c], 0.0f, 1.0f) * 255.0f + 0.5f);
  return out;
}

// FNV-1a, 64 bits: the live preview's change detector (not a security hash).
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* data, size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size()); }
  void add(int v) { add(&v, sizeof v); }
};

// A reduced copy of `r` (image coordinates) of `d`, at most 256 px on a side, into `h`: a stroke,
// a changed selection or a repainted picture changes it. Cheap enough for a few times a second.
void add_region(Fnv& h, GimpDrawable* d, const Rect& r) {
  const Rect at = layer_rect(d);
  const int x0 = std::max(r.x, at.x), y0 = std::max(r.y, at.y);
  const int x1 = std::min(r.x + r.width, at.x + at.width), y1 = std::min(r.y + r.height, at.y + at.height);
  if (x1 <= x0 || y1 <= y0) return;
  const double k = std::min(1.0, 256.0 / std::max(x1 - x0, y1 - y0));
  int w = 0, hgt = 0, bpp = 0;
  GBytes* bytes = gimp_drawable_get_sub_thumbnail_data(d, x0 - at.x, y0 - at.y, x1 - x0, y1 - y0,
                                                       std::max(1, static_cast<int>((x1 - x0) * k)),
                                                       std::max(1, static_cast<int>((y1 - y0) * k)), &w, &hgt, &bpp);
  if (!bytes) return;
  gsize n = 0;
  const void* data = g_bytes_get_data(bytes, &n);
  h.add(data, n);
  g_bytes_unref(bytes);
}

// What a preview depends on: the settings, the selection, the sketch layer and the picture around
// the selection. An input the preview cannot use (no sketch layer, no selection) still hashes, so
// that fixing it starts a preview, which then says what is wrong or shows the result.
uint64_t live_fingerprint(GimpProcedure* procedure, GimpProcedureConfig* config, GimpImage* image,
                          GimpDrawable** drawables) {
  Fnv h;
  const Args a = read_args(procedure, config);
  h.add(a.model + "|" + a.sampler + "|" + a.detail + "|" + a.classifier + "|" + a.sketch_guidance_mode);
  for (double v : {a.sketch_strength, a.classifier_scale, a.context_margin, a.sketch_guidance, a.init_strength,
                   a.refine_strength, a.harmonize})
    h.add(&v, sizeof v);
  for (int v : {a.steps, a.class_label, a.seed, a.feather, a.refine_steps}) h.add(v);
  try {
    GimpLayer* target = target_layer(drawables);
    GimpLayer* sketch = sketch_layer(image, a.sketch, target, nullptr);
    h.add(gimp_item_get_id(GIMP_ITEM(target)));
    h.add(gimp_item_get_id(GIMP_ITEM(sketch)));
    gboolean non_empty = FALSE;
    Rect sel;
    gimp_selection_bounds(image, &non_empty, &sel.x, &sel.y, &sel.width, &sel.height);  // x2, y2
    sel.width -= sel.x;
    sel.height -= sel.y;
    h.add(non_empty);
    h.add(&sel, sizeof sel);
    if (!non_empty) return h.h;
    const int margin = static_cast<int>(a.context_margin * std::max(sel.width, sel.height)) + 8;
    const Rect around{sel.x - margin, sel.y - margin, sel.width + 2 * margin, sel.height + 2 * margin};
    add_region(h, GIMP_DRAWABLE(gimp_image_get_selection(image)), sel);
    add_region(h, GIMP_DRAWABLE(sketch), around);
    add_region(h, GIMP_DRAWABLE(target), around);
  } catch (const std::exception& e) {
    h.add(e.what());
  }
  return h.h;
}

// The dialog's live preview for Sketch Inpaint: requests built as the final edit's
// (prepare_inpaint), run by a LivePreview on its own engine connection. `resolutions`: each listed
// model's working resolution (from the list the dialog shows: the preview's connection is the
// only one open while it runs, and a socket server serves one client at a time).
class LiveSession {
 public:
  LiveSession(GimpProcedure* procedure, GimpProcedureConfig* config, GimpImage* image, GimpDrawable** drawables,
              std::map<std::string, int> resolutions)
      : procedure_(procedure), config_(config), image_(image), drawables_(drawables),
        resolutions_(std::move(resolutions)) {
    hooks_.fingerprint = [this] { return live_fingerprint(procedure_, config_, image_, drawables_); };
    hooks_.start = [this] { return start(); };
    hooks_.take = [this] { return take(); };
  }
  const ui::LiveHooks& hooks() const { return hooks_; }
  // Before the final edit opens its own connection.
  void close() { live_.reset(); }

 private:
  std::string start() {
    try {
      const Args a = read_args(procedure_, config_);
      InpaintJob job = prepare_inpaint(image_, drawables_, a, [&] { return resolution(a.model); });
      if (!live_) live_ = std::make_unique<LivePreview>([] { return EngineConnection::open(g_engine_options); });
      const uint64_t id = live_->submit(live_preview_request(job.req));
      before_ = {id, to_rgb8(job.req.image)};
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  }

  std::optional<ui::LiveHooks::Done> take() {
    if (!live_) return std::nullopt;
    auto d = live_->take();
    if (!d) return std::nullopt;
    ui::LiveHooks::Done out;
    out.error = d->error;
    out.seconds = d->seconds;
    if (d->result && !d->result->images.empty() && d->id == before_.first) {
      out.before = before_.second;
      out.after = to_rgb8(d->result->images.front());
    } else if (out.error.empty()) {
      return std::nullopt;  // an older preview's result
    }
    return out;
  }

  int resolution(const std::string& model) {
    if (send_whole_layer()) return 0;
    const auto it = resolutions_.find(model);
    return it != resolutions_.end() ? it->second : model_folder_resolution(model);
  }

  GimpProcedure* procedure_;
  GimpProcedureConfig* config_;
  GimpImage* image_;
  GimpDrawable** drawables_;
  std::map<std::string, int> resolutions_;
  std::unique_ptr<LivePreview> live_;
  std::pair<uint64_t, ui::RgbImage> before_;
  ui::LiveHooks hooks_;
};

// The models the engine knows, for the dialog's chooser.
std::vector<ui::ModelChoice> engine_models(std::string* note, std::map<std::string, int>* resolutions) {
  std::vector<ui::ModelChoice> out;
  try {
    auto engine = EngineConnection::open(g_engine_options);
    const proto::Message reply = engine->request(proto::ModelsRequest{});
    if (const auto* list = std::get_if<proto::ModelList>(&reply)) {
      for (const auto& m : list->models) (*resolutions)[m.id] = m.resolution;
      for (const auto& m : list->models)
        if (m.kind != "adm-classifier")  // classifiers go in the classifier argument
          out.push_back({m.id, m.name + " (" + m.kind + ", " + std::to_string(m.resolution) + " px)", m.card, m.problem,
                         m.classes});
      if (list->models.empty()) {
        std::string dirs;
        for (const auto& d : list->search_path) dirs += (dirs.empty() ? "" : ", ") + d;
        *note = "No models installed; the engine looked in: " + dirs;
      }
    }
  } catch (const std::exception& e) {
    *note = e.what();
  }
  return out;
}

// The Diagnose button: `diffsketch doctor --from-plugin` with the engine this plug-in uses.
std::string diagnose() {
  std::string engine;
  try {
    engine = find_engine();
  } catch (const std::exception& e) {
    return std::string("The engine was not found, so it cannot run its checks:\n") + e.what();
  }
  const gchar* argv[] = {engine.c_str(), "doctor", "--from-plugin", nullptr};
  gchar* out = nullptr;
  gchar* err = nullptr;
  gint status = 0;
  GError* error = nullptr;
  if (!g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &out, &err, &status,
                    &error)) {
    std::string msg = "Could not run " + engine + " doctor: " + (error ? error->message : "unknown error");
    g_clear_error(&error);
    return msg;
  }
  std::string report = std::string(out ? out : "") + (err && *err ? std::string("\n") + err : "");
  g_free(out);
  g_free(err);
  return report.empty() ? engine + " doctor printed nothing (exit status " + std::to_string(status) + ")" : report;
}

}  // namespace

GimpValueArray* run_operation(Operation op, GimpProcedure* procedure, GimpRunMode run_mode, GimpImage* image,
                              GimpDrawable** drawables, GimpProcedureConfig* config) {
  const bool interactive = run_mode == GIMP_RUN_INTERACTIVE;
  try {
    check_image(image);
    read_engine_settings(procedure, config);
    if (interactive) {
      ui::init(kPlugInBinary);
      GimpLayer* sketch = nullptr;
      g_object_get(config, "sketch-layer", &sketch, nullptr);
      if (!sketch) {
        if (GimpLayer* named = layer_named_sketch(image)) g_object_set(config, "sketch-layer", named, nullptr);
      } else {
        g_object_unref(sketch);
      }
      std::string note;
      std::map<std::string, int> resolutions;
      const auto models = engine_models(&note, &resolutions);
      // No model "default" installed yet (before the first trained model): offer the first one found.
      if (!models.empty() && ui::config_string(config, "model") == "default" &&
          std::none_of(models.begin(), models.end(), [](const ui::ModelChoice& m) { return m.id == "default"; }))
        g_object_set(config, "model", models.front().id.c_str(), nullptr);
      const char* title = op == Operation::Inpaint    ? "DiffSketch: Sketch Inpaint"
                          : op == Operation::Generate ? "DiffSketch: Sketch to Image"
                                                      : "DiffSketch: Interpolate Seeds";
      std::optional<LiveSession> live;
      if (op == Operation::Inpaint) live.emplace(procedure, config, image, drawables, resolutions);
      const std::string engine = describe_remote(effective_remote(g_engine_options.remote));
      const bool ok =
          ui::run_dialog(procedure, config, title, models, note, engine, diagnose, live ? &live->hooks() : nullptr);
      if (live) live->close();
      if (!ok) return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, nullptr);
      read_engine_settings(procedure, config);  // changed in the dialog: the edit goes there
    }
    const Args args = read_args(procedure, config);
    std::unique_ptr<ui::PreviewWindow> preview;
    if (interactive && !g_getenv("DSK_NO_PREVIEW")) preview = std::make_unique<ui::PreviewWindow>("DiffSketch preview");
    std::vector<GimpLayer*> layers = op == Operation::Inpaint    ? inpaint(image, drawables, args, preview.get())
                                     : op == Operation::Generate ? generate(image, drawables, args, preview.get())
                                                                 : interpolate(image, drawables, args, preview.get());
    preview.reset();
    if (run_mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
    GimpValueArray* ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, nullptr);
    layers.push_back(nullptr);  // a core object array is NULL-terminated
    GIMP_VALUES_SET_CORE_OBJECT_ARRAY(ret, 1, layers.data());
    return ret;
  } catch (const std::exception& e) {
    return failure(procedure, e.what());
  }
}

}  // namespace dsk::gimp
