// audio_io: streaming resampler throughput, and the timing of real capture callbacks.
// The jitter benchmark needs an input device: run it under a sound server, e.g.
//   scripts/with-sound-server.sh build/bench/bench_audio_io
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "eddy/capture.h"
#include "eddy/resampler.h"

namespace {

using eddy::ResampleQuality;

// One second of noise at `rate`, converted in 20 ms chunks as a live stream would be.
void BM_Resample(benchmark::State& state, int from, int to) {
  const auto quality = static_cast<ResampleQuality>(state.range(0));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
  std::vector<float> input(static_cast<size_t>(from));
  for (float& v : input) v = noise(rng);
  const size_t chunk = static_cast<size_t>(from / 50);
  eddy::StreamResampler resampler(from, to, 1, quality);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(to) + 1024);
  for (auto _ : state) {
    out.clear();
    for (size_t at = 0; at < input.size(); at += chunk) {
      resampler.Process(std::span<const float>(input).subspan(at, chunk), out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(input.size()) * state.iterations());
  // Seconds of audio converted per second of one core.
  state.counters["x_realtime"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_Resample, 48k_to_16k, 48000, 16000)
    ->ArgName("quality")
    ->Arg(static_cast<int>(ResampleQuality::kSincBest))
    ->Arg(static_cast<int>(ResampleQuality::kSincMedium))
    ->Arg(static_cast<int>(ResampleQuality::kSincFastest))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Resample, 24k_to_48k, 24000, 48000)
    ->ArgName("quality")
    ->Arg(static_cast<int>(ResampleQuality::kSincBest))
    ->Arg(static_cast<int>(ResampleQuality::kSincMedium))
    ->Arg(static_cast<int>(ResampleQuality::kSincFastest))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Resample, 44k1_to_16k, 44100, 16000)
    ->ArgName("quality")
    ->Arg(static_cast<int>(ResampleQuality::kSincMedium))
    ->Unit(benchmark::kMillisecond);

// Intervals between capture callbacks on the default input over 5 s of steady streaming (after
// the first audio arrives), with the consumer reading as a live product would.
void BM_CaptureCallbackJitter(benchmark::State& state) {
  for (auto _ : state) {
    try {
      eddy::CaptureStream capture(eddy::CaptureOptions{});
      std::vector<float> out;
      capture.Start();
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      while (out.empty() && std::chrono::steady_clock::now() < give_up) {
        capture.Read(out, std::chrono::milliseconds(20));
      }
      if (out.empty()) {
        state.SkipWithError("no audio arrived from the default input");
        return;
      }
      std::vector<int64_t> times;
      capture.TakeCallbackTimes(times);
      times.clear();  // only the steady state counts
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (std::chrono::steady_clock::now() < end) {
        capture.Read(out, std::chrono::milliseconds(20));
        capture.TakeCallbackTimes(times);
        out.clear();
      }
      capture.Stop();
      std::vector<double> ms;
      for (size_t i = 1; i < times.size(); ++i) ms.push_back((times[i] - times[i - 1]) / 1e6);
      if (ms.size() < 10) {
        state.SkipWithError("too few callbacks");
        return;
      }
      std::sort(ms.begin(), ms.end());
      const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
      double var = 0;
      for (double v : ms) var += (v - mean) * (v - mean);
      state.counters["callbacks"] = static_cast<double>(times.size());
      state.counters["interval_mean_ms"] = mean;
      state.counters["interval_std_ms"] = std::sqrt(var / ms.size());
      state.counters["interval_p50_ms"] = ms[ms.size() / 2];
      state.counters["interval_p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
      state.counters["interval_max_ms"] = ms.back();
      state.counters["overflows"] = static_cast<double>(capture.stats().overflows);
      state.counters["device_rate"] = capture.device_rate();
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
}
BENCHMARK(BM_CaptureCallbackJitter)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
