#include "eddy/conversation.h"

#include <stdexcept>

namespace eddy {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
  }
  return "user";
}

Conversation::Conversation(TextEncoder encode, int codebooks, int mel_features)
    : encode_(std::move(encode)), codebooks_(codebooks), mel_features_(mel_features) {
  if (codebooks_ <= 0) throw std::invalid_argument("Conversation: codebooks must be positive");
  if (mel_features_ <= 0)
    throw std::invalid_argument("Conversation: mel features must be positive");
  AddText("<|startoftext|>");
}

void Conversation::NewTurn(Role role) {
  AddText(std::string("<|im_start|>") + RoleName(role) + "\n");
}

void Conversation::EndTurn() {
  AddText("<|im_end|>\n");
}

void Conversation::AddText(std::string_view text) {
  for (int32_t id : encode_(text)) AppendText(id);
}

void Conversation::AddAudioFeatures(std::span<const float> feature_major, int64_t frames) {
  if (frames <= 0) throw std::invalid_argument("audio clip has no mel frames");
  if (feature_major.size() != static_cast<size_t>(frames) * mel_features_) {
    throw std::invalid_argument("audio clip features do not hold " + std::to_string(mel_features_) +
                                " x " + std::to_string(frames) + " values");
  }
  prompt_.audio_in.push_back(
      {std::vector<float>(feature_major.begin(), feature_major.end()), frames});
  prompt_.modality.insert(prompt_.modality.end(), AudioPositions(frames), Modality::kAudioIn);
}

void Conversation::AppendText(int32_t id) {
  prompt_.text_ids.push_back(id);
  prompt_.modality.push_back(Modality::kText);
}

void Conversation::AppendAudioFrame(std::span<const int> codes) {
  if (static_cast<int>(codes.size()) != codebooks_) {
    throw std::invalid_argument("audio frame has " + std::to_string(codes.size()) +
                                " codes, expected " + std::to_string(codebooks_));
  }
  prompt_.audio_out.insert(prompt_.audio_out.end(), codes.begin(), codes.end());
  prompt_.modality.push_back(Modality::kAudioOut);
}

}  // namespace eddy
