// A model folder's manifest.json: every file's name, size and SHA-256, written when the model is
// added (`diffsketch models add`) or shipped, so that a changed, truncated or missing file is found
// and named before a network is built from it. Torch-free.
//
// manifest.json:
//   {"format_version": 1, "made": "how the folder was made (copied from ..., converted from ...)",
//    "diffsketch_version": "0.1.0", "created": "2026-12-02T20:00:00Z",
//    "files": [{"name": "model.json", "size": 735, "sha256": "..."}, ...]}
// Names are relative to the folder ('/'-separated for files in subfolders); manifest.json itself
// is not listed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsk {

inline constexpr const char* kManifestFile = "manifest.json";

struct ManifestEntry {
  std::string name, sha256;
  uint64_t size = 0;
};

struct Manifest {
  std::string made, diffsketch_version, created;
  std::vector<ManifestEntry> files;
};

// How a folder compares with its manifest.
struct ManifestCheck {
  enum class Status { Ok, NoManifest, Failed } status = Status::NoManifest;
  std::vector<std::string> problems;  // one per file that fails: "weights.safetensors: 1200 bytes, the manifest says ..."
  std::vector<std::string> unlisted;  // files present but not in the manifest (added later; not a failure)
  bool ok() const { return status == Status::Ok; }
  bool failed() const { return status == Status::Failed; }
  std::string summary() const;  // "verified (5 files)", "no manifest.json", or the problems joined with "; "
};

// Hashes every regular file below `dir` (except manifest.json) and writes DIR/manifest.json whole.
// Refuses symbolic links and special files: a model folder holds plain files.
Manifest write_manifest(const std::string& dir, const std::string& made);
// Reads DIR/manifest.json (InputError naming the file when it is malformed).
Manifest read_manifest(const std::string& dir);

// `full`: every file's SHA-256 (reads every byte); otherwise presence and sizes only (what a list
// of models can afford each time it is shown; it finds truncated and missing files).
ManifestCheck check_manifest(const std::string& dir, bool full);

// The words `diffsketch doctor`, `models verify`, the engine and the plug-in all use for a model
// whose files fail their manifest: what is wrong and how to fix it.
std::string damaged_model_message(const std::string& dir, const ManifestCheck& check);

// For loaders: throws InputError(damaged_model_message) when DIR has a manifest and a file fails
// it (full check); a folder without a manifest loads as before.
void require_intact_model(const std::string& dir);

}  // namespace dsk
