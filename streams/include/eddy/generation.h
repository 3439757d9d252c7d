// The reference's generation state machines (spec_backbone.md §3.3 sequential, §3.4 interleaved),
// written against a small backend interface so that the exact step order can be tested on its own
// and driven by the real model.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

namespace eddy {

// Token ids and codes the reference generators hard-code.
struct GenerationTokens {
  int im_end = 7;         // <|im_end|>: stop
  int audio_start = 128;  // <|audio_start|>: sequential mode switches to audio
  int text_end = 130;     // <|text_end|>: interleaved mode, text finished
  int end_of_audio = 2048;
};

// One step of the backbone plus the two heads. Advance() runs the backbone over whatever input is
// pending (the whole prompt on the first call, one position afterwards); the Sample* calls read
// the hidden state it left; Feed* sets the input of the next Advance().
class GenerationBackend {
 public:
  virtual ~GenerationBackend() = default;
  virtual void Advance() = 0;
  virtual int SampleText() = 0;
  virtual std::vector<int> SampleAudioFrame() = 0;  // one code per codebook
  virtual void FeedText(int id) = 0;
  virtual void FeedAudioFrame(const std::vector<int>& codes) = 0;

  // Draft verification (greedy decoding only): Advance() over the pending input followed by the
  // draft's text tokens in one pass, keeping the longest draft prefix that greedy decoding would
  // itself have produced. Returns how many draft tokens were kept; the backend is then in the
  // state of an Advance() right after the last kept token was fed (its SampleText() gives the
  // token that follows). A backend that cannot verify exactly just advances and keeps none.
  virtual int AdvanceWithDraft(const std::vector<int>& draft) {
    (void)draft;
    Advance();
    return 0;
  }
};

enum class OutputKind { kText, kAudio };

struct GenerationOutput {
  OutputKind kind = OutputKind::kText;
  int step = 0;            // backbone call that produced it (0 = prefill)
  int text_id = -1;        // kText
  std::vector<int> codes;  // kAudio; all end_of_audio for the end-of-audio frame
  bool is_end_of_audio() const;
  int end_of_audio_code = 2048;
};

struct GenerationLimits {
  int max_new_tokens = 512;                   // text tokens and audio frames both count
  int max_new_tokens_after_draft = 0;         // > 0: also stop this many steps past a kept draft
  const std::atomic<bool>* cancel = nullptr;  // checked before every backbone step
};

enum class StopReason { kEndOfTurn, kMaxTokens, kCancelled };

// Returns why generation stopped; every output is handed to `emit` the moment it exists.
using GenerationSink = std::function<void(const GenerationOutput&)>;

// `text_draft`: text tokens this generation is expected to start with (say, the previous
// hypothesis of a re-decoded segment); they are verified in one backbone pass instead of one step
// each. The outputs are those of the undrafted run whenever the backend verifies exactly.
StopReason GenerateSequential(GenerationBackend& backend, const GenerationLimits& limits,
                              const GenerationTokens& tokens, const GenerationSink& emit,
                              const std::vector<int>& text_draft = {});

StopReason GenerateInterleaved(GenerationBackend& backend, int n_text, int n_audio,
                               const GenerationLimits& limits, const GenerationTokens& tokens,
                               const GenerationSink& emit);

}  // namespace eddy
