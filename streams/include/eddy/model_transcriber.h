// The real transcriber behind live captions: each segment is transcribed with the reference's ASR
// prompt, greedily. The prompt prefix before the audio (BOS, system turn, user turn header) is the
// same for every segment, so its backbone cache is computed once and restored per call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eddy/audio_model.h"
#include "eddy/caption_stream.h"
#include "eddy/generation.h"
#include "eddy/mel.h"
#include "eddy/tokenizer.h"

namespace eddy {

struct ModelTranscriberOptions {
  std::string system_prompt = "Perform ASR.";
  int max_tokens = 128;  // per segment; random-weight models never stop by themselves
  // Re-transcriptions of one segment start with the previous result as a draft, verified in one
  // backbone pass (GenerateSequential's text_draft). With quantized weights the verification is
  // exact, so finals stay equal to an undrafted transcription; with f32/bf16 weights only
  // partials use drafts.
  bool draft_previous_result = true;
  // A partial generates at most this many tokens beyond the draft tokens it kept (0 = no limit
  // but max_tokens): a second of new speech adds a few words, and a rambling model then cannot
  // make partials expensive. Finals always run to max_tokens or the end of the turn.
  int partial_new_tokens = 6;
};

class ModelTranscriber : public SegmentTranscriber {
 public:
  ModelTranscriber(std::shared_ptr<const AudioModel> model, const Tokenizer& tokenizer,
                   ModelTranscriberOptions options = {});
  // `cancel` is looked at between encoder layers, backbone layers and decode steps; a cancelled
  // call returns an empty string.
  std::string Transcribe(std::span<const float> samples_16k, bool is_final,
                         const std::atomic<bool>* cancel) override;
  void StartSegment() override { previous_ids_.clear(); }
  // Transcribes `seconds` of near-silence once, up to the first token, and forgets it: the
  // buffers a segment of that length needs are then allocated and touched, so that the first
  // real segments do not pay for page faults (about 12 us per 4 KiB page on some VMs, tens of
  // milliseconds per decode). Changes no counter and no draft. Run it on the thread that will
  // decode the finals.
  void WarmUp(double seconds);
  // Draft tokens kept by the verifications so far (a measure of how much decoding they saved).
  int64_t drafted_tokens_kept() const { return drafted_tokens_kept_; }
  int64_t transcriptions() const { return transcriptions_; }
  int64_t generated_tokens() const { return generated_tokens_; }
  int64_t cached_prefix_positions() const { return prefix_cache_.position(); }

 private:
  struct Decoded {
    std::vector<int32_t> ids;
    int64_t draft_tokens_kept = 0;
  };
  // Throws Cancelled when limits.cancel is set while it runs.
  Decoded Decode(std::span<const float> samples_16k, bool is_final, const GenerationLimits& limits,
                 const std::vector<int32_t>& draft);

  std::shared_ptr<const AudioModel> model_;
  const Tokenizer& tokenizer_;
  ModelTranscriberOptions options_;
  MelFrontend mel_;
  Lfm2Cache prefix_cache_;
  std::vector<int32_t> previous_ids_;  // generated tokens of the last call in this segment
  int64_t drafted_tokens_kept_ = 0;
  int64_t transcriptions_ = 0;
  int64_t generated_tokens_ = 0;
};

}  // namespace eddy
