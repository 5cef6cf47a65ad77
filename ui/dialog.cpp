// The DiffSketch dialogs: GimpProcedureDialog with every argument of the procedure, grouped, and a
// model chooser filled from the engine's model list. The model stays a string argument (choices
// would be frozen at registration), so the chooser is an editable combo bound to it: a listed id
// or any model folder path.
#include "ui/dialog.h"

#include <libgimp/gimpui.h>

namespace dsk::ui {

namespace {

bool has_arg(GimpProcedure* procedure, const char* name) {
  return gimp_procedure_find_argument(procedure, name) != nullptr ||
         gimp_procedure_find_aux_argument(procedure, name) != nullptr;
}

// A "title" frame holding the listed arguments that the procedure has.
void add_group(GimpProcedureDialog* dialog, GimpProcedure* procedure, const char* id, const char* title,
               std::initializer_list<const char*> names, GList** top) {
  GList* props = nullptr;
  for (const char* n : names)
    if (has_arg(procedure, n)) props = g_list_append(props, const_cast<char*>(n));
  if (!props) return;
  const std::string box_id = std::string(id) + "-box", label_id = std::string(id) + "-label";
  gimp_procedure_dialog_fill_box_list(dialog, box_id.c_str(), props);
  gimp_procedure_dialog_get_label(dialog, label_id.c_str(), title, FALSE, FALSE);
  gimp_procedure_dialog_fill_frame(dialog, id, label_id.c_str(), FALSE, box_id.c_str());
  *top = g_list_append(*top, const_cast<char*>(id));
  g_list_free(props);
}

// "Model" label + editable combo of the engine's models, bound to the config's "model".
GtkWidget* model_chooser(GimpProcedureConfig* config, const std::vector<ModelChoice>& models, const std::string& note) {
  GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget* row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget* label = gtk_label_new_with_mnemonic("_Model");
  GtkWidget* combo = gtk_combo_box_text_new_with_entry();
  for (const auto& m : models) gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(combo), m.id.c_str(), m.id.c_str());
  GtkWidget* entry = gtk_bin_get_child(GTK_BIN(combo));
  g_object_bind_property(config, "model", entry, "text", GBindingFlags(G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE));
  gtk_label_set_mnemonic_widget(GTK_LABEL(label), entry);
  std::string tip = "A model id, or the path of a model folder.";
  for (const auto& m : models) tip += "\n" + m.label;
  gtk_widget_set_tooltip_text(combo, tip.c_str());
  gtk_box_pack_start(GTK_BOX(row), label, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(row), combo, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(box), row, FALSE, FALSE, 0);
  if (!note.empty()) {
    GtkWidget* warn = gtk_label_new(note.c_str());
    gtk_label_set_line_wrap(GTK_LABEL(warn), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(warn), 60);
    gtk_label_set_xalign(GTK_LABEL(warn), 0.0f);
    gtk_box_pack_start(GTK_BOX(box), warn, FALSE, FALSE, 0);
  }
  gtk_widget_show_all(box);
  return box;
}

}  // namespace

void init(const char* prog_name) { gimp_ui_init(prog_name); }

bool run_dialog(GimpProcedure* procedure, GimpProcedureConfig* config, const char* title,
                const std::vector<ModelChoice>& models, const std::string& note) {
  GtkWidget* widget = gimp_procedure_dialog_new(procedure, config, title);
  auto* dialog = GIMP_PROCEDURE_DIALOG(widget);
  GList* top = nullptr;
  top = g_list_append(top, const_cast<char*>("sketch-layer"));
  add_group(dialog, procedure, "sampling-frame", "Sampling",
            {"steps", "sampler", "seed", "variants", "seed-a", "seed-b", "frames", "mode"}, &top);
  add_group(dialog, procedure, "guidance-frame", "Guidance",
            {"sketch-strength", "sketch-guidance", "sketch-guidance-mode", "classifier", "class", "classifier-scale"}, &top);
  add_group(dialog, procedure, "selection-frame", "Selection", {"context-margin", "feather", "init-strength", "detail", "refine-strength", "refine-steps", "harmonize"}, &top);
  add_group(dialog, procedure, "engine-frame", "Engine", {"engine-idle-minutes"}, &top);
  gimp_procedure_dialog_fill_list(dialog, top);
  g_list_free(top);

  GtkWidget* content = gtk_dialog_get_content_area(GTK_DIALOG(widget));
  GtkWidget* chooser = model_chooser(config, models, note);
  gtk_box_pack_start(GTK_BOX(content), chooser, FALSE, FALSE, 0);
  gtk_box_reorder_child(GTK_BOX(content), chooser, 0);

  const bool ok = gimp_procedure_dialog_run(dialog);
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
