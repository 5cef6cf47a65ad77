#include "core/base/env.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dsk {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::vector<std::string> split_search_path(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ':');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string xdg_data_home() {
  const std::string home = env_or("HOME");
  return env_or("XDG_DATA_HOME", home.empty() ? "" : home + "/.local/share");
}

std::vector<std::string> xdg_data_dirs() { return split_search_path(env_or("XDG_DATA_DIRS", "/usr/local/share:/usr/share")); }

std::string gimp3_profile_dir() {
  const std::string home = env_or("HOME");
  const std::string config = env_or("XDG_CONFIG_HOME", home.empty() ? "" : home + "/.config");
  return env_or("GIMP3_DIRECTORY", config.empty() ? "" : config + "/GIMP/3.0");
}

std::vector<EngineCandidate> engine_candidates(const std::string& plugin_dir) {
  std::vector<EngineCandidate> out;
  if (!plugin_dir.empty()) {
    std::ifstream in(plugin_dir + "/engine-path");
    std::string path;
    if (std::getline(in, path)) {
      while (!path.empty() && (path.back() == ' ' || path.back() == '\t' || path.back() == '\r')) path.pop_back();
      if (!path.empty()) out.push_back({path, "engine-path beside the plug-in (" + plugin_dir + "/engine-path)"});
    }
  }
  if (const std::string data_home = xdg_data_home(); !data_home.empty())
    out.push_back({data_home + "/diffsketch/bin/diffsketch", "the data folders"});
  for (const auto& d : xdg_data_dirs()) out.push_back({d + "/diffsketch/bin/diffsketch", "the data folders"});
  return out;
}

}  // namespace dsk
