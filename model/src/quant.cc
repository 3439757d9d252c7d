#include "quant.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace eddy::quant {

const char* KernelName(Kernel k) {
  switch (k) {
    case Kernel::kPortable:
      return "portable";
    case Kernel::kAvx2:
      return "avx2";
    case Kernel::kAvx512Vnni:
      return "avx512-vnni";
  }
  return "?";
}

bool Supported(Kernel k) {
  switch (k) {
    case Kernel::kPortable:
      return true;
    case Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Kernel::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("f16c");
  }
  return false;
}

namespace {

Kernel FastestSupported() {
  return Supported(Kernel::kAvx512Vnni) ? Kernel::kAvx512Vnni
         : Supported(Kernel::kAvx2)     ? Kernel::kAvx2
                                        : Kernel::kPortable;
}

Kernel KernelFromEnvironment() {
  const char* name = std::getenv("EDDY_KERNEL");
  if (name == nullptr || *name == '\0') return FastestSupported();
  for (Kernel k : {Kernel::kPortable, Kernel::kAvx2, Kernel::kAvx512Vnni}) {
    if (std::string(name) != KernelName(k)) continue;
    if (Supported(k)) return k;
    std::fprintf(stderr, "eddy: EDDY_KERNEL=%s is not supported by this CPU; using %s\n", name,
                 KernelName(FastestSupported()));
    return FastestSupported();
  }
  std::fprintf(stderr,
               "eddy: unknown EDDY_KERNEL=%s (expected portable, avx2 or avx512-vnni); using %s\n",
               name, KernelName(FastestSupported()));
  return FastestSupported();
}

std::atomic<Kernel>& DefaultKernel() {
  static std::atomic<Kernel> kernel{KernelFromEnvironment()};
  return kernel;
}

}  // namespace

Kernel BestKernel() {
  return DefaultKernel().load(std::memory_order_relaxed);
}

void ForceKernel(Kernel k) {
  if (!Supported(k)) {
    throw std::runtime_error(std::string("kernel ") + KernelName(k) +
                             " is not supported by this CPU");
  }
  DefaultKernel().store(k);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  // Round to nearest even; scales are positive, finite and far from the f16 limits in practice,
  // but every case is handled.
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  x &= 0x7fffffff;
  if (x >= 0x7f800000) return static_cast<uint16_t>(sign | 0x7c00 | (x > 0x7f800000 ? 0x200 : 0));
  if (x >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // overflow -> inf
  if (x < 0x38800000) {                                              // subnormal or zero
    float a;
    std::memcpy(&a, &x, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  const uint32_t rounded = x + 0xfff + ((x >> 13) & 1);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000) >> 13));
}

namespace {

// Byte offset and nibble of weight k (0..31) of panel row r (0..15) inside a packed panel block.
// Q8: group g = k / 4 of all 16 rows is one 64-byte line. Q4: lines h = 0..3 hold group h in their
// low nibbles and group h + 4 in their high nibbles.
inline size_t WeightByte(int r, int k) {
  return static_cast<size_t>((k / 4) % 4) * 64 + static_cast<size_t>(r) * 4 + k % 4;
}

template <Format F>
inline int StoredWeight(const uint8_t* block, int r, int k) {
  if constexpr (F == Format::kQ8) {
    return block[static_cast<size_t>(k / 4) * 64 + static_cast<size_t>(r) * 4 + k % 4];
  } else {
    const uint8_t byte = block[WeightByte(r, k)];
    return k / 4 < 4 ? (byte & 0x0f) : (byte >> 4);
  }
}

// Block b's 16 row scales inside a panel of format F.
template <Format F>
inline const uint16_t* BlockScales(const uint8_t* panel, int b) {
  return reinterpret_cast<const uint16_t*>(panel + ScaleOffset(F, b));
}

template <Format F>
constexpr int kOffset = F == Format::kQ8 ? kQ8Offset : kQ4Offset;

// Symmetric block quantization, q = round(v / d). Q8: d = max|v| / 127. Q4: d = -v_max / 8 for the
// value of largest magnitude v_max (the first such), which is then represented exactly as -8 (an
// unsigned choice of max|v| / 8 would have to clamp it to 7, its error being the largest in the
// block); the scale may be negative.
struct BlockScale {
  uint16_t half;
  float inv;  // 1 / d, or 0 for an all-zero block
  int qmin, qmax;
};

BlockScale ScaleFor(float extreme, Format format) {
  const bool q8 = format == Format::kQ8;
  BlockScale s;
  s.half = FloatToHalf(q8 ? std::fabs(extreme) / 127.0f : extreme / -8.0f);
  const float d = HalfToFloat(s.half);
  s.inv = d != 0.0f ? 1.0f / d : 0.0f;
  s.qmin = q8 ? -127 : -8;
  s.qmax = q8 ? 127 : 7;
  return s;
}

void QuantizeBlockPortable(const float* v, Format format, int8_t* q, uint16_t* scale) {
  float extreme = 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    if (std::fabs(v[i]) > std::fabs(extreme)) extreme = v[i];
  }
  const BlockScale s = ScaleFor(extreme, format);
  *scale = s.half;
  for (int i = 0; i < kBlock; ++i) {
    q[i] = static_cast<int8_t>(
        std::clamp(static_cast<int>(std::nearbyint(v[i] * s.inv)), s.qmin, s.qmax));
  }
}

// The same operations on 16 lanes: a product, round-to-nearest-even and a clamp are exact
// per element, so the result equals the portable one bit for bit. (GCC 12's AVX-512 headers use
// _mm512_undefined_* as the unused source of their masked builtins and then warn about it:
// GCC bug 105593.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx512bw"))) void QuantizeBlockAvx512(const float* v, Format format,
                                                                     int8_t* q, uint16_t* scale) {
  const __m512 lo = _mm512_loadu_ps(v), hi = _mm512_loadu_ps(v + 16);
  const __m512 abs_lo = _mm512_abs_ps(lo), abs_hi = _mm512_abs_ps(hi);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_lo, abs_hi));
  const __m512 target = _mm512_set1_ps(amax);
  const uint32_t hits = _mm512_cmpeq_ps_mask(abs_lo, target) |
                        static_cast<uint32_t>(_mm512_cmpeq_ps_mask(abs_hi, target)) << 16;
  const float extreme = amax > 0.0f ? v[__builtin_ctz(hits)] : 0.0f;
  const BlockScale s = ScaleFor(extreme, format);
  *scale = s.half;
  const __m512 inv = _mm512_set1_ps(s.inv);
  const __m512i qmin = _mm512_set1_epi32(s.qmin), qmax = _mm512_set1_epi32(s.qmax);
  for (int half = 0; half < 2; ++half) {
    const __m512 scaled = _mm512_mul_ps(half == 0 ? lo : hi, inv);
    const __m512i r =
        _mm512_cvt_roundps_epi32(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i clamped = _mm512_min_epi32(_mm512_max_epi32(r, qmin), qmax);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * half), _mm512_cvtepi32_epi8(clamped));
  }
}
#pragma GCC diagnostic pop

}  // namespace

namespace {

// The block quantizers (weights at load, activations per product) have an AVX-512 version
// wherever the CPU has one, whatever kernel the products use: both versions give the same bytes.
Kernel QuantizerKernel() {
  return Supported(Kernel::kAvx512Vnni) ? Kernel::kAvx512Vnni : Kernel::kPortable;
}

}  // namespace

void QuantizeBlock(const float* v, Format format, int8_t* q, uint16_t* scale, Kernel kernel) {
  if (kernel == Kernel::kAvx512Vnni) {
    QuantizeBlockAvx512(v, format, q, scale);
  } else {
    QuantizeBlockPortable(v, format, q, scale);
  }
}

void QuantizedMatrix::StoreBlock(int r, int b, const int8_t* q, uint16_t scale) {
  const int p = r / kPanelRows, lane = r % kPanelRows;
  uint8_t* block = mutable_panel_block(p, b);
  mutable_panel_scales(p, b)[lane] = scale;
  // The row's bytes in line order, then 4 of them per 64-byte line (WeightByte): Q8 has the 8
  // groups of 4 weights on lines 0-7; Q4 has group i on line i's low nibbles and group i + 4 on
  // its high ones.
  uint8_t bytes[kBlock];
  int lines;
  if (format_ == Format::kQ8) {
    for (int k = 0; k < kBlock; ++k) bytes[k] = static_cast<uint8_t>(q[k] + kQ8Offset);
    lines = kBlock / 4;
  } else {
    for (int k = 0; k < kBlock / 2; ++k) {
      bytes[k] = static_cast<uint8_t>((q[k] + kQ4Offset) | (q[k + kBlock / 2] + kQ4Offset) << 4);
    }
    lines = kBlock / 8;
  }
  for (int line = 0; line < lines; ++line) {
    std::memcpy(block + static_cast<size_t>(line) * 64 + static_cast<size_t>(lane) * 4,
                bytes + 4 * line, 4);
  }
}

template <typename LoadRow>
QuantizedMatrix QuantizedMatrix::QuantizeWith(int rows, int cols, Format format, LoadRow load_row) {
  QuantizedMatrix m;
  m.format_ = format;
  m.rows_ = rows;
  m.cols_ = cols;
  m.blocks_ = (cols + kBlock - 1) / kBlock;
  m.panels_ = (rows + kPanelRows - 1) / kPanelRows;
  const int groups = (m.blocks_ + kScaleGroupBlocks - 1) / kScaleGroupBlocks;
  m.panel_bytes_ = static_cast<size_t>(groups) * ScaleGroupBytes(format);
  m.data_size_ = m.panel_bytes_ * m.panels_;
  // Every byte is written below: the blocks by the quantizer, the last group's unused ones here.
  m.data_.reset(static_cast<uint8_t*>(::operator new[](m.data_size_, std::align_val_t{64})));
  const int unused_blocks = groups * kScaleGroupBlocks - m.blocks_;
  const Kernel kernel = QuantizerKernel();
  // Rows of one panel share bytes: each thread owns whole panels. Rows past the end (padding) are
  // zero rows, stored like any other; so are the columns past the end of the last block.
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(m.blocks_) * kBlock, 0.0f);
    int8_t q[kBlock];
    uint16_t scale;
#pragma omp for schedule(static)
    for (int p = 0; p < m.panels_; ++p) {
      for (int b = m.blocks_; b < m.blocks_ + unused_blocks; ++b) {
        std::memset(m.mutable_panel_block(p, b), 0, PanelBlockBytes(format));
        std::memset(m.mutable_panel_scales(p, b), 0, kPanelScaleBytes);
      }
      for (int r = p * kPanelRows; r < (p + 1) * kPanelRows; ++r) {
        if (r < rows) {
          load_row(r, row.data());
        } else {
          std::fill(row.begin(), row.end(), 0.0f);
        }
        for (int b = 0; b < m.blocks_; ++b) {
          QuantizeBlock(row.data() + static_cast<size_t>(b) * kBlock, format, q, &scale, kernel);
          m.StoreBlock(r, b, q, scale);
        }
      }
    }
  }
  return m;
}

QuantizedMatrix QuantizedMatrix::Quantize(const float* weights, int rows, int cols, Format format) {
  return QuantizeWith(rows, cols, format, [&](int r, float* row) {
    std::memcpy(row, weights + static_cast<size_t>(r) * cols, sizeof(float) * cols);
  });
}

QuantizedMatrix QuantizedMatrix::QuantizeBf16(const uint16_t* weights, int rows, int cols,
                                              Format format) {
  return QuantizeWith(rows, cols, format, [&](int r, float* row) {
    const uint16_t* src = weights + static_cast<size_t>(r) * cols;
    for (int i = 0; i < cols; ++i) {
      const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(row + i, &bits, 4);
    }
  });
}

void QuantizedMatrix::DequantizeRow(int r, float* out) const {
  const int p = r / kPanelRows, lane = r % kPanelRows;
  for (int b = 0; b < blocks_; ++b) {
    const uint8_t* block = panel_block(p, b);
    const float d = HalfToFloat(panel_scales(p, b)[lane]);
    for (int k = 0; k < kBlock && b * kBlock + k < cols_; ++k) {
      const int v = format_ == Format::kQ8 ? StoredWeight<Format::kQ8>(block, lane, k) - kQ8Offset
                                           : StoredWeight<Format::kQ4>(block, lane, k) - kQ4Offset;
      out[b * kBlock + k] = d * static_cast<float>(v);
    }
  }
}

namespace {

void QuantizeActivationBlockPortable(const float* v, int count, int8_t* q, float* scale,
                                     int32_t* sum) {
  float amax = 0.0f;
  for (int c = 0; c < count; ++c) amax = std::max(amax, std::fabs(v[c]));
  const float d = amax / 127.0f;
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  int32_t s = 0;
  for (int c = 0; c < count; ++c) {
    q[c] = static_cast<int8_t>(std::nearbyint(v[c] * inv));
    s += q[c];
  }
  std::fill(q + count, q + kBlock, int8_t{0});
  *scale = d;
  *sum = s;
}

// The same exact operations on 16 lanes (a maximum, a product, round-to-nearest-even), so the
// bytes, scale and sum equal the portable ones. Partial blocks take the portable path.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx512bw"))) void QuantizeActivationBlockAvx512(const float* v,
                                                                               int count, int8_t* q,
                                                                               float* scale,
                                                                               int32_t* sum) {
  if (count != kBlock) {
    QuantizeActivationBlockPortable(v, count, q, scale, sum);
    return;
  }
  const __m512 lo = _mm512_loadu_ps(v), hi = _mm512_loadu_ps(v + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
  const float d = amax / 127.0f;
  const __m512 inv = _mm512_set1_ps(d > 0 ? 1.0f / d : 0.0f);
  const __m512i qlo = _mm512_cvt_roundps_epi32(_mm512_mul_ps(lo, inv),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512i qhi = _mm512_cvt_roundps_epi32(_mm512_mul_ps(hi, inv),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qlo));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qhi));
  *scale = d;
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
}
#pragma GCC diagnostic pop

}  // namespace

void QuantizeActivationBlock(const float* v, int count, int8_t* q, float* scale, int32_t* sum,
                             Kernel kernel) {
  if (kernel == Kernel::kAvx512Vnni) {
    QuantizeActivationBlockAvx512(v, count, q, scale, sum);
  } else {
    QuantizeActivationBlockPortable(v, count, q, scale, sum);
  }
}

void QuantizedActivations::Assign(const float* x, int n, int cols) {
  blocks = (cols + kBlock - 1) / kBlock;
  q.resize(static_cast<size_t>(n) * blocks * kBlock);  // every byte written below
  scale.resize(static_cast<size_t>(n) * blocks);
  sum.resize(static_cast<size_t>(n) * blocks);
  const Kernel kernel = QuantizerKernel();
#pragma omp parallel for schedule(static) if (n > 8)
  for (int row = 0; row < n; ++row) {
    const float* xr = x + static_cast<size_t>(row) * cols;
    for (int b = 0; b < blocks; ++b) {
      const size_t at = static_cast<size_t>(row) * blocks + b;
      QuantizeActivationBlock(xr + b * kBlock, std::min(kBlock, cols - b * kBlock),
                              q.data() + at * kBlock, &scale[at], &sum[at], kernel);
    }
  }
}

QuantizedActivations QuantizedActivations::From(const float* x, int n, int cols) {
  QuantizedActivations a;
  a.Assign(x, n, cols);
  return a;
}

namespace {

// Every kernel computes, for each panel row r and activation row c, over blocks b in order:
//   dot = sum_k stored_w[r][k] * xq[c][k] - offset * xsum[c][b]       (exact, int32)
//   acc = fma(float(dot), half_to_float(w_scale[r][b]) * x_scale[c][b], acc)
// and writes acc. Identical operations in identical order make the kernels agree bit for bit.
struct PanelArgs {
  const QuantizedMatrix* m;
  int panel;
  const QuantizedActivations* xa;
  int c0, nc;  // activation rows [c0, c0 + nc)
  float* y;
  int ldy;     // y[c * ldy + row]
  int np = 1;  // panels [panel, panel + np)
};

inline int ValidRows(const QuantizedMatrix& m, int panel) {
  return std::min(kPanelRows, m.rows() - panel * kPanelRows);
}
inline int ValidRows(const PanelArgs& a) {
  return ValidRows(*a.m, a.panel);
}

template <Format F>
void PanelPortable(const PanelArgs& a) {
  const int blocks = a.m->blocks_per_row(), valid = ValidRows(a);
  const uint8_t* panel = a.m->panel(a.panel);
  for (int c = a.c0; c < a.c0 + a.nc; ++c) {
    float acc[kPanelRows] = {};
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* w = panel + BlockOffset(F, b);
      const uint16_t* ws = BlockScales<F>(panel, b);
      const size_t off = static_cast<size_t>(c) * blocks + b;
      const int8_t* xq = a.xa->q.data() + off * kBlock;
      for (int r = 0; r < kPanelRows; ++r) {
        int32_t dot = -kOffset<F> * a.xa->sum[off];
        for (int k = 0; k < kBlock; ++k) dot += StoredWeight<F>(w, r, k) * xq[k];
        const float d = HalfToFloat(ws[r]) * a.xa->scale[off];
        acc[r] = std::fma(static_cast<float>(dot), d, acc[r]);
      }
    }
    for (int r = 0; r < valid; ++r) {
      a.y[static_cast<size_t>(c) * a.ldy + a.panel * kPanelRows + r] = acc[r];
    }
  }
}

// Four activation bytes as one int32 lane value. Read through an alias-safe, unaligned type so
// that the compiler broadcasts straight from memory (a load) instead of through a vector register
// (a shuffle per dot product).
using UnalignedInt32 = int32_t __attribute__((aligned(1), may_alias));
inline int32_t Load4(const int8_t* p) {
  return *reinterpret_cast<const UnalignedInt32*>(p);
}

#define EDDY_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EDDY_TARGET_VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

// AVX2 (no VNNI): maddubs multiplies unsigned by signed bytes into saturating int16 pairs. Q8 is
// made signed and its sign moved onto x (|w| <= 127 keeps pairs below 2^15); Q4 nibbles are
// small enough as they are. Rows 0-7 and 8-15 of a panel are the two halves of each 64-byte line.
template <Format F>
EDDY_TARGET_AVX2 void PanelAvx2(const PanelArgs& a) {
  const int blocks = a.m->blocks_per_row(), valid = ValidRows(a);
  const uint8_t* panel = a.m->panel(a.panel);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int c = a.c0; c < a.c0 + a.nc; ++c) {
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* w = panel + BlockOffset(F, b);
      const uint16_t* ws = BlockScales<F>(panel, b);
      const size_t off = static_cast<size_t>(c) * blocks + b;
      const int8_t* xq = a.xa->q.data() + off * kBlock;
      const __m256 dx = _mm256_set1_ps(a.xa->scale[off]);
      for (int half = 0; half < 2; ++half) {
        __m256i dot;
        if constexpr (F == Format::kQ8) {
          dot = _mm256_setzero_si256();  // signed weights: no offset to remove
          for (int g = 0; g < 8; ++g) {
            const __m256i wu =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * 64 + half * 32));
            const __m256i wsigned = _mm256_xor_si256(wu, _mm256_set1_epi8(static_cast<char>(0x80)));
            const __m256i x = _mm256_set1_epi32(Load4(xq + 4 * g));
            const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wsigned, wsigned),
                                                       _mm256_sign_epi8(x, wsigned));
            dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
          }
        } else {
          dot = _mm256_set1_epi32(-kQ4Offset * a.xa->sum[off]);
          const __m256i mask = _mm256_set1_epi8(0x0f);
          for (int h = 0; h < 4; ++h) {
            const __m256i raw =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + h * 64 + half * 32));
            const __m256i lo = _mm256_and_si256(raw, mask);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
            const __m256i xlo = _mm256_set1_epi32(Load4(xq + 4 * h));
            const __m256i xhi = _mm256_set1_epi32(Load4(xq + 4 * (h + 4)));
            dot = _mm256_add_epi32(dot, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xlo), ones));
            dot = _mm256_add_epi32(dot, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xhi), ones));
          }
        }
        const __m256 dw =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + half * 8)));
        acc[half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, dx), acc[half]);
      }
    }
    float out[kPanelRows];
    _mm256_storeu_ps(out, acc[0]);
    _mm256_storeu_ps(out + 8, acc[1]);
    std::memcpy(a.y + static_cast<size_t>(c) * a.ldy + a.panel * kPanelRows, out,
                sizeof(float) * valid);
  }
}

// AVX-512 VNNI: one dpbusd advances all 16 rows of a panel by 4 weights. A register tile of MR
// activation rows by NP panels keeps MR * NP independent dot-product chains in flight (enough to
// cover dpbusd latency at two per cycle) while each broadcast activation word serves NP panels
// and each loaded weight vector serves MR rows, so loads stay well below the port limit. The
// per-block convert, scale and fused multiply-add are those of the other kernels, in the same
// order, so a row's result does not depend on the tile it sits in.
template <Format F, int MR, int NP>
EDDY_TARGET_VNNI void TileVnni(const PanelArgs& a) {
  const int blocks = a.m->blocks_per_row();
  const uint8_t* panels[NP];
  for (int p = 0; p < NP; ++p) panels[p] = a.m->panel(a.panel + p);
  __m512 acc[MR][NP];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm512_setzero_ps();
  }
  for (int b = 0; b < blocks; ++b) {
    const int8_t* xq[MR];
    __m512i dot[MR][NP];
    for (int i = 0; i < MR; ++i) {
      const size_t off = static_cast<size_t>(a.c0 + i) * blocks + b;
      xq[i] = a.xa->q.data() + off * kBlock;
      const __m512i offset_sum = _mm512_set1_epi32(-kOffset<F> * a.xa->sum[off]);
      for (int p = 0; p < NP; ++p) dot[i][p] = offset_sum;
    }
    const uint8_t* wp[NP];
    for (int p = 0; p < NP; ++p) wp[p] = panels[p] + BlockOffset(F, b);
    if constexpr (F == Format::kQ8) {
      for (int g = 0; g < 8; ++g) {
        __m512i w[NP];
        for (int p = 0; p < NP; ++p) w[p] = _mm512_loadu_si512(wp[p] + g * 64);
        for (int i = 0; i < MR; ++i) {
          const __m512i x = _mm512_set1_epi32(Load4(xq[i] + 4 * g));
          for (int p = 0; p < NP; ++p) dot[i][p] = _mm512_dpbusd_epi32(dot[i][p], w[p], x);
        }
      }
    } else {
      const __m512i mask = _mm512_set1_epi8(0x0f);
      for (int h = 0; h < 4; ++h) {
        __m512i lo[NP], hi[NP];
        for (int p = 0; p < NP; ++p) {
          const __m512i raw = _mm512_loadu_si512(wp[p] + h * 64);
          lo[p] = _mm512_and_si512(raw, mask);
          hi[p] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        }
        for (int i = 0; i < MR; ++i) {
          const __m512i xlo = _mm512_set1_epi32(Load4(xq[i] + 4 * h));
          const __m512i xhi = _mm512_set1_epi32(Load4(xq[i] + 4 * (h + 4)));
          for (int p = 0; p < NP; ++p) {
            dot[i][p] = _mm512_dpbusd_epi32(dot[i][p], lo[p], xlo);
            dot[i][p] = _mm512_dpbusd_epi32(dot[i][p], hi[p], xhi);
          }
        }
      }
    }
    for (int p = 0; p < NP; ++p) {
      const __m512 dw = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(BlockScales<F>(panels[p], b))));
      for (int i = 0; i < MR; ++i) {
        const size_t off = static_cast<size_t>(a.c0 + i) * blocks + b;
        const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(a.xa->scale[off]));
        acc[i][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][p]), d, acc[i][p]);
      }
    }
  }
  for (int p = 0; p < NP; ++p) {
    const __mmask16 mask = static_cast<__mmask16>((1u << ValidRows(*a.m, a.panel + p)) - 1);
    for (int i = 0; i < MR; ++i) {
      _mm512_mask_storeu_ps(
          a.y + static_cast<size_t>(a.c0 + i) * a.ldy + (a.panel + p) * kPanelRows, mask,
          acc[i][p]);
    }
  }
}

// Products with a few activation rows (decode) are limited by reading the weights: one panel at a
// time keeps each thread on one sequential stream, and the even/odd dot-product chains hide
// dpbusd latency when there is a single row. The stream (a group's weights and then its scales)
// is also prefetched a few KiB ahead into the outer caches: one core's out-of-order window alone
// keeps too few lines in flight to reach its share of the memory bandwidth (3-15% faster decode
// here, most when the host is busy).
constexpr size_t kDecodePrefetchBytes = 4096;

template <Format F, int NC>
EDDY_TARGET_VNNI void PanelVnniFewRows(const PanelArgs& a) {
  const int blocks = a.m->blocks_per_row();
  __m512 acc[NC];
  for (auto& v : acc) v = _mm512_setzero_ps();
  const uint8_t* group = a.m->panel(a.panel);
  for (int b0 = 0; b0 < blocks; b0 += kScaleGroupBlocks, group += ScaleGroupBytes(F)) {
    // Prefetches never fault, so running past the end of the matrix is harmless.
    for (size_t line = 0; line < ScaleGroupBytes(F); line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(group) + kDecodePrefetchBytes + line, _MM_HINT_T2);
    }
    const int group_blocks = std::min(kScaleGroupBlocks, blocks - b0);
    for (int j = 0; j < group_blocks; ++j) {
      const int b = b0 + j;
      const uint8_t* wp = group + BlockOffset(F, j);
      __m512i w[8];
      if constexpr (F == Format::kQ8) {
        for (int g = 0; g < 8; ++g) w[g] = _mm512_loadu_si512(wp + g * 64);
      } else {
        const __m512i mask = _mm512_set1_epi8(0x0f);
        for (int h = 0; h < 4; ++h) {
          const __m512i raw = _mm512_loadu_si512(wp + h * 64);
          w[h] = _mm512_and_si512(raw, mask);
          w[h + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        }
      }
      const __m512 dw = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(BlockScales<F>(group, j))));
      for (int c = 0; c < NC; ++c) {
        const size_t off = static_cast<size_t>(a.c0 + c) * blocks + b;
        const int8_t* xq = a.xa->q.data() + off * kBlock;
        __m512i even = _mm512_set1_epi32(-kOffset<F> * a.xa->sum[off]);
        __m512i odd = _mm512_setzero_si512();
        for (int g = 0; g < 8; g += 2) {
          even = _mm512_dpbusd_epi32(even, w[g], _mm512_set1_epi32(Load4(xq + 4 * g)));
          odd = _mm512_dpbusd_epi32(odd, w[g + 1], _mm512_set1_epi32(Load4(xq + 4 * g + 4)));
        }
        const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(a.xa->scale[off]));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even, odd)), d, acc[c]);
      }
    }
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << ValidRows(a)) - 1);
  for (int c = 0; c < NC; ++c) {
    _mm512_mask_storeu_ps(a.y + static_cast<size_t>(a.c0 + c) * a.ldy + a.panel * kPanelRows, mask,
                          acc[c]);
  }
}

using PanelFn = void (*)(const PanelArgs&);

// Panels handed to one call: the VNNI tiles span this many, the other kernels loop over them.
constexpr int kGroupPanels = 2;
constexpr int kTileRows = 4;  // activation rows of a VNNI register tile
// From this many activation rows on, a product is limited by arithmetic rather than by reading
// the weights.
constexpr int kComputeBoundRows = 8;

void EachPanelWith(PanelFn panel_fn, const PanelArgs& a) {
  for (int p = 0; p < a.np; ++p) {
    PanelArgs one = a;
    one.panel = a.panel + p;
    one.np = 1;
    panel_fn(one);
  }
}

template <PanelFn Panel>
void EachPanel(const PanelArgs& a) {
  EachPanelWith(Panel, a);
}

template <Format F, int... MR>
constexpr std::array<std::array<PanelFn, kTileRows>, kGroupPanels> VnniTiles(
    std::integer_sequence<int, MR...>) {
  return {{{TileVnni<F, MR + 1, 1>...}, {TileVnni<F, MR + 1, 2>...}}};
}

template <Format F, int... NC>
constexpr std::array<PanelFn, sizeof...(NC)> VnniFewRows(std::integer_sequence<int, NC...>) {
  return {PanelVnniFewRows<F, NC + 1>...};
}

template <Format F>
void GroupVnni(const PanelArgs& a) {
  if (a.nc < kComputeBoundRows) {
    static constexpr auto few =
        VnniFewRows<F>(std::make_integer_sequence<int, kComputeBoundRows - 1>{});
    EachPanelWith(few[a.nc - 1], a);
    return;
  }
  static constexpr auto tiles = VnniTiles<F>(std::make_integer_sequence<int, kTileRows>{});
  for (int c0 = a.c0; c0 < a.c0 + a.nc; c0 += kTileRows) {
    PanelArgs tile = a;
    tile.c0 = c0;
    tile.nc = std::min(kTileRows, a.c0 + a.nc - c0);
    tiles[tile.np - 1][tile.nc - 1](tile);
  }
}

PanelFn SelectGroup(Format f, Kernel k) {
  const bool q8 = f == Format::kQ8;
  switch (k) {
    case Kernel::kAvx512Vnni:
      return q8 ? GroupVnni<Format::kQ8> : GroupVnni<Format::kQ4>;
    case Kernel::kAvx2:
      return q8 ? EachPanel<PanelAvx2<Format::kQ8>> : EachPanel<PanelAvx2<Format::kQ4>>;
    case Kernel::kPortable:
      break;
  }
  return q8 ? EachPanel<PanelPortable<Format::kQ8>> : EachPanel<PanelPortable<Format::kQ4>>;
}

}  // namespace

void QuantizedMatrix::MatMulT(const float* x, int n, float* y) const {
  MatMulT(x, n, y, BestKernel());
}

void QuantizedMatrix::MatMulT(const float* x, int n, float* y, Kernel kernel) const {
  const QuantizedMatrix* self = this;
  MatMulTMany({&self, 1}, x, n, {&y, 1}, kernel);
}

void QuantizedMatrix::MatMulTMany(std::span<const QuantizedMatrix* const> matrices, const float* x,
                                  int n, std::span<float* const> ys, Kernel kernel) {
  if (!Supported(kernel)) {
    throw std::runtime_error(std::string("kernel ") + KernelName(kernel) +
                             " is not supported by this CPU");
  }
  if (matrices.size() != ys.size()) throw std::invalid_argument("MatMulTMany: one y per matrix");
  if (matrices.empty() || n <= 0) return;
  const int cols = matrices[0]->cols();
  auto groups_of = [](const QuantizedMatrix* m) {
    return (m->panels() + kGroupPanels - 1) / kGroupPanels;
  };
  long work = 0;
  int total_groups = 0;
  for (const QuantizedMatrix* m : matrices) {
    if (m->cols() != cols) throw std::invalid_argument("MatMulTMany: matrices differ in width");
    total_groups += groups_of(m);
    work += static_cast<long>(m->rows()) * cols * n;
  }
  // Reused between calls: the decode path runs this some hundred times per token.
  thread_local QuantizedActivations reused;
  reused.Assign(x, n, cols);
  // Worker threads must see the caller's buffer, not their own thread_local one.
  const QuantizedActivations* xa = &reused;
  PanelFn fns[2] = {SelectGroup(Format::kQ8, kernel), SelectGroup(Format::kQ4, kernel)};
  auto run = [&](int item) {
    size_t mi = 0;
    int group = item;
    while (group >= groups_of(matrices[mi])) group -= groups_of(matrices[mi++]);
    const QuantizedMatrix& m = *matrices[mi];
    const int panel = group * kGroupPanels;
    fns[m.format() == Format::kQ8 ? 0 : 1](
        {&m, panel, xa, 0, n, ys[mi], m.rows(), std::min(kGroupPanels, m.panels() - panel)});
  };
  if (n < kComputeBoundRows) {
    // Memory-bound: each thread streams long contiguous runs of the weights, which the prefetchers
    // follow (interleaved shares lose a third of the bandwidth); guided runs shrink towards the
    // end so that a core slowed by other work does not hold up the product (static halves: 5%
    // slower decode here).
#pragma omp parallel for schedule(guided) if (work > 65536)
    for (int item = 0; item < total_groups; ++item) run(item);
  } else {
    // Compute-bound: a core slowed by other work (a capture thread, a neighbour on a shared host)
    // takes fewer groups instead of holding up the whole product.
#pragma omp parallel for schedule(dynamic, 2) if (work > 65536)
    for (int item = 0; item < total_groups; ++item) run(item);
  }
}

}  // namespace eddy::quant
