// Where model folders are found: `diffsketch models list`, the plug-in's chooser, and model
// arguments given as ids.
#pragma once

#include <string>
#include <vector>

namespace dsk {

// A model found in the model folders, for `diffsketch models list` and the plug-in's chooser.
struct ModelEntry {
  std::string id;    // folder name
  std::string kind, name, path;
  int resolution = 0;
  int classes = 0;       // flags.num_classes when class-conditional, else 0
  std::string card;      // the first line of MODEL_CARD.md (or README.md), without its '#'
  std::string problem;   // empty, or why its files fail the manifest (sizes only: check_manifest(dir, false))
};
// The first line of a model folder's card (MODEL_CARD.md, else README.md), "" when it has none.
std::string model_card_line(const std::string& dir);
// Folders searched, in order: $DSK_MODEL_PATH (colon-separated), $XDG_DATA_HOME/diffsketch/models
// (~/.local/share/...), each $XDG_DATA_DIRS/diffsketch/models, <exe>/../share/diffsketch/models,
// and the source tree's models/ for a build that was not installed.
std::vector<std::string> model_search_path();
// A folder with a model.json that does not read is skipped (its error goes to `skipped` when given):
// one broken folder never hides the others.
std::vector<ModelEntry> list_models(std::vector<std::string>* skipped = nullptr);
// A model argument: a folder path, or an id from list_models(). Throws InputError listing the ids.
std::string resolve_model(const std::string& id_or_path);

}  // namespace dsk
