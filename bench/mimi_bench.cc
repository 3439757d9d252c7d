// bench_mimi: milliseconds per streaming frame (8 codes -> 1920 samples) of the full-size Mimi
// decoder on one thread. Usage: bench_mimi [frames=200] [threads=1] [f32|bf16|q8]. The checkpoint
// has random weights with the real shapes; it is written to a temporary file and removed
// afterwards. Prints numbers only; never passes or fails on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "eddy/mimi.h"
#include "mimi_random_checkpoint.h"
#include "ops.h"

int main(int argc, char** argv) {
  const int frames = argc > 1 ? std::atoi(argv[1]) : 200;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  eddy::ops::SetNumThreads(threads);
  const eddy::MimiConfig config;  // the real Mimi
  const auto path = std::filesystem::temp_directory_path() /
                    ("eddy_bench_mimi_" + std::to_string(std::random_device()()) + ".safetensors");
  eddy::test::WriteRandomMimi(path, config, 42);
  const std::string format = argc > 3 ? argv[3] : "f32";
  const auto decoder =
      eddy::MimiDecoder::Load(path, config,
                              format == "bf16" ? eddy::MimiWeightFormat::kBF16Streamed
                              : format == "q8" ? eddy::MimiWeightFormat::kQ8Streamed
                                               : eddy::MimiWeightFormat::kF32);
  eddy::MimiDecoderStream stream(decoder);

  std::mt19937 rng(1);
  std::uniform_int_distribution<int> code(0, config.bins - 1);
  std::vector<int> codes(config.num_codebooks_used);
  std::vector<float> out(config.samples_per_frame());
  std::vector<double> ms, cpu_ms;
  // The machine may be shared: thread CPU time shows the work without waits for a core.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  };
  for (int t = 0; t < frames; ++t) {
    for (int& c : codes) c = code(rng);
    const double cpu_start = cpu_now();
    const auto start = std::chrono::steady_clock::now();
    stream.Step(codes.data(), out.data());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    cpu_ms.push_back(cpu_now() - cpu_start);
  }
  std::filesystem::remove(path);
  const std::vector<double> warm(ms.begin() + std::min<size_t>(5, ms.size()), ms.end());
  std::vector<double> sorted = warm;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : warm) sum += v;
  std::printf(
      "mimi streaming decode, full size, %s weights, %d thread(s), %d frames (%d samples "
      "each)\n",
      format.c_str(), threads, frames, config.samples_per_frame());
  std::printf("  first frame   %.3f ms\n", ms.front());
  std::printf("  mean          %.3f ms/frame (after 5 warm-up frames)\n", sum / warm.size());
  std::printf("  median        %.3f ms/frame\n", sorted[sorted.size() / 2]);
  std::printf("  p95           %.3f ms/frame\n", sorted[sorted.size() * 95 / 100]);
  std::vector<double> cpu(cpu_ms.begin() + std::min<size_t>(5, cpu_ms.size()), cpu_ms.end());
  std::sort(cpu.begin(), cpu.end());
  std::printf("  thread CPU    median %.3f ms/frame, min %.3f ms/frame\n", cpu[cpu.size() / 2],
              cpu.front());
  std::printf("  real-time factor %.3f (frame = %.1f ms of audio)\n",
              (sum / warm.size()) / (1000.0 / config.frame_rate), 1000.0 / config.frame_rate);
  return 0;
}
