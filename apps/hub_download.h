// Downloads a model repository from a Hugging Face hub into the local hub cache, in the layout
// huggingface_hub itself writes and reads:
//   <cache>/models--ORG--NAME/blobs/<sha256 or git blob sha1>
//   <cache>/models--ORG--NAME/snapshots/<commit>/<file>  -> ../../blobs/<hash> (relative symlink)
//   <cache>/models--ORG--NAME/refs/<revision>            (the commit hash)
// so that ResolveModelDir("ORG/NAME") and huggingface_hub find the same files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace eddy::app {

// Everything that stops a pull: unreachable hub, missing repo, bad metadata, checksum mismatch.
class HubError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PullOptions {
  std::string repo_id;               // ORG/NAME
  std::string revision = "main";     // branch, tag or commit
  std::string endpoint;              // e.g. https://huggingface.co (no trailing slash needed)
  std::string token;                 // bearer token; empty = anonymous
  std::vector<std::string> include;  // fnmatch globs on the repo path; empty = every file
  std::filesystem::path cache_dir;   // hub cache root; empty = HuggingFaceHubCache()
  long connect_timeout_s = 20;
  long low_speed_time_s = 30;  // abort a transfer slower than 1 byte/s for this long
  int network_attempts = 5;    // per file; each attempt resumes the partial download
  double retry_delay_s = 1.0;  // grows linearly with the attempt number
};

// One file of the repository as the hub's API describes it.
struct RemoteFile {
  std::string path;  // repo-relative, '/'-separated
  std::uint64_t size = 0;
  std::string hash;  // lowercase hex: sha256 for LFS files, git blob sha1 otherwise
  bool lfs = false;
};

struct RepoListing {
  std::string commit;  // 40 hex digits
  std::vector<RemoteFile> files;
};

struct PullSummary {
  std::filesystem::path snapshot_dir;
  int downloaded = 0;
  int already_present = 0;
  std::uint64_t bytes_downloaded = 0;
};

// $HF_ENDPOINT, else https://huggingface.co.
std::string DefaultHubEndpoint();

// GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true, parsed and validated.
RepoListing FetchRepoListing(const PullOptions& opts);

// Downloads every listed file that matches opts.include and is not already cached with the right
// hash, then links the snapshot and writes refs/<revision>. Progress goes to stderr.
PullSummary PullRepo(const PullOptions& opts);

// fnmatch-style match ('*' also crosses '/'), as huggingface_hub's allow_patterns do.
bool MatchesAnyGlob(const std::vector<std::string>& globs, const std::string& path);

// Lowercase hex digests of a file's contents.
std::string FileSha256Hex(const std::filesystem::path& file);
// sha1 of "blob <size>\0" + contents: the id git (and the hub's ETag) gives a regular file.
std::string FileGitBlobSha1Hex(const std::filesystem::path& file);

}  // namespace eddy::app
