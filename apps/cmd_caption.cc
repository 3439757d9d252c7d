// `eddy caption`: live captions (partial lines rewritten in place, finals committed), SRT/VTT
// files and JSON events, from a capture device or from an audio file (as fast as possible or paced
// like a live source).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "command.h"
#include "eddy/audio_event.h"
#include "eddy/audio_file.h"
#include "eddy/caption_stream.h"
#include "eddy/capture.h"
#include "eddy/model_transcriber.h"
#include "eddy/subtitles.h"
#include "eddy/tokenizer.h"

namespace eddy::app {
namespace {

struct CaptionOptions {
  ModelOptions model;
  std::string input;   // empty: capture from a device
  std::string device;  // capture device (index or name part); empty = default input
  double seconds = 0;  // device capture length; 0 = until Ctrl-C
  std::string save_audio;
  bool realtime = false;
  std::string srt, vtt;
  bool json = false;
  bool stats = false;
  int max_tokens = 128;
  int partial_interval_ms = 500;
  double partial_budget = 0.5;
  int partial_new_tokens = ModelTranscriberOptions{}.partial_new_tokens;
  int trailing_silence_ms = SegmenterConfig{}.trailing_silence_ms;
  int post_padding_ms = SegmenterConfig{}.post_padding_ms;
};

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write");
}

// Ctrl-C ends a live capture cleanly: what was captured is still transcribed and written.
std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) {
  g_interrupted.store(true);
}

// Prints events as they come: JSON lines, or a live terminal line (partial rewritten in place,
// finals committed).
class EventPrinter {
 public:
  explicit EventPrinter(bool json) : json_(json), live_line_(!json && isatty(STDOUT_FILENO)) {}

  void Print(const CaptionEvent& e) {
    if (e.type == CaptionEventType::kFinal) finals_.push_back(e);
    if (json_) {
      std::printf("%s\n", e.ToJson().c_str());
    } else if (e.type == CaptionEventType::kFinal) {
      std::printf("%s[%7.2f - %7.2f] %s\n", live_line_ ? "\r\033[K" : "", e.start, e.end,
                  e.text.c_str());
    } else if (live_line_) {
      std::printf("\r\033[K... %s", e.text.c_str());
    }
    std::fflush(stdout);
  }
  // Audio trouble (dropped input, device errors) goes into the same stream as the captions.
  void Print(const AudioEvent& e) {
    if (json_) {
      nlohmann::ordered_json j;
      j["type"] = e.kind == AudioEventKind::kDeviceError ? "error" : "dropped";
      j["message"] = e.message;
      j["frames"] = e.frames;
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    } else {
      std::fprintf(stderr, "%seddy caption: %s: %s\n", live_line_ ? "\r\033[K" : "",
                   AudioEventName(e.kind), e.message.c_str());
    }
  }
  const std::vector<CaptionEvent>& finals() const { return finals_; }

 private:
  bool json_, live_line_;
  std::vector<CaptionEvent> finals_;
};

void Drain(CaptionStream& stream, EventPrinter& printer) {
  for (const CaptionEvent& e : stream.TakeEvents()) printer.Print(e);
}

// A file, as fast as possible or paced like a live source.
void CaptionFile(const CaptionOptions& opts, CaptionStream& stream, EventPrinter& printer,
                 std::vector<float>& captured) {
  captured = LoadMono(opts.input, kCaptionSampleRate);
  const size_t chunk = kCaptionSampleRate / 50;  // 20 ms, like a capture callback
  const auto start = std::chrono::steady_clock::now();
  for (size_t pos = 0; pos < captured.size() && !g_interrupted.load(); pos += chunk) {
    const size_t n = std::min(chunk, captured.size() - pos);
    if (opts.realtime) {
      std::this_thread::sleep_until(
          start + std::chrono::microseconds(static_cast<int64_t>(pos * 1e6 / kCaptionSampleRate)));
    }
    stream.AcceptWaveform(captured.data() + pos, n, kCaptionSampleRate);
    Drain(stream, printer);
  }
}

// A capture device until --seconds, Ctrl-C or a device error. Overflows (the transcriber fell
// so far behind that the capture ring filled) are reported, counted as dropped audio and
// replaced by silence so that caption times stay on the wall clock.
void CaptionDevice(const CaptionOptions& opts, CaptionStream& stream, EventPrinter& printer,
                   std::vector<float>& captured) {
  CaptureOptions capture_options;
  capture_options.device = opts.device;
  capture_options.output_rate = kCaptionSampleRate;
  capture_options.ring_seconds = 30.0;
  CaptureStream capture(capture_options);
  std::fprintf(stderr, "eddy caption: listening on '%s' (%d Hz, %d ch)%s\n",
               capture.device().name.c_str(), capture.device_rate(), capture.device_channels(),
               opts.seconds > 0 ? "" : "; Ctrl-C to stop");
  capture.Start();
  const int64_t limit =
      opts.seconds > 0 ? static_cast<int64_t>(opts.seconds * kCaptionSampleRate) : -1;
  std::vector<float> block;
  bool stopping = false;
  while (true) {
    block.clear();
    const bool more = capture.Read(block, std::chrono::milliseconds(50));
    if (limit >= 0 && static_cast<int64_t>(captured.size() + block.size()) > limit) {
      block.resize(static_cast<size_t>(std::max<int64_t>(0, limit - captured.size())));
    }
    captured.insert(captured.end(), block.begin(), block.end());
    if (!block.empty()) stream.AcceptWaveform(block.data(), block.size(), kCaptionSampleRate);
    for (const AudioEvent& e : capture.TakeEvents()) {
      printer.Print(e);
      if (e.kind == AudioEventKind::kOverflow) {
        const auto lost = static_cast<int64_t>(e.frames) * kCaptionSampleRate /
                          std::max(1, capture.device_rate());
        stream.ReportDroppedSamples(lost);
        const std::vector<float> silence(static_cast<size_t>(lost), 0.0f);
        stream.AcceptWaveform(silence.data(), silence.size(), kCaptionSampleRate);
        captured.insert(captured.end(), silence.begin(), silence.end());
      }
    }
    Drain(stream, printer);
    if (!more) break;
    const bool reached = limit >= 0 && static_cast<int64_t>(captured.size()) >= limit;
    if (!stopping && (reached || g_interrupted.load())) {
      capture.Stop();  // Read delivers what is left, then returns false
      stopping = true;
    }
  }
}

int RunCaption(const CaptionOptions& opts) {
  const LoadedModel loaded = LoadModel(opts.model);
  const auto& model = loaded.model;
  const Tokenizer& tokenizer = loaded.tokenizer;
  ModelTranscriberOptions transcriber_options;
  transcriber_options.max_tokens = opts.max_tokens;
  transcriber_options.partial_new_tokens = opts.partial_new_tokens;
  ModelTranscriber transcriber(model, tokenizer, transcriber_options);
  CaptionConfig config;
  config.partial_interval_ms = opts.partial_interval_ms;
  config.segmenter.trailing_silence_ms = opts.trailing_silence_ms;
  config.segmenter.post_padding_ms = opts.post_padding_ms;
  const bool live = opts.input.empty() || opts.realtime;
  // A live source must never fall behind; a file run as fast as possible stays reproducible.
  if (live) {
    config.partial_compute_budget = opts.partial_budget;
    config.background_partials = true;
  }
  config.Validate();
  if (live) {
    // The first segments would otherwise fault in their decode buffers while someone waits for
    // the caption; this thread decodes the finals.
    std::fprintf(stderr, "eddy caption: warming up\n");
    transcriber.WarmUp(config.segmenter.max_segment_ms / 1000.0);
  }
  CaptionStream stream(config, transcriber);
  EventPrinter printer(opts.json);

  std::signal(SIGINT, OnInterrupt);
  std::vector<float> captured;
  if (opts.input.empty()) {
    CaptionDevice(opts, stream, printer, captured);
  } else {
    CaptionFile(opts, stream, printer, captured);
  }
  stream.InputFinished();
  Drain(stream, printer);
  if (!opts.save_audio.empty()) WriteWav(opts.save_audio, {kCaptionSampleRate, 1, captured});
  if (!opts.srt.empty()) WriteText(opts.srt, WriteSrt(CuesFromFinals(printer.finals())));
  if (!opts.vtt.empty()) WriteText(opts.vtt, WriteVtt(CuesFromFinals(printer.finals())));
  if (opts.stats) {
    const CaptionStats& s = stream.stats();
    std::fprintf(stderr,
                 "audio %.2f s, real-time factor %.3f, finals %lld (endpoint-to-final mean %.3f s, "
                 "max %.3f s; decode mean %.3f s), partials %lld (interval mean %.3f s, max %.3f "
                 "s), dropped %.3f s\n",
                 s.audio_seconds, s.real_time_factor(), static_cast<long long>(s.finals),
                 s.final_latency_mean_s, s.final_latency_max_s, s.final_decode_mean_s,
                 static_cast<long long>(s.partials), s.partial_interval_mean_s,
                 s.partial_interval_max_s, s.dropped_seconds());
    std::fprintf(stderr, "decoding: %lld transcriptions, %lld tokens, %lld of them drafted\n",
                 static_cast<long long>(transcriber.transcriptions()),
                 static_cast<long long>(transcriber.generated_tokens()),
                 static_cast<long long>(transcriber.drafted_tokens_kept()));
  }
  return 0;
}

EDDY_COMMAND("caption", "Live captions: partial and final text, SRT/VTT, JSON events",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<CaptionOptions>();
               AddModelOptions(cmd, opts->model);
               cmd.add_option("-i,--input", opts->input,
                              "audio file (WAV or Ogg Opus); without it, capture from a device")
                   ->check(CLI::ExistingFile);
               cmd.add_option("-d,--device", opts->device,
                              "capture device: index or part of its name (eddy devices)");
               cmd.add_option("--seconds", opts->seconds, "stop capturing after this long")
                   ->check(CLI::NonNegativeNumber);
               cmd.add_option("--save-audio", opts->save_audio,
                              "write the 16 kHz audio that was captioned to this WAV file");
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
               cmd.add_option("--partial-new-tokens", opts->partial_new_tokens,
                              "tokens a partial may add past the previous hypothesis (0 = up to "
                              "--max-tokens)")
                   ->check(CLI::Range(0, 4096))
                   ->capture_default_str();
               cmd.add_option("--trailing-silence-ms", opts->trailing_silence_ms,
                              "silence that ends an utterance")
                   ->check(CLI::Range(10, 10000))
                   ->capture_default_str();
               cmd.add_option("--post-padding-ms", opts->post_padding_ms,
                              "audio kept after the last voiced frame (shorter: earlier finals, "
                              "but quiet word endings may be cut)")
                   ->check(CLI::Range(0, 10000))
                   ->capture_default_str();
               return [opts] { return RunCaption(*opts); };
             });

}  // namespace
}  // namespace eddy::app
