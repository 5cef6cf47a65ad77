#include "core/formats/manifest.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/error.h"
#include "core/base/files.h"
#include "core/base/json_depth.h"
#include "core/base/limits.h"
#include "core/base/sha256.h"
#include "core/base/version.h"

namespace dsk {

namespace fs = std::filesystem;

namespace {

constexpr int kManifestFormatVersion = 1;
constexpr uintmax_t kMaxManifestBytes = 4 << 20;

// Regular files below `dir`, relative and sorted; manifest.json and in-progress temporaries left out.
std::vector<std::string> folder_files(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
    const auto status = it->symlink_status(ec);
    const std::string rel = fs::relative(it->path(), dir).generic_string();
    if (fs::is_directory(status)) continue;
    if (fs::is_symlink(status))
      throw InputError(it->path().string() + ": a symbolic link; a model folder holds plain files (copy the file in)");
    if (!fs::is_regular_file(status))
      throw InputError(it->path().string() + ": not a regular file (a FIFO, socket or device) in a model folder");
    if (rel == kManifestFile) continue;
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string ManifestCheck::summary() const {
  switch (status) {
    case Status::NoManifest: return "no manifest.json (files not checked)";
    case Status::Ok: return "verified";
    case Status::Failed: break;
  }
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

Manifest write_manifest(const std::string& dir, const std::string& made) {
  if (!fs::is_directory(dir)) throw InputError(dir + ": not a folder");
  Manifest m;
  m.made = made;
  m.diffsketch_version = kVersion;
  m.created = utc_now();
  nlohmann::json files = nlohmann::json::array();
  for (const auto& name : folder_files(dir)) {
    ManifestEntry e;
    e.name = name;
    e.sha256 = sha256_file((fs::path(dir) / name).string(), &e.size);
    files.push_back({{"name", e.name}, {"size", e.size}, {"sha256", e.sha256}});
    m.files.push_back(std::move(e));
  }
  const nlohmann::json j = {{"format_version", kManifestFormatVersion}, {"made", m.made},
                            {"diffsketch_version", m.diffsketch_version}, {"created", m.created}, {"files", files}};
  write_file(fs::path(dir) / kManifestFile, j.dump(2) + "\n");
  return m;
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestFile).string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path + ": missing or not a regular file");
  if (fs::file_size(path, ec) > kMaxManifestBytes) throw InputError(path + ": over 4 MiB; not a manifest");
  std::ifstream in(path);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in && !in.eof()) throw InputError(path + ": cannot be read");
  const auto bad = [&](const std::string& why) {
    return InputError(path + ": " + why + "; rewrite it with 'diffsketch models manifest " + dir + "' if the files are right");
  };
  if (json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth) throw bad("nested too deep");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("invalid JSON (") + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("format_version") || !j["format_version"].is_number_integer())
    throw bad("not a manifest (no integer format_version)");
  if (j["format_version"].get<int64_t>() != kManifestFormatVersion)
    throw bad("format_version " + j["format_version"].dump() + " is not one this DiffSketch reads (1)");
  if (!j.contains("files") || !j["files"].is_array()) throw bad("missing array 'files'");
  Manifest m;
  for (auto [key, field] : {std::pair{"made", &m.made}, {"diffsketch_version", &m.diffsketch_version}, {"created", &m.created}})
    if (j.contains(key) && j[key].is_string()) *field = j[key].get<std::string>();
  std::set<std::string> names;
  for (const auto& f : j["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string())
      throw bad("each entry of 'files' needs a string name, an unsigned size and a string sha256");
    ManifestEntry e{f["name"].get<std::string>(), f["sha256"].get<std::string>(), f["size"].get<uint64_t>()};
    const fs::path p(e.name);
    if (e.name.empty() || p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; }))
      throw bad("file name '" + e.name + "' leaves the model folder");
    if (!is_hex_digest(e.sha256)) throw bad(e.name + ": sha256 is not 64 lower-case hex digits");
    if (!names.insert(e.name).second) throw bad(e.name + " is listed twice");
    m.files.push_back(std::move(e));
  }
  return m;
}

ManifestCheck check_manifest(const std::string& dir, bool full) {
  ManifestCheck c;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / kManifestFile, ec)) return c;
  c.status = ManifestCheck::Status::Ok;
  Manifest m;
  try {
    m = read_manifest(dir);
  } catch (const std::exception& e) {
    c.status = ManifestCheck::Status::Failed;
    c.problems.push_back(e.what());
    return c;
  }
  std::set<std::string> listed;
  for (const auto& e : m.files) {
    listed.insert(e.name);
    const fs::path p = fs::path(dir) / e.name;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      c.problems.push_back(e.name + ": missing (the manifest lists it)");
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      c.problems.push_back(e.name + ": not a regular file");
      continue;
    }
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size != e.size) {
      c.problems.push_back(e.name + ": " + std::to_string(size) + " bytes, the manifest says " + std::to_string(e.size) +
                           (size < e.size ? " (truncated)" : " (changed)"));
      continue;
    }
    if (!full) continue;
    try {
      if (sha256_file(p.string()) != e.sha256) c.problems.push_back(e.name + ": contents changed (SHA-256 differs from the manifest)");
    } catch (const std::exception& ex) {
      c.problems.push_back(ex.what());
    }
  }
  try {
    for (const auto& name : folder_files(dir))
      if (!listed.count(name)) c.unlisted.push_back(name);
  } catch (const std::exception& e) {
    c.problems.push_back(e.what());
  }
  if (!c.problems.empty()) c.status = ManifestCheck::Status::Failed;
  return c;
}

std::string damaged_model_message(const std::string& dir, const ManifestCheck& check) {
  const std::string id = fs::path(dir).filename().string();
  return "model '" + id + "' (" + dir + ") fails its manifest: " + check.summary() +
         ". Fix: reinstall the model (diffsketch models remove " + id + ", then diffsketch models add SOURCE); "
         "a model that came with the diffsketch package is restored by reinstalling the package";
}

void require_intact_model(const std::string& dir) {
  const ManifestCheck c = check_manifest(dir, true);
  if (c.failed()) throw InputError(damaged_model_message(dir, c));
}

}  // namespace dsk
