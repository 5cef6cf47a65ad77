// `diffsketch models list | add | verify | remove | info | manifest` (core/tools/models.h).
#include <iostream>

#include "core/cli/commands.h"
#include "core/formats/manifest.h"
#include "core/formats/model_registry.h"
#include "core/tools/models.h"

namespace dsk::cli {

void register_models(CLI::App& app, Runners& runners) {
  auto* models = app.add_subcommand("models", "installed models: list, add, verify, remove, info");
  models->require_subcommand(1);

  auto* list = models->add_subcommand("list", "the models found in the model folders");
  static bool list_json = false;
  list->add_flag("--json", list_json, "machine-readable (the plug-in reads this)");
  runners.push_back([list] {
    if (!list->parsed()) return -1;
    std::vector<std::string> skipped;
    const auto all = list_models(&skipped);
    for (const auto& why : skipped) std::cerr << "diffsketch: warning: skipped a broken model folder: " << why << "\n";
    if (list_json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& m : all)
        j.push_back({{"id", m.id}, {"kind", m.kind}, {"name", m.name}, {"path", m.path}, {"resolution", m.resolution},
                     {"classes", m.classes}, {"card", m.card}, {"problem", m.problem}});
      std::cout << j.dump(2) << "\n";
    } else {
      for (const auto& m : all)
        std::cout << m.id << "\t" << m.kind << "\t" << m.resolution << " px\t" << m.name << "\t" << m.path
                  << (m.problem.empty() ? "" : "\tDAMAGED (diffsketch models verify " + m.id + ")") << "\n";
      if (all.empty()) std::cerr << "no models found; searched:\n";
      if (all.empty())
        for (const auto& d : model_search_path()) std::cerr << "  " << d << "\n";
    }
    return 0;
  });

  auto* add = models->add_subcommand("add", "install a model folder (copied and checked) or convert an official checkpoint");
  static ModelAddOptions add_o;
  add->add_option("path", add_o.source, "a model folder, or an official guided-diffusion .pt (with --preset or --config)")
      ->required();
  add->add_option("--preset", add_o.preset, "convert a checkpoint with a published configuration (see 'diffsketch convert --help')");
  add->add_option("--config", add_o.config, "convert a checkpoint with a JSON {\"kind\": ..., \"flags\": {...}}");
  add->add_option("--name", add_o.name, "the model id (default: the folder's name or the file's stem)");
  add->add_option("--dest", add_o.dest, "the models folder to install into (default: $XDG_DATA_HOME/diffsketch/models)");
  runners.push_back([add] {
    if (!add->parsed()) return -1;
    models_add(add_o, std::cerr);
    return 0;
  });

  auto* verify = models->add_subcommand("verify", "check every file of a model (or of all models) against its SHA-256 manifest");
  static std::string verify_id;
  verify->add_option("id", verify_id, "a model id or folder (default: every model found)");
  runners.push_back([verify] {
    if (!verify->parsed()) return -1;
    return models_verify(verify_id, std::cout) ? 0 : 1;
  });

  auto* remove = models->add_subcommand("remove", "remove an installed model from your models folder");
  static std::string remove_id;
  remove->add_option("id", remove_id, "the model id")->required();
  runners.push_back([remove] {
    if (!remove->parsed()) return -1;
    models_remove(remove_id, std::cerr);
    return 0;
  });

  auto* info = models->add_subcommand("info", "a model's kind, resolution, parameters, licence, source and card");
  static std::string info_id;
  static bool info_json = false;
  info->add_option("id", info_id, "a model id or folder")->required();
  info->add_flag("--json", info_json, "machine-readable");
  runners.push_back([info] {
    if (!info->parsed()) return -1;
    const auto j = model_info_json(info_id);
    if (info_json)
      std::cout << j.dump(2) << "\n";
    else
      print_model_info(j, std::cout);
    return 0;
  });

  auto* manifest = models->add_subcommand("manifest", "(re)write a model folder's manifest.json from its files as they are now");
  static std::string manifest_dir, manifest_made = "written by diffsketch models manifest";
  manifest->add_option("dir", manifest_dir, "the model folder")->required();
  manifest->add_option("--made", manifest_made, "how the folder was made (kept in the manifest)");
  runners.push_back([manifest] {
    if (!manifest->parsed()) return -1;
    const auto m = write_manifest(manifest_dir, manifest_made);
    std::cerr << "wrote " << manifest_dir << "/" << kManifestFile << " (" << m.files.size() << " files)\n";
    return 0;
  });
}

}  // namespace dsk::cli
