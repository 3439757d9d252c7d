#include "eddy/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace eddy {

int ArgMax(const float* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

int Sampler::Sample(const float* logits, int n, const SamplingParams& params) {
  if (n <= 0) throw std::invalid_argument("Sampler::Sample: no logits");
  if (params.greedy()) return ArgMax(logits, n);
  const float temperature = *params.temperature;
  probs_.assign(logits, logits + n);
  for (float& p : probs_) p /= temperature;
  float threshold = -INFINITY;
  if (params.top_k && *params.top_k > 0 && *params.top_k < n) {
    sorted_ = probs_;
    std::nth_element(sorted_.begin(), sorted_.begin() + (*params.top_k - 1), sorted_.end(),
                     std::greater<float>());
    threshold = sorted_[*params.top_k - 1];
  }
  float max_logit = -INFINITY;
  for (float p : probs_) {
    if (p >= threshold) max_logit = std::max(max_logit, p);
  }
  double sum = 0.0;
  for (float& p : probs_) {
    p = p >= threshold ? std::exp(p - max_logit) : 0.0f;
    sum += p;
  }
  std::uniform_real_distribution<double> uniform(0.0, sum);
  const double u = uniform(rng_);
  double acc = 0.0;
  int last_kept = 0;
  for (int i = 0; i < n; ++i) {
    if (probs_[i] <= 0.0f) continue;
    last_kept = i;
    acc += probs_[i];
    if (u < acc) return i;
  }
  return last_kept;
}

}  // namespace eddy
