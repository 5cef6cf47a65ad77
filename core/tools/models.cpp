#include "core/tools/models.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/base/env.h"
#include "core/base/error.h"
#include "core/base/remove_tree.h"
#include "core/formats/manifest.h"
#include "core/formats/model_folder.h"
#include "core/formats/model_registry.h"
#include "core/formats/safetensors.h"
#include "core/formats/sketch_features_model.h"
#include "core/tools/convert.h"

namespace dsk {

namespace fs = std::filesystem;

namespace {

void check_name(const std::string& name) {
  static const std::regex ok("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  if (!std::regex_match(name, ok))
    throw InputError("model name '" + name + "' is not usable as an id: use 1-64 letters, digits, '.', '_' or '-', "
                     "starting with a letter or digit (--name NAME)");
}

// Copies the regular files below `from` into `to` (created); refuses links and special files.
void copy_model_files(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, ec), end; it != end; it.increment(ec)) {
    if (ec) throw Error(from.string() + ": cannot list the folder (" + ec.message() + ")");
    const auto status = it->symlink_status();
    const fs::path rel = fs::relative(it->path(), from);
    if (fs::is_directory(status)) {
      fs::create_directories(to / rel);
    } else if (fs::is_symlink(status)) {
      throw InputError(it->path().string() + ": a symbolic link; a model folder to add must hold plain files");
    } else if (fs::is_regular_file(status)) {
      fs::copy_file(it->path(), to / rel, fs::copy_options::none, ec);
      if (ec) throw Error((to / rel).string() + ": cannot copy " + it->path().string() + " (" + ec.message() + ")");
    } else {
      throw InputError(it->path().string() + ": not a regular file (a FIFO, socket or device)");
    }
  }
  if (ec) throw Error(from.string() + ": cannot list the folder (" + ec.message() + ")");
}

// Builds the network the folder describes and loads its weights whole: a model.json that does not
// match its weights (another configuration, missing or misshapen tensors) fails here.
void load_check(const std::string& dir) {
  const ModelInfo info = read_model_info(dir);
  const auto cpu = torch::Device(torch::kCPU);
  switch (info.kind) {
    case ModelKind::AdmUnet:
    case ModelKind::EditingUnet: load_unet(dir, cpu, "models add"); break;
    case ModelKind::AdmClassifier: load_classifier(dir, cpu, "models add"); break;
    case ModelKind::SketchFeatures: load_sketch_resnet(dir); break;
  }
}

bool is_user_folder(const fs::path& models_dir) {
  const fs::path dir = fs::weakly_canonical(models_dir);
  std::vector<std::string> user = split_search_path(env_or("DSK_MODEL_PATH"));
  user.push_back(user_models_dir());
  for (const auto& u : user)
    if (fs::weakly_canonical(u) == dir) return true;
  return false;
}

std::string card_line_or_dash(const std::string& dir) {
  const std::string line = model_card_line(dir);
  return line.empty() ? "-" : line;
}

}  // namespace

std::string user_models_dir() {
  const std::string data_home = xdg_data_home();
  if (data_home.empty()) throw InputError("neither XDG_DATA_HOME nor HOME is set: give --dest DIR");
  return data_home + "/diffsketch/models";
}

std::string models_add(const ModelAddOptions& o, std::ostream& log) {
  std::error_code ec;
  if (o.source.empty()) throw InputError("models add: give a model folder or a checkpoint file");
  if (!fs::exists(o.source, ec)) throw InputError(o.source + ": does not exist");
  const bool folder = fs::is_directory(o.source, ec);
  if (!folder && !fs::is_regular_file(o.source, ec)) throw InputError(o.source + ": not a folder or a regular file");
  if (folder && (!o.preset.empty() || !o.config.empty()))
    throw InputError(o.source + ": is a model folder (model.json + weights.safetensors); --preset and --config are for "
                     "converting a checkpoint file");
  if (!folder && o.preset.empty() && o.config.empty())
    throw InputError(o.source + ": is a file; a checkpoint is converted with --preset P (see 'diffsketch convert --help') "
                     "or --config C, and a model folder is given as the folder");
  if (!o.preset.empty() && !o.config.empty()) throw InputError("give --preset or --config, not both");

  const fs::path source = fs::path(o.source).lexically_normal();
  std::string name = o.name;
  if (name.empty()) name = (folder ? (source.has_filename() ? source.filename() : source.parent_path().filename()) : source.stem()).string();
  check_name(name);
  const fs::path dest = o.dest.empty() ? fs::path(user_models_dir()) : fs::path(o.dest);
  const fs::path target = dest / name;
  if (fs::exists(target, ec) || fs::is_symlink(target, ec))
    throw InputError("a model named '" + name + "' is already installed at " + target.string() +
                     ": choose another --name, or remove it first (diffsketch models remove " + name + ")");
  fs::create_directories(dest, ec);
  if (ec || !fs::is_directory(dest))
    throw Error("cannot create the models folder " + dest.string() + " (" + (ec ? ec.message() : "not a folder") +
                "); choose another with --dest DIR");
  if (::access(dest.c_str(), W_OK) != 0)
    throw Error("the models folder " + dest.string() + " is not writable (" + std::strerror(errno) +
                "); choose another with --dest DIR, or fix its permissions");

  const fs::path staging = dest / ("." + name + ".adding-" + std::to_string(::getpid()));
  remove_tree(staging);
  try {
    std::string made;
    if (folder) {
      // An incoming manifest must hold before anything is trusted: a damaged download is named here.
      const ManifestCheck incoming = check_manifest(source.string(), true);
      if (incoming.failed()) throw InputError(damaged_model_message(source.string(), incoming));
      read_model_info(source.string());  // a clear error about model.json before copying gigabytes
      copy_model_files(source, staging);
      fs::remove(staging / kManifestFile, ec);
      made = "copied from the model folder " + source.filename().string();
      if (incoming.ok()) made += " (its manifest verified: " + read_manifest(source.string()).made + ")";
    } else {
      ConvertOptions c;
      c.input = source.string();
      c.out_dir = staging.string();
      c.preset = o.preset;
      c.config = o.config;
      ModelInfo converted = convert_checkpoint(c, log);
      converted.name = name;  // convert names it after its output folder, here the staging one
      write_model_info(converted);
      made = "converted from " + source.filename().string() +
             (o.preset.empty() ? " with the configuration " + fs::path(o.config).filename().string() : " with preset " + o.preset);
    }
    load_check(staging.string());
    const Manifest m = write_manifest(staging.string(), made);
    if (::rename(staging.c_str(), target.c_str()) != 0)
      throw Error("cannot move the new model into " + target.string() + " (" + std::strerror(errno) + ")");
    const ModelInfo info = read_model_info(target.string());
    log << "added model '" << name << "' at " << target.string() << " (" << kind_name(info.kind) << ", "
        << info.resolution << " px, " << m.files.size() << " files, manifest.json written)\n";
    std::vector<std::string> skipped;
    for (const auto& other : list_models(&skipped))
      if (other.id == name && fs::weakly_canonical(other.path) != fs::weakly_canonical(target))
        log << "note: another model with the id '" << name << "' is found first, at " << other.path
            << "; use the folder path, or add this one under another --name\n";
    return target.string();
  } catch (...) {
    remove_tree(staging);
    throw;
  }
}

bool models_verify(const std::string& id_or_empty, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> todo;  // id, folder
  if (id_or_empty.empty()) {
    std::vector<std::string> skipped;
    for (const auto& m : list_models(&skipped)) todo.emplace_back(m.id, m.path);
    for (const auto& why : skipped) out << "broken model folder (not loaded): " << why << "\n";
    if (todo.empty()) out << "no models found\n";
  } else {
    const std::string dir = resolve_model(id_or_empty);
    todo.emplace_back(id_or_empty, dir);
  }
  bool all_ok = true;
  for (const auto& [id, dir] : todo) {
    const ManifestCheck c = check_manifest(dir, true);
    if (c.ok()) {
      out << id << ": verified (" << read_manifest(dir).files.size() << " files, SHA-256)\n";
    } else if (c.status == ManifestCheck::Status::NoManifest) {
      out << id << ": no manifest.json, files not checked (add the model with 'diffsketch models add', or write one "
          << "with 'diffsketch models manifest " << dir << "')\n";
    } else {
      all_ok = false;
      out << id << ": FAILED\n";
      for (const auto& p : c.problems) out << "  " << p << "\n";
      out << "  " << damaged_model_message(dir, c) << "\n";
    }
    for (const auto& u : c.unlisted) out << "  note: " << u << " is not in the manifest (added after it was written)\n";
  }
  return all_ok;
}

std::vector<std::string> gimp_settings_using_model(const std::string& id) {
  std::vector<std::string> out;
  const std::string gimp_dir = gimp3_profile_dir();
  if (gimp_dir.empty()) return out;
  std::error_code ec;
  const fs::path settings = fs::path(gimp_dir) / "plug-in-settings";
  // GimpProcedureConfig serialises each argument as (name value): (model "default").
  const std::string needle = "(model \"" + id + "\")";
  for (fs::directory_iterator it(settings, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.find("diffsketch") == std::string::npos) continue;
    std::ifstream in(it->path());
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (text.find(needle) != std::string::npos) out.push_back(it->path().string());
  }
  return out;
}

void models_remove(const std::string& id, std::ostream& log) {
  if (id.empty() || id.find('/') != std::string::npos)
    throw InputError("models remove takes a model id from 'diffsketch models list', not a path ('" + id + "')");
  std::vector<std::string> skipped;
  std::string dir;
  for (const auto& m : list_models(&skipped))
    if (m.id == id) dir = m.path;
  if (dir.empty()) {
    // A broken folder is not listed, but is still the user's to remove.
    for (const auto& base : model_search_path())
      if (is_user_folder(base) && fs::is_directory(fs::path(base) / id)) dir = (fs::path(base) / id).string();
    if (dir.empty()) throw InputError("no installed model '" + id + "' (see 'diffsketch models list')");
  }
  const fs::path folder(dir), parent = folder.parent_path();
  if (!is_user_folder(parent))
    throw InputError("model '" + id + "' is in " + parent.string() +
                     ", a system-wide or built-in models folder, not yours to remove: it came with the diffsketch "
                     "package or the source tree (apt-get remove diffsketch removes the package's models)");
  for (const auto& f : gimp_settings_using_model(id))
    log << "warning: the GIMP plug-in's saved settings use model '" << id << "' (" << f
        << "); its next run will need another model chosen in the dialog\n";
  const fs::path doomed = parent / ("." + id + ".removing-" + std::to_string(::getpid()));
  if (::rename(folder.c_str(), doomed.c_str()) != 0)
    throw Error("cannot remove " + dir + " (" + std::strerror(errno) + "); check the models folder's permissions");
  remove_tree(doomed);
  log << "removed model '" << id << "' (" << dir << ")\n";
}

nlohmann::json model_info_json(const std::string& id_or_path) {
  const std::string dir = resolve_model(id_or_path);
  const ModelInfo info = read_model_info(dir);
  int64_t params = 0;
  const auto weights = st::File::open(info.weights_path());
  for (const auto& t : weights.tensors()) params += t.numel();
  const ManifestCheck check = check_manifest(dir, true);
  nlohmann::json j = {{"id", fs::path(dir).filename().string()},
                      {"path", dir},
                      {"name", info.name},
                      {"kind", kind_name(info.kind)},
                      {"resolution", info.resolution},
                      {"parameters", params},
                      {"licence", info.licence},
                      {"source", info.source},
                      {"notes", info.notes},
                      {"card", model_card_line(dir)},
                      {"manifest", check.ok() ? "verified" : check.failed() ? "failed" : "none"},
                      {"manifest_problems", check.problems}};
  if (check.ok()) j["made"] = read_manifest(dir).made;
  return j;
}

void print_model_info(const nlohmann::json& j, std::ostream& out) {
  const auto s = [&](const char* k) { return j[k].get<std::string>().empty() ? std::string("-") : j[k].get<std::string>(); };
  out << "id          " << s("id") << "\n"
      << "name        " << s("name") << "\n"
      << "card        " << card_line_or_dash(j["path"]) << "\n"
      << "kind        " << s("kind") << "\n"
      << "resolution  " << j["resolution"].get<int>() << " px (the network's working size)\n"
      << "parameters  " << j["parameters"].get<int64_t>() << "\n"
      << "licence     " << s("licence") << "\n"
      << "source      " << s("source") << "\n"
      << "notes       " << s("notes") << "\n"
      << "folder      " << s("path") << "\n";
  const std::string m = j["manifest"];
  out << "manifest    "
      << (m == "verified" ? "verified (every file's SHA-256); made: " + j.value("made", std::string("-"))
          : m == "none"   ? std::string("none (files not checked)")
                          : "FAILED: " + j["manifest_problems"].dump())
      << "\n";
}

}  // namespace dsk
