// `eddy transcribe FILE...`: speech to text with the reference's ASR prompt and greedy decoding.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "eddy/audio_file.h"
#include "eddy/conversation.h"
#include "eddy/engine.h"
#include "eddy/mel.h"
#include "eddy/model_dir.h"
#include "eddy/tokenizer.h"

namespace eddy::app {
namespace {

struct TranscribeOptions {
  ModelOptions model;
  std::vector<std::string> files;
  std::string system = "Perform ASR.";
  int max_tokens = 512;
  bool json = false;
};

// Text mode already streams the words; with --json long files get a progress line instead.
constexpr double kProgressAfterSeconds = 30.0;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int RunTranscribe(const TranscribeOptions& opts) {
  const auto t_load = std::chrono::steady_clock::now();
  const LoadedModel loaded = LoadModel(opts.model);
  const auto& model = loaded.model;
  const Tokenizer& tokenizer = loaded.tokenizer;
  const MelFrontend mel(model->config().preprocessor);
  const double load_s = Seconds(t_load);
  const GenerationTokens tokens{
      tokenizer.RequireTokenId("<|im_end|>"), tokenizer.RequireTokenId("<|audio_start|>"),
      tokenizer.RequireTokenId("<|text_end|>"), AudioModelConfig::kEndOfAudio};

  int failures = 0;
  for (const auto& file : opts.files) {
    try {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<float> audio = LoadMono(file, mel.config().sample_rate);
      if (static_cast<int64_t>(audio.size()) < mel.MinSamples()) {
        throw std::invalid_argument(file + ": audio too short (" + std::to_string(audio.size()) +
                                    " samples at 16 kHz, need at least " +
                                    std::to_string(mel.MinSamples()) + ")");
      }
      const double audio_s = static_cast<double>(audio.size()) / mel.config().sample_rate;
      // Long files show where they are on a terminal: encoding, then the tokens as they come.
      const bool progress = audio_s >= kProgressAfterSeconds && isatty(STDERR_FILENO) && opts.json;
      if (progress) std::fprintf(stderr, "%s: %.0f s of audio, encoding...", file.c_str(), audio_s);
      const LogMelFeatures features = mel.ComputeLogMel(audio);
      Conversation conv([&](std::string_view t) { return tokenizer.Encode(t); },
                        model->config().codebooks, features.features);
      conv.NewTurn(Role::kSystem);
      conv.AddText(opts.system);
      conv.EndTurn();
      conv.NewTurn(Role::kUser);
      conv.AddAudioFeatures(features.data, features.frames);
      conv.EndTurn();
      conv.NewTurn(Role::kAssistant);

      ModelBackend backend(model, GenerationSampling{});  // ASR: greedy, as documented
      backend.Begin(conv.prompt());
      StreamingDetokenizer detok(tokenizer, /*skip_special_tokens=*/true);
      std::string text;
      int generated = 0;
      double first_token_s = -1;
      GenerationLimits limits;
      limits.max_new_tokens = opts.max_tokens;
      const auto reason =
          GenerateSequential(backend, limits, tokens, [&](const GenerationOutput& o) {
            if (o.kind != OutputKind::kText) return;
            if (first_token_s < 0) first_token_s = Seconds(t0);
            ++generated;
            const std::string piece = detok.Push(o.text_id);
            text += piece;
            if (!opts.json) std::fputs(piece.c_str(), stdout), std::fflush(stdout);
          });
      if (progress) std::fprintf(stderr, "\n");
      const std::string tail = detok.Flush();
      text += tail;
      const double total_s = Seconds(t0);
      if (opts.json) {
        nlohmann::json j{
            {"file", file},
            {"text", text},
            {"tokens", generated},
            {"stopped", reason == StopReason::kEndOfTurn ? "end_of_turn" : "max_tokens"},
            {"audio_s", audio_s},
            {"load_s", load_s},
            {"first_token_s", first_token_s},
            {"total_s", total_s},
            {"rtf", total_s / audio_s}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%s\n", tail.c_str());
        std::fprintf(stderr, "[%s: %.2f s of audio in %.2f s, %d tokens%s]\n", file.c_str(),
                     audio_s, total_s, generated,
                     reason == StopReason::kMaxTokens ? ", stopped at --max-tokens" : "");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eddy: error: %s\n", e.what());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

EDDY_COMMAND("transcribe", "Transcribe audio files (WAV) to text",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<TranscribeOptions>();
               AddModelOptions(cmd, opts->model);
               cmd.add_option("files", opts->files,
                              "audio files (WAV: PCM 8/16/24/32-bit or float)")
                   ->required()
                   ->check(CLI::ExistingFile);
               cmd.add_option("--system", opts->system, "system prompt")->capture_default_str();
               cmd.add_option("--max-tokens", opts->max_tokens, "stop after this many tokens")
                   ->check(CLI::PositiveNumber)
                   ->capture_default_str();
               cmd.add_flag("--json", opts->json, "one JSON object per file, with timings");
               return [opts] { return RunTranscribe(*opts); };
             });

}  // namespace
}  // namespace eddy::app
