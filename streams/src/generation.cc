#include "eddy/generation.h"

#include <algorithm>
#include <stdexcept>

namespace eddy {

bool GenerationOutput::is_end_of_audio() const {
  return kind == OutputKind::kAudio && !codes.empty() && codes[0] == end_of_audio_code;
}

namespace {

bool Cancelled(const GenerationLimits& limits) {
  return limits.cancel != nullptr && limits.cancel->load(std::memory_order_relaxed);
}

GenerationOutput TextOutput(int step, int id) {
  GenerationOutput out;
  out.kind = OutputKind::kText;
  out.step = step;
  out.text_id = id;
  return out;
}

// Samples a frame; an end-of-audio code in codebook 0 turns the whole frame into end-of-audio.
GenerationOutput AudioOutput(GenerationBackend& backend, int step, const GenerationTokens& tokens) {
  GenerationOutput out;
  out.kind = OutputKind::kAudio;
  out.step = step;
  out.end_of_audio_code = tokens.end_of_audio;
  out.codes = backend.SampleAudioFrame();
  if (out.codes.empty()) throw std::logic_error("audio head returned an empty frame");
  if (out.codes[0] == tokens.end_of_audio) {
    std::fill(out.codes.begin(), out.codes.end(), tokens.end_of_audio);
  }
  return out;
}

}  // namespace

namespace {

// The part of a draft worth verifying: at most `room` tokens, ending at its first stop token or
// switch to audio (nothing after those is text).
std::vector<int> UsableDraft(const std::vector<int>& draft, int room,
                             const GenerationTokens& tokens) {
  std::vector<int> usable;
  for (int id : draft) {
    if (static_cast<int>(usable.size()) >= room) break;
    usable.push_back(id);
    if (id == tokens.im_end || id == tokens.audio_start) break;
  }
  return usable;
}

}  // namespace

StopReason GenerateSequential(GenerationBackend& backend, const GenerationLimits& limits,
                              const GenerationTokens& tokens, const GenerationSink& emit,
                              const std::vector<int>& text_draft) {
  bool audio = false;
  int step = 0;
  bool advanced = false;  // the backend already holds the hidden state of the next step
  int max_steps = limits.max_new_tokens;
  if (limits.max_new_tokens_after_draft > 0) {
    max_steps = std::min(max_steps, limits.max_new_tokens_after_draft);
  }
  const std::vector<int> draft = UsableDraft(text_draft, limits.max_new_tokens, tokens);
  if (!draft.empty() && !Cancelled(limits)) {
    const int kept = backend.AdvanceWithDraft(draft);
    if (limits.max_new_tokens_after_draft > 0) {
      max_steps = std::min(limits.max_new_tokens, kept + limits.max_new_tokens_after_draft);
    }
    advanced = true;
    for (; step < kept; ++step) {
      const int id = draft[static_cast<size_t>(step)];
      emit(TextOutput(step, id));
      if (id == tokens.im_end) return StopReason::kEndOfTurn;
      if (id == tokens.audio_start) audio = true;
    }
  }
  for (; step < max_steps; ++step) {
    if (Cancelled(limits)) return StopReason::kCancelled;
    if (!advanced) backend.Advance();
    advanced = false;
    if (!audio) {
      const int id = backend.SampleText();
      emit(TextOutput(step, id));  // sequential mode yields the stop token too
      if (id == tokens.audio_start) audio = true;
      if (id == tokens.im_end) return StopReason::kEndOfTurn;
      backend.FeedText(id);
    } else {
      GenerationOutput frame = AudioOutput(backend, step, tokens);
      if (frame.is_end_of_audio()) audio = false;
      emit(frame);
      backend.FeedAudioFrame(frame.codes);
    }
  }
  return StopReason::kMaxTokens;
}

StopReason GenerateInterleaved(GenerationBackend& backend, int n_text, int n_audio,
                               const GenerationLimits& limits, const GenerationTokens& tokens,
                               const GenerationSink& emit) {
  if (n_text <= 0 || n_audio <= 0) {
    throw std::invalid_argument("interleaved generation needs positive n_text and n_audio");
  }
  bool audio = false;
  bool text_done = false;
  int left = n_text;
  for (int step = 0; step < limits.max_new_tokens; ++step) {
    if (Cancelled(limits)) return StopReason::kCancelled;
    --left;  // the reference counts down before the backbone call
    backend.Advance();
    if (!audio) {
      const int id = backend.SampleText();
      if (id == tokens.im_end) return StopReason::kEndOfTurn;  // not yielded in this mode
      emit(TextOutput(step, id));
      if (id == tokens.text_end) text_done = true;
      if (left == 0 || text_done) {
        audio = true;
        left = n_audio;
      }
      backend.FeedText(id);
    } else {
      GenerationOutput frame = AudioOutput(backend, step, tokens);
      if (left == 0 && !text_done) {
        audio = false;
        left = n_text;
      }
      if (frame.is_end_of_audio()) audio = false;  // `left` stays as it was
      emit(frame);
      backend.FeedAudioFrame(frame.codes);
    }
  }
  return StopReason::kMaxTokens;
}

}  // namespace eddy
