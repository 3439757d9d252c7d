#include "ops.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <sched.h>

namespace eddy::ops {

std::vector<float> LoadF32(const SafeTensors& st, const std::string& name,
                           const std::vector<int64_t>& shape) {
  const TensorView& t = st.Get(name, shape);
  std::vector<float> out = ToFloat32(t);
  st.ReleasePages(t);
  return out;
}

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kNative:
      return "native";
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kQ8:
      return "q8";
    case WeightFormat::kQ4:
      return "q4";
  }
  return "?";
}

WeightFormat ParseWeightFormat(const std::string& name) {
  for (auto f : {WeightFormat::kNative, WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kQ8,
                 WeightFormat::kQ4}) {
    if (name == WeightFormatName(f)) return f;
  }
  throw std::invalid_argument("unknown weight format '" + name +
                              "' (expected native, f32, bf16, q8 or q4)");
}

WeightFormat WeightMatrix::format() const {
  if (quantized_) {
    return quantized_->format() == quant::Format::kQ8 ? WeightFormat::kQ8 : WeightFormat::kQ4;
  }
  return dtype_ == DType::kBF16 ? WeightFormat::kBF16 : WeightFormat::kF32;
}

size_t WeightMatrix::bytes() const {
  if (quantized_) return quantized_->bytes();
  return static_cast<size_t>(rows_) * cols_ * DTypeSize(dtype_);
}

WeightMatrix WeightMatrix::Load(const SafeTensors& st, const std::string& name,
                                const std::vector<int64_t>& shape, WeightFormat format) {
  WeightMatrix w = LoadView(st, name, shape, format);
  // A matrix that does not view the mapping has its own copy: the source pages are not needed.
  if (w.data_ == nullptr || w.data_ != st.Get(name).data) st.ReleasePages(st.Get(name));
  return w;
}

WeightMatrix WeightMatrix::LoadView(const SafeTensors& st, const std::string& name,
                                    const std::vector<int64_t>& shape, WeightFormat format) {
  const TensorView& t = st.Get(name, shape);
  if (shape.empty()) throw ModelError("tensor '" + name + "': a matrix needs a shape");
  WeightMatrix w;
  w.rows_ = static_cast<int>(shape[0]);
  w.cols_ = static_cast<int>(t.numel() / std::max<int64_t>(1, shape[0]));
  if (t.dtype == DType::kI64) {
    throw ModelError("tensor '" + name + "' is I64, expected floating point weights");
  }
  if (format == WeightFormat::kQ8 || format == WeightFormat::kQ4) {
    const auto qf = format == WeightFormat::kQ8 ? quant::Format::kQ8 : quant::Format::kQ4;
    if (t.dtype == DType::kBF16) {
      w.quantized_ =
          std::make_shared<const quant::QuantizedMatrix>(quant::QuantizedMatrix::QuantizeBf16(
              static_cast<const uint16_t*>(t.data), w.rows_, w.cols_, qf));
    } else {
      const std::vector<float> f32 = ToFloat32(t);
      w.quantized_ = std::make_shared<const quant::QuantizedMatrix>(
          quant::QuantizedMatrix::Quantize(f32.data(), w.rows_, w.cols_, qf));
    }
    return w;
  }
  if (format == WeightFormat::kF32 && t.dtype != DType::kF32) {
    w.owned_ = ToFloat32(t);
    w.dtype_ = DType::kF32;
    w.data_ = w.owned_.data();
    return w;
  }
  if (format == WeightFormat::kBF16 && t.dtype != DType::kBF16) {
    const std::vector<float> f32 = ToFloat32(t);
    w.owned_bf16_.resize(f32.size());
    for (size_t i = 0; i < f32.size(); ++i) w.owned_bf16_[i] = FloatToBf16(f32[i]);
    w.dtype_ = DType::kBF16;
    w.data_ = w.owned_bf16_.data();
    return w;
  }
  switch (t.dtype) {
    case DType::kF32:
    case DType::kBF16:
      w.dtype_ = t.dtype;
      w.data_ = t.data;
      break;
    case DType::kF16:
      w.owned_ = ToFloat32(t);
      w.dtype_ = DType::kF32;
      w.data_ = w.owned_.data();
      break;
    case DType::kI64:
      throw ModelError("tensor '" + name + "' is I64, expected floating point weights");
  }
  return w;
}

WeightMatrix WeightMatrix::FromOwned(std::vector<float> data, int rows, int cols) {
  WeightMatrix w;
  w.rows_ = rows;
  w.cols_ = cols;
  w.dtype_ = DType::kF32;
  w.owned_ = std::move(data);
  w.data_ = w.owned_.data();
  return w;
}

namespace {

// Below this many rows of x an f32 product is a few matrix-vector products: one Eigen call.
constexpr int kMinRowsForF32Tiles = 8;

// bf16 -> f32 for a block of rows, so that the product can run through Eigen's GEMM.
void ConvertRows(const uint16_t* src, int rows, int cols, float* dst) {
  const size_t n = static_cast<size_t>(rows) * cols;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
    std::memcpy(dst + i, &bits, 4);
  }
}

// Few input rows (decode steps): the product is bound by reading the weights, so each weight row
// is widened in registers and dotted with every input row, instead of being widened to a float
// tile in memory first. Every path sums 16 interleaved partial sums (lane l takes columns
// c = l mod 16) and then the lanes in order, so they give the same results.
constexpr int kBf16DirectMaxRows = 4;
constexpr int kBf16Lanes = 16;

float Bf16DotTail(const uint16_t* w, const float* x, int body, int cols, float lanes[kBf16Lanes]) {
  float sum = 0.0f;
  for (int l = 0; l < kBf16Lanes; ++l) sum += lanes[l];
  for (int c = body; c < cols; ++c) sum += Bf16ToFloat(w[c]) * x[c];
  return sum;
}

void Bf16RowPortable(const uint16_t* wr, int cols, const float* x, int n, float* y, int ldy) {
  const int body = cols - cols % kBf16Lanes;
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<size_t>(i) * cols;
    float acc[kBf16Lanes] = {};
    for (int c = 0; c < body; c += kBf16Lanes) {
      for (int l = 0; l < kBf16Lanes; ++l)
        acc[l] = std::fma(Bf16ToFloat(wr[c + l]), xi[c + l], acc[l]);
    }
    y[static_cast<size_t>(i) * ldy] = Bf16DotTail(wr, xi, body, cols, acc);
  }
}

__attribute__((target("avx512f"))) void Bf16RowAvx512(const uint16_t* wr, int cols, const float* x,
                                                      int n, float* y, int ldy) {
  const int body = cols - cols % kBf16Lanes;
  __m512 acc[kBf16DirectMaxRows];
  for (int i = 0; i < n; ++i) acc[i] = _mm512_setzero_ps();
  for (int c = 0; c < body; c += kBf16Lanes) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + c));
    const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
    for (int i = 0; i < n; ++i) {
      acc[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + static_cast<size_t>(i) * cols + c), acc[i]);
    }
  }
  for (int i = 0; i < n; ++i) {
    float lanes[kBf16Lanes];
    _mm512_storeu_ps(lanes, acc[i]);
    y[static_cast<size_t>(i) * ldy] =
        Bf16DotTail(wr, x + static_cast<size_t>(i) * cols, body, cols, lanes);
  }
}

void Bf16MatMulTDirect(const uint16_t* w, int rows, int cols, const float* x, int n, float* y) {
  const auto row_fn =
      quant::BestKernel() == quant::Kernel::kAvx512Vnni ? Bf16RowAvx512 : Bf16RowPortable;
#pragma omp parallel for schedule(static) if (static_cast <long>(rows) * cols > 65536)
  for (int r = 0; r < rows; ++r) row_fn(w + static_cast<size_t>(r) * cols, cols, x, n, y + r, rows);
}

}  // namespace

void WeightMatrix::MatMulT(const float* x, int n, float* y) const {
  if (quantized_) {
    quantized_->MatMulT(x, n, y);
    return;
  }
  ConstMatMap X(x, n, cols_);
  MatMap Y(y, n, rows_);
  // Larger f32 products run tile by tile like bf16 ones, with the tile copied into a buffer:
  // Eigen's own GEMM threading busy-waits between threads, which collapses (10x) as soon as
  // another process shares the cores, and packing weights straight from the file mapping was
  // slower than one sequential copy per tile.
  if (dtype_ == DType::kF32 && n < kMinRowsForF32Tiles) {
    ConstMatMap W(static_cast<const float*>(data_), rows_, cols_);
    Y.noalias() = X * W.transpose();
    return;
  }
  if (dtype_ == DType::kBF16 && n <= kBf16DirectMaxRows) {
    Bf16MatMulTDirect(static_cast<const uint16_t*>(data_), rows_, cols_, x, n, y);
    return;
  }
  // Convert (bf16) or copy (f32) a tile of output rows at a time and multiply it; tiles run in
  // parallel.
  const int tile = 64;
  const int tiles = (rows_ + tile - 1) / tile;
#pragma omp parallel
  {
    std::vector<float> buf(static_cast<size_t>(tile) * cols_);
#pragma omp for schedule(static)
    for (int t = 0; t < tiles; ++t) {
      const int r0 = t * tile, r1 = std::min(rows_, r0 + tile);
      if (dtype_ == DType::kF32) {
        std::memcpy(buf.data(), static_cast<const float*>(data_) + static_cast<size_t>(r0) * cols_,
                    sizeof(float) * (r1 - r0) * cols_);
      } else {
        ConvertRows(static_cast<const uint16_t*>(data_) + static_cast<size_t>(r0) * cols_, r1 - r0,
                    cols_, buf.data());
      }
      ConstMatMap W(buf.data(), r1 - r0, cols_);
      Y.middleCols(r0, r1 - r0).noalias() = X * W.transpose();
    }
  }
}

WeightMatrix WeightMatrix::Converted(WeightFormat format) const {
  std::vector<float> values(static_cast<size_t>(rows_) * cols_);
  for (int r = 0; r < rows_; ++r) Row(r, values.data() + static_cast<size_t>(r) * cols_);
  WeightMatrix w;
  w.rows_ = rows_;
  w.cols_ = cols_;
  switch (format) {
    case WeightFormat::kNative:
    case WeightFormat::kF32:
      return FromOwned(std::move(values), rows_, cols_);
    case WeightFormat::kBF16:
      w.owned_bf16_.resize(values.size());
      for (size_t i = 0; i < values.size(); ++i) w.owned_bf16_[i] = FloatToBf16(values[i]);
      w.dtype_ = DType::kBF16;
      w.data_ = w.owned_bf16_.data();
      return w;
    case WeightFormat::kQ8:
    case WeightFormat::kQ4:
      w.quantized_ =
          std::make_shared<const quant::QuantizedMatrix>(quant::QuantizedMatrix::Quantize(
              values.data(), rows_, cols_,
              format == WeightFormat::kQ8 ? quant::Format::kQ8 : quant::Format::kQ4));
      return w;
  }
  return w;
}

void WeightMatrix::MatMulTMany(std::span<const WeightMatrix* const> matrices, const float* x, int n,
                               std::span<float* const> ys) {
  const bool all_quantized = std::all_of(matrices.begin(), matrices.end(),
                                         [](const WeightMatrix* m) { return m->quantized_; });
  if (!all_quantized) {
    for (size_t i = 0; i < matrices.size(); ++i) matrices[i]->MatMulT(x, n, ys[i]);
    return;
  }
  // No allocation on the decode path: the fused groups are q/k/v and gate/up.
  constexpr size_t kMaxFused = 4;
  if (matrices.size() > kMaxFused) {
    for (size_t i = 0; i < matrices.size(); i += kMaxFused) {
      const size_t count = std::min(kMaxFused, matrices.size() - i);
      MatMulTMany(matrices.subspan(i, count), x, n, ys.subspan(i, count));
    }
    return;
  }
  std::array<const quant::QuantizedMatrix*, kMaxFused> quantized;
  for (size_t i = 0; i < matrices.size(); ++i) quantized[i] = matrices[i]->quantized_.get();
  quant::QuantizedMatrix::MatMulTMany({quantized.data(), matrices.size()}, x, n, ys,
                                      quant::BestKernel());
}

void WeightMatrix::Row(int r, float* out) const {
  if (quantized_) {
    quantized_->DequantizeRow(r, out);
    return;
  }
  if (dtype_ == DType::kF32) {
    std::memcpy(out, static_cast<const float*>(data_) + static_cast<size_t>(r) * cols_,
                sizeof(float) * cols_);
  } else {
    ConvertRows(static_cast<const uint16_t*>(data_) + static_cast<size_t>(r) * cols_, 1, cols_,
                out);
  }
}

void WeightMatrix::AddRow(int r, float* out) const {
  if (quantized_) {
    std::vector<float> row(cols_);
    quantized_->DequantizeRow(r, row.data());
    for (int i = 0; i < cols_; ++i) out[i] += row[i];
    return;
  }
  if (dtype_ == DType::kF32) {
    const float* src = static_cast<const float*>(data_) + static_cast<size_t>(r) * cols_;
    for (int i = 0; i < cols_; ++i) out[i] += src[i];
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(data_) + static_cast<size_t>(r) * cols_;
    for (int i = 0; i < cols_; ++i) out[i] += Bf16ToFloat(src[i]);
  }
}

Linear Linear::Load(const SafeTensors& st, const std::string& prefix, int out, int in,
                    bool has_bias, WeightFormat format) {
  Linear l;
  l.weight = WeightMatrix::Load(st, prefix + ".weight", {out, in}, format);
  if (has_bias) l.bias = LoadF32(st, prefix + ".bias", {out});
  return l;
}

void Linear::Forward(const float* x, int n, float* y) const {
  weight.MatMulT(x, n, y);
  if (!bias.empty()) {
    MatMap Y(y, n, out());
    Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), out());
  }
}

Mat Linear::Forward(const Mat& x) const {
  Mat y(x.rows(), out());
  Forward(x.data(), static_cast<int>(x.rows()), y.data());
  return y;
}

void RmsNorm(const float* x, const float* weight, int n, float eps, float* y) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = weight[i] * (x[i] * inv);
}

void RmsNormRows(Mat& x, const std::vector<float>& weight, float eps) {
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    float* row = x.row(r).data();
    RmsNorm(row, weight.data(), static_cast<int>(x.cols()), eps, row);
  }
}

void LayerNormRows(Mat& x, const std::vector<float>& weight, const std::vector<float>& bias,
                   float eps) {
  const int n = static_cast<int>(x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    float* row = x.row(r).data();
    double mean = 0.0;
    for (int i = 0; i < n; ++i) mean += row[i];
    mean /= n;
    double var = 0.0;
    for (int i = 0; i < n; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= n;
    const float inv = 1.0f / std::sqrt(static_cast<float>(var) + eps);
    for (int i = 0; i < n; ++i) {
      row[i] = (row[i] - static_cast<float>(mean)) * inv * weight[i] + bias[i];
    }
  }
}

namespace {

// exp(x) for SiLU from exact IEEE operations only (explicit fused multiply-adds, min/max, an
// integer shift): the scalar and every vector lane round identically, so a value's result does not
// depend on where in a row, or in which buffer, it sits. Cephes' single-precision polynomial, about
// 1 ulp; inputs are clamped where silu's result no longer changes.
inline float ExpForSilu(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = std::fma(x, 1.44269504088896341f, kRound) - kRound;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r) + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

}  // namespace

void SiluGateRows(float* gate, const float* up, int n, int width) {
  const size_t size = static_cast<size_t>(n) * width;
#pragma omp parallel for simd schedule(static) if (size > 65536)
  for (size_t i = 0; i < size; ++i) gate[i] = gate[i] / (1.0f + ExpForSilu(-gate[i])) * up[i];
}

float GeluErf(float x) {
  return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(M_SQRT1_2)));
}

namespace {

// Cores this process may run on, counting SMT siblings once: extra hyperthreads only contend for
// the same vector units and memory bandwidth.
int PhysicalCores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  std::set<std::pair<std::string, std::string>> cores;
  int cpus = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    ++cpus;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(topology + "physical_package_id"), core(topology + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) return cpus > 0 ? CPU_COUNT(&allowed) : 1;
    cores.emplace(p, c);
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

}  // namespace

void SetNumThreads(int n) {
  if (n <= 0) n = PhysicalCores();
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int NumThreads() {
  return omp_get_max_threads();
}

double ReadBandwidth(size_t bytes, int passes) {
  std::vector<uint64_t> buffer(std::max<size_t>(1, bytes / sizeof(uint64_t)), 1);
  const long n = static_cast<long>(buffer.size());
  double best = 0.0;
  uint64_t total = 0;
  for (int pass = 0; pass < passes; ++pass) {
    uint64_t sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (long i = 0; i < n; ++i) sum += buffer[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
    total += sum;
  }
  // The sums are used, so the reads cannot be optimised away.
  return total == static_cast<uint64_t>(n) * passes ? best : 0.0;
}

}  // namespace eddy::ops
