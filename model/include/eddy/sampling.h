// Token / code sampling exactly as the reference (spec_backbone.md §2.6): greedy (first maximum)
// when temperature is unset or <= 0 or top_k == 1; otherwise logits / T, keep every logit >= the
// k-th largest (ties at the threshold are kept), softmax, one multinomial draw.
// Random draws use std::mt19937_64 and cannot reproduce torch's RNG; only greedy decoding is
// bit-comparable with the reference.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace eddy {

struct SamplingParams {
  std::optional<float> temperature;
  std::optional<int> top_k;
  bool greedy() const { return !temperature || *temperature <= 0.0f || (top_k && *top_k == 1); }
};

// Separate settings for text tokens and audio codes, as generate_* takes them.
struct GenerationSampling {
  SamplingParams text;
  SamplingParams audio;
};

// Index of the first maximum.
int ArgMax(const float* logits, int n);

class Sampler {
 public:
  explicit Sampler(uint64_t seed = 0) : rng_(seed) {}
  void Seed(uint64_t seed) { rng_.seed(seed); }
  int Sample(const float* logits, int n, const SamplingParams& params);

 private:
  std::mt19937_64 rng_;
  std::vector<float> probs_, sorted_;
};

}  // namespace eddy
