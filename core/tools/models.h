// The model manager behind `diffsketch models add | verify | remove | info | manifest`: model
// folders installed into a models folder with a SHA-256 manifest (core/formats/manifest.h),
// checked before they are used, and removed whole.
//
//   diffsketch models add ~/Downloads/my-model             # a model folder: copied, loaded, manifest written
//   diffsketch models add 256x256_diffusion.pt --preset adm-256-uncond --name adm256
//   diffsketch models verify                               # every installed model, every byte
//   diffsketch models info default
//   diffsketch models remove adm256
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace dsk {

struct ModelAddOptions {
  std::string source;   // a model folder, or an official checkpoint (.pt) with preset or config
  std::string preset;   // as `diffsketch convert`
  std::string config;
  std::string name;     // the model id; default: the folder's name or the file's stem
  std::string dest;     // the models folder; default: user_models_dir()
};

// $XDG_DATA_HOME/diffsketch/models (~/.local/share/diffsketch/models): where add puts models.
std::string user_models_dir();

// Copies or converts into DEST/.NAME.adding-PID, checks it (model.json, the network loads whole from
// the weights, an incoming manifest holds), writes manifest.json, renames it to DEST/NAME. On any
// failure nothing is left in DEST. Returns the installed folder.
std::string models_add(const ModelAddOptions& options, std::ostream& log);

// Full check of one model (an id or a folder) or, with "" every model found. Prints one line per
// model (and each problem); returns true when none failed.
bool models_verify(const std::string& id_or_empty, std::ostream& out);

// Removes an installed model (by id) from a user models folder; a model of a system-wide folder is
// refused. Warns on `log` when the GIMP plug-in's saved settings point at it.
void models_remove(const std::string& id, std::ostream& log);

// Kind, working resolution, parameters, licence, source, the card's first line, manifest status.
nlohmann::json model_info_json(const std::string& id_or_path);
void print_model_info(const nlohmann::json& info, std::ostream& out);

// The GIMP plug-in's saved settings (plug-in-settings/*diffsketch*.{last,default} in GIMP's
// folder) that name `id` as their model: the file paths.
std::vector<std::string> gimp_settings_using_model(const std::string& id);

}  // namespace dsk
