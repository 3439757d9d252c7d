// `eddy pull`: downloads a model from the Hugging Face hub into the local hub cache, where
// --model ORG/NAME finds it.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "command.h"
#include "hub_download.h"

namespace eddy::app {
namespace {

int RunPull(PullOptions opts) {
  if (opts.token.empty()) {
    if (const char* env = std::getenv("HF_TOKEN"); env != nullptr) opts.token = env;
  }
  const PullSummary summary = PullRepo(opts);
  std::fprintf(stderr, "%d file(s) downloaded (%.1f MB), %d already present\n", summary.downloaded,
               static_cast<double>(summary.bytes_downloaded) / 1e6, summary.already_present);
  std::printf("%s\n", summary.snapshot_dir.c_str());
  return 0;
}

EDDY_COMMAND("pull", "Download a model from the Hugging Face hub into the local hub cache",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<PullOptions>();
               opts->repo_id = "LiquidAI/LFM2-Audio-1.5B";
               opts->endpoint = DefaultHubEndpoint();
               cmd.add_option("repo", opts->repo_id, "Hugging Face repo id (ORG/NAME)")
                   ->capture_default_str();
               cmd.add_option("--revision", opts->revision, "branch, tag or commit to download")
                   ->capture_default_str();
               cmd.add_option("--endpoint", opts->endpoint,
                              "hub address (default: $HF_ENDPOINT, else https://huggingface.co)")
                   ->capture_default_str();
               cmd.add_option("--token", opts->token,
                              "access token for private or gated repos (default: $HF_TOKEN)");
               cmd.add_option("--include", opts->include,
                              "download only the files matching these globs (e.g. '*.json')");
               cmd.footer(
                   "Files go to the Hugging Face hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, "
                   "else ~/.cache/huggingface/hub). Interrupted downloads resume; every file is "
                   "checked against the hub's sha256 or git hash. Prints the snapshot directory.");
               return [opts] { return RunPull(*opts); };
             });

}  // namespace
}  // namespace eddy::app
