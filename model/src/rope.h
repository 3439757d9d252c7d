// Rotary embeddings and single-query attention shared by the backbone and the depthformer.
#pragma once

#include <cstdint>

#include <algorithm>
#include <cmath>
#include <vector>

#include "eddy/safetensors.h"

namespace eddy::rope {

// inv_freq_j = theta^(-2j/dim), j < dim/2, computed in float32 like torch; optionally rounded to
// bf16 as the official bf16 loader does (spec_backbone.md §1.8).
inline std::vector<float> InverseFrequencies(int dim, double theta, bool round_to_bf16) {
  std::vector<float> f(dim / 2);
  for (int j = 0; j < dim / 2; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(dim);
    f[j] = 1.0f / std::pow(static_cast<float>(theta), exponent);
    if (round_to_bf16) f[j] = Bf16ToFloat(FloatToBf16(f[j]));
  }
  return f;
}

// NeoX / rotate-half: dims (j, j + dim/2) rotate together (backbone).
inline void ApplyNeox(float* x, int dim, int pos, const float* inv_freq) {
  const int half = dim / 2;
  for (int j = 0; j < half; ++j) {
    const float angle = static_cast<float>(pos) * inv_freq[j];
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = x[j], b = x[j + half];
    x[j] = a * c - b * s;
    x[j + half] = b * c + a * s;
  }
}

// Interleaved pairs: dims (2j, 2j+1) rotate together (depthformer).
inline void ApplyInterleaved(float* x, int dim, int pos, const float* inv_freq) {
  for (int j = 0; j < dim / 2; ++j) {
    const float angle = static_cast<float>(pos) * inv_freq[j];
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = x[2 * j], b = x[2 * j + 1];
    x[2 * j] = a * c - b * s;
    x[2 * j + 1] = b * c + a * s;
  }
}

// out[dim] = softmax(q . K^T * scale) V over the first `visible` cached positions; K and V rows
// are `stride` floats apart. scores needs `visible` floats.
inline void AttendOne(const float* q, const float* keys, const float* values, int stride,
                      int visible, int dim, float scale, float* scores, float* out) {
  float max_score = -INFINITY;
  for (int j = 0; j < visible; ++j) {
    const float* k = keys + static_cast<size_t>(j) * stride;
    float dot = 0.0f;
    for (int i = 0; i < dim; ++i) dot += q[i] * k[i];
    scores[j] = dot * scale;
    max_score = std::max(max_score, scores[j]);
  }
  float sum = 0.0f;
  for (int j = 0; j < visible; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < dim; ++i) out[i] = 0.0f;
  for (int j = 0; j < visible; ++j) {
    const float* v = values + static_cast<size_t>(j) * stride;
    const float p = scores[j] * inv;
    for (int i = 0; i < dim; ++i) out[i] += p * v[i];
  }
}

// The same attention over a cache of f16 bits. Both implementations sum each dot product in 16
// interleaved lanes (lane = dimension mod 16) and then the lanes in order, and accumulate the
// weighted values position by position with fused multiply-adds, so they agree bit for bit. The
// AVX-512 one needs dim % 16 == 0.
void AttendOneF16Portable(const float* q, const uint16_t* keys, const uint16_t* values, int stride,
                          int visible, int dim, float scale, float* scores, float* out);
void AttendOneF16Avx512(const float* q, const uint16_t* keys, const uint16_t* values, int stride,
                        int visible, int dim, float scale, float* scores, float* out);
using AttendF16Fn = void (*)(const float*, const uint16_t*, const uint16_t*, int, int, int, float,
                             float*, float*);
// The AVX-512 one when the default kernel is AVX-512 and dim allows it, else the portable one.
AttendF16Fn SelectAttendF16(int dim);

}  // namespace eddy::rope
