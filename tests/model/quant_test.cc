// Quantized matrices: every kernel against the portable one and against an independent double
// precision product of the dequantized operands, on shapes with odd sizes and tails.
#include "quant.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace eddy::quant {
namespace {

std::vector<float> Gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double Rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / std::max<size_t>(1, v.size()));
}

// y = x W^T from the dequantized weights and the dequantized int8 activations, in double.
std::vector<float> ReferenceProduct(const QuantizedMatrix& m, const float* x, int n) {
  const auto xa = QuantizedActivations::From(x, n, m.cols());
  std::vector<float> row(m.cols());
  std::vector<float> y(static_cast<size_t>(n) * m.rows());
  for (int r = 0; r < m.rows(); ++r) {
    m.DequantizeRow(r, row.data());
    for (int i = 0; i < n; ++i) {
      double acc = 0;
      for (int c = 0; c < m.cols(); ++c) {
        const int b = c / kBlock;
        const double xv = double(xa.q[(size_t(i) * xa.blocks + b) * kBlock + c % kBlock]) *
                          xa.scale[size_t(i) * xa.blocks + b];
        acc += double(row[c]) * xv;
      }
      y[size_t(i) * m.rows() + r] = static_cast<float>(acc);
    }
  }
  return y;
}

struct Shape {
  int rows, cols, n;
};

class QuantShapes : public ::testing::TestWithParam<std::tuple<Format, Shape>> {};

TEST_P(QuantShapes, KernelsAgreeWithReference) {
  const auto [format, shape] = GetParam();
  const auto w = Gaussian(size_t(shape.rows) * shape.cols, 1 + shape.rows, 0.05f);
  const auto x = Gaussian(size_t(shape.n) * shape.cols, 2 + shape.cols);
  const auto m = QuantizedMatrix::Quantize(w.data(), shape.rows, shape.cols, format);
  const auto reference = ReferenceProduct(m, x.data(), shape.n);
  const double tol = 1e-5 * std::max(1.0, Rms(reference)) * std::sqrt(double(shape.cols));
  for (Kernel k : {Kernel::kPortable, Kernel::kAvx2, Kernel::kAvx512Vnni}) {
    if (!Supported(k)) {
      std::fprintf(stderr, "NOTE: kernel %s not supported by this CPU, not tested\n",
                   KernelName(k));
      continue;
    }
    std::vector<float> y(reference.size());
    m.MatMulT(x.data(), shape.n, y.data(), k);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], reference[i], tol) << KernelName(k) << " output " << i;
    }
  }
}

// The kernels do the same operations in the same order, so a model gives the same numbers on
// every CPU; one activation row gives the same result alone or inside a tile of rows.
TEST_P(QuantShapes, KernelsAgreeBitForBit) {
  const auto [format, shape] = GetParam();
  const auto w = Gaussian(size_t(shape.rows) * shape.cols, 3 + shape.rows, 0.05f);
  const auto x = Gaussian(size_t(shape.n) * shape.cols, 4 + shape.cols);
  const auto m = QuantizedMatrix::Quantize(w.data(), shape.rows, shape.cols, format);
  std::vector<float> portable(size_t(shape.n) * shape.rows);
  m.MatMulT(x.data(), shape.n, portable.data(), Kernel::kPortable);
  for (Kernel k : {Kernel::kAvx2, Kernel::kAvx512Vnni}) {
    if (!Supported(k)) {
      std::fprintf(stderr, "NOTE: kernel %s not supported by this CPU, not tested\n",
                   KernelName(k));
      continue;
    }
    std::vector<float> y(portable.size());
    m.MatMulT(x.data(), shape.n, y.data(), k);
    ASSERT_EQ(0, std::memcmp(y.data(), portable.data(), y.size() * sizeof(float))) << KernelName(k);
    for (int i = 0; i < shape.n; ++i) {
      std::vector<float> one(shape.rows);
      m.MatMulT(x.data() + size_t(i) * shape.cols, 1, one.data(), k);
      ASSERT_EQ(0, std::memcmp(one.data(), portable.data() + size_t(i) * shape.rows,
                               one.size() * sizeof(float)))
          << KernelName(k) << " row " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    OddSizesAndTails, QuantShapes,
    ::testing::Combine(::testing::Values(Format::kQ8, Format::kQ4),
                       ::testing::Values(Shape{1, 32, 1}, Shape{7, 33, 1}, Shape{33, 100, 3},
                                         Shape{5, 1, 2}, Shape{64, 2048, 1}, Shape{17, 31, 5},
                                         Shape{3, 2816, 4}, Shape{48, 64, 9}, Shape{50, 96, 19},
                                         Shape{16, 32, 8}, Shape{129, 257, 17})));

TEST(Quant, ManyMatricesEqualOneByOne) {
  const int cols = 100, n = 11;
  const auto x = Gaussian(size_t(n) * cols, 21);
  std::vector<QuantizedMatrix> ms;
  for (auto [rows, format] :
       {std::pair{37, Format::kQ8}, std::pair{16, Format::kQ4}, std::pair{5, Format::kQ8}}) {
    const auto w = Gaussian(size_t(rows) * cols, 22 + rows, 0.1f);
    ms.push_back(QuantizedMatrix::Quantize(w.data(), rows, cols, format));
  }
  for (Kernel k : {Kernel::kPortable, Kernel::kAvx2, Kernel::kAvx512Vnni}) {
    if (!Supported(k)) continue;
    std::vector<std::vector<float>> together, alone;
    std::vector<const QuantizedMatrix*> ptrs;
    std::vector<float*> ys;
    for (const auto& m : ms) {
      together.emplace_back(size_t(n) * m.rows(), -1.0f);
      alone.emplace_back(size_t(n) * m.rows());
      m.MatMulT(x.data(), n, alone.back().data(), k);
      ptrs.push_back(&m);
    }
    for (auto& y : together) ys.push_back(y.data());
    QuantizedMatrix::MatMulTMany(ptrs, x.data(), n, ys, k);
    EXPECT_EQ(together, alone) << KernelName(k);
  }
}

TEST(Quant, ErrorAgainstFloatIsBounded) {
  const int rows = 64, cols = 1024, n = 4;
  const auto w = Gaussian(size_t(rows) * cols, 7, 0.02f);
  const auto x = Gaussian(size_t(n) * cols, 8);
  std::vector<float> exact(size_t(n) * rows);
  for (int i = 0; i < n; ++i) {
    for (int r = 0; r < rows; ++r) {
      double acc = 0;
      for (int c = 0; c < cols; ++c)
        acc += double(x[size_t(i) * cols + c]) * w[size_t(r) * cols + c];
      exact[size_t(i) * rows + r] = float(acc);
    }
  }
  // Relative RMS error bounds from the step sizes: int8 (1/127 of the block max) and int4 (1/8).
  for (auto [format, bound] : {std::pair{Format::kQ8, 0.02}, std::pair{Format::kQ4, 0.15}}) {
    const auto m = QuantizedMatrix::Quantize(w.data(), rows, cols, format);
    std::vector<float> y(exact.size());
    m.MatMulT(x.data(), n, y.data());
    std::vector<float> err(y.size());
    for (size_t i = 0; i < y.size(); ++i) err[i] = y[i] - exact[i];
    EXPECT_LT(Rms(err) / Rms(exact), bound) << (format == Format::kQ8 ? "q8" : "q4");
    EXPECT_GT(Rms(err), 0.0);  // it is really quantized
  }
}

// The packing (panels of 16 rows, each group of blocks followed by its scales, partial panels,
// blocks and groups) is checked against the float weights themselves: every dequantized weight
// lies within the rounding step of its block (q4 clamps one side at 7, up to a whole step).
TEST(Quant, DequantizedRowsFollowTheWeights) {
  for (auto [rows, cols] : {std::pair{33, 100}, std::pair{17, 257}, std::pair{5, 96},
                            std::pair{48, 32 * kScaleGroupBlocks * 2}, std::pair{1, 1}}) {
    const auto w = Gaussian(size_t(rows) * cols, 31 + rows, 0.1f);
    for (Format f : {Format::kQ8, Format::kQ4}) {
      const auto m = QuantizedMatrix::Quantize(w.data(), rows, cols, f);
      std::vector<float> row(cols);
      for (int r = 0; r < rows; ++r) {
        m.DequantizeRow(r, row.data());
        for (int b0 = 0; b0 < cols; b0 += kBlock) {
          const int b1 = std::min(cols, b0 + kBlock);
          float amax = 0.0f;
          for (int c = b0; c < b1; ++c) amax = std::max(amax, std::fabs(w[size_t(r) * cols + c]));
          const double step = f == Format::kQ8 ? amax / 127.0 : amax / 8.0;
          const double tol = (f == Format::kQ8 ? 0.51 : 1.01) * step + 1e-7;
          for (int c = b0; c < b1; ++c) {
            ASSERT_NEAR(row[c], w[size_t(r) * cols + c], tol)
                << (f == Format::kQ8 ? "q8 " : "q4 ") << rows << "x" << cols << " row " << r
                << " col " << c;
          }
        }
      }
    }
  }
}

TEST(Quant, Bf16SourceMatchesFloatSource) {
  const int rows = 9, cols = 70;
  auto w = Gaussian(size_t(rows) * cols, 11);
  std::vector<uint16_t> bf16(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    bf16[i] = uint16_t(bits >> 16);  // truncation: exactly representable both ways below
    bits = uint32_t(bf16[i]) << 16;
    std::memcpy(&w[i], &bits, 4);
  }
  for (Format f : {Format::kQ8, Format::kQ4}) {
    const auto a = QuantizedMatrix::Quantize(w.data(), rows, cols, f);
    const auto b = QuantizedMatrix::QuantizeBf16(bf16.data(), rows, cols, f);
    std::vector<float> ra(cols), rb(cols);
    for (int r = 0; r < rows; ++r) {
      a.DequantizeRow(r, ra.data());
      b.DequantizeRow(r, rb.data());
      ASSERT_EQ(ra, rb);
    }
  }
}

TEST(Quant, HalfConversionRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    ASSERT_EQ(FloatToHalf(HalfToFloat(uint16_t(h))), h) << std::hex << h;
  }
}

__attribute__((target("f16c"))) uint16_t HardwareHalf(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

TEST(Quant, HalfRoundingMatchesF16cHardware) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "CPU without F16C: no hardware reference";
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> exponent(-30.0f, 16.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::ldexp(1.0f + (rng() % 1000000) / 1e6f, int(exponent(rng))) *
                    ((rng() & 1) ? 1.0f : -1.0f);
    ASSERT_EQ(FloatToHalf(f), HardwareHalf(f)) << f;
  }
}

}  // namespace
}  // namespace eddy::quant

namespace eddy::quant {
namespace {

// The AVX-512 block quantizer only speeds loading up: it must store what the portable one does,
// including exact .5 ties (round to even), a negative extreme, repeated extremes of both signs,
// all-zero blocks and values at the clamp.
TEST(Quant, BlockQuantizerIsTheSameUnderEveryKernel) {
  if (!Supported(Kernel::kAvx512Vnni)) {
    GTEST_SKIP() << "NOTE: this CPU has no AVX-512; only the portable quantizer exists here";
  }
  std::vector<std::vector<float>> blocks;
  for (uint32_t seed = 1; seed <= 200; ++seed) blocks.push_back(Gaussian(kBlock, seed));
  std::vector<float> ties(kBlock);
  for (int i = 0; i < kBlock; ++i) ties[i] = (i - 16) * 0.5f;  // q4 scale 1: many .5 ties
  blocks.push_back(ties);
  std::vector<float> both_signs(kBlock, 0.25f);
  both_signs[3] = -2.0f;
  both_signs[9] = 2.0f;  // same magnitude later: the first one decides the sign
  blocks.push_back(both_signs);
  blocks.push_back(std::vector<float>(kBlock, 0.0f));
  std::vector<float> tiny(kBlock, 1e-30f);
  tiny[0] = -3e-30f;
  blocks.push_back(tiny);
  for (Format format : {Format::kQ8, Format::kQ4}) {
    for (const std::vector<float>& v : blocks) {
      int8_t qa[kBlock], qb[kBlock];
      uint16_t sa, sb;
      QuantizeBlock(v.data(), format, qa, &sa, Kernel::kPortable);
      QuantizeBlock(v.data(), format, qb, &sb, Kernel::kAvx512Vnni);
      EXPECT_EQ(sa, sb);
      EXPECT_EQ(0, std::memcmp(qa, qb, kBlock));
    }
  }
}

TEST(Quant, ActivationQuantizerIsTheSameUnderEveryKernel) {
  if (!Supported(Kernel::kAvx512Vnni)) {
    GTEST_SKIP() << "NOTE: this CPU has no AVX-512; only the portable quantizer exists here";
  }
  std::vector<std::vector<float>> blocks;
  for (uint32_t seed = 1; seed <= 200; ++seed) blocks.push_back(Gaussian(kBlock, seed, 3.0f));
  // amax 127 gives scale 1: the .5 values are ties, rounded to even.
  std::vector<float> ties(kBlock);
  for (int i = 0; i < kBlock; ++i) ties[i] = (i - 16) + 0.5f;
  ties[31] = 127.0f;
  blocks.push_back(ties);
  blocks.push_back(std::vector<float>(kBlock, 0.0f));
  std::vector<float> tiny(kBlock, 1e-30f);
  tiny[5] = -3e-30f;
  blocks.push_back(tiny);
  for (const std::vector<float>& v : blocks) {
    for (int count : {kBlock, 1, 7, 31}) {
      int8_t qa[kBlock], qb[kBlock];
      float sa, sb;
      int32_t suma, sumb;
      std::memset(qb, 0x55, kBlock);
      QuantizeActivationBlock(v.data(), count, qa, &sa, &suma, Kernel::kPortable);
      QuantizeActivationBlock(v.data(), count, qb, &sb, &sumb, Kernel::kAvx512Vnni);
      EXPECT_EQ(0, std::memcmp(&sa, &sb, sizeof(float)));
      EXPECT_EQ(suma, sumb);
      ASSERT_EQ(0, std::memcmp(qa, qb, kBlock)) << "count " << count;
      int32_t sum = 0;
      for (int c = 0; c < kBlock; ++c) {
        if (c >= count) {
          EXPECT_EQ(qb[c], 0) << "padding byte " << c;
        }
        sum += qb[c];
      }
      EXPECT_EQ(sum, sumb);
    }
  }
  int8_t q[kBlock];
  float scale;
  int32_t sum;
  QuantizeActivationBlock(ties.data(), kBlock, q, &scale, &sum, Kernel::kAvx512Vnni);
  EXPECT_EQ(scale, 1.0f);
  for (int i = 0; i < kBlock - 1; ++i) {
    const int k = i - 16;  // ties[i] = k + 0.5 lies between k and k + 1: the even one wins
    EXPECT_EQ(q[i], k % 2 == 0 ? k : k + 1) << "tie " << ties[i];
  }
}

}  // namespace
}  // namespace eddy::quant
