// bench_lfm25_detokenizer: milliseconds per streaming frame (8 codes -> 1920 samples) of the
// full-size LFM2.5 audio detokenizer (spec_audio.md §6.1 sizes: hidden 512, 8 layers, SwiGLU 2304,
// 16/8 heads, window 30, Linear 512 -> 1282, ISTFT 1280/320). Usage:
// bench_lfm25_detokenizer [frames=200] [threads=1] [bf16|f32|MODEL_DIR]. The checkpoint has random
// weights with the real shapes, written to a temporary folder and removed afterwards, unless a
// model directory with audio_detokenizer/ is given. Prints numbers only; never passes or fails on
// time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "eddy/lfm25_detokenizer.h"
#include "lfm25_random_detokenizer.h"
#include "ops.h"

int main(int argc, char** argv) {
  using eddy::Lfm25Detokenizer;
  const int frames = argc > 1 ? std::atoi(argv[1]) : 200;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const std::string weights = argc > 3 ? argv[3] : "bf16";
  const bool f32 = weights == "f32", given_dir = weights != "f32" && weights != "bf16";
  if (frames < 6) {
    std::fprintf(stderr, "need at least 6 frames\n");
    return 2;
  }
  eddy::ops::SetNumThreads(threads);
  const auto dir = given_dir ? std::filesystem::path(weights)
                             : std::filesystem::temp_directory_path() /
                                   ("eddy_bench_lfm25_" + std::to_string(std::random_device()()));
  if (!given_dir) {
    auto spec = eddy::test::RandomDetokenizerSpec::FullSize();
    if (f32) spec.dtype = eddy::DType::kF32;
    eddy::test::WriteRandomDetokenizer(dir / Lfm25Detokenizer::kDirName, spec, 42);
  }
  const auto detokenizer = Lfm25Detokenizer::LoadFromModelDir(dir);
  if (!detokenizer) {
    std::fprintf(stderr, "%s has no %s/\n", dir.c_str(), Lfm25Detokenizer::kDirName);
    return 2;
  }
  eddy::Lfm25DetokenizerStream stream(detokenizer);

  std::mt19937 rng(1);
  std::uniform_int_distribution<int> code(0, Lfm25Detokenizer::kCodesPerCodebook - 1);
  std::vector<int> codes(Lfm25Detokenizer::kCodebooks);
  std::vector<float> out;
  std::vector<double> ms, cpu_ms;
  // The machine may be shared: thread CPU time shows the work without waits for a core.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  };
  for (int t = 0; t < frames; ++t) {
    for (int& c : codes) c = code(rng);
    out.clear();
    const double cpu_start = cpu_now();
    const auto start = std::chrono::steady_clock::now();
    stream.Step(codes.data(), out);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    cpu_ms.push_back(cpu_now() - cpu_start);
  }
  if (!given_dir) std::filesystem::remove_all(dir);
  const std::vector<double> warm(ms.begin() + 5, ms.end());
  std::vector<double> sorted = warm;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : warm) sum += v;
  const double frame_ms =
      1000.0 * Lfm25Detokenizer::kSamplesPerFrame / Lfm25Detokenizer::kSampleRate;
  std::printf(
      "lfm2.5 detokenizer streaming decode, full size, %s weights, %d thread(s), %d frames "
      "(1920 samples each)\n",
      given_dir ? dir.c_str()
      : f32     ? "random f32"
                : "random bf16",
      threads, frames);
  std::printf("  first frame   %.3f ms\n", ms.front());
  std::printf("  mean          %.3f ms/frame (after 5 warm-up frames)\n", sum / warm.size());
  std::printf("  median        %.3f ms/frame\n", sorted[sorted.size() / 2]);
  std::printf("  p95           %.3f ms/frame\n", sorted[sorted.size() * 95 / 100]);
  std::vector<double> cpu(cpu_ms.begin() + 5, cpu_ms.end());
  std::sort(cpu.begin(), cpu.end());
  std::printf("  thread CPU    median %.3f ms/frame, min %.3f ms/frame\n", cpu[cpu.size() / 2],
              cpu.front());
  std::printf("  real-time factor %.3f (frame = %.1f ms of audio)\n",
              (sum / warm.size()) / frame_ms, frame_ms);
  return 0;
}
