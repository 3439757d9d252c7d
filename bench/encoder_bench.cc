// The full-size LFM2-Audio encoder + adapter (spec_audio.md §3.1: 17 layers, d_model 512, 8 heads,
// FF 2048, 256 subsampling channels, adapter to 2048) with random weights, on 10 s of audio
// (1001 mel frames). The checkpoint is written to a temporary file (bf16 like the released
// model, or f32) and loaded as owned f32 copies or viewed in the mapping.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "eddy/config.h"
#include "eddy/conformer.h"
#include "eddy/safetensors.h"
#include "eddy/safetensors_writer.h"
#include "ops.h"

namespace {

namespace fs = std::filesystem;

constexpr int kBackboneHidden = 2048;
constexpr int kMelFrames = 1001;  // 10 s at 100 frames/s, plus the terminal frame
constexpr int kThreads = 2;

// Cheap deterministic uniform(-1, 1) values; the benchmark needs plausible scales, not quality.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed | 1) {}
  float Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<float>(state_ >> 40) / static_cast<float>(1 << 23) - 1.0f;
  }

 private:
  uint64_t state_;
};

// User + system CPU time of the whole process (all threads), in seconds.
double ProcessCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

fs::path WriteRandomCheckpoint(const eddy::EncoderConfig& config, eddy::DType dtype) {
  Random rng(42);
  std::vector<eddy::TensorToWrite> tensors;
  for (const auto& [name, shape] : eddy::ConformerEncoder::TensorShapes(config, kBackboneHidden)) {
    eddy::TensorToWrite t{name, shape, {}};
    int64_t n = 1, fan_in = 1;
    for (int64_t d : shape) n *= d;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    const float scale = std::sqrt(3.0f / static_cast<float>(fan_in));
    t.values.resize(n);
    for (auto& v : t.values) {
      if (EndsWith(name, "running_var")) {
        v = 1.0f + 0.5f * rng.Next();
      } else if (shape.size() == 1 && EndsWith(name, ".weight")) {
        v = 1.0f + 0.1f * rng.Next();
      } else if (shape.size() == 1) {
        v = 0.1f * rng.Next();
      } else {
        v = scale * rng.Next();
      }
    }
    tensors.push_back(std::move(t));
  }
  const fs::path path =
      fs::temp_directory_path() / ("eddy_bench_encoder_" + std::to_string(::getpid()) + "_" +
                                   eddy::DTypeName(dtype) + ".safetensors");
  eddy::WriteSafeTensors(path, tensors, dtype);
  return path;
}

void BM_EncoderTenSeconds(benchmark::State& state, eddy::DType dtype,
                          eddy::EncoderWeightStorage storage) {
  eddy::ops::SetNumThreads(kThreads);
  const eddy::EncoderConfig config;  // the defaults are the full-size model
  const fs::path path = WriteRandomCheckpoint(config, dtype);
  {
    const eddy::SafeTensors st = eddy::SafeTensors::Open(path);
    const auto encoder = eddy::ConformerEncoder::Load(st, config, kBackboneHidden, storage);
    Random rng(7);
    std::vector<float> mel(static_cast<size_t>(config.feat_in) * kMelFrames);
    for (auto& v : mel) v = rng.Next();
    const double cpu0 = ProcessCpuSeconds();
    for (auto _ : state) {
      eddy::RowMatrix out = encoder.Encode(mel.data(), kMelFrames);
      benchmark::DoNotOptimize(out.data());
    }
    // CPU time over all threads per encode: the work done, less sensitive than wall time to other
    // processes on the machine (run with OMP_WAIT_POLICY=passive so that no thread spins).
    state.counters["cpu_ms_per_encode"] =
        1e3 * (ProcessCpuSeconds() - cpu0) / static_cast<double>(state.iterations());
    state.counters["threads"] = kThreads;
    state.counters["audio_s_per_s"] =
        benchmark::Counter(10.0 * state.iterations(), benchmark::Counter::kIsRate);
  }
  fs::remove(path);
}

BENCHMARK_CAPTURE(BM_EncoderTenSeconds, bf16_owned_f32, eddy::DType::kBF16,
                  eddy::EncoderWeightStorage::kOwnedF32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
BENCHMARK_CAPTURE(BM_EncoderTenSeconds, bf16_mapped, eddy::DType::kBF16,
                  eddy::EncoderWeightStorage::kMapped)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
BENCHMARK_CAPTURE(BM_EncoderTenSeconds, f32_mapped, eddy::DType::kF32,
                  eddy::EncoderWeightStorage::kMapped)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
