// `eddy caption`: live captions (partial lines rewritten in place, finals committed), SRT/VTT
// files and JSON events, from an audio file played as fast as possible or paced like a live source.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "command.h"
#include "eddy/audio_file.h"
#include "eddy/caption_stream.h"
#include "eddy/model_transcriber.h"
#include "eddy/subtitles.h"
#include "eddy/tokenizer.h"

namespace eddy::app {
namespace {

struct CaptionOptions {
  ModelOptions model;
  std::string input;
  bool realtime = false;
  std::string srt, vtt;
  bool json = false;
  bool stats = false;
  int max_tokens = 128;
  int partial_interval_ms = 500;
  double partial_budget = 0.5;
};

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write");
}

int RunCaption(const CaptionOptions& opts) {
  if (opts.input.empty()) {
    throw std::invalid_argument(
        "live capture from a device is not available yet; pass --input FILE");
  }
  SetComputeThreads(opts.model.threads);
  const auto dir = ResolveOrPullModel(opts.model);
  AudioModelOptions model_options;
  model_options.weight_format = opts.model.quant;
  const auto model = AudioModel::Load(dir, model_options);
  const auto tokenizer = Tokenizer::Load(dir / "tokenizer.json");
  ModelTranscriberOptions transcriber_options;
  transcriber_options.max_tokens = opts.max_tokens;
  ModelTranscriber transcriber(model, tokenizer, transcriber_options);
  CaptionConfig config;
  config.partial_interval_ms = opts.partial_interval_ms;
  // A live source must never fall behind; a file run as fast as possible stays reproducible.
  if (opts.realtime) config.partial_compute_budget = opts.partial_budget;
  config.Validate();
  CaptionStream stream(config, transcriber);

  const std::vector<float> audio = LoadMono(opts.input, kCaptionSampleRate);
  const bool live_line = !opts.json && isatty(STDOUT_FILENO);
  std::vector<CaptionEvent> finals;
  const auto emit = [&] {
    for (const CaptionEvent& e : stream.TakeEvents()) {
      if (e.type == CaptionEventType::kFinal) finals.push_back(e);
      if (opts.json) {
        std::printf("%s\n", e.ToJson().c_str());
      } else if (e.type == CaptionEventType::kFinal) {
        std::printf("%s[%7.2f - %7.2f] %s\n", live_line ? "\r\033[K" : "", e.start, e.end,
                    e.text.c_str());
      } else if (live_line) {
        std::printf("\r\033[K... %s", e.text.c_str());
      }
      std::fflush(stdout);
    }
  };
  const size_t chunk = kCaptionSampleRate / 50;  // 20 ms, like a capture callback
  const auto start = std::chrono::steady_clock::now();
  for (size_t pos = 0; pos < audio.size(); pos += chunk) {
    const size_t n = std::min(chunk, audio.size() - pos);
    if (opts.realtime) {
      std::this_thread::sleep_until(
          start + std::chrono::microseconds(static_cast<int64_t>(pos * 1e6 / kCaptionSampleRate)));
    }
    stream.AcceptWaveform(audio.data() + pos, n, kCaptionSampleRate);
    emit();
  }
  stream.InputFinished();
  emit();
  if (!opts.srt.empty()) WriteText(opts.srt, WriteSrt(CuesFromFinals(finals)));
  if (!opts.vtt.empty()) WriteText(opts.vtt, WriteVtt(CuesFromFinals(finals)));
  if (opts.stats) {
    const CaptionStats& s = stream.stats();
    std::fprintf(stderr,
                 "audio %.2f s, real-time factor %.3f, finals %lld (endpoint-to-final mean %.3f s, "
                 "max %.3f s), partials %lld (interval mean %.3f s, max %.3f s), dropped %.3f s\n",
                 s.audio_seconds, s.real_time_factor(), static_cast<long long>(s.finals),
                 s.final_latency_mean_s, s.final_latency_max_s, static_cast<long long>(s.partials),
                 s.partial_interval_mean_s, s.partial_interval_max_s, s.dropped_seconds());
  }
  return 0;
}

EDDY_COMMAND("caption", "Live captions: partial and final text, SRT/VTT, JSON events",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<CaptionOptions>();
               AddModelOptions(cmd, opts->model);
               cmd.add_option("-i,--input", opts->input, "audio file (WAV or Ogg Opus)")
                   ->check(CLI::ExistingFile);
               cmd.add_flag("--realtime", opts->realtime, "pace the file like a live source");
               cmd.add_option("--srt", opts->srt, "write the finals as SubRip subtitles");
               cmd.add_option("--vtt", opts->vtt, "write the finals as WebVTT subtitles");
               cmd.add_flag("--json", opts->json,
                            "one JSON event per line (schema: docs/caption-events.md)");
               cmd.add_flag("--stats", opts->stats, "print real-time factor and latencies");
               cmd.add_option("--max-tokens", opts->max_tokens, "text tokens per segment at most")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_option("--partial-interval-ms", opts->partial_interval_ms,
                              "new audio between partial results (0 = finals only)")
                   ->check(CLI::NonNegativeNumber)
                   ->capture_default_str();
               cmd.add_option("--partial-budget", opts->partial_budget,
                              "live input: largest share of time spent on partials")
                   ->check(CLI::Range(0.0, 0.99))
                   ->capture_default_str();
               return [opts] { return RunCaption(*opts); };
             });

}  // namespace
}  // namespace eddy::app
