// `eddy speak` (text to speech), `eddy chat` (speech in, text and speech out) and `eddy translate`
// (chat with a translation system prompt): generation with audio output decoded frame by frame as
// it is produced, by the LFM2.5 detokenizer when the model has one, else by Mimi.
#include <cstdio>
#include <optional>

#include "command.h"
#include "eddy/audio_file.h"
#include "eddy/conversation.h"
#include "eddy/engine.h"
#include "eddy/lfm25_detokenizer.h"
#include "eddy/mel.h"
#include "eddy/mimi.h"
#include "eddy/model_dir.h"
#include "eddy/tokenizer.h"

namespace eddy::app {
namespace {

struct SpeechOptions {
  ModelOptions model;
  std::string input;   // text (speak) or audio file (chat, translate)
  std::string output;  // WAV at 24 kHz
  std::string system;
  std::string language = "English";
  int max_tokens = 1024;
  uint64_t seed = 0;
  float text_temperature = 0.0f;
  int text_top_k = 0;
  float audio_temperature = 1.0f;
  int audio_top_k = 4;
};

enum class Task { kSpeak, kChat, kTranslate };

// Audio codes -> 24 kHz samples, one frame at a time: the model directory's audio_detokenizer/
// (LFM2.5-Audio) when present, else Mimi.
class SpeechDecoder {
 public:
  SpeechDecoder(const std::filesystem::path& dir, MimiWeightFormat mimi_format) {
    if (auto detokenizer = Lfm25Detokenizer::LoadFromModelDir(dir)) {
      detokenizer_.emplace(std::move(detokenizer));
      sample_rate_ = Lfm25Detokenizer::kSampleRate;
    } else {
      auto mimi = MimiDecoder::LoadFromModelDir(dir, mimi_format);
      sample_rate_ = static_cast<int>(mimi->config().sample_rate);
      mimi_.emplace(std::move(mimi));
    }
  }
  int sample_rate() const { return sample_rate_; }
  void Step(const std::vector<int>& codes, std::vector<float>& out) {
    if (detokenizer_) {
      detokenizer_->Step(codes.data(), out);
    } else {
      const auto samples = mimi_->Step(codes);
      out.insert(out.end(), samples.begin(), samples.end());
    }
  }
  // The detokenizer holds back the last 480 samples until the utterance ends.
  void Flush(std::vector<float>& out) {
    if (detokenizer_) detokenizer_->Flush(out);
  }

 private:
  std::optional<Lfm25DetokenizerStream> detokenizer_;
  std::optional<MimiDecoderStream> mimi_;
  int sample_rate_ = 0;
};

SamplingParams Params(float temperature, int top_k) {
  SamplingParams p;
  if (temperature > 0) p.temperature = temperature;
  if (top_k > 0) p.top_k = top_k;
  return p;
}

int RunSpeech(Task task, const SpeechOptions& opts) {
  const LoadedModel loaded = LoadModel(opts.model);
  const auto& dir = loaded.dir;
  const auto& model = loaded.model;
  const Tokenizer& tokenizer = loaded.tokenizer;
  SpeechDecoder speech(dir, MimiFormatFor(opts.model.quant));
  const GenerationTokens tokens{
      tokenizer.RequireTokenId("<|im_end|>"), tokenizer.RequireTokenId("<|audio_start|>"),
      tokenizer.RequireTokenId("<|text_end|>"), AudioModelConfig::kEndOfAudio};

  Conversation conv([&](std::string_view t) { return tokenizer.Encode(t); },
                    model->config().codebooks, model->config().preprocessor.features);
  conv.NewTurn(Role::kSystem);
  conv.AddText(opts.system);
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  if (task == Task::kSpeak) {
    if (opts.input.empty()) throw std::invalid_argument("nothing to say: the text is empty");
    conv.AddText(opts.input);
  } else {
    const MelFrontend mel(model->config().preprocessor);
    const auto audio = LoadMono(opts.input, mel.config().sample_rate);
    if (static_cast<int64_t>(audio.size()) < mel.MinSamples()) {
      throw std::invalid_argument(opts.input + ": audio too short");
    }
    const auto features = mel.ComputeLogMel(audio);
    conv.AddAudioFeatures(features.data, features.frames);
  }
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);

  GenerationSampling sampling{Params(opts.text_temperature, opts.text_top_k),
                              Params(opts.audio_temperature, opts.audio_top_k)};
  ModelBackend backend(model, sampling, opts.seed);
  backend.Begin(conv.prompt());
  AudioBuffer out;
  out.sample_rate = speech.sample_rate();
  out.channels = 1;
  StreamingDetokenizer detok(tokenizer, /*skip_special_tokens=*/true);
  GenerationLimits limits;
  limits.max_new_tokens = opts.max_tokens;
  const auto sink = [&](const GenerationOutput& o) {
    if (o.kind == OutputKind::kText) {
      std::fputs(detok.Push(o.text_id).c_str(), stdout);
      std::fflush(stdout);
      return;
    }
    // Frames holding an end-of-audio code are not speech (the reference's demo skips them too).
    for (int c : o.codes) {
      if (c >= AudioModelConfig::kEndOfAudio) return;
    }
    speech.Step(o.codes, out.samples);
  };
  if (task == Task::kSpeak) {
    GenerateSequential(backend, limits, tokens, sink);
  } else {
    GenerateInterleaved(backend, model->config().interleaved_n_text,
                        model->config().interleaved_n_audio, limits, tokens, sink);
  }
  std::printf("%s\n", detok.Flush().c_str());
  speech.Flush(out.samples);
  if (out.samples.empty()) throw std::runtime_error("the model produced no speech");
  WriteWav(opts.output, out);
  std::fprintf(stderr, "[wrote %.2f s of speech to %s]\n",
               static_cast<double>(out.samples.size()) / out.sample_rate, opts.output.c_str());
  return 0;
}

void AddSpeechOptions(CLI::App& cmd, SpeechOptions& opts, bool audio_input) {
  AddModelOptions(cmd, opts.model);
  if (audio_input) {
    cmd.add_option("input", opts.input, "audio file (WAV)")->required()->check(CLI::ExistingFile);
  } else {
    cmd.add_option("text", opts.input, "text to speak")->required();
  }
  cmd.add_option("-o,--output", opts.output, "output WAV file (24 kHz)")->required();
  cmd.add_option("--max-tokens", opts.max_tokens, "text tokens and audio frames, together")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--seed", opts.seed, "random seed for sampling")->capture_default_str();
  cmd.add_option("--temperature", opts.text_temperature, "text temperature (0 = greedy)")
      ->capture_default_str();
  cmd.add_option("--top-k", opts.text_top_k, "text top-k (0 = off)")->capture_default_str();
  cmd.add_option("--audio-temperature", opts.audio_temperature, "audio temperature (0 = greedy)")
      ->capture_default_str();
  cmd.add_option("--audio-top-k", opts.audio_top_k, "audio top-k (0 = off)")->capture_default_str();
}

EDDY_COMMAND("speak", "Text to speech: write the model's speech for TEXT to a WAV file",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<SpeechOptions>();
               opts->system = "Perform TTS.";
               opts->audio_temperature = 0.8f;  // the reference README's TTS settings
               opts->audio_top_k = 64;
               AddSpeechOptions(cmd, *opts, false);
               cmd.add_option("--system", opts->system, "system prompt (e.g. a voice description)")
                   ->capture_default_str();
               return [opts] { return RunSpeech(Task::kSpeak, *opts); };
             });

EDDY_COMMAND("chat", "Speech in, text printed as it streams and speech written to a WAV file",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<SpeechOptions>();
               opts->system = "Respond with interleaved text and audio.";
               AddSpeechOptions(cmd, *opts, true);
               cmd.add_option("--system", opts->system, "system prompt")->capture_default_str();
               return [opts] { return RunSpeech(Task::kChat, *opts); };
             });

EDDY_COMMAND("translate", "Speech in one language, text and speech out in another",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<SpeechOptions>();
               AddSpeechOptions(cmd, *opts, true);
               cmd.add_option("--to", opts->language, "target language")->required();
               return [opts] {
                 SpeechOptions o = *opts;
                 o.system = "Translate what the user says into " + o.language +
                            ". Respond with interleaved text and audio.";
                 return RunSpeech(Task::kTranslate, o);
               };
             });

}  // namespace
}  // namespace eddy::app
