// The interactive dialogs of the DiffSketch procedures (GimpProcedureDialog), and the small
// preview window shown while the engine works.
#pragma once

#include <libgimp/gimp.h>

#include <string>
#include <vector>

namespace dsk::ui {

// gimp_ui_init: before any dialog or window.
void init(const char* prog_name);

struct ModelChoice {
  std::string id;     // what the "model" argument holds
  std::string label;  // "adm-small: 32 px adm-unet"
};

// Shows the procedure's dialog over `config`: every argument of the procedure, with the model
// argument as an editable chooser listing `models` (from the engine's model list); `note` is shown
// above it when not empty (e.g. why the list is empty). true = OK; the config holds the values.
bool run_dialog(GimpProcedure* procedure, GimpProcedureConfig* config, const char* title,
                const std::vector<ModelChoice>& models, const std::string& note);

// A small window with the engine's per-step preview; created hidden, shown on the first image.
class PreviewWindow {
 public:
  explicit PreviewWindow(const char* title);
  ~PreviewWindow();
  PreviewWindow(const PreviewWindow&) = delete;
  PreviewWindow& operator=(const PreviewWindow&) = delete;
  // An RGB u8 image, row-major; shown scaled to at least 192 px.
  void show(int width, int height, const std::vector<unsigned char>& rgb, int step, int total);

 private:
  void* window_ = nullptr;  // GtkWidget*, kept out of this header
  void* image_ = nullptr;
  void* label_ = nullptr;
};

}  // namespace dsk::ui
