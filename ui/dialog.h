// The interactive dialogs of the DiffSketch procedures (GimpProcedureDialog), and the small
// preview window shown while the engine works.
#pragma once

#include <libgimp/gimp.h>

#include <cstdint>
#include <functional>
#include <optional>
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

// An RGB u8 picture, row-major.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<unsigned char> rgb;
};

// Sketch Inpaint's live preview (the plug-in does the work: plugin/live.h). While the dialog's
// "Live preview" toggle is on, its timer asks `fingerprint` a few times a second; when the value
// changes (a stroke on the sketch layer, another selection, a setting), it calls `start`, which
// replaces any running preview. `take` hands over a finished one.
struct LiveHooks {
  std::function<uint64_t()> fingerprint;
  std::function<std::string()> start;  // "" or why no preview can start (shown in the dialog)
  struct Done {
    RgbImage before, after;  // the region the engine works on, before and after
    std::string error;
    double seconds = 0;
  };
  std::function<std::optional<Done>()> take;
};

// Shows the procedure's dialog over `config`. On top the few controls most edits need: the model
// (a chooser listing `models` by name with the first line of their card), the sketch layer with a
// thumbnail, sketch strength, seed with a "New seed" button, variants and the quality/speed choice
// (aux argument "quality": it sets steps and the detail settings together); every other argument
// under an "Advanced" expander, the classifier fields only for class-conditional models. `note` is
// shown under the chooser when not empty (e.g. why the list is empty). A "Diagnose" button shows
// `diagnose`'s report, and beside it which engine the edit runs on (`engine`: "this computer",
// "gpu-box:7860 (TLS, pinned)"). With `live` (Sketch Inpaint), a "Live preview" toggle and the preview's
// before/after; switching it on makes a random seed (-1) a fixed one, so that OK's edit starts
// from the preview's noise. true = OK; the config holds the values.
bool run_dialog(GimpProcedure* procedure, GimpProcedureConfig* config, const char* title,
                const std::vector<ModelChoice>& models, const std::string& note, const std::string& engine,
                const DiagnoseFn& diagnose, const LiveHooks* live = nullptr);

// The quality/speed presets: what "quality" sets ("custom": nothing; the fields as they are). Sketch
// Inpaint's (`inpaint`: its procedure has the detail arguments) standard is the edit's default steps.
struct QualityPreset {
  const char* id;
  int steps;
  const char* detail;  // for Sketch Inpaint
  int refine_steps;
};
const std::vector<QualityPreset>& quality_presets(bool inpaint);

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
