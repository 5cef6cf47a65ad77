// The environment as the XDG base directory specification and GIMP 3 read it (model folders,
// the model manager, the doctor).
#pragma once

#include <string>
#include <vector>

namespace dsk {

// $NAME, or `fallback` when it is unset or empty.
std::string env_or(const char* name, const std::string& fallback = "");
// "a:b::c" -> {"a", "b", "c"} (empty entries dropped).
std::vector<std::string> split_search_path(const std::string& colon_separated);
// $XDG_DATA_HOME, else $HOME/.local/share; "" when neither is set.
std::string xdg_data_home();
// $XDG_DATA_DIRS, else /usr/local/share:/usr/share, split.
std::vector<std::string> xdg_data_dirs();
// GIMP 3's profile folder: $GIMP3_DIRECTORY, else $XDG_CONFIG_HOME (or $HOME/.config)/GIMP/3.0;
// "" when none of them is set.
std::string gimp3_profile_dir();

// Where the GIMP plug-in looks for the engine after $DSK_ENGINE, in order: the path written in
// PLUGIN_DIR/engine-path (by the installers), $XDG_DATA_HOME/diffsketch/bin/diffsketch, each
// $XDG_DATA_DIRS/diffsketch/bin/diffsketch. Then come the plug-in's compiled-in paths and PATH.
// Shared by the plug-in (plugin/engine_client.cpp) and `diffsketch doctor`, which must agree.
struct EngineCandidate {
  std::string path;
  std::string source;  // "engine-path beside the plug-in", "the data folders"
};
std::vector<EngineCandidate> engine_candidates(const std::string& plugin_dir);

}  // namespace dsk
