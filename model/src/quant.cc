#include "quant.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

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
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Kernel::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Kernel BestKernel() {
  static const Kernel best = Supported(Kernel::kAvx512Vnni) ? Kernel::kAvx512Vnni
                             : Supported(Kernel::kAvx2)     ? Kernel::kAvx2
                                                            : Kernel::kPortable;
  return best;
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

size_t RowBytes(Format f, int blocks) {
  return static_cast<size_t>(blocks) * (f == Format::kQ8 ? kBlock : kBlock / 2);
}

// Quantizes one block of 32 floats (zero-padded by the caller) into the format's bytes.
void QuantizeBlock(const float* v, Format format, uint8_t* out, uint16_t* scale) {
  float amax = 0.0f;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(v[i]));
  if (format == Format::kQ8) {
    const float d = amax / 127.0f;
    *scale = FloatToHalf(d);
    const float d_used = HalfToFloat(*scale);
    const float inv = d_used > 0 ? 1.0f / d_used : 0.0f;
    for (int i = 0; i < kBlock; ++i) {
      const int q = static_cast<int>(std::nearbyint(v[i] * inv));
      out[i] = static_cast<uint8_t>(std::clamp(q, -127, 127) + kQ8Offset);
    }
  } else {
    // Signed 4-bit range [-8, 7]: the largest magnitude maps to -8 or 8 -> clamp to 7.
    const float d = amax / 8.0f;
    *scale = FloatToHalf(d);
    const float d_used = HalfToFloat(*scale);
    const float inv = d_used > 0 ? 1.0f / d_used : 0.0f;
    for (int i = 0; i < kBlock / 2; ++i) {
      const int lo = std::clamp(static_cast<int>(std::nearbyint(v[i] * inv)), -8, 7) + 8;
      const int hi = std::clamp(static_cast<int>(std::nearbyint(v[i + 16] * inv)), -8, 7) + 8;
      out[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace

// Shared by both input dtypes: load_row fills a float row, which is then quantized block by block.
template <typename Load>
static void QuantizeRows(int rows, int blocks, Format format, size_t row_bytes,
                         std::vector<uint8_t>& data, std::vector<uint16_t>& scales, Load load_row) {
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(blocks) * kBlock, 0.0f);
#pragma omp for schedule(static)
    for (int r = 0; r < rows; ++r) {
      load_row(r, row.data());
      uint8_t* out = data.data() + static_cast<size_t>(r) * row_bytes;
      for (int b = 0; b < blocks; ++b) {
        QuantizeBlock(row.data() + static_cast<size_t>(b) * kBlock, format,
                      out + RowBytes(format, b), &scales[static_cast<size_t>(r) * blocks + b]);
      }
    }
  }
}

QuantizedMatrix QuantizedMatrix::Empty(int rows, int cols, Format format) {
  QuantizedMatrix m;
  m.format_ = format;
  m.rows_ = rows;
  m.cols_ = cols;
  m.blocks_ = (cols + kBlock - 1) / kBlock;
  m.row_bytes_ = RowBytes(format, m.blocks_);
  m.data_.resize(m.row_bytes_ * rows);
  m.scales_.resize(static_cast<size_t>(rows) * m.blocks_);
  return m;
}

QuantizedMatrix QuantizedMatrix::Quantize(const float* weights, int rows, int cols, Format format) {
  QuantizedMatrix m = Empty(rows, cols, format);
  QuantizeRows(rows, m.blocks_, format, m.row_bytes_, m.data_, m.scales_, [&](int r, float* row) {
    std::memcpy(row, weights + static_cast<size_t>(r) * cols, sizeof(float) * cols);
  });
  return m;
}

QuantizedMatrix QuantizedMatrix::QuantizeBf16(const uint16_t* weights, int rows, int cols,
                                              Format format) {
  QuantizedMatrix m = Empty(rows, cols, format);
  QuantizeRows(rows, m.blocks_, format, m.row_bytes_, m.data_, m.scales_, [&](int r, float* row) {
    const uint16_t* src = weights + static_cast<size_t>(r) * cols;
    for (int i = 0; i < cols; ++i) {
      const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(row + i, &bits, 4);
    }
  });
  return m;
}

void QuantizedMatrix::DequantizeRow(int r, float* out) const {
  const uint8_t* q = row_data(r);
  const uint16_t* s = row_scales(r);
  for (int b = 0; b < blocks_; ++b) {
    const float d = HalfToFloat(s[b]);
    for (int i = 0; i < kBlock; ++i) {
      const int c = b * kBlock + i;
      if (c >= cols_) break;
      int v;
      if (format_ == Format::kQ8) {
        v = static_cast<int>(q[b * kBlock + i]) - kQ8Offset;
      } else {
        const uint8_t byte = q[b * (kBlock / 2) + (i % 16)];
        v = (i < 16 ? (byte & 0xf) : (byte >> 4)) - 8;
      }
      out[c] = d * static_cast<float>(v);
    }
  }
}

QuantizedActivations QuantizedActivations::From(const float* x, int n, int cols) {
  QuantizedActivations a;
  a.blocks = (cols + kBlock - 1) / kBlock;
  a.q.assign(static_cast<size_t>(n) * a.blocks * kBlock, 0);
  a.scale.resize(static_cast<size_t>(n) * a.blocks);
  a.sum.resize(static_cast<size_t>(n) * a.blocks);
  for (int row = 0; row < n; ++row) {
    const float* xr = x + static_cast<size_t>(row) * cols;
    for (int b = 0; b < a.blocks; ++b) {
      const int c0 = b * kBlock, c1 = std::min(cols, c0 + kBlock);
      float amax = 0.0f;
      for (int c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(xr[c]));
      const float d = amax / 127.0f;
      const float inv = d > 0 ? 1.0f / d : 0.0f;
      int8_t* q = a.q.data() + (static_cast<size_t>(row) * a.blocks + b) * kBlock;
      int32_t sum = 0;
      for (int c = c0; c < c1; ++c) {
        q[c - c0] = static_cast<int8_t>(std::nearbyint(xr[c] * inv));
        sum += q[c - c0];
      }
      a.scale[static_cast<size_t>(row) * a.blocks + b] = d;
      a.sum[static_cast<size_t>(row) * a.blocks + b] = sum;
    }
  }
  return a;
}

namespace {

// One output: dot of a quantized weight row with one quantized activation row.
struct RowArgs {
  const uint8_t* w;
  const uint16_t* wscale;
  const int8_t* x;
  const float* xscale;
  const int32_t* xsum;
  int blocks;
};

float DotQ8Portable(const RowArgs& a) {
  float acc = 0.0f;
  for (int b = 0; b < a.blocks; ++b) {
    const uint8_t* w = a.w + b * kBlock;
    const int8_t* x = a.x + b * kBlock;
    int32_t dot = 0;
    // The offset is removed with the block sum, not per element: GCC 12 mis-vectorises
    // sum((w - 128) * x) into a wrong VNNI dot product at -O2 -march=native (seen on
    // Zen 4), while the plain unsigned x signed sum compiles correctly.
    for (int i = 0; i < kBlock; ++i) dot += static_cast<int32_t>(w[i]) * x[i];
    dot -= kQ8Offset * a.xsum[b];
    acc += static_cast<float>(dot) * (HalfToFloat(a.wscale[b]) * a.xscale[b]);
  }
  return acc;
}

float DotQ4Portable(const RowArgs& a) {
  float acc = 0.0f;
  for (int b = 0; b < a.blocks; ++b) {
    const uint8_t* w = a.w + b * (kBlock / 2);
    const int8_t* x = a.x + b * kBlock;
    int32_t dot = 0;
    for (int i = 0; i < kBlock / 2; ++i) {
      dot += static_cast<int32_t>(w[i] & 0xf) * x[i] + static_cast<int32_t>(w[i] >> 4) * x[i + 16];
    }
    dot -= 8 * a.xsum[b];
    acc += static_cast<float>(dot) * (HalfToFloat(a.wscale[b]) * a.xscale[b]);
  }
  return acc;
}

__attribute__((target("avx2,fma"))) inline float HorizontalSum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) inline __m256i Q4Unpack(const uint8_t* p) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(bytes, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  return _mm256_set_m128i(hi, lo);  // elements 0..15, then 16..31
}

// AVX2: int8 products through maddubs (unsigned x signed), so the weight sign moves onto x.
__attribute__((target("avx2,fma"))) inline __m256i DotBlockAvx2(__m256i w_u8, __m256i x_s8) {
  const __m256i pairs = _mm256_maddubs_epi16(w_u8, x_s8);
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

__attribute__((target("avx2,fma"))) float DotQ8Avx2(const RowArgs& a) {
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < a.blocks; ++b) {
    const __m256i w_offset = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + b * kBlock));
    const __m256i w = _mm256_xor_si256(w_offset, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.x + b * kBlock));
    // maddubs multiplies unsigned by signed: |w| against x carrying the sign of w.
    const __m256i dot = DotBlockAvx2(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    const float d = HalfToFloat(a.wscale[b]) * a.xscale[b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc);
  }
  return HorizontalSum256(acc);
}

__attribute__((target("avx2,fma"))) float DotQ4Avx2(const RowArgs& a) {
  __m256 acc = _mm256_setzero_ps();
  float correction = 0.0f;
  for (int b = 0; b < a.blocks; ++b) {
    const __m256i w = Q4Unpack(a.w + b * (kBlock / 2));  // unsigned 0..15
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.x + b * kBlock));
    const __m256i dot = DotBlockAvx2(w, x);
    const float d = HalfToFloat(a.wscale[b]) * a.xscale[b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc);
    correction += d * static_cast<float>(8 * a.xsum[b]);
  }
  return HorizontalSum256(acc) - correction;
}

// The weight block as unsigned bytes: Q8 is stored offset-binary, Q4 nibbles are unsigned.
template <Format F>
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))) inline __m256i
LoadWeightBlock(const uint8_t* row, int b) {
  if constexpr (F == Format::kQ8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * kBlock));
  } else {
    return Q4Unpack(row + b * (kBlock / 2));
  }
}

template <Format F>
constexpr int kWeightOffset = F == Format::kQ8 ? kQ8Offset : 8;

// dpbusd multiplies unsigned weights by signed activations; the weights' offset is taken off in
// the integer domain by starting lane 0 of the accumulator at -offset * sum(x).
template <Format F>
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))) float DotVnni(
    const RowArgs& a) {
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < a.blocks; ++b) {
    const __m256i w = LoadWeightBlock<F>(a.w, b);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.x + b * kBlock));
    const __m256i init = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-kWeightOffset<F> * a.xsum[b]));
    const __m256i dot = _mm256_dpbusd_epi32(init, w, x);
    const float d = HalfToFloat(a.wscale[b]) * a.xscale[b];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc);
  }
  return HorizontalSum256(acc);
}

// A 4 x 4 register tile: four weight rows against four activation rows, so that each loaded
// block is used four times. y[c * ldy + r] for r in [r0, r0+4), c in [c0, c0+4).
template <Format F>
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))) void TileVnni(
    const QuantizedMatrix& m, int r0, const QuantizedActivations& xa, int c0, float* y, int ldy) {
  constexpr int kT = 4;
  const int blocks = m.blocks_per_row();
  __m256 acc[kT][kT];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const uint8_t* wrow[kT];
  const uint16_t* wscale[kT];
  for (int r = 0; r < kT; ++r) wrow[r] = m.row_data(r0 + r), wscale[r] = m.row_scales(r0 + r);
  for (int b = 0; b < blocks; ++b) {
    __m256i w[kT];
    __m256 dw[kT];
    for (int r = 0; r < kT; ++r) {
      w[r] = LoadWeightBlock<F>(wrow[r], b);
      dw[r] = _mm256_set1_ps(HalfToFloat(wscale[r][b]));
    }
    for (int c = 0; c < kT; ++c) {
      const size_t off = static_cast<size_t>(c0 + c) * blocks + b;
      const __m256i x =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa.q.data() + off * kBlock));
      const __m256i init =
          _mm256_zextsi128_si256(_mm_cvtsi32_si128(-kWeightOffset<F> * xa.sum[off]));
      const __m256 dx = _mm256_set1_ps(xa.scale[off]);
      for (int r = 0; r < kT; ++r) {
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init, w[r], x));
        acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dot, dx), dw[r], acc[r][c]);
      }
    }
  }
  for (int c = 0; c < kT; ++c) {
    for (int r = 0; r < kT; ++r)
      y[static_cast<size_t>(c0 + c) * ldy + r0 + r] = HorizontalSum256(acc[r][c]);
  }
}

using DotFn = float (*)(const RowArgs&);

DotFn SelectDot(Format f, Kernel k) {
  switch (k) {
    case Kernel::kAvx512Vnni:
      return f == Format::kQ8 ? DotVnni<Format::kQ8> : DotVnni<Format::kQ4>;
    case Kernel::kAvx2:
      return f == Format::kQ8 ? DotQ8Avx2 : DotQ4Avx2;
    case Kernel::kPortable:
      break;
  }
  return f == Format::kQ8 ? DotQ8Portable : DotQ4Portable;
}

void MatMulTiledVnni(const QuantizedMatrix& m, const QuantizedActivations& xa, int n, float* y,
                     DotFn dot) {
  const int rows_ = m.rows(), blocks_ = m.blocks_per_row();
  const int full_rows = rows_ / 4 * 4, full_cols = n / 4 * 4;
  const auto tile = m.format() == Format::kQ8 ? TileVnni<Format::kQ8> : TileVnni<Format::kQ4>;
  const int row_tiles = full_rows / 4;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < row_tiles; ++t) {
    for (int c0 = 0; c0 < full_cols; c0 += 4) tile(m, t * 4, xa, c0, y, rows_);
  }
  // Edges: the rows and activation rows that do not fill a tile.
  const auto single = [&](int r, int i) {
    const size_t off = static_cast<size_t>(i) * blocks_;
    RowArgs args{m.row_data(r),         m.row_scales(r),     xa.q.data() + off * kBlock,
                 xa.scale.data() + off, xa.sum.data() + off, blocks_};
    y[static_cast<size_t>(i) * rows_ + r] = dot(args);
  };
  for (int r = full_rows; r < rows_; ++r) {
    for (int i = 0; i < n; ++i) single(r, i);
  }
  for (int r = 0; r < full_rows; ++r) {
    for (int i = full_cols; i < n; ++i) single(r, i);
  }
}

}  // namespace

void QuantizedMatrix::MatMulT(const float* x, int n, float* y) const {
  MatMulT(x, n, y, BestKernel());
}

void QuantizedMatrix::MatMulT(const float* x, int n, float* y, Kernel kernel) const {
  if (!Supported(kernel)) {
    throw std::runtime_error(std::string("kernel ") + KernelName(kernel) +
                             " is not supported by this CPU");
  }
  const QuantizedActivations xa = QuantizedActivations::From(x, n, cols_);
  const DotFn dot = SelectDot(format_, kernel);
  const int rows = rows_;
  if (kernel == Kernel::kAvx512Vnni && n >= 4) {
    MatMulTiledVnni(*this, xa, n, y, dot);
    return;
  }
#pragma omp parallel for schedule(static) if (static_cast <long>(rows) * n * cols_ > 65536)
  for (int r = 0; r < rows; ++r) {
    RowArgs args{row_data(r), row_scales(r), nullptr, nullptr, nullptr, blocks_};
    for (int i = 0; i < n; ++i) {
      const size_t off = static_cast<size_t>(i) * blocks_;
      args.x = xa.q.data() + off * kBlock;
      args.xscale = xa.scale.data() + off;
      args.xsum = xa.sum.data() + off;
      y[static_cast<size_t>(i) * rows + r] = dot(args);
    }
  }
}

}  // namespace eddy::quant
