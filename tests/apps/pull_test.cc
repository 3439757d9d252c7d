// `eddy pull` end to end: the real binary against tests/apps/fake_hub.py (a local stand-in for
// the Hugging Face hub serving the golden tiny model), then ResolveModelDir on the cache it wrote.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "eddy/model_dir.h"
#include "golden.h"
#include "hub_download.h"

namespace fs = std::filesystem;

namespace {

const char* const kRepo = "org/tiny";

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Output of a shell command (an independent tool such as sha256sum), first word only.
std::string FirstWordOf(const std::string& command) {
  std::FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {};
  char buf[256] = {};
  std::string out = std::fgets(buf, sizeof buf, p) != nullptr ? buf : "";
  pclose(p);
  return out.substr(0, out.find_first_of(" \t\n"));
}

std::string Quote(const std::string& s) {
  return "'" + s + "'";
}

// The fake hub as a child process; killed (and reaped) when this goes out of scope.
class FakeHub {
 public:
  FakeHub(const fs::path& log, const std::string& fault) : log_(log) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      const std::string root = eddy::test::GoldenModelDir().string();
      execlp("python3", "python3", FAKE_HUB_SCRIPT, "--root", root.c_str(), "--repo", kRepo,
             "--fault", fault.c_str(), "--log", log.c_str(), "--lifetime", "120",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    pollfd pfd{out[0], POLLIN, 0};
    std::string line;
    char c;
    while (poll(&pfd, 1, 15000) == 1 && read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~FakeHub() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  bool ok() const { return pid_ > 0 && port_ > 0; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Requests() const { return ReadAll(log_); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    work_ = fs::path(::testing::TempDir()) /
            ("eddy_pull_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(work_);
    fs::create_directories(work_);
    setenv("HF_HOME", (work_ / "hf").c_str(), 1);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_TOKEN");
  }
  void TearDown() override { fs::remove_all(work_); }

  CliRun Eddy(const std::string& args) {
    const fs::path out = work_ / "stdout", err = work_ / "stderr";
    const std::string cmd = "timeout 60 " + Quote(EDDY_BINARY) + " " + args + " >" +
                            Quote(out.string()) + " 2>" + Quote(err.string()) + " </dev/null";
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  CliRun Pull(const FakeHub& hub, const std::string& extra = "") {
    return Eddy("pull " + std::string(kRepo) + " --endpoint " + hub.endpoint() + " " + extra);
  }

  fs::path RepoDir() const { return work_ / "hf" / "hub" / "models--org--tiny"; }

  // Every golden checkpoint file, reached through ResolveModelDir, with identical bytes.
  void ExpectCompleteSnapshot(const CliRun& run) {
    const fs::path dir = eddy::ResolveModelDir(kRepo);
    EXPECT_EQ(run.out, dir.string() + "\n");
    EXPECT_EQ(dir.parent_path().parent_path(), RepoDir());
    EXPECT_EQ(ReadAll(RepoDir() / "refs" / "main"), dir.filename().string());
    int files = 0;
    for (const auto& entry : fs::directory_iterator(eddy::test::GoldenModelDir())) {
      ++files;
      const fs::path link = dir / entry.path().filename();
      ASSERT_TRUE(fs::is_symlink(link)) << link;
      const fs::path target = fs::read_symlink(link);
      EXPECT_TRUE(target.is_relative()) << target;
      EXPECT_EQ(fs::weakly_canonical(link.parent_path() / target).parent_path(),
                fs::weakly_canonical(RepoDir() / "blobs"));
      EXPECT_TRUE(ReadAll(link) == ReadAll(entry.path())) << link << " differs from original";
    }
    EXPECT_GT(files, 0);
    for (const auto& blob : fs::directory_iterator(RepoDir() / "blobs")) {
      EXPECT_NE(blob.path().extension(), ".incomplete") << blob.path();
    }
  }

  // The one line an error leaves: "eddy: error: ..." containing `needle`.
  void ExpectOneLineError(const CliRun& run, const std::string& needle) {
    EXPECT_NE(run.exit_code, 0);
    const auto pos = run.err.find("eddy: error: ");
    ASSERT_NE(pos, std::string::npos) << run.err;
    const std::string line = run.err.substr(pos);
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "error spans several lines: " << line;
    EXPECT_NE(line.find(needle), std::string::npos) << line;
  }

  fs::path work_;
};

fs::path LargestGoldenFile() {
  fs::path best;
  for (const auto& e : fs::directory_iterator(eddy::test::GoldenModelDir())) {
    if (best.empty() || fs::file_size(e.path()) > fs::file_size(best)) best = e.path();
  }
  return best;
}

TEST_F(PullTest, HelpWorks) {
  const CliRun r = Eddy("pull --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--revision"), std::string::npos);
  EXPECT_NE(r.out.find("--include"), std::string::npos);
}

TEST_F(PullTest, DownloadsIntoHubCacheLayout) {
  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectCompleteSnapshot(r);
  // LFS files are stored under their sha256, computed here by an independent tool.
  const fs::path largest = LargestGoldenFile();
  const std::string sha256 = FirstWordOf("sha256sum " + Quote(largest.string()));
  ASSERT_EQ(sha256.size(), 64u);
  EXPECT_TRUE(fs::is_regular_file(RepoDir() / "blobs" / sha256));
}

TEST_F(PullTest, SecondPullDownloadsNothing) {
  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  ASSERT_EQ(Pull(hub).exit_code, 0);
  const size_t before = hub.Requests().size();
  const CliRun again = Pull(hub);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const std::string second = hub.Requests().substr(before);
  EXPECT_NE(second.find("/api/models/"), std::string::npos);
  EXPECT_EQ(second.find("/resolve/"), std::string::npos) << second;
  ExpectCompleteSnapshot(again);
}

TEST_F(PullTest, ResumesAfterDroppedConnection) {
  FakeHub hub(work_ / "requests.log", "drop");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string half = std::to_string(fs::file_size(LargestGoldenFile()) / 2);
  EXPECT_NE(hub.Requests().find("range=bytes=" + half + "-"), std::string::npos) << hub.Requests();
  ExpectCompleteSnapshot(r);
}

TEST_F(PullTest, ResumesPartialFileOfEarlierRun) {
  const fs::path largest = LargestGoldenFile();
  const std::string sha256 = FirstWordOf("sha256sum " + Quote(largest.string()));
  ASSERT_EQ(sha256.size(), 64u);
  const std::string bytes = ReadAll(largest);
  const size_t keep = bytes.size() / 3;
  fs::create_directories(RepoDir() / "blobs");
  std::ofstream(RepoDir() / "blobs" / (sha256 + ".incomplete"), std::ios::binary)
      << bytes.substr(0, keep);

  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(hub.Requests().find("range=bytes=" + std::to_string(keep) + "-"), std::string::npos)
      << hub.Requests();
  ExpectCompleteSnapshot(r);
}

// In-process, with a short low-speed limit: a hub that goes silent mid-file is abandoned and the
// download resumes on a fresh connection instead of hanging.
TEST_F(PullTest, StalledTransferTimesOutAndResumes) {
  FakeHub hub(work_ / "requests.log", "stall");
  ASSERT_TRUE(hub.ok());
  eddy::app::PullOptions opts;
  opts.repo_id = kRepo;
  opts.endpoint = hub.endpoint();
  opts.low_speed_time_s = 2;
  opts.retry_delay_s = 0.1;
  const auto begin = std::chrono::steady_clock::now();
  const auto summary = eddy::app::PullRepo(opts);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_LT(secs, 30.0);
  EXPECT_EQ(summary.snapshot_dir, eddy::ResolveModelDir(kRepo));
  const std::string half = std::to_string(fs::file_size(LargestGoldenFile()) / 2);
  EXPECT_NE(hub.Requests().find("range=bytes=" + half + "-"), std::string::npos) << hub.Requests();
  CliRun as_if_cli;
  as_if_cli.out = summary.snapshot_dir.string() + "\n";
  ExpectCompleteSnapshot(as_if_cli);
}

TEST_F(PullTest, CorruptDownloadIsRetried) {
  FakeHub hub(work_ / "requests.log", "corrupt-once");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  ExpectCompleteSnapshot(r);
}

TEST_F(PullTest, PersistentCorruptionFailsClearly) {
  FakeHub hub(work_ / "requests.log", "corrupt");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  const std::string name = LargestGoldenFile().filename().string();
  ExpectOneLineError(r, "checksum mismatch for '" + name + "'");
  const std::string sha256 = FirstWordOf("sha256sum " + Quote(LargestGoldenFile().string()));
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / sha256));
  EXPECT_FALSE(fs::exists(RepoDir() / "blobs" / (sha256 + ".incomplete")));
  EXPECT_FALSE(fs::exists(RepoDir() / "refs" / "main"));
}

TEST_F(PullTest, MissingRepoFailsClearly) {
  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Eddy("pull org/missing --endpoint " + hub.endpoint());
  ExpectOneLineError(r, "repository 'org/missing' not found");
}

TEST_F(PullTest, UnsafeFileNameIsRefused) {
  FakeHub hub(work_ / "requests.log", "unsafe-path");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ExpectOneLineError(r, "unsafe file name '../escape.json'");
  EXPECT_FALSE(fs::exists(RepoDir() / "snapshots"));
}

TEST_F(PullTest, MalformedFileListFailsClearly) {
  FakeHub hub(work_ / "requests.log", "bad-listing");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub);
  ExpectOneLineError(r, "the hub's file list for 'org/tiny'");
}

TEST_F(PullTest, MissingRevisionFailsClearly) {
  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub, "--revision nonexistent");
  ExpectOneLineError(r, "revision 'nonexistent' not found");
}

TEST_F(PullTest, UnreachableHubFailsClearly) {
  // A port that was free a moment ago and has nobody listening now.
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(s);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const CliRun r = Eddy("pull org/tiny --endpoint " + endpoint);
  ExpectOneLineError(r, "cannot reach " + endpoint + ": ");
  EXPECT_NE(r.err.find("pass --model DIR"), std::string::npos) << r.err;
}

TEST_F(PullTest, IncludeSelectsFiles) {
  FakeHub hub(work_ / "requests.log", "none");
  ASSERT_TRUE(hub.ok());
  const CliRun r = Pull(hub, "--include '*.json'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path dir = eddy::ResolveModelDir(kRepo);
  int json = 0;
  for (const auto& e : fs::directory_iterator(eddy::test::GoldenModelDir())) {
    const bool wanted = e.path().extension() == ".json";
    json += wanted;
    EXPECT_EQ(fs::exists(dir / e.path().filename()), wanted) << e.path().filename();
  }
  EXPECT_GT(json, 0);
}

TEST_F(PullTest, BadRepoIdFailsClearly) {
  const CliRun r = Eddy("pull not-a-repo --endpoint http://127.0.0.1:9");
  ExpectOneLineError(r, "not a Hugging Face repo id");
}

// The digests against independent tools (sha256sum, git hash-object).
TEST(HubHashes, MatchIndependentTools) {
  const fs::path file = eddy::test::GoldenModelDir() / "config.json";
  EXPECT_EQ(eddy::app::FileSha256Hex(file), FirstWordOf("sha256sum " + Quote(file.string())));
  const std::string git = FirstWordOf("git hash-object " + Quote(file.string()));
  ASSERT_EQ(git.size(), 40u);
  EXPECT_EQ(eddy::app::FileGitBlobSha1Hex(file), git);
}

TEST(HubGlobs, MatchLikeFnmatch) {
  EXPECT_TRUE(eddy::app::MatchesAnyGlob({}, "anything"));
  EXPECT_TRUE(eddy::app::MatchesAnyGlob({"*.json"}, "config.json"));
  EXPECT_TRUE(eddy::app::MatchesAnyGlob({"*.json"}, "sub/config.json"));
  EXPECT_FALSE(eddy::app::MatchesAnyGlob({"*.json", "*.txt"}, "model.safetensors"));
}

}  // namespace
