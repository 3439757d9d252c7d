// The real transcriber behind live captions: each segment is transcribed with the reference's ASR
// prompt, greedily. The prompt prefix before the audio (BOS, system turn, user turn header) is the
// same for every segment, so its backbone cache is computed once and restored per call.
#pragma once

#include <memory>
#include <string>

#include "eddy/audio_model.h"
#include "eddy/caption_stream.h"
#include "eddy/mel.h"
#include "eddy/tokenizer.h"

namespace eddy {

struct ModelTranscriberOptions {
  std::string system_prompt = "Perform ASR.";
  int max_tokens = 128;  // per segment; random-weight models never stop by themselves
};

class ModelTranscriber : public SegmentTranscriber {
 public:
  ModelTranscriber(std::shared_ptr<const AudioModel> model, const Tokenizer& tokenizer,
                   ModelTranscriberOptions options = {});
  std::string Transcribe(std::span<const float> samples_16k, bool is_final) override;
  int64_t cached_prefix_positions() const { return prefix_cache_.position(); }

 private:
  std::shared_ptr<const AudioModel> model_;
  const Tokenizer& tokenizer_;
  ModelTranscriberOptions options_;
  MelFrontend mel_;
  Lfm2Cache prefix_cache_;
};

}  // namespace eddy
