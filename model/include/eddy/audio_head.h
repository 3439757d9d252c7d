// The audio-out head of LFM2-Audio (spec_backbone.md §2.4-2.5): depth_linear, the depthformer run
// over one frame's codebooks with a fresh cache, per-codebook norm + logits, previous-code
// feedback and the end-of-audio rule. Weights shared and immutable; per-frame scratch lives in
// AudioHeadState owned by the caller.
#pragma once

#include <memory>
#include <vector>

#include "eddy/config.h"
#include "eddy/sampling.h"

namespace eddy {

class SafeTensors;
class AudioHead;

// Scratch for one frame (KV cache of at most `codebooks` positions and activations). Reused
// across frames so that the per-frame hot path does not allocate.
class AudioHeadState {
 public:
  AudioHeadState() = default;

 private:
  friend class AudioHead;
  std::vector<std::vector<float>> keys, values;  // per layer [codebooks, kv_width]
  std::vector<float> depth_in, x, normed, delta, qkv, ctx, gate, up, scores, prev, logits;
};

struct AudioFrame {
  std::vector<int> codes;                  // [codebooks]; all 2048 when end of audio
  std::vector<std::vector<float>> logits;  // per codebook [2049] (only when asked for)
  bool end_of_audio = false;
};

class AudioHead {
 public:
  // Loads depth_linear.*, depthformer.layers.*, depth_embeddings.*. Throws ModelError naming any
  // missing or misshaped tensor.
  static std::shared_ptr<const AudioHead> Load(std::shared_ptr<const SafeTensors> st,
                                               const AudioModelConfig& config,
                                               const std::string& weight_format = "native");
  ~AudioHead();

  AudioHeadState NewState() const;
  int codebooks() const { return codebooks_; }
  int dim() const { return dim_; }
  size_t weight_bytes() const;

  // hidden[backbone hidden] -> out[codebooks * dim]: depth_linear(hidden), one row per codebook.
  void DepthLinear(const float* hidden, float* out) const;

  // Samples one frame from the backbone's final hidden state. `keep_logits` fills frame.logits.
  AudioFrame SampleFrame(const float* hidden, const SamplingParams& params, Sampler& sampler,
                         AudioHeadState& state, bool keep_logits = false) const;

 private:
  struct Weights;
  AudioHead() = default;
  // One depthformer position `pos` (0-based within the frame); x is [dim], updated in place.
  void DepthformerStep(float* x, int pos, AudioHeadState& state) const;

  std::shared_ptr<const SafeTensors> st_;
  std::unique_ptr<const Weights> w_;
  int codebooks_ = 0, dim_ = 0, hidden_ = 0;
  std::vector<float> inv_freq_;
};

}  // namespace eddy
