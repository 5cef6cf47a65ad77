#include "core/formats/model_registry.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/base/env.h"
#include "core/base/error.h"
#include "core/formats/manifest.h"
#include "core/formats/model_info.h"
#include "models/adm_config.h"

namespace dsk {

namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

}  // namespace

std::string model_card_line(const std::string& dir) {
  for (const char* name : {"MODEL_CARD.md", "README.md"}) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / name;
    if (!fs::is_regular_file(p, ec)) continue;
    std::ifstream in(p);
    std::string line;
    while (std::getline(in, line)) {
      const auto first = line.find_first_not_of("# \t\r");
      if (first == std::string::npos) continue;
      line = line.substr(first);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      return line.size() > 200 ? line.substr(0, 200) + "..." : line;
    }
  }
  return "";
}

std::vector<std::string> model_search_path() {
  std::vector<std::string> dirs = split_search_path(env_or("DSK_MODEL_PATH"));
  if (const std::string data_home = xdg_data_home(); !data_home.empty()) dirs.push_back(data_home + "/diffsketch/models");
  for (const auto& d : xdg_data_dirs()) dirs.push_back(d + "/diffsketch/models");
  const fs::path exe = executable_dir();
  if (!exe.empty()) {
    dirs.push_back((exe / ".." / "share" / "diffsketch" / "models").lexically_normal().string());
    // A build tree: <repo>/build/bin/diffsketch -> <repo>/models.
    const fs::path repo_models = (exe / ".." / ".." / "models").lexically_normal();
    if (fs::exists(repo_models / ".." / "core" / "engine" / "engine.h")) dirs.push_back(repo_models.string());
  }
  return dirs;
}

std::vector<ModelEntry> list_models(std::vector<std::string>* skipped) {
  std::vector<ModelEntry> out;
  std::set<std::string> seen;
  for (const auto& dir : model_search_path()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    for (const auto& p : entries) {
      // error_code forms throughout: a symlink loop or an unreadable entry is skipped, not thrown.
      // Hidden folders are models being added or removed (core/tools/models.h), not models.
      if (p.filename().string().starts_with(".")) continue;
      if (!fs::exists(p / "model.json", ec) || seen.count(p.filename().string())) continue;
      try {
        const auto info = read_model_info(p.string());
        seen.insert(p.filename().string());
        ModelEntry m{p.filename().string(), kind_name(info.kind), info.name, p.string(), info.resolution};
        if (info.flags.contains("class_cond") && flag_bool(info.flags["class_cond"], "class_cond", p.string()))
          m.classes = info.flags.contains("num_classes") ? flag_int(info.flags["num_classes"], "num_classes", p.string()) : 1000;
        m.card = model_card_line(p.string());
        const ManifestCheck check = check_manifest(p.string(), false);
        if (check.failed()) m.problem = damaged_model_message(p.string(), check);
        out.push_back(std::move(m));
      } catch (const std::exception& e) {
        // A broken folder is not a model, and the others stay usable; `diffsketch info DIR` says why too.
        if (skipped) skipped->push_back(e.what());
      }
    }
  }
  return out;
}

std::string resolve_model(const std::string& id_or_path) {
  if (id_or_path.empty()) throw InputError("no model given (--model DIR or an id from 'diffsketch models list')");
  if (fs::exists(id_or_path) || id_or_path.find('/') != std::string::npos) return id_or_path;
  std::string ids;
  for (const auto& m : list_models()) {
    if (m.id == id_or_path) return m.path;
    ids += (ids.empty() ? "" : ", ") + m.id;
  }
  throw InputError("model '" + id_or_path + "' not found: not a folder, and not an installed model id (installed: " +
                   (ids.empty() ? "none" : ids) + ")");
}

}  // namespace dsk
