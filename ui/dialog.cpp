// The DiffSketch dialogs: GimpProcedureDialog over the procedure's arguments. The few controls most
// edits need are on top; the rest sits under an "Advanced" expander. The model stays a string
// argument (choices would be frozen at registration), so its chooser is an editable combo bound to
// it: a listed model or any model folder path.
#include "ui/dialog.h"

#include <libgimp/gimpui.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "core/engine/defaults.h"

namespace dsk::ui {

namespace {

bool has_arg(GimpProcedure* procedure, const char* name) {
  return gimp_procedure_find_argument(procedure, name) != nullptr ||
         gimp_procedure_find_aux_argument(procedure, name) != nullptr;
}

GList* present(GimpProcedure* procedure, std::initializer_list<const char*> names) {
  GList* props = nullptr;
  for (const char* n : names)
    if (has_arg(procedure, n)) props = g_list_append(props, const_cast<char*>(n));
  return props;
}

// A "title" frame holding the listed arguments that the procedure has; appended to `list`.
GtkWidget* add_group(GimpProcedureDialog* dialog, GimpProcedure* procedure, const char* id, const char* title,
                     std::initializer_list<const char*> names, GList** list) {
  GList* props = present(procedure, names);
  if (!props) return nullptr;
  const std::string box_id = std::string(id) + "-box", label_id = std::string(id) + "-label";
  gimp_procedure_dialog_fill_box_list(dialog, box_id.c_str(), props);
  gimp_procedure_dialog_get_label(dialog, label_id.c_str(), title, FALSE, FALSE);
  GtkWidget* frame = gimp_procedure_dialog_fill_frame(dialog, id, label_id.c_str(), FALSE, box_id.c_str());
  *list = g_list_append(*list, const_cast<char*>(id));
  g_list_free(props);
  return frame;
}

// What the dialog's signal handlers share; lives as long as the dialog runs.
struct State {
  GimpProcedureConfig* config = nullptr;
  GtkWidget* dialog = nullptr;
  std::vector<ModelChoice> models;
  GtkWidget* card_label = nullptr;
  GtkWidget* problem_label = nullptr;
  GtkWidget* classifier_frame = nullptr;
  GtkWidget* thumbnail = nullptr;
  bool has_detail = false;
  bool applying_preset = false;
  DiagnoseFn diagnose;
  // The live preview (Sketch Inpaint only).
  const LiveHooks* live = nullptr;
  GtkWidget* live_toggle = nullptr;
  GtkWidget* live_status = nullptr;
  GtkWidget* live_image = nullptr;
  guint live_timer = 0;
  uint64_t live_fingerprint = 0;
  bool live_started = false;
};

const ModelChoice* find_model(const State& s, const std::string& id) {
  for (const auto& m : s.models)
    if (m.id == id) return &m;
  return nullptr;
}

// The card line, a damaged model's problem (OK refused), the classifier fields.
void model_changed(State& s) {
  const std::string id = config_string(s.config, "model");
  const ModelChoice* m = find_model(s, id);
  gtk_label_set_text(GTK_LABEL(s.card_label), m ? m->card.c_str() : id.empty() ? "" : "A model folder (not in the list).");
  const bool damaged = m && !m->problem.empty();
  gtk_label_set_text(GTK_LABEL(s.problem_label), damaged ? m->problem.c_str() : "");
  gtk_widget_set_visible(s.problem_label, damaged);
  gtk_dialog_set_response_sensitive(GTK_DIALOG(s.dialog), GTK_RESPONSE_OK, !damaged);
  // Class-conditional models need a class; a folder typed in may be one, so the fields stay.
  if (s.classifier_frame) gtk_widget_set_visible(s.classifier_frame, !m || m->classes > 0);
}

void on_model_notify(GObject*, GParamSpec*, gpointer data) { model_changed(*static_cast<State*>(data)); }

// A model picked from the list: the argument holds its id, not the text the list shows.
void on_model_picked(GtkComboBox* combo, gpointer data) {
  auto& s = *static_cast<State*>(data);
  if (const gchar* id = gtk_combo_box_get_active_id(combo)) {
    const std::string picked = id;  // the entry's update below may change the active row
    g_object_set(s.config, "model", picked.c_str(), nullptr);
  }
}

void sketch_changed(State& s) {
  GimpLayer* layer = nullptr;
  g_object_get(s.config, "sketch-layer", &layer, nullptr);
  if (!layer) {
    gtk_image_set_from_icon_name(GTK_IMAGE(s.thumbnail), "image-missing", GTK_ICON_SIZE_DIALOG);
    gtk_widget_set_tooltip_text(s.thumbnail, "No sketch layer: draw the sketch on a layer named \"sketch\"");
    return;
  }
  GdkPixbuf* thumb = gimp_drawable_get_thumbnail(GIMP_DRAWABLE(layer), 96, 96, GIMP_PIXBUF_LARGE_CHECKS);
  gtk_image_set_from_pixbuf(GTK_IMAGE(s.thumbnail), thumb);
  if (thumb) g_object_unref(thumb);
  gchar* name = gimp_item_get_name(GIMP_ITEM(layer));
  const std::string tip = std::string("The sketch: layer \"") + (name ? name : "") + "\"";
  gtk_widget_set_tooltip_text(s.thumbnail, tip.c_str());
  g_free(name);
  g_object_unref(layer);
}

void on_sketch_notify(GObject*, GParamSpec*, gpointer data) { sketch_changed(*static_cast<State*>(data)); }

// "quality" set by the user: steps (and for Sketch Inpaint the detail settings) follow.
void on_quality_notify(GObject*, GParamSpec*, gpointer data) {
  auto& s = *static_cast<State*>(data);
  const std::string q = config_string(s.config, "quality");
  for (const auto& p : quality_presets(s.has_detail)) {
    if (q != p.id) continue;
    s.applying_preset = true;
    g_object_set(s.config, "steps", p.steps, nullptr);
    if (s.has_detail) g_object_set(s.config, "detail", p.detail, "refine-steps", p.refine_steps, nullptr);
    s.applying_preset = false;
  }
}

// A field of a preset changed by hand: the choice says "custom" unless the values are a preset's.
void on_preset_field_notify(GObject*, GParamSpec*, gpointer data) {
  auto& s = *static_cast<State*>(data);
  if (s.applying_preset) return;
  int steps = 0, refine_steps = 0;
  g_object_get(s.config, "steps", &steps, nullptr);
  std::string detail;
  if (s.has_detail) {
    g_object_get(s.config, "refine-steps", &refine_steps, nullptr);
    detail = config_string(s.config, "detail");
  }
  const char* match = "custom";
  for (const auto& p : quality_presets(s.has_detail))
    if (p.steps == steps && (!s.has_detail || (detail == p.detail && refine_steps == p.refine_steps))) match = p.id;
  if (config_string(s.config, "quality") != match) g_object_set(s.config, "quality", match, nullptr);
}

void on_new_seed(GtkButton*, gpointer data) {
  auto& s = *static_cast<State*>(data);
  g_object_set(s.config, "seed", g_random_int_range(0, G_MAXINT), nullptr);
}

void on_diagnose(GtkButton*, gpointer data) {
  auto& s = *static_cast<State*>(data);
  GdkWindow* window = gtk_widget_get_window(s.dialog);
  GdkCursor* busy = window ? gdk_cursor_new_for_display(gdk_window_get_display(window), GDK_WATCH) : nullptr;
  if (window) gdk_window_set_cursor(window, busy);
  while (gtk_events_pending()) gtk_main_iteration();
  const std::string report = s.diagnose ? s.diagnose() : "no diagnosis available";
  if (window) gdk_window_set_cursor(window, nullptr);
  if (busy) g_object_unref(busy);

  GtkWidget* d = gtk_dialog_new_with_buttons("DiffSketch: Diagnose", GTK_WINDOW(s.dialog), GTK_DIALOG_MODAL, "_Close",
                                             GTK_RESPONSE_CLOSE, nullptr);
  GtkWidget* view = gtk_text_view_new();
  gtk_text_view_set_editable(GTK_TEXT_VIEW(view), FALSE);
  gtk_text_view_set_monospace(GTK_TEXT_VIEW(view), TRUE);
  gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(view), GTK_WRAP_WORD_CHAR);
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(view)), report.c_str(), -1);
  GtkWidget* scroll = gtk_scrolled_window_new(nullptr, nullptr);
  gtk_widget_set_size_request(scroll, 720, 420);
  gtk_container_add(GTK_CONTAINER(scroll), view);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(d))), scroll, TRUE, TRUE, 0);
  gtk_widget_show_all(d);
  gtk_dialog_run(GTK_DIALOG(d));
  gtk_widget_destroy(d);
}

// Before | after, side by side, each scaled to fit 200 px.
GdkPixbuf* side_by_side(const RgbImage& before, const RgbImage& after) {
  const int side = 200, gap = 6;
  auto scaled = [side](const RgbImage& im) -> GdkPixbuf* {
    if (im.width <= 0 || im.height <= 0 || im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3) return nullptr;
    GdkPixbuf* src = gdk_pixbuf_new_from_data(im.rgb.data(), GDK_COLORSPACE_RGB, FALSE, 8, im.width, im.height,
                                              im.width * 3, nullptr, nullptr);
    const double k = static_cast<double>(side) / std::max(im.width, im.height);
    GdkPixbuf* out = gdk_pixbuf_scale_simple(src, std::max(1, static_cast<int>(im.width * k)),
                                             std::max(1, static_cast<int>(im.height * k)), GDK_INTERP_BILINEAR);
    g_object_unref(src);
    return out;
  };
  GdkPixbuf* a = scaled(before);
  GdkPixbuf* b = scaled(after);
  if (!a || !b) {
    if (a) g_object_unref(a);
    if (b) g_object_unref(b);
    return nullptr;
  }
  const int w = gdk_pixbuf_get_width(a) + gap + gdk_pixbuf_get_width(b);
  const int h = std::max(gdk_pixbuf_get_height(a), gdk_pixbuf_get_height(b));
  GdkPixbuf* out = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, w, h);
  gdk_pixbuf_fill(out, 0x00000000);
  gdk_pixbuf_copy_area(a, 0, 0, gdk_pixbuf_get_width(a), gdk_pixbuf_get_height(a), out, 0, 0);
  gdk_pixbuf_copy_area(b, 0, 0, gdk_pixbuf_get_width(b), gdk_pixbuf_get_height(b), out, gdk_pixbuf_get_width(a) + gap, 0);
  g_object_unref(a);
  g_object_unref(b);
  return out;
}

// The live preview's timer: a changed fingerprint starts a preview; a finished one is shown.
gboolean on_live_tick(gpointer data) {
  auto& s = *static_cast<State*>(data);
  if (!gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(s.live_toggle))) return G_SOURCE_CONTINUE;
  const uint64_t fp = s.live->fingerprint();
  if (!s.live_started || fp != s.live_fingerprint) {
    s.live_fingerprint = fp;
    s.live_started = true;
    sketch_changed(s);  // the thumbnail follows the strokes
    const std::string why = s.live->start();
    gtk_label_set_text(GTK_LABEL(s.live_status), why.empty() ? "Updating the preview..." : why.c_str());
  }
  if (auto done = s.live->take()) {
    if (!done->error.empty()) {
      gtk_label_set_text(GTK_LABEL(s.live_status), done->error.c_str());
    } else if (GdkPixbuf* pic = side_by_side(done->before, done->after)) {
      gtk_image_set_from_pixbuf(GTK_IMAGE(s.live_image), pic);
      g_object_unref(pic);
      gchar* text = g_strdup_printf("Before | after (preview: %.1f s). OK runs the full edit with the same seed.",
                                    done->seconds);
      gtk_label_set_text(GTK_LABEL(s.live_status), text);
      g_free(text);
    }
  }
  return G_SOURCE_CONTINUE;
}

void on_live_toggled(GtkToggleButton* button, gpointer data) {
  auto& s = *static_cast<State*>(data);
  const bool on = gtk_toggle_button_get_active(button);
  gtk_widget_set_visible(s.live_image, on);
  if (!on) {
    gtk_label_set_text(GTK_LABEL(s.live_status), "");
    return;
  }
  // The preview and OK's edit start from the same noise: a random seed becomes a fixed one.
  int seed = -1;
  g_object_get(s.config, "seed", &seed, nullptr);
  if (seed < 0) g_object_set(s.config, "seed", g_random_int_range(0, G_MAXINT), nullptr);
  s.live_started = false;  // the next tick starts one
  gtk_label_set_text(GTK_LABEL(s.live_status), "Draw on the sketch layer: the preview follows.");
}

GtkWidget* live_box(State& s) {
  GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  s.live_toggle = gtk_check_button_new_with_mnemonic("_Live preview");
  gtk_widget_set_tooltip_text(s.live_toggle,
                              "Keep this dialog open and draw on the sketch layer: a quick preview of the selection "
                              "follows every stroke, selection or setting change. OK then runs the full edit.");
  s.live_status = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(s.live_status), 0.0f);
  gtk_label_set_line_wrap(GTK_LABEL(s.live_status), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(s.live_status), 60);
  gtk_label_set_selectable(GTK_LABEL(s.live_status), TRUE);
  s.live_image = gtk_image_new();
  gtk_box_pack_start(GTK_BOX(box), s.live_toggle, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(box), s.live_image, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(box), s.live_status, FALSE, FALSE, 0);
  gtk_widget_show_all(box);
  gtk_widget_set_no_show_all(s.live_image, TRUE);
  gtk_widget_hide(s.live_image);
  g_signal_connect(s.live_toggle, "toggled", G_CALLBACK(on_live_toggled), &s);
  s.live_timer = g_timeout_add(250, on_live_tick, &s);
  // DSK_LIVE_PREVIEW=1: the dialog opens with the live preview on.
  if (const char* v = g_getenv("DSK_LIVE_PREVIEW"); v && std::string_view(v) == "1")
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s.live_toggle), TRUE);
  return box;
}

// The model chooser: an editable combo of the engine's models (shown by name and kind; the entry
// holds the id), the card's first line under it, a damaged model's problem in its doctor's words.
GtkWidget* model_chooser(State& s, const std::string& note) {
  GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget* row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget* label = gtk_label_new_with_mnemonic("_Model");
  GtkWidget* combo = gtk_combo_box_text_new_with_entry();
  // The list shows each model's card line (or name); picking one puts its id in the entry.
  for (const auto& m : s.models) {
    const std::string text = m.id + "  -  " + (m.card.empty() ? m.label : m.card) + (m.problem.empty() ? "" : "  (DAMAGED)");
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(combo), m.id.c_str(), text.c_str());
  }
  g_signal_connect(combo, "changed", G_CALLBACK(on_model_picked), &s);
  GtkWidget* entry = gtk_bin_get_child(GTK_BIN(combo));
  g_object_bind_property(s.config, "model", entry, "text", GBindingFlags(G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE));
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), entry);
  std::string tip = "The model that repaints the picture. Pick one, or type the path of a model folder.";
  for (const auto& m : s.models) tip += "\n" + m.id + ": " + m.label + (m.card.empty() ? "" : " - " + m.card);
  gtk_widget_set_tooltip_text(combo, tip.c_str());
  gtk_box_pack_start(GTK_BOX(row), label, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(row), combo, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(box), row, FALSE, FALSE, 0);
  s.card_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(s.card_label), 0.0f);
  gtk_label_set_ellipsize(GTK_LABEL(s.card_label), PANGO_ELLIPSIZE_END);
  gtk_label_set_max_width_chars(GTK_LABEL(s.card_label), 60);
  gtk_widget_set_sensitive(s.card_label, FALSE);  // greyed: a description, not a control
  gtk_box_pack_start(GTK_BOX(box), s.card_label, FALSE, FALSE, 0);
  s.problem_label = gtk_label_new("");
  gtk_label_set_line_wrap(GTK_LABEL(s.problem_label), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(s.problem_label), 60);
  gtk_label_set_xalign(GTK_LABEL(s.problem_label), 0.0f);
  gtk_label_set_selectable(GTK_LABEL(s.problem_label), TRUE);
  gtk_box_pack_start(GTK_BOX(box), s.problem_label, FALSE, FALSE, 0);
  if (!note.empty()) {
    GtkWidget* warn = gtk_label_new(note.c_str());
    gtk_label_set_line_wrap(GTK_LABEL(warn), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(warn), 60);
    gtk_label_set_xalign(GTK_LABEL(warn), 0.0f);
    gtk_box_pack_start(GTK_BOX(box), warn, FALSE, FALSE, 0);
  }
  gtk_widget_show_all(box);
  gtk_widget_set_no_show_all(s.problem_label, TRUE);
  return box;
}

}  // namespace

const std::vector<QualityPreset>& quality_presets(bool inpaint) {
  // fast: 10 steps and no detail pass for large selections (what the live preview runs). standard:
  // the defaults (an edit: UniPC 12 steps, docs/sampling.md; otherwise DDIM 25). thorough: more
  // steps and the model itself redrawing the detail in tiles; slowest.
  static const std::vector<QualityPreset> edit = {
      {"fast", 10, "none", kDefaultRefineSteps},
      {"standard", kDefaultEditSteps, kDefaultDetail.data(), kDefaultRefineSteps},
      {"thorough", 50, "tiles", 4},
  };
  static const std::vector<QualityPreset> other = {
      {"fast", 10, "none", kDefaultRefineSteps},
      {"standard", kDefaultSteps, kDefaultDetail.data(), kDefaultRefineSteps},
      {"thorough", 50, "tiles", 4},
  };
  return inpaint ? edit : other;
}

void init(const char* prog_name) { gimp_ui_init(prog_name); }

std::string config_string(GimpProcedureConfig* config, const char* name) {
  gchar* v = nullptr;
  g_object_get(config, name, &v, nullptr);
  std::string out = v ? v : "";
  g_free(v);
  return out;
}

namespace {

// "Engine: this computer" / "Engine: gpu-box:7860 (TLS, pinned)", beside Diagnose.
GtkWidget* engine_label(const std::string& engine) {
  GtkWidget* label = gtk_label_new(("Engine: " + engine).c_str());
  gtk_widget_set_tooltip_text(label,
                              "Where the edit runs: set under Advanced, Engine (a remote engine: diffsketch serve "
                              "--listen), or by DSK_ENGINE_URL");
  gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_MIDDLE);
  return label;
}

}  // namespace

bool run_dialog(GimpProcedure* procedure, GimpProcedureConfig* config, const char* title,
                const std::vector<ModelChoice>& models, const std::string& note, const std::string& engine,
                const DiagnoseFn& diagnose, const LiveHooks* live) {
  GtkWidget* widget = gimp_procedure_dialog_new(procedure, config, title);
  auto* dialog = GIMP_PROCEDURE_DIALOG(widget);
  State s;
  s.config = config;
  s.dialog = widget;
  s.models = models;
  s.diagnose = diagnose;
  s.live = live;
  s.has_detail = has_arg(procedure, "detail") && has_arg(procedure, "refine-steps");

  // ---- on top: sketch (with a thumbnail), strength, seed (with "New seed"), variants, quality
  GList* top = nullptr;
  GtkWidget* sketch_box = gimp_procedure_dialog_fill_box(dialog, "sketch-row", "sketch-layer", nullptr);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(sketch_box), GTK_ORIENTATION_HORIZONTAL);
  s.thumbnail = gtk_image_new();
  gtk_box_pack_end(GTK_BOX(sketch_box), s.thumbnail, FALSE, FALSE, 0);
  gtk_widget_show(s.thumbnail);
  top = g_list_append(top, const_cast<char*>("sketch-row"));
  if (has_arg(procedure, "sketch-strength")) top = g_list_append(top, const_cast<char*>("sketch-strength"));
  if (has_arg(procedure, "seed")) {
    GtkWidget* seed_box = gimp_procedure_dialog_fill_box(dialog, "seed-row", "seed", nullptr);
    gtk_orientable_set_orientation(GTK_ORIENTABLE(seed_box), GTK_ORIENTATION_HORIZONTAL);
    GtkWidget* button = gtk_button_new_with_mnemonic("_New seed");
    gtk_widget_set_tooltip_text(button, "Pick a random seed: a different result with the same settings");
    g_signal_connect(button, "clicked", G_CALLBACK(on_new_seed), &s);
    gtk_box_pack_end(GTK_BOX(seed_box), button, FALSE, FALSE, 0);
    gtk_widget_show(button);
    top = g_list_append(top, const_cast<char*>("seed-row"));
  }
  for (const char* n : {"seed-a", "seed-b", "frames", "variants", "quality"})
    if (has_arg(procedure, n)) top = g_list_append(top, const_cast<char*>(n));

  // ---- under "Advanced": everything else
  // GIMP 3.0's number field logs a LibGimpWidgets-CRITICAL (gimp_label_spin_set_increments) while
  // it builds one whose range is narrower than 1: its first increments are whole numbers. The two
  // strengths (0.05..1) are shown in percent, which also reads better; scripts still pass 0.05..1.
  for (const auto& [name, label] : {std::pair{"init-strength", "Start from _noise (%)"}, std::pair{"refine-strength", "Re_finement (%)"}})
    if (has_arg(procedure, name)) {
      GtkWidget* entry = gimp_procedure_dialog_get_scale_entry(dialog, name, 100.0);
      gtk_label_set_text_with_mnemonic(GTK_LABEL(gimp_labeled_get_label(GIMP_LABELED(entry))), label);
    }
  GList* advanced = nullptr;
  add_group(dialog, procedure, "sampling-frame", "Sampling", {"steps", "sampler", "mode"}, &advanced);
  add_group(dialog, procedure, "selection-frame", "Selection",
            {"context-margin", "feather", "init-strength", "detail", "refine-strength", "refine-steps", "harmonize"}, &advanced);
  add_group(dialog, procedure, "guidance-frame", "Sketch guidance", {"sketch-guidance", "sketch-guidance-mode"}, &advanced);
  s.classifier_frame =
      add_group(dialog, procedure, "classifier-frame", "Class", {"class", "classifier", "classifier-scale"}, &advanced);
  add_group(dialog, procedure, "engine-frame", "Engine",
            {"engine", "engine-token-file", "engine-certificate", "engine-idle-minutes"}, &advanced);
  gimp_procedure_dialog_fill_box_list(dialog, "advanced-box", advanced);
  gimp_procedure_dialog_get_label(dialog, "advanced-label", "_Advanced", FALSE, TRUE);
  gimp_procedure_dialog_fill_expander(dialog, "advanced", "advanced-label", FALSE, "advanced-box");
  top = g_list_append(top, const_cast<char*>("advanced"));
  gimp_procedure_dialog_fill_list(dialog, top);
  g_list_free(top);
  g_list_free(advanced);
  if (s.classifier_frame) gtk_widget_set_no_show_all(s.classifier_frame, TRUE);

  GtkWidget* content = gtk_dialog_get_content_area(GTK_DIALOG(widget));
  GtkWidget* chooser = model_chooser(s, note);
  gtk_box_pack_start(GTK_BOX(content), chooser, FALSE, FALSE, 0);
  gtk_box_reorder_child(GTK_BOX(content), chooser, 0);
  GtkWidget* diagnose_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget* diagnose_button = gtk_button_new_with_mnemonic("D_iagnose...");
  gtk_widget_set_tooltip_text(diagnose_button,
                              "Check the installation (GIMP, plug-in, engine, models, memory) and show what to fix");
  g_signal_connect(diagnose_button, "clicked", G_CALLBACK(on_diagnose), &s);
  gtk_box_pack_start(GTK_BOX(diagnose_row), diagnose_button, FALSE, FALSE, 0);
  gtk_box_pack_end(GTK_BOX(diagnose_row), engine_label(engine), FALSE, FALSE, 6);
  gtk_box_pack_end(GTK_BOX(content), diagnose_row, FALSE, FALSE, 0);
  gtk_widget_show_all(diagnose_row);
  if (live && has_arg(procedure, "seed")) {
    GtkWidget* box = live_box(s);
    gtk_box_pack_start(GTK_BOX(content), box, FALSE, FALSE, 0);
  }

  g_signal_connect(config, "notify::model", G_CALLBACK(on_model_notify), &s);
  g_signal_connect(config, "notify::sketch-layer", G_CALLBACK(on_sketch_notify), &s);
  if (has_arg(procedure, "quality")) {
    g_signal_connect(config, "notify::quality", G_CALLBACK(on_quality_notify), &s);
    g_signal_connect(config, "notify::steps", G_CALLBACK(on_preset_field_notify), &s);
    if (s.has_detail) {
      g_signal_connect(config, "notify::detail", G_CALLBACK(on_preset_field_notify), &s);
      g_signal_connect(config, "notify::refine-steps", G_CALLBACK(on_preset_field_notify), &s);
    }
    on_preset_field_notify(nullptr, nullptr, &s);  // the saved values may be a preset's
  }
  model_changed(s);
  sketch_changed(s);

  const bool ok = gimp_procedure_dialog_run(dialog);
  if (s.live_timer) g_source_remove(s.live_timer);
  g_signal_handlers_disconnect_by_data(config, &s);
  gtk_widget_destroy(widget);
  return ok;
}

PreviewWindow::PreviewWindow(const char* title) {

  GtkWidget* window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_title(GTK_WINDOW(window), title);
  gtk_window_set_keep_above(GTK_WINDOW(window), TRUE);
  gtk_window_set_deletable(GTK_WINDOW(window), FALSE);
  GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_set_border_width(GTK_CONTAINER(box), 8);
  GtkWidget* image = gtk_image_new();
  GtkWidget* label = gtk_label_new("");
  gtk_box_pack_start(GTK_BOX(box), image, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(box), label, FALSE, FALSE, 0);
  gtk_container_add(GTK_CONTAINER(window), box);
  window_ = window;
  image_ = image;
  label_ = label;
}

PreviewWindow::~PreviewWindow() {
  gtk_widget_destroy(GTK_WIDGET(window_));
  while (gtk_events_pending()) gtk_main_iteration();
}

void PreviewWindow::show(int width, int height, const std::vector<unsigned char>& rgb, int step, int total) {
  if (width <= 0 || height <= 0 || rgb.size() < static_cast<size_t>(width) * height * 3) return;
  GdkPixbuf* pixbuf = gdk_pixbuf_new_from_data(rgb.data(), GDK_COLORSPACE_RGB, FALSE, 8, width, height, width * 3,
                                               nullptr, nullptr);
  const int scale = std::max(1, 192 / std::max(width, height));
  GdkPixbuf* scaled = gdk_pixbuf_scale_simple(pixbuf, width * scale, height * scale,
                                              scale > 1 ? GDK_INTERP_NEAREST : GDK_INTERP_BILINEAR);
  gtk_image_set_from_pixbuf(GTK_IMAGE(image_), scaled);
  g_object_unref(scaled);
  g_object_unref(pixbuf);
  gchar* text = g_strdup_printf("step %d of %d", step, total);
  gtk_label_set_text(GTK_LABEL(label_), text);
  g_free(text);
  gtk_widget_show_all(GTK_WIDGET(window_));
  while (gtk_events_pending()) gtk_main_iteration();
}

}  // namespace dsk::ui
