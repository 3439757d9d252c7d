// `eddy info`: what a model directory holds, without running anything.
#include <cstdio>

#include "command.h"
#include "eddy/config.h"
#include "eddy/model_dir.h"
#include "eddy/safetensors.h"

namespace eddy::app {
namespace {

int RunInfo(const ModelOptions& opts, bool list_tensors) {
  const auto dir = ResolveModelDir(opts.model);
  const auto config = AudioModelConfig::Load(dir / "config.json");
  std::printf("model directory: %s\n", dir.c_str());
  const auto& lfm = config.lfm;
  std::printf("backbone: %d layers (%d attention), hidden %d, heads %d/%d, ff %d, vocab %d\n",
              lfm.num_hidden_layers, lfm.num_attention_layers(), lfm.hidden_size,
              lfm.num_attention_heads, lfm.num_key_value_heads, lfm.ff_dim(), lfm.vocab_size);
  std::printf("encoder: %d layers, d_model %d, heads %d\n", config.encoder.n_layers,
              config.encoder.d_model, config.encoder.n_heads);
  std::printf("depthformer: %d layers, dim %d; codebooks %d; interleave %d text / %d audio\n",
              config.depthformer.layers, config.depthformer.dim, config.codebooks,
              config.interleaved_n_text, config.interleaved_n_audio);
  const auto weights = SafeTensors::Open(dir / "model.safetensors");
  size_t bytes = 0;
  for (const auto& name : weights.Names()) {
    const auto& t = weights.Get(name);
    bytes += t.nbytes;
    if (list_tensors) {
      std::printf("  %-70s %-5s %s\n", name.c_str(), DTypeName(t.dtype), t.ShapeString().c_str());
    }
  }
  std::printf("weights: %zu tensors, %.1f MB\n", weights.Names().size(), bytes / 1e6);
  return 0;
}

EDDY_COMMAND("info", "Show what a model directory holds (config and tensors)",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<ModelOptions>();
               auto list = std::make_shared<bool>(false);
               AddModelOptions(cmd, *opts);
               cmd.add_flag("--tensors", *list, "list every tensor with dtype and shape");
               return [opts, list] { return RunInfo(*opts, *list); };
             });

}  // namespace
}  // namespace eddy::app
