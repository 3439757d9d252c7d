// `eddy bench`: load time and throughput of every stage on one model directory (use
// `eddy make-random-model` for a full-size random checkpoint), as a table or one JSON object.
// It measures; it never passes or fails on time.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "command.h"
#include "eddy/audio_model.h"
#include "eddy/mel.h"
#include "eddy/mimi.h"
#include "eddy/model_transcriber.h"
#include "eddy/sampling.h"
#include "eddy/tokenizer.h"

namespace eddy::app {
namespace {

struct BenchOptions {
  ModelOptions model;
  bool json = false;
  int decode_tokens = 64;  // about 2 s at q8: a brief dip of a shared host's bandwidth weighs less
  int audio_frames = 16;
  int encoder_seconds = 10;
  int mimi_frames = 60;
  int repeats = 2;         // prefill is timed this many times, the best counts
  int accuracy_steps = 0;  // > 0: compare with the checkpoint's own precision over a decode
};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

void Progress(const char* what) {
  std::fprintf(stderr, "bench: %s...\n", what);
}

std::vector<int> PromptIds(int n, int vocab) {
  std::vector<int> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = (i * 131 + 7) % vocab;
  return ids;
}

double PrefillTokensPerSecond(const Lfm2Model& lfm, int n, int repeats) {
  const std::vector<float> embeddings = lfm.EmbedText(PromptIds(n, lfm.vocab_size()));
  std::vector<float> out(embeddings.size());
  double best = 0.0;
  for (int r = 0; r < repeats; ++r) {
    Lfm2Cache cache = lfm.NewCache();
    const auto t0 = Clock::now();
    lfm.Forward(embeddings.data(), n, cache, out.data());
    best = std::max(best, n / SecondsSince(t0));
  }
  return best;
}

// Greedy text steps after a 64-token prompt; each step is logits + argmax + one backbone step.
double DecodeTokensPerSecond(const Lfm2Model& lfm, int steps, Lfm2Cache& cache,
                             std::vector<float>& last) {
  const int d = lfm.hidden_size();
  const std::vector<float> hidden =
      lfm.Forward(lfm.EmbedText(PromptIds(64, lfm.vocab_size())), cache);
  last.assign(hidden.end() - d, hidden.end());
  std::vector<float> logits(lfm.vocab_size());
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    lfm.TextLogits(last.data(), logits.data());
    const int token = ArgMax(logits.data(), static_cast<int>(logits.size()));
    last = lfm.Forward(lfm.EmbedText({token}), cache);
  }
  return steps / SecondsSince(t0);
}

// Audio-out frames: depthformer over all codebooks + the backbone step on the frame's embedding.
double AudioFramesPerSecond(const AudioModel& model, int frames, Lfm2Cache& cache,
                            std::vector<float>& last) {
  const AudioHead& head = model.audio_head();
  AudioHeadState state = head.NewState();
  Sampler sampler(1);
  std::vector<float> next(model.hidden_size());
  const auto t0 = Clock::now();
  for (int i = 0; i < frames; ++i) {
    const AudioFrame frame = head.SampleFrame(last.data(), {}, sampler, state);
    model.audio_embedding().EmbedFrame(frame.codes.data(), next.data());
    last = model.backbone().Forward(next, cache);
  }
  return frames / SecondsSince(t0);
}

// Wall time to encode `seconds` of noise (mel + conformer + adapter) per second of audio.
double EncoderRealTimeFactor(const AudioModel& model, int seconds) {
  const MelConfig& mel_config = model.config().preprocessor;
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> audio(static_cast<size_t>(seconds) * mel_config.sample_rate);
  for (float& s : audio) s = noise(rng);
  MelFrontend mel(mel_config);
  const auto t0 = Clock::now();
  const LogMelFeatures features = mel.ComputeLogMel(audio);
  model.encoder().Encode(features.data.data(), static_cast<int>(features.frames));
  return SecondsSince(t0) / seconds;
}

// Median ms per streaming frame on one thread (the decoder runs beside the LM in a live stream).
double MimiFrameMs(const std::filesystem::path& dir, const std::string& quant, int frames,
                   int threads) {
  SetComputeThreads(1);
  const auto decoder = MimiDecoder::LoadFromModelDir(dir, MimiFormatFor(quant));
  MimiDecoderStream stream(decoder);
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> code(0, decoder->config().bins - 1);
  std::vector<int> codes(decoder->config().num_codebooks_used);
  std::vector<float> out(decoder->config().samples_per_frame());
  std::vector<double> ms;
  for (int t = 0; t < frames; ++t) {
    for (int& c : codes) c = code(rng);
    const auto t0 = Clock::now();
    stream.Step(codes.data(), out.data());
    ms.push_back(1e3 * SecondsSince(t0));
  }
  SetComputeThreads(threads);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Final transcriptions of a 5 s clip as captions make them (ASR prompt with the cached system
// prefix, at most 20 tokens): from scratch, and again with the first result as the draft, as when
// the last partial already holds the final's text (speech usually does; random weights rarely).
struct AsrFinalSeconds {
  double plain = 0.0, stable_draft = 0.0;
};
AsrFinalSeconds AsrFinal(const std::shared_ptr<const AudioModel>& model, const Tokenizer& tokenizer,
                         int repeats) {
  std::mt19937 rng(9);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> audio(5 * 16000);
  for (float& s : audio) s = noise(rng);
  ModelTranscriberOptions options;
  options.max_tokens = 20;
  ModelTranscriber transcriber(model, tokenizer, options);
  AsrFinalSeconds best{1e9, 1e9};
  for (int r = 0; r < repeats; ++r) {
    transcriber.StartSegment();
    auto t0 = Clock::now();
    transcriber.Transcribe(audio, true, nullptr);
    best.plain = std::min(best.plain, SecondsSince(t0));
    t0 = Clock::now();
    transcriber.Transcribe(audio, true, nullptr);
    best.stable_draft = std::min(best.stable_draft, SecondsSince(t0));
  }
  return best;
}

int RunBench(const BenchOptions& opts) {
  const auto dir = ResolveOrPullModel(opts.model);
  SetComputeThreads(opts.model.threads);
  const int threads = ComputeThreads();
  nlohmann::ordered_json r;
  r["model"] = dir.string();
  r["quant"] = opts.model.quant;
  r["threads"] = threads;
  r["kernel"] = QuantKernelName();

  Progress("loading");
  AudioModelOptions model_options;
  model_options.weight_format = opts.model.quant;
  auto t0 = Clock::now();
  const auto model = AudioModel::Load(dir, model_options);
  r["load_s"] = SecondsSince(t0);
  r["weight_mb"] = static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0);

  const Lfm2Model& lfm = model->backbone();
  Progress("prefill");
  r["prefill64_tok_s"] = PrefillTokensPerSecond(lfm, 64, opts.repeats);
  r["prefill256_tok_s"] = PrefillTokensPerSecond(lfm, 256, opts.repeats);
  Progress("decode");
  Lfm2Cache cache = lfm.NewCache();
  std::vector<float> last;
  r["decode_tok_s"] = DecodeTokensPerSecond(lfm, opts.decode_tokens, cache, last);
  Progress("audio frames");
  r["audio_frames_s"] = AudioFramesPerSecond(*model, opts.audio_frames, cache, last);
  Progress("encoder");
  r["encoder_rtf"] = EncoderRealTimeFactor(*model, opts.encoder_seconds);
  r["asr5s_final_s"] = nullptr;
  r["asr5s_final_stable_draft_s"] = nullptr;
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    Progress("caption final of a 5 s clip");
    try {
      const AsrFinalSeconds asr =
          AsrFinal(model, Tokenizer::Load(dir / "tokenizer.json"), opts.repeats);
      r["asr5s_final_s"] = asr.plain;
      r["asr5s_final_stable_draft_s"] = asr.stable_draft;
    } catch (const std::exception& e) {  // say why, and measure the rest
      std::fprintf(stderr, "bench: caption final not measured: %s\n", e.what());
    }
  }
  // The language model's peak, before the separate Mimi decoder is loaded.
  r["peak_rss_mb"] = PeakRssMb();
  r["rss_per_weight"] = r["peak_rss_mb"].get<double>() / r["weight_mb"].get<double>();

  if (std::filesystem::exists(dir / kMimiWeightsFile)) {
    Progress("mimi");
    r["mimi_frame_ms"] = MimiFrameMs(dir, opts.model.quant, opts.mimi_frames, threads);
    r["mimi_threads"] = 1;
  } else {
    r["mimi_frame_ms"] = nullptr;  // no Mimi checkpoint in this directory
  }

  // After the peak RSS: the buffer must not count as the model's memory. Decode reads every
  // backbone weight once per token, so this is how close it comes to the memory bandwidth.
  Progress("memory read bandwidth");
  r["read_gb_s"] = MeasureReadBandwidth(size_t{512} << 20) / 1e9;
  r["decode_weight_gb_s"] =
      static_cast<double>(lfm.weight_bytes()) * r["decode_tok_s"].get<double>() / 1e9;

  if (opts.accuracy_steps > 0) {
    Progress("accuracy against the checkpoint's precision");
    AudioModelOptions native;
    native.weight_format = "native";
    const auto reference = AudioModel::Load(dir, native);
    const LogitAgreement a =
        CompareGreedyDecode(reference->backbone(), model->backbone(),
                            lfm.EmbedText(PromptIds(64, lfm.vocab_size())), opts.accuracy_steps);
    r["accuracy_steps"] = a.steps;
    r["logit_rms_rel_err"] = a.rms_relative_error;
    r["logit_max_rel_err"] = a.max_relative_error;
    r["top1_agreement"] = a.top1;
    r["top5_agreement"] = a.top5;
  }

  if (opts.json) {
    std::printf("%s\n", r.dump().c_str());
    return 0;
  }
  const auto num = [&](const char* key) {
    if (r[key].is_null()) return std::string("n/a");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", r[key].get<double>());
    return std::string(buf);
  };
  std::printf("eddy bench: %s\n  weights %s, %d threads, kernel %s\n", dir.string().c_str(),
              opts.model.quant.c_str(), threads, QuantKernelName());
  std::printf("  %-34s %10.2f s\n", "load", r["load_s"].get<double>());
  std::printf("  %-34s %10.1f tok/s\n", "prefill, 64 tokens", r["prefill64_tok_s"].get<double>());
  std::printf("  %-34s %10.1f tok/s\n", "prefill, 256 tokens", r["prefill256_tok_s"].get<double>());
  std::printf("  %-34s %10.1f tok/s\n", "decode (text, incl. logits)",
              r["decode_tok_s"].get<double>());
  std::printf("  %-34s %10.1f GB/s (%.0f%% of a plain read: %.1f GB/s)\n", "  weights streamed",
              r["decode_weight_gb_s"].get<double>(),
              100.0 * r["decode_weight_gb_s"].get<double>() / r["read_gb_s"].get<double>(),
              r["read_gb_s"].get<double>());
  std::printf("  %-34s %10.1f frames/s (real time: 12.5)\n", "audio frames (depthformer + step)",
              r["audio_frames_s"].get<double>());
  std::printf("  %-34s %10.3f\n", "encoder real-time factor", r["encoder_rtf"].get<double>());
  std::printf("  %-34s %10s s (20 tokens; %s s from a stable draft)\n", "caption final, 5 s clip",
              num("asr5s_final_s").c_str(), num("asr5s_final_stable_draft_s").c_str());
  std::printf("  %-34s %10s ms (1 thread)\n", "mimi streaming frame", num("mimi_frame_ms").c_str());
  std::printf("  %-34s %10.0f MiB\n", "weights in memory", r["weight_mb"].get<double>());
  std::printf("  %-34s %10.0f MiB (%.2fx the weights)\n", "peak RSS",
              r["peak_rss_mb"].get<double>(), r["rss_per_weight"].get<double>());
  if (opts.accuracy_steps > 0) {
    std::printf(
        "  %-34s %10.4f rms, %.4f max (relative), top-1 agreement %.3f, top-5 %.3f over %d "
        "steps\n",
        "logits vs checkpoint precision", r["logit_rms_rel_err"].get<double>(),
        r["logit_max_rel_err"].get<double>(), r["top1_agreement"].get<double>(),
        r["top5_agreement"].get<double>(), opts.accuracy_steps);
  }
  return 0;
}

EDDY_COMMAND("bench", "Measure load time, prefill/decode speed, audio frames, encoder and Mimi",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<BenchOptions>();
               opts->model.quant = "q8";
               AddModelOptions(cmd, opts->model);
               cmd.add_flag("--json", opts->json, "print one JSON object instead of a table");
               cmd.add_option("--decode-tokens", opts->decode_tokens, "text steps to time")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_option("--audio-frames", opts->audio_frames, "audio frames to time")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_option("--encoder-seconds", opts->encoder_seconds,
                              "seconds of audio to encode")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_option("--mimi-frames", opts->mimi_frames, "Mimi frames to time")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_option("--accuracy-steps", opts->accuracy_steps,
                              "also compare logits with the checkpoint's precision over this "
                              "many greedy steps (0 = skip)")
                   ->check(CLI::NonNegativeNumber)
                   ->capture_default_str();
               return [opts] { return RunBench(*opts); };
             });

}  // namespace
}  // namespace eddy::app
