#include "eddy/model_dir.h"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <vector>

#include "eddy/model_error.h"

namespace eddy {

namespace fs = std::filesystem;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

bool HasConfig(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "config.json", ec);
}

}  // namespace

fs::path HuggingFaceHubCache() {
  if (auto v = Env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = Env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = Env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  return fs::path(Env("HOME").empty() ? "/" : Env("HOME")) / ".cache" / "huggingface" / "hub";
}

bool LooksLikeRepoId(const std::string& spec) {
  static const std::regex kRepo("^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$");
  return std::regex_match(spec, kRepo);
}

fs::path RepoCacheDir(const std::string& repo_id) {
  std::string flat = "models--" + repo_id;
  for (size_t pos = flat.find('/'); pos != std::string::npos; pos = flat.find('/', pos)) {
    flat.replace(pos, 1, "--");
  }
  return HuggingFaceHubCache() / flat;
}

fs::path ResolveModelDir(const std::string& spec) {
  std::vector<std::string> looked;
  std::error_code ec;
  const fs::path as_path(spec);
  if (fs::is_directory(as_path, ec)) {
    if (HasConfig(as_path)) return as_path;
    looked.push_back(as_path.string() + " (a directory without config.json)");
  } else {
    looked.push_back(as_path.string() + " (no such directory)");
  }
  if (LooksLikeRepoId(spec)) {
    const fs::path repo = RepoCacheDir(spec);
    const fs::path snapshots = repo / "snapshots";
    std::ifstream ref(repo / "refs" / "main");
    std::string rev;
    if (ref && std::getline(ref, rev) && !rev.empty()) {
      if (HasConfig(snapshots / rev)) return snapshots / rev;
      looked.push_back((snapshots / rev).string() + " (refs/main points here; no config.json)");
    }
    // No usable ref: take the most recently written snapshot that has a config.
    fs::path best;
    fs::file_time_type best_time{};
    if (fs::is_directory(snapshots, ec)) {
      for (const auto& entry : fs::directory_iterator(snapshots, ec)) {
        if (!HasConfig(entry.path())) continue;
        auto t = fs::last_write_time(entry.path() / "config.json", ec);
        if (best.empty() || t > best_time) best = entry.path(), best_time = t;
      }
    }
    if (!best.empty()) return best;
    looked.push_back(snapshots.string() + " (no snapshot with config.json)");
  }
  std::string msg = "model '" + spec + "' not found; looked in:";
  for (const auto& l : looked) msg += "\n  " + l;
  if (LooksLikeRepoId(spec)) msg += "\nrun 'eddy pull " + spec + "' to download it";
  throw ModelError(msg);
}

}  // namespace eddy
