// The conversation state of the reference (liquid-audio ChatState, spec_backbone.md §3.1): the
// text token ids, the log-mel features of every audio-in clip, the audio-out frames already in
// the history, and one modality flag per backbone input position.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/audio_model.h"

namespace eddy {

enum class Role { kSystem, kUser, kAssistant };
const char* RoleName(Role role);

// Text -> token ids with no special-token template (add_special_tokens = false); each call is one
// separately tokenized piece, as the reference does.
using TextEncoder = std::function<std::vector<int32_t>(std::string_view)>;

class Conversation {
 public:
  // Starts with "<|startoftext|>". `mel_features` is the mel bin count (128).
  Conversation(TextEncoder encode, int codebooks, int mel_features);

  void NewTurn(Role role);  // "<|im_start|>{role}\n"
  void EndTurn();           // "<|im_end|>\n"
  void AddText(std::string_view text);
  // One audio-in clip's log-mel features, feature-major [mel_features, frames] as the front end
  // returns them (including the masked last frame, which the reference keeps). Adds
  // ceil(frames / 8) audio-in positions.
  void AddAudioFeatures(std::span<const float> feature_major, int64_t frames);
  // Generated output in generation order: text ids and audio frames (codebooks codes each).
  void AppendText(int32_t id);
  void AppendAudioFrame(std::span<const int> codes);

  int codebooks() const { return codebooks_; }
  int mel_features() const { return mel_features_; }
  // Everything the model's prefill needs: text ids, audio-in clips, audio-out frames (frame-major),
  // one modality flag per position.
  const PromptInputs& prompt() const { return prompt_; }
  int64_t num_positions() const { return static_cast<int64_t>(prompt_.modality.size()); }

  // Embedding rows the encoder contributes for a clip of `frames` mel frames.
  static int64_t AudioPositions(int64_t frames) { return (frames + 7) / 8; }

 private:
  TextEncoder encode_;
  int codebooks_;
  int mel_features_;
  PromptInputs prompt_;
};

}  // namespace eddy
