// Attention over an f16 key/value cache (see rope.h).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "quant.h"
#include "rope.h"

namespace eddy::rope {

namespace {

// Attention of one query over `visible` cached positions whose keys and values are f16, with the
// cache rows widened on the fly. Both versions sum a dot product in 16 interleaved lanes (lane
// i mod 16), then the lanes in order, and accumulate the weighted values position by position
// with fused multiply-adds, so they agree bit for bit.
constexpr int kAttendLanes = 16;

float SumLanes(const float* lanes) {
  float sum = 0.0f;
  for (int l = 0; l < kAttendLanes; ++l) sum += lanes[l];
  return sum;
}

// Softmax of scores[0, visible) in place.
void Softmax(float* scores, int visible) {
  float max_score = -INFINITY;
  for (int j = 0; j < visible; ++j) max_score = std::max(max_score, scores[j]);
  float sum = 0.0f;
  for (int j = 0; j < visible; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < visible; ++j) scores[j] *= inv;
}

}  // namespace

void AttendOneF16Portable(const float* q, const uint16_t* keys, const uint16_t* values, int stride,
                          int visible, int dim, float scale, float* scores, float* out) {
  for (int j = 0; j < visible; ++j) {
    const uint16_t* k = keys + static_cast<size_t>(j) * stride;
    float lanes[kAttendLanes] = {};
    for (int i = 0; i < dim; ++i) {
      lanes[i % kAttendLanes] = std::fma(q[i], quant::HalfToFloat(k[i]), lanes[i % kAttendLanes]);
    }
    scores[j] = SumLanes(lanes) * scale;
  }
  Softmax(scores, visible);
  for (int i = 0; i < dim; ++i) out[i] = 0.0f;
  for (int j = 0; j < visible; ++j) {
    const uint16_t* v = values + static_cast<size_t>(j) * stride;
    for (int i = 0; i < dim; ++i) out[i] = std::fma(scores[j], quant::HalfToFloat(v[i]), out[i]);
  }
}

// dim must be a multiple of 16.
namespace {

constexpr int kMaxChunks = 8;  // dims up to 128 keep their value accumulators in registers

// q . k in 16 lanes (lane = dimension mod 16), as the portable version sums it.
__attribute__((target("avx512f,f16c"))) inline __m512 DotLanes(const float* q, const uint16_t* k,
                                                               int dim) {
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < dim; i += kAttendLanes) {
    const __m512 kf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + i)));
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), kf, acc);
  }
  return acc;
}

// scores[j] for 16 consecutive positions: each dot product in 16 lanes as in the portable
// version, then the 16 lane sums taken in the same order for all positions at once (lane l of
// every position is one gathered column of the 16 x 16 block).
__attribute__((target("avx512f,f16c"))) void ScoreSixteen(const float* q, const uint16_t* keys,
                                                          int stride, int dim, float scale,
                                                          float* scores) {
  alignas(64) float lanes[kAttendLanes * kAttendLanes];
  for (int j = 0; j < kAttendLanes; ++j) {
    _mm512_store_ps(lanes + j * kAttendLanes,
                    DotLanes(q, keys + static_cast<size_t>(j) * stride, dim));
  }
  const __m512i rows =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(kAttendLanes));
  __m512 sum = _mm512_setzero_ps();
  for (int l = 0; l < kAttendLanes; ++l) {
    sum = _mm512_add_ps(sum, _mm512_i32gather_ps(rows, lanes + l, 4));
  }
  _mm512_storeu_ps(scores, _mm512_mul_ps(sum, _mm512_set1_ps(scale)));
}

__attribute__((target("avx512f,f16c"))) float ScoreOne(const float* q, const uint16_t* k, int dim,
                                                       float scale) {
  float lanes[kAttendLanes];
  _mm512_storeu_ps(lanes, DotLanes(q, k, dim));
  return SumLanes(lanes) * scale;
}

}  // namespace

__attribute__((target("avx512f,f16c"))) void AttendOneF16Avx512(const float* q,
                                                                const uint16_t* keys,
                                                                const uint16_t* values, int stride,
                                                                int visible, int dim, float scale,
                                                                float* scores, float* out) {
  int j = 0;
  for (; j + kAttendLanes <= visible; j += kAttendLanes) {
    ScoreSixteen(q, keys + static_cast<size_t>(j) * stride, stride, dim, scale, scores + j);
  }
  for (; j < visible; ++j)
    scores[j] = ScoreOne(q, keys + static_cast<size_t>(j) * stride, dim, scale);
  Softmax(scores, visible);
  // Each output element accumulates position by position, as in the portable version; with the
  // positions in the outer loop the dim / 16 chains run side by side instead of one after another.
  const int chunks = dim / kAttendLanes;
  if (chunks <= kMaxChunks) {
    __m512 acc[kMaxChunks];
    for (int c = 0; c < chunks; ++c) acc[c] = _mm512_setzero_ps();
    for (int p = 0; p < visible; ++p) {
      const uint16_t* v = values + static_cast<size_t>(p) * stride;
      const __m512 weight = _mm512_set1_ps(scores[p]);
      for (int c = 0; c < chunks; ++c) {
        const __m512 vf = _mm512_cvtph_ps(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c * kAttendLanes)));
        acc[c] = _mm512_fmadd_ps(weight, vf, acc[c]);
      }
    }
    for (int c = 0; c < chunks; ++c) _mm512_storeu_ps(out + c * kAttendLanes, acc[c]);
    return;
  }
  for (int i = 0; i < dim; i += kAttendLanes) {
    __m512 acc = _mm512_setzero_ps();
    for (int p = 0; p < visible; ++p) {
      const uint16_t* v = values + static_cast<size_t>(p) * stride + i;
      const __m512 vf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)));
      acc = _mm512_fmadd_ps(_mm512_set1_ps(scores[p]), vf, acc);
    }
    _mm512_storeu_ps(out + i, acc);
  }
}

AttendF16Fn SelectAttendF16(int dim) {
  const bool simd = quant::BestKernel() == quant::Kernel::kAvx512Vnni && dim % 16 == 0;
  return simd ? AttendOneF16Avx512 : AttendOneF16Portable;
}

}  // namespace eddy::rope
