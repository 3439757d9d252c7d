#include "hub_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "eddy/model_dir.h"

namespace eddy::app {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------------
// Hashing

class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) {
      throw HubError("cannot initialise a message digest (OpenSSL)");
    }
  }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string HexFinal() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < n; ++i) {
      hex += kHex[out[i] >> 4];
      hex += kHex[out[i] & 15];
    }
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

void HashFileInto(const fs::path& file, Digest& digest) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw HubError("cannot read " + file.string());
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) digest.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw HubError("error while reading " + file.string());
}

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string PercentEncode(const std::string& s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string TrimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string HumanBytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  } else if (bytes >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1e3);
  }
  return buf;
}

bool IsHex(const std::string& s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A path from the server becomes a file name under snapshots/<commit>; it must stay inside.
void CheckRepoPath(const std::string& path) {
  bool ok = !path.empty() && path.front() != '/' && path.find('\\') == std::string::npos &&
            path.find('\0') == std::string::npos;
  for (const auto& part : fs::path(path)) {
    if (part == ".." || part == "." || part.empty()) ok = false;
  }
  if (!ok) throw HubError("the hub listed an unsafe file name '" + path + "'");
}

void WriteFileAtomically(const fs::path& file, const std::string& contents) {
  fs::create_directories(file.parent_path());
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out) throw HubError("cannot write " + tmp.string());
  }
  fs::rename(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// libcurl

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

struct CurlHandle {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  CurlHandle() {
    static CurlGlobal global;
    curl = curl_easy_init();
    if (curl == nullptr) throw HubError("cannot initialise libcurl");
  }
  ~CurlHandle() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  }
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;

  std::string ErrorText(CURLcode code) const {
    return error[0] != '\0' ? std::string(error) : std::string(curl_easy_strerror(code));
  }
};

// Headers of the last response in a redirect chain.
size_t CollectHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    const auto b = value.find_first_not_of(" \t");
    const auto e = value.find_last_not_of(" \t\r\n");
    headers->emplace_back(name, b == std::string::npos ? "" : value.substr(b, e - b + 1));
  }
  return size * n;
}

std::string FindHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& lower_name) {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

void ConfigureCommon(CurlHandle& h, const PullOptions& opts, const std::string& url) {
  curl_easy_setopt(h.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.curl, CURLOPT_ERRORBUFFER, h.error);
  curl_easy_setopt(h.curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h.curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h.curl, CURLOPT_CONNECTTIMEOUT, opts.connect_timeout_s);
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_TIME, opts.low_speed_time_s);
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.curl, CURLOPT_USERAGENT, "eddy/0.1");
  // Bytes are hashed exactly as stored, so no transparent decompression.
  h.headers = curl_slist_append(h.headers, "Accept-Encoding: identity");
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  if (!opts.token.empty()) {
    // libcurl sends bearer auth only to the original host, never to a CDN it is redirected to.
    curl_easy_setopt(h.curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(h.curl, CURLOPT_XOAUTH2_BEARER, opts.token.c_str());
  }
}

bool IsConnectionFailure(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
         code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT ||
         code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
         code == CURLE_GOT_NOTHING;
}

std::string Unreachable(const PullOptions& opts, const std::string& detail) {
  return "cannot reach " + TrimSlash(opts.endpoint) + ": " + detail +
         "; if you are offline, copy the model directory and pass --model DIR";
}

// The hub's JSON errors carry {"error": "..."}; anything else is shown trimmed.
std::string ServerMessage(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      return j["error"].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  std::string s = body.substr(0, 200);
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

std::string HttpFailure(const PullOptions& opts, long status, const std::string& error_code,
                        const std::string& body, const std::string& what) {
  const std::string repo = "'" + opts.repo_id + "'";
  if (status == 401 || status == 403) {
    return "access to " + repo + " denied by " + TrimSlash(opts.endpoint) + " (HTTP " +
           std::to_string(status) +
           "); it may be private or gated: accept its terms on the hub and pass --token or set "
           "HF_TOKEN";
  }
  if (status == 404 && error_code == "RevisionNotFound") {
    return "revision '" + opts.revision + "' not found in " + repo + " at " +
           TrimSlash(opts.endpoint);
  }
  if (status == 404 && error_code == "EntryNotFound") {
    return what + " not found in " + repo + " (HTTP 404)";
  }
  if (status == 404) {
    return "repository " + repo + " not found at " + TrimSlash(opts.endpoint) +
           " (HTTP 404); check the name, or pass --token for a private repo";
  }
  std::string msg = "HTTP " + std::to_string(status) + " from " + TrimSlash(opts.endpoint) +
                    " while fetching " + what;
  const std::string server = ServerMessage(body);
  if (!server.empty()) msg += ": " + server;
  return msg;
}

size_t AppendToString(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise.

class Progress {
 public:
  Progress(std::string name, std::uint64_t total, std::uint64_t start)
      : name_(std::move(name)),
        total_(total),
        start_bytes_(start),
        done_(start),
        tty_(isatty(STDERR_FILENO) == 1),
        began_(Clock::now()),
        last_(began_) {}

  void Advance(std::uint64_t bytes) {
    done_ += bytes;
    const auto now = Clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (since_last >= (tty_ ? 0.1 : 5.0)) {
      last_ = now;
      Draw(false);
    }
  }

  void Finish() {
    Draw(true);
    finished_ = true;
  }

  // A bar left mid-line by a failed transfer is ended so the next message starts cleanly.
  ~Progress() {
    if (tty_ && drawn_ && !finished_) std::fputc('\n', stderr);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  double Rate() const {
    const double secs = std::chrono::duration<double>(Clock::now() - began_).count();
    return secs > 0 ? static_cast<double>(done_ - start_bytes_) / secs / 1e6 : 0.0;
  }

  void Draw(bool final) {
    drawn_ = true;
    const double pct = total_ > 0 ? 100.0 * static_cast<double>(done_) / total_ : 100.0;
    const std::string sizes = HumanBytes(done_) + " / " + HumanBytes(total_);
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(pct / 100.0 * kWidth);
      std::string bar(filled, '#');
      bar.resize(kWidth, '.');
      std::fprintf(stderr, "\r  %-32.32s [%s] %s %5.1f%% %7.1f MB/s%s", name_.c_str(), bar.c_str(),
                   sizes.c_str(), pct, Rate(), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "  %s: %s (%.1f%%), %.1f MB/s%s\n", name_.c_str(), sizes.c_str(), pct,
                   Rate(), final ? ", done" : "");
    }
    std::fflush(stderr);
  }

  std::string name_;
  std::uint64_t total_, start_bytes_, done_;
  bool tty_;
  bool drawn_ = false, finished_ = false;
  Clock::time_point began_, last_;
};

// ---------------------------------------------------------------------------------------------
// Download of one file into blobs/<hash>.incomplete, resuming what is already there.

struct TransferState {
  std::FILE* file = nullptr;
  std::uint64_t resume_from = 0;
  bool decided = false;  // whether the response status has been looked at
  bool to_file = false;  // 200/206: body goes to the file; otherwise to error_body
  std::string error_body;
  CURL* curl = nullptr;
  Progress* progress = nullptr;
  std::string write_error;
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<TransferState*>(user);
  const size_t bytes = size * n;
  if (!st->decided) {
    st->decided = true;
    long status = 0;
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &status);
    st->to_file = status == 200 || status == 206;
    // A server that ignores the Range header sends the whole file again.
    if (status == 200 && st->resume_from > 0) {
      if (std::fseek(st->file, 0, SEEK_SET) != 0 || ftruncate(fileno(st->file), 0) != 0) {
        st->write_error = "cannot truncate the partial file";
        return 0;
      }
      st->resume_from = 0;
    }
  }
  if (!st->to_file) {
    if (st->error_body.size() < 4096) st->error_body.append(data, bytes);
    return bytes;
  }
  if (std::fwrite(data, 1, bytes, st->file) != bytes) {
    st->write_error = "write failed (disk full?)";
    return 0;
  }
  if (st->progress != nullptr) st->progress->Advance(bytes);
  return bytes;
}

enum class Transfer { kComplete, kRetry };

// One HTTP attempt. Returns kRetry (with `why`) for failures worth another attempt, throws for
// ones that are not.
Transfer DownloadOnce(const PullOptions& opts, const std::string& url, const RemoteFile& remote,
                      const fs::path& partial, std::string& why) {
  std::error_code ec;
  std::uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
  if (have > remote.size) {
    fs::remove(partial, ec);
    have = 0;
  }
  if (have == remote.size && have > 0) return Transfer::kComplete;

  std::FILE* file = std::fopen(partial.c_str(), have > 0 ? "r+b" : "wb");
  if (file == nullptr) throw HubError("cannot create " + partial.string());
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(file, &std::fclose);
  std::fseek(file, static_cast<long>(have), SEEK_SET);

  CurlHandle h;
  ConfigureCommon(h, opts, url);
  Progress progress(remote.path, remote.size, have);
  TransferState st;
  st.file = file;
  st.resume_from = have;
  st.curl = h.curl;
  st.progress = &progress;
  std::vector<std::pair<std::string, std::string>> headers;
  const std::string range = std::to_string(have) + "-";
  if (have > 0) curl_easy_setopt(h.curl, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(h.curl, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(h.curl, CURLOPT_HEADERDATA, &headers);

  const CURLcode code = curl_easy_perform(h.curl);
  if (std::fflush(file) != 0) st.write_error = "write failed (disk full?)";
  long status = 0;
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &status);
  if (!st.write_error.empty()) throw HubError(partial.string() + ": " + st.write_error);
  if (code != CURLE_OK) {
    if (status == 0 && IsConnectionFailure(code)) {
      why = Unreachable(opts, h.ErrorText(code));
    } else {
      why = remote.path + ": transfer interrupted (" + h.ErrorText(code) + ")";
    }
    return Transfer::kRetry;
  }
  if (status >= 500) {
    why = "HTTP " + std::to_string(status) + " while downloading " + remote.path;
    return Transfer::kRetry;
  }
  if (status == 416) {  // our partial file does not fit the server's idea of the file
    fs::remove(partial, ec);
    why = remote.path + ": server refused to resume (HTTP 416); starting over";
    return Transfer::kRetry;
  }
  if (status != 200 && status != 206) {
    throw HubError(HttpFailure(opts, status, FindHeader(headers, "x-error-code"), st.error_body,
                               "'" + remote.path + "'"));
  }
  progress.Finish();
  const std::uint64_t got = fs::file_size(partial, ec);
  if (got != remote.size) {
    why = remote.path + ": got " + std::to_string(got) + " of " + std::to_string(remote.size) +
          " bytes";
    if (got > remote.size) fs::remove(partial, ec);
    return Transfer::kRetry;
  }
  return Transfer::kComplete;
}

std::string ActualHash(const RemoteFile& remote, const fs::path& file) {
  return remote.lfs ? FileSha256Hex(file) : FileGitBlobSha1Hex(file);
}

const char* HashName(const RemoteFile& remote) {
  return remote.lfs ? "sha256" : "git sha1";
}

bool BlobIsValid(const RemoteFile& remote, const fs::path& blob) {
  std::error_code ec;
  if (!fs::is_regular_file(blob, ec) || fs::file_size(blob, ec) != remote.size) return false;
  return ActualHash(remote, blob) == remote.hash;
}

// Downloads into blobs/<hash>.incomplete and renames it into place once the hash matches.
std::uint64_t DownloadBlob(const PullOptions& opts, const std::string& commit,
                           const RemoteFile& remote, const fs::path& blob) {
  const fs::path partial = blob.string() + ".incomplete";
  const std::string url = TrimSlash(opts.endpoint) + "/" + opts.repo_id + "/resolve/" + commit +
                          "/" + PercentEncode(remote.path, true);
  std::error_code ec;
  const std::uint64_t had = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
  int checksum_failures = 0;
  int network_failures = 0;
  while (true) {
    std::string why;
    if (DownloadOnce(opts, url, remote, partial, why) == Transfer::kRetry) {
      if (++network_failures >= opts.network_attempts) throw HubError(why);
      std::fprintf(stderr, "  %s; retrying (%d of %d)\n", why.c_str(), network_failures + 1,
                   opts.network_attempts);
      std::this_thread::sleep_for(
          std::chrono::duration<double>(opts.retry_delay_s * network_failures));
      continue;
    }
    const std::string actual = ActualHash(remote, partial);
    if (actual == remote.hash) break;
    fs::remove(partial, ec);
    const std::string msg = "checksum mismatch for '" + remote.path + "': expected " +
                            HashName(remote) + " " + remote.hash + ", got " + actual;
    if (++checksum_failures >= 2) {
      throw HubError(msg + " (downloaded twice; the partial file was deleted)");
    }
    std::fprintf(stderr, "  %s; deleted it, downloading again\n", msg.c_str());
  }
  fs::rename(partial, blob);
  return remote.size > had ? remote.size - had : 0;
}

// Exclusive flock on the lock file huggingface_hub itself takes for a blob, so that neither it nor
// another eddy writes the same .incomplete file at the same time.
class BlobLock {
 public:
  explicit BlobLock(const fs::path& file) : fd_(open(file.c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd_ < 0) throw HubError("cannot create the lock file " + file.string());
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::fprintf(stderr, "  waiting for another download of the same file (%s)\n", file.c_str());
      flock(fd_, LOCK_EX);
    }
  }
  ~BlobLock() { close(fd_); }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_;
};

// snapshots/<commit>/<path> -> ../../blobs/<hash>, replaced atomically if present.
void LinkIntoSnapshot(const fs::path& repo_dir, const std::string& commit,
                      const RemoteFile& remote) {
  const fs::path link = repo_dir / "snapshots" / commit / remote.path;
  fs::create_directories(link.parent_path());
  fs::path target;
  const auto depth = std::count(remote.path.begin(), remote.path.end(), '/');
  for (long i = 0; i < depth + 2; ++i) target /= "..";
  target = target / "blobs" / remote.hash;
  std::error_code ec;
  if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) return;
  const fs::path tmp = link.string() + ".tmp-link";
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

}  // namespace

// -----------------------------------------------------------------------------------------------

std::string DefaultHubEndpoint() {
  const char* env = std::getenv("HF_ENDPOINT");
  return env != nullptr && env[0] != '\0' ? TrimSlash(env) : "https://huggingface.co";
}

bool MatchesAnyGlob(const std::vector<std::string>& globs, const std::string& path) {
  if (globs.empty()) return true;
  for (const auto& g : globs) {
    if (fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string FileSha256Hex(const fs::path& file) {
  Digest d(EVP_sha256());
  HashFileInto(file, d);
  return d.HexFinal();
}

std::string FileGitBlobSha1Hex(const fs::path& file) {
  Digest d(EVP_sha1());
  const std::string header = "blob " + std::to_string(fs::file_size(file)) + std::string(1, '\0');
  d.Update(header.data(), header.size());
  HashFileInto(file, d);
  return d.HexFinal();
}

RepoListing FetchRepoListing(const PullOptions& opts) {
  const std::string url = TrimSlash(opts.endpoint) + "/api/models/" + opts.repo_id + "/revision/" +
                          PercentEncode(opts.revision, false) + "?blobs=true";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string curl_error;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    body.clear();
    CurlHandle h;
    ConfigureCommon(h, opts, url);
    curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, &AppendToString);
    curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h.curl, CURLOPT_HEADERFUNCTION, &CollectHeader);
    curl_easy_setopt(h.curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(h.curl, CURLOPT_TIMEOUT, 120L);
    code = curl_easy_perform(h.curl);
    curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &status);
    curl_error = h.ErrorText(code);
    if (code == CURLE_OK && status < 500) break;
  }
  if (code != CURLE_OK) {
    if (status == 0) throw HubError(Unreachable(opts, curl_error));
    throw HubError("listing '" + opts.repo_id + "' from " + TrimSlash(opts.endpoint) +
                   " failed: " + curl_error);
  }
  if (status != 200) {
    throw HubError(HttpFailure(opts, status, FindHeader(headers, "x-error-code"), body,
                               "the file list of '" + opts.repo_id + "'"));
  }

  const std::string where = "the hub's file list for '" + opts.repo_id + "' (" + url + ")";
  RepoListing listing;
  try {
    const auto j = nlohmann::json::parse(body);
    listing.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) {
      RemoteFile f;
      f.path = s.at("rfilename").get<std::string>();
      CheckRepoPath(f.path);
      if (s.contains("lfs") && s["lfs"].is_object()) {
        f.lfs = true;
        f.hash = s["lfs"].at("sha256").get<std::string>();
        f.size = s["lfs"].at("size").get<std::uint64_t>();
      } else {
        f.hash = s.at("blobId").get<std::string>();
        f.size = s.at("size").get<std::uint64_t>();
      }
      if (!IsHex(f.hash, f.lfs ? 64 : 40)) {
        throw HubError(where + ": '" + f.path + "' has a malformed hash '" + f.hash + "'");
      }
      listing.files.push_back(std::move(f));
    }
  } catch (const nlohmann::json::exception& e) {
    throw HubError(where + " is not what was expected: " + e.what());
  }
  if (!IsHex(listing.commit, 40)) {
    throw HubError(where + ": malformed commit hash '" + listing.commit + "'");
  }
  return listing;
}

PullSummary PullRepo(const PullOptions& opts) {
  if (!LooksLikeRepoId(opts.repo_id)) {
    throw HubError("'" + opts.repo_id + "' is not a Hugging Face repo id (ORG/NAME)");
  }
  for (const auto& part : fs::path(opts.revision)) {
    if (part == ".." || part == "." || part.empty() || opts.revision.front() == '/') {
      throw HubError("'" + opts.revision + "' is not a valid revision");
    }
  }
  const RepoListing listing = FetchRepoListing(opts);
  std::vector<RemoteFile> wanted;
  for (const auto& f : listing.files) {
    if (MatchesAnyGlob(opts.include, f.path)) wanted.push_back(f);
  }
  if (wanted.empty()) {
    throw HubError("no file of '" + opts.repo_id + "' matches the --include patterns");
  }

  const fs::path repo_dir = opts.cache_dir.empty()
                                ? RepoCacheDir(opts.repo_id)
                                : opts.cache_dir / RepoCacheDir(opts.repo_id).filename();
  const fs::path blobs = repo_dir / "blobs";
  PullSummary summary;
  summary.snapshot_dir = repo_dir / "snapshots" / listing.commit;
  try {
    fs::create_directories(blobs);
    std::uint64_t total = 0;
    for (const auto& f : wanted) total += f.size;
    std::fprintf(stderr, "pulling %s @ %s (%s) into %s: %zu files, %s\n", opts.repo_id.c_str(),
                 opts.revision.c_str(), listing.commit.substr(0, 12).c_str(), repo_dir.c_str(),
                 wanted.size(), HumanBytes(total).c_str());
    const fs::path locks = repo_dir.parent_path() / ".locks" / repo_dir.filename();
    fs::create_directories(locks);
    for (const auto& f : wanted) {
      const fs::path blob = blobs / f.hash;
      const BlobLock lock(locks / (f.hash + ".lock"));
      if (BlobIsValid(f, blob)) {
        ++summary.already_present;
      } else {
        std::error_code ec;
        fs::remove(blob, ec);
        summary.bytes_downloaded += DownloadBlob(opts, listing.commit, f, blob);
        ++summary.downloaded;
      }
      LinkIntoSnapshot(repo_dir, listing.commit, f);
    }
    // huggingface_hub records a ref only for names, not for a revision that is the commit itself.
    if (opts.revision != listing.commit) {
      WriteFileAtomically(repo_dir / "refs" / opts.revision, listing.commit);
    }
  } catch (const fs::filesystem_error& e) {
    throw HubError(std::string("cache ") + repo_dir.string() + ": " + e.what());
  }
  return summary;
}

}  // namespace eddy::app
