#include "eddy/model_transcriber.h"

#include <algorithm>

#include "eddy/conversation.h"
#include "eddy/engine.h"
#include "eddy/model_error.h"

namespace eddy {

namespace {

// The ASR prompt up to where the audio goes.
Conversation PromptPrefix(const Tokenizer& tokenizer, const AudioModel& model,
                          const std::string& system) {
  Conversation conv([&](std::string_view t) { return tokenizer.Encode(t); },
                    model.config().codebooks, model.config().preprocessor.features);
  conv.NewTurn(Role::kSystem);
  conv.AddText(system);
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  return conv;
}

}  // namespace

ModelTranscriber::ModelTranscriber(std::shared_ptr<const AudioModel> model,
                                   const Tokenizer& tokenizer, ModelTranscriberOptions options)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      mel_(model_->config().preprocessor),
      prefix_cache_(model_->backbone().NewCache()) {
  const Conversation prefix = PromptPrefix(tokenizer_, *model_, options_.system_prompt);
  const std::vector<float> rows = model_->AssembleEmbeddings(prefix.prompt());
  std::vector<float> hidden(rows.size());
  model_->backbone().Forward(rows.data(), static_cast<int>(prefix.num_positions()), prefix_cache_,
                             hidden.data());
}

std::string ModelTranscriber::Transcribe(std::span<const float> samples, bool is_final,
                                         const std::atomic<bool>* cancel) {
  if (static_cast<int64_t>(samples.size()) < mel_.MinSamples()) return {};
  ++transcriptions_;
  GenerationLimits limits;
  limits.max_new_tokens = options_.max_tokens;
  limits.cancel = cancel;
  if (!is_final) limits.max_new_tokens_after_draft = options_.partial_new_tokens;
  const std::vector<int32_t> draft =
      options_.draft_previous_result ? previous_ids_ : std::vector<int32_t>{};
  Decoded decoded;
  try {
    decoded = Decode(samples, is_final, limits, draft);
  } catch (const Cancelled&) {
    return {};  // thrown away by the caller; the previous result stays the next draft
  }
  drafted_tokens_kept_ += decoded.draft_tokens_kept;
  generated_tokens_ += static_cast<int64_t>(decoded.ids.size());
  previous_ids_ = decoded.ids;
  return tokenizer_.Decode(decoded.ids, /*skip_special_tokens=*/true);
}

void ModelTranscriber::WarmUp(double seconds) {
  // Low-level noise rather than digital silence: the same work as speech, with finite log-mels.
  std::vector<float> noise(static_cast<size_t>(std::max(0.0, seconds) * kCaptionSampleRate));
  uint32_t state = 1;
  for (float& s : noise) {
    state = state * 1664525u + 1013904223u;
    s = 1e-3f * (static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f);
  }
  if (static_cast<int64_t>(noise.size()) < mel_.MinSamples()) return;
  GenerationLimits limits;
  limits.max_new_tokens = 1;
  Decode(noise, /*is_final=*/true, limits, {});
}

ModelTranscriber::Decoded ModelTranscriber::Decode(std::span<const float> samples, bool is_final,
                                                   const GenerationLimits& limits,
                                                   const std::vector<int32_t>& draft) {
  const LogMelFeatures features = mel_.ComputeLogMel(samples);
  Conversation conv = PromptPrefix(tokenizer_, *model_, options_.system_prompt);
  conv.AddAudioFeatures(features.data, features.frames);
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);

  ModelBackend backend(model_, GenerationSampling{});
  backend.set_allow_inexact_drafts(!is_final);
  backend.set_cancel_flag(limits.cancel);
  backend.Begin(conv.prompt(), &prefix_cache_);
  const GenerationTokens tokens{
      tokenizer_.RequireTokenId("<|im_end|>"), tokenizer_.RequireTokenId("<|audio_start|>"),
      tokenizer_.RequireTokenId("<|text_end|>"), AudioModelConfig::kEndOfAudio};
  Decoded decoded;
  GenerateSequential(
      backend, limits, tokens,
      [&](const GenerationOutput& o) {
        if (o.kind == OutputKind::kText) decoded.ids.push_back(o.text_id);
      },
      draft);
  decoded.draft_tokens_kept = backend.draft_tokens_kept();
  return decoded;
}

}  // namespace eddy
