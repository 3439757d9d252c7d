#include <cstdio>
#include <cstdlib>
#include <string>

#include "command.h"
#include "eddy/model_dir.h"
#include "eddy/model_error.h"
#include "hub_download.h"

namespace eddy::app {

std::filesystem::path ResolveOrPullModel(const ModelOptions& opts) {
  try {
    return ResolveModelDir(opts.model);
  } catch (const ModelError&) {
    const char* offline = std::getenv("HF_HUB_OFFLINE");
    if (!LooksLikeRepoId(opts.model) || (offline != nullptr && std::string(offline) == "1")) {
      throw;
    }
    PullOptions pull;
    pull.repo_id = opts.model;
    pull.endpoint = DefaultHubEndpoint();
    if (const char* token = std::getenv("HF_TOKEN")) pull.token = token;
    std::fprintf(stderr,
                 "eddy: %s is not in the local cache; downloading it from %s (once; pass "
                 "--model DIR to use a local copy, HF_HUB_OFFLINE=1 to never download)\n",
                 opts.model.c_str(), pull.endpoint.c_str());
    return PullRepo(pull).snapshot_dir;
  }
}

LoadedModel LoadModel(const ModelOptions& opts) {
  SetComputeThreads(opts.threads);
  std::filesystem::path dir = ResolveOrPullModel(opts);
  AudioModelOptions model_options;
  model_options.weight_format = opts.quant;
  auto model = AudioModel::Load(dir, model_options);
  Tokenizer tokenizer = Tokenizer::Load(dir / "tokenizer.json");
  return {std::move(dir), std::move(model), std::move(tokenizer)};
}

}  // namespace eddy::app
