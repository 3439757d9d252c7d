// bench_backbone: load time, prefill and decode throughput of the LFM2 backbone and the time of
// one audio frame (backbone step + depthformer over all codebooks). Prints numbers, never fails
// on time. Model dir: first argument or EDDY_BENCH_MODEL (e.g. from `eddy make-random-model`).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "eddy/audio_head.h"
#include "eddy/config.h"
#include "eddy/lfm2.h"
#include "eddy/safetensors.h"
#include "ops.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace eddy;
  const char* env = std::getenv("EDDY_BENCH_MODEL");
  const std::string dir = argc > 1 ? argv[1] : (env ? env : "");
  if (dir.empty()) {
    std::fprintf(stderr,
                 "usage: bench_backbone MODEL_DIR [THREADS] [native|f32|bf16|q8|q4] (or set "
                 "EDDY_BENCH_MODEL)\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  Lfm2Options options;
  if (argc > 3) options.weight_format = argv[3];
  ops::SetNumThreads(threads);
  try {
    auto t0 = std::chrono::steady_clock::now();
    const AudioModelConfig config = AudioModelConfig::Load(dir + "/config.json");
    auto st = std::make_shared<const SafeTensors>(SafeTensors::Open(dir + "/model.safetensors"));
    auto lfm = Lfm2Model::Load(st, config.lfm, options);
    auto head = AudioHead::Load(st, config, options.weight_format);
    auto audio_embedding = AudioEmbedding::Load(st, config);
    std::printf("model: %s, threads %d, weights %s\n", dir.c_str(), threads,
                options.weight_format.c_str());
    std::printf("load (backbone + audio head): %.3f s\n", Seconds(t0));

    const int d = lfm->hidden_size();
    for (int n : {64, 256}) {
      std::vector<int> ids(n);
      for (int i = 0; i < n; ++i) ids[i] = (i * 131 + 7) % lfm->vocab_size();
      const std::vector<float> emb = lfm->EmbedText(ids);
      std::vector<float> out(emb.size());
      Lfm2Cache cache = lfm->NewCache();
      t0 = std::chrono::steady_clock::now();
      lfm->Forward(emb.data(), n, cache, out.data());
      const double s = Seconds(t0);
      std::printf("prefill %d tokens: %.3f s, %.1f tok/s\n", n, s, n / s);
    }

    Lfm2Cache cache = lfm->NewCache();
    const std::vector<float> prompt = lfm->EmbedText(std::vector<int>(64, 1));
    std::vector<float> hidden = lfm->Forward(prompt, cache);
    std::vector<float> last(hidden.end() - d, hidden.end());
    const int steps = 32;
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      const std::vector<float> logits = lfm->TextLogits(last.data());
      const int token = ArgMax(logits.data(), static_cast<int>(logits.size()));
      last = lfm->Forward(lfm->EmbedText({token}), cache);
    }
    double s = Seconds(t0);
    {
      const std::vector<float> logits = lfm->TextLogits(last.data());
      float max_abs = 0.0f;
      bool finite = true;
      for (float v : logits) {
        finite = finite && std::isfinite(v);
        max_abs = std::max(max_abs, std::fabs(v));
      }
      std::printf("last text logits: %s, max |logit| %.3g\n", finite ? "finite" : "NOT FINITE",
                  max_abs);
    }
    std::printf("decode (text step incl. logits) after 64 tokens: %.1f ms/token, %.2f tok/s\n",
                1e3 * s / steps, steps / s);

    AudioHeadState state = head->NewState();
    Sampler sampler(1);
    std::vector<float> next(d);
    const int frames = 16;
    double head_s = 0.0;
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < frames; ++i) {
      const auto h0 = std::chrono::steady_clock::now();
      const AudioFrame frame = head->SampleFrame(last.data(), {}, sampler, state);
      head_s += Seconds(h0);
      audio_embedding->EmbedFrame(frame.codes.data(), next.data());
      last = lfm->Forward(next, cache);
    }
    s = Seconds(t0);
    std::printf(
        "audio frame (depthformer %d codebooks + backbone step): %.1f ms/frame "
        "(depthformer %.1f ms), %.2f frames/s (real time needs 12.5)\n",
        head->codebooks(), 1e3 * s / frames, 1e3 * head_s / frames, frames / s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
