// Accuracy of the fast weight formats against float32 on the golden model: the golden ASR prompt
// is prefilled and decoded greedily (float32 picks every token; the other format is fed the same
// tokens), and each step's text logits are compared. Bounds follow from the formats' step sizes:
// bf16 keeps 8 mantissa bits (relative rounding 2^-9 per weight), q8 1/127 of each 32-block's
// largest magnitude, q4 1/8 of it; the errors of a layer's many products add up like random
// noise, and they compound over the layers. A random model's logits are flat, so top-1 flips at
// its near-ties on the smallest error; top-5 (the pick among float32's five best) is the robust
// measure, and random logits would land there about 5 / vocab of the time.
//
// The bounds hold with headroom over the default golden set and over 30 reshuffled copies of its
// weights (same shapes, every tensor's values but the norms permuted with another seed), 32 steps
// each:
//   bf16: rms 0.005-0.017, top-1 0.97-1.0, top-5 1.0
//   q8:   rms 0.026-0.091, top-1 0.91-1.0, top-5 1.0
//   q4:   rms 0.27-0.81,   top-1 0.16-1.0, top-5 0.91-1.0
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "eddy/audio_model.h"
#include "eddy/sampling.h"
#include "golden.h"
#include "golden_prompt.h"
#include "quant.h"

namespace eddy {
namespace {

LogitAgreement CompareWithFloat32(const std::string& format, int steps) {
  static const auto reference = [] {
    AudioModelOptions options;
    options.weight_format = "f32";
    return AudioModel::Load(test::GoldenModelDir(), options);
  }();
  AudioModelOptions options;
  options.weight_format = format;
  const auto model = AudioModel::Load(test::GoldenModelDir(), options);
  const PromptInputs prompt =
      test::LoadGoldenPrompt(test::GoldenDir() / "model" / "outputs" / "f_e2e" / "asr_sequential");
  const LogitAgreement a = CompareGreedyDecode(reference->backbone(), model->backbone(),
                                               reference->AssembleEmbeddings(prompt), steps);
  std::printf(
      "%s vs f32 over %d greedy steps: relative logit error rms %.4f, max %.4f; top-1 agreement "
      "%.3f, top-5 %.3f\n",
      format.c_str(), steps, a.rms_relative_error, a.max_relative_error, a.top1, a.top5);
  return a;
}

constexpr int kSteps = 32;

TEST(QuantAccuracy, Bf16AgreesWithFloat32) {
  const LogitAgreement a = CompareWithFloat32("bf16", kSteps);
  EXPECT_LT(a.rms_relative_error, 0.05);
  EXPECT_GE(a.top1, 0.9);
  EXPECT_GE(a.top5, 0.95);
}

TEST(QuantAccuracy, Q8AgreesWithFloat32) {
  const LogitAgreement a = CompareWithFloat32("q8", kSteps);
  EXPECT_LT(a.rms_relative_error, 0.2);
  EXPECT_GE(a.top1, 0.75);
  EXPECT_GE(a.top5, 0.95);
}

TEST(QuantAccuracy, Q4AgreesWithFloat32) {
  const LogitAgreement a = CompareWithFloat32("q4", kSteps);
  // A 4-bit step is an eighth of the block's largest weight: on a model as narrow as the golden one
  // (hidden size 32, one block per row) that is most of the signal of a product, so top-1 follows
  // float32 only where its margin is clear and says more about the margins than about the format
  // (0.16 to 1.0 above); it is reported, not bounded. The bounds say the logits still follow
  // float32's: unrelated ones of the same size would be about 1.4 apart and would pick one of
  // float32's five best tokens almost never.
  EXPECT_LT(a.rms_relative_error, 1.0);
  EXPECT_GE(a.top5, 0.75);
}

// The kernels are bit-identical, so a quantized model decodes to the same logits on every CPU.
TEST(QuantAccuracy, QuantizedLogitsIdenticalUnderEveryKernel) {
  const PromptInputs prompt =
      test::LoadGoldenPrompt(test::GoldenDir() / "model" / "outputs" / "f_e2e" / "asr_sequential");
  for (const std::string format : {"q8", "q4"}) {
    AudioModelOptions options;
    options.weight_format = format;
    const auto model = AudioModel::Load(test::GoldenModelDir(), options);
    const std::vector<float> rows = model->AssembleEmbeddings(prompt);
    const int d = model->hidden_size(), n = static_cast<int>(rows.size() / d);
    std::vector<std::vector<float>> first_logits;
    for (quant::Kernel k :
         {quant::Kernel::kPortable, quant::Kernel::kAvx2, quant::Kernel::kAvx512Vnni}) {
      if (!quant::Supported(k)) {
        std::fprintf(stderr, "NOTE: kernel %s not supported by this CPU, not compared\n",
                     quant::KernelName(k));
        continue;
      }
      quant::ForceKernel(k);
      const Lfm2Model& lfm = model->backbone();
      Lfm2Cache cache = lfm.NewCache();
      std::vector<float> hidden(rows.size());
      lfm.Forward(rows.data(), n, cache, hidden.data());
      std::vector<float> last(hidden.end() - d, hidden.end()), logits;
      for (int step = 0; step < 8; ++step) {
        const std::vector<float> l = lfm.TextLogits(last.data());
        logits.insert(logits.end(), l.begin(), l.end());
        last = lfm.Forward(lfm.EmbedText({ArgMax(l.data(), static_cast<int>(l.size()))}), cache);
      }
      first_logits.push_back(std::move(logits));
      EXPECT_EQ(first_logits.back(), first_logits.front())
          << format << ": kernel " << quant::KernelName(k) << " differs from the portable one";
    }
    quant::ForceKernel(quant::BestKernel());
  }
}

}  // namespace
}  // namespace eddy
