// The interactive dialogs of the DiffSketch procedures (GimpProcedureDialog), and the small
// preview window shown while the engine works.
#pragma once

#include <libgimp/gimp.h>

#include <functional>
#include <string>
#include <vector>

namespace dsk::ui {

// gimp_ui_init: before any dialog or window.
void init(const char* prog_name);

// A string argument of the config ("" when unset).
std::string config_string(GimpProcedureConfig* config, const char* name);

struct ModelChoice {
  std::string id;       // what the "model" argument holds
  std::string label;    // "diffsketch-default (editing-unet, 64 px)"
  std::string card;     // the first line of the model's card
  std::string problem;  // why its files fail their manifest ("" when they do not): OK is refused
  int classes = 0;      // class-conditional: the number of classes (the classifier fields are shown)
};

// Runs `diffsketch doctor --from-plugin` and returns its report (the Diagnose button).
using DiagnoseFn = std::function<std::string()>;

// Shows the procedure's dialog over `config`. On top the few controls most edits need: the model
// (a chooser listing `models` by name with the first line of their card), the sketch layer with a
// thumbnail, sketch strength, seed with a "New seed" button, variants and the quality/speed choice
// (aux argument "quality": it sets steps and the detail settings together); every other argument
// under an "Advanced" expander, the classifier fields only for class-conditional models. `note` is
// shown under the chooser when not empty (e.g. why the list is empty). A "Diagnose" button shows
// `diagnose`'s report. true = OK; the config holds the values.
bool run_dialog(GimpProcedure* procedure, GimpProcedureConfig* config, const char* title,
                const std::vector<ModelChoice>& models, const std::string& note, const DiagnoseFn& diagnose);

// The quality/speed presets: what "quality" sets ("custom": nothing; the fields as they are).
struct QualityPreset {
  const char* id;
  int steps;
  const char* detail;  // for Sketch Inpaint
  int refine_steps;
};
const std::vector<QualityPreset>& quality_presets();

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
