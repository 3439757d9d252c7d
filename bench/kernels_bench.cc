// Matrix-vector and small matrix-matrix products in every weight format, at the backbone's FFN
// shape (8192 x 2048). Prints GB/s of weight traffic so the numbers compare with memory bandwidth.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops.h"
#include "quant.h"

namespace {

using eddy::quant::Format;
using eddy::quant::Kernel;
using eddy::quant::QuantizedMatrix;

constexpr int kRows = 8192, kCols = 2048;

const std::vector<float>& Weights() {
  static const std::vector<float> w = [] {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    std::vector<float> v(size_t(kRows) * kCols);
    for (auto& x : v) x = d(rng);
    return v;
  }();
  return w;
}

void RunQuant(benchmark::State& state, Format format, Kernel kernel) {
  if (!eddy::quant::Supported(kernel)) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const int n = static_cast<int>(state.range(0));
  const auto m = QuantizedMatrix::Quantize(Weights().data(), kRows, kCols, format);
  std::vector<float> x(size_t(n) * kCols, 0.5f), y(size_t(n) * kRows);
  for (auto _ : state) {
    m.MatMulT(x.data(), n, y.data(), kernel);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(double(m.bytes()) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_F32(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto& w = Weights();
  std::vector<float> x(size_t(n) * kCols, 0.5f), y(size_t(n) * kRows);
  const auto m = eddy::ops::WeightMatrix::FromOwned(w, kRows, kCols);
  for (auto _ : state) {
    m.MatMulT(x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(double(m.bytes()) * state.iterations(), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_F32)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(RunQuant, q8_vnni, Format::kQ8, Kernel::kAvx512Vnni)
    ->Arg(1)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(RunQuant, q4_vnni, Format::kQ4, Kernel::kAvx512Vnni)
    ->Arg(1)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(RunQuant, q8_avx2, Format::kQ8, Kernel::kAvx2)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(RunQuant, q4_avx2, Format::kQ4, Kernel::kAvx2)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(RunQuant, q8_portable, Format::kQ8, Kernel::kPortable)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
