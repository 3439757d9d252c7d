// Drives the real model through the generation state machines: one Engine per stream owns the
// backbone cache, the audio head's scratch state and the sampler; the model is shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "eddy/audio_model.h"
#include "eddy/generation.h"
#include "eddy/sampling.h"

namespace eddy {

// Everything the reference computes per step, kept only when asked for (tests, debugging).
struct StepTrace {
  std::vector<std::vector<float>> last_hidden;                // per backbone call [hidden]
  std::vector<std::vector<float>> text_logits;                // per text step [vocab]
  std::vector<std::vector<std::vector<float>>> audio_logits;  // per frame, per codebook [2049]
};

class ModelBackend : public GenerationBackend {
 public:
  ModelBackend(std::shared_ptr<const AudioModel> model, GenerationSampling sampling,
               uint64_t seed = 0);

  // Drafts are verified only when the result is exactly greedy decoding's: greedy text sampling,
  // no trace, and a backbone whose rows do not depend on the batch (quantized weights). Set this
  // to verify with the other formats too, accepting last-bit differences against step-by-step
  // decoding (fine for partial captions, not for anything compared with the reference).
  void set_allow_inexact_drafts(bool allow) { allow_inexact_drafts_ = allow; }
  // Draft tokens kept by AdvanceWithDraft calls so far.
  int64_t draft_tokens_kept() const { return draft_tokens_kept_; }

  // Starts a generation: the prompt's rows are the pending input of the first Advance(). When
  // `prefix` is given, the cache starts from it (a snapshot of an already computed prompt
  // prefix) and only the positions after it are computed.
  void Begin(const PromptInputs& prompt, const Lfm2Cache* prefix = nullptr);
  void set_trace(StepTrace* trace) { trace_ = trace; }
  // While `flag` is set, Begin's encoder and every backbone pass stop early by throwing Cancelled
  // (the generation is then over). Null: never. Not owned.
  void set_cancel_flag(const std::atomic<bool>* flag);
  const Lfm2Cache& cache() const { return cache_; }

  void Advance() override;
  int SampleText() override;
  std::vector<int> SampleAudioFrame() override;
  void FeedText(int id) override;
  void FeedAudioFrame(const std::vector<int>& codes) override;
  int AdvanceWithDraft(const std::vector<int>& draft) override;

 private:
  bool CanVerifyDrafts() const;

  std::shared_ptr<const AudioModel> model_;
  GenerationSampling sampling_;
  Sampler sampler_;
  Lfm2Cache cache_;
  AudioHeadState head_state_;
  std::vector<float> pending_;  // [n, hidden]
  std::vector<float> hidden_;   // backbone output of the last Advance
  std::vector<float> last_;     // its last row
  std::vector<float> logits_;
  bool logits_are_last_ = false;  // logits_ already belong to last_ (left by AdvanceWithDraft)
  StepTrace* trace_ = nullptr;
  const std::atomic<bool>* cancel_ = nullptr;
  bool allow_inexact_drafts_ = false;
  int64_t draft_tokens_kept_ = 0;
};

}  // namespace eddy
