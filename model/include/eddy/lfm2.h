// The LFM2 backbone of LFM2-Audio (spec_backbone.md §1, §8): gated short-conv and GQA attention
// blocks over input embeddings, with an explicit per-sequence hybrid cache. The weights (prefix
// `lfm.`) are shared and immutable after load; every per-sequence value lives in Lfm2Cache, so one
// Lfm2Model serves any number of independent streams (all methods are const).
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "eddy/config.h"

namespace eddy {

class SafeTensors;

struct Lfm2Options {
  // The official loader casts the rotary inv_freq buffer to bf16 along with the model
  // (spec_backbone.md §1.8). The golden vectors were made in float32 without it, so it is off.
  bool bf16_rope_inv_freq = false;
  // "native" (view the checkpoint's f32/bf16 in place), "f32", "bf16", "q8" or "q4".
  std::string weight_format = "native";
  // Attention keys and values kept as f16 (half the memory and bandwidth of long contexts) or
  // float32. "auto": f16 with the reduced-precision weight formats (bf16, q8, q4), float32 with
  // float32 weights so that the exact path stays exact.
  std::string kv_cache = "auto";  // auto | f16 | f32
  // 0: full causal attention. w > 0: query position i sees key j iff 0 <= i - j < w (the LFM2.5
  // audio detokenizer's mask, spec_audio.md §6.2), and the cache keeps only the last w - 1
  // positions' keys and values.
  int sliding_window = 0;
};

// Per-sequence state: for every attention layer the post-norm, post-RoPE keys and values of all
// positions seen so far; for every conv layer the last L-1 conv inputs (B*X); the next position.
// Copyable: a snapshot of a shared prompt prefix is just a copy.
class Lfm2Cache {
 public:
  Lfm2Cache() = default;
  int position() const { return position_; }
  void Reset();
  Lfm2Cache Snapshot() const { return *this; }
  // Keeps this cache's cancel flag.
  void Restore(const Lfm2Cache& snapshot) {
    const std::atomic<bool>* cancel = cancel_;
    *this = snapshot;
    cancel_ = cancel;
  }
  // While `flag` is set, a Forward on this cache stops between layers by throwing Cancelled (the
  // cache is then unusable until Reset or Restore). Null: never stops. Not owned.
  void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }
  // While set, every Forward also keeps the conv inputs of its chunk, so that Lfm2Model::Rewind
  // can drop the chunk's later positions again (draft verification). Off by default: a long
  // prefill chunk would otherwise hold a copy of its conv inputs.
  void set_rewindable(bool on);
  bool rewindable() const { return rewindable_; }

 private:
  friend class Lfm2Model;
  int position_ = 0;
  int kv_width_ = 0;                           // kv_heads * head_dim
  bool kv_f16_ = false;                        // keys/values in keys16_/values16_ instead
  std::vector<std::vector<float>> keys_;       // per layer [position, kv_width] (empty for conv)
  std::vector<std::vector<float>> values_;     // idem
  std::vector<std::vector<uint16_t>> keys16_;  // the same as f16 bits
  std::vector<std::vector<uint16_t>> values16_;
  std::vector<std::vector<float>> conv_tail_;  // per layer [L-1, hidden] (empty for attention)
  int kv_first_ = 0;  // position of the first cached key/value row (> 0 once a window drops rows)
  bool rewindable_ = false;
  int chunk_first_ = -1;                        // first position of the last rewindable chunk
  std::vector<std::vector<float>> conv_chunk_;  // per conv layer [L-1 + chunk, hidden] inputs
  const std::atomic<bool>* cancel_ = nullptr;
};

class Lfm2Model {
 public:
  // Loads the `lfm.*` tensors of `st` (kept open by the caller for as long as the model lives
  // when weights are viewed in place). Throws ModelError naming any missing or misshaped tensor.
  static std::shared_ptr<const Lfm2Model> Load(std::shared_ptr<const SafeTensors> st,
                                               const LfmConfig& config,
                                               const Lfm2Options& options = {});
  ~Lfm2Model();

  const LfmConfig& config() const { return config_; }
  int hidden_size() const { return config_.hidden_size; }
  int vocab_size() const { return config_.vocab_size; }

  Lfm2Cache NewCache() const;
  // Bytes of the weights as held in memory (quantized, converted or viewed in the mapping).
  size_t weight_bytes() const;

  // Runs n new positions (prefill chunk or one decode step, same code path) through all layers,
  // appending to `cache`. embeddings and out are row-major [n, hidden]; out is the final
  // (embedding_norm) hidden state. When layer_outputs is given it receives the output of every
  // decoder layer before the final norm ([layers][n * hidden]).
  void Forward(const float* embeddings, int n, Lfm2Cache& cache, float* out,
               std::vector<std::vector<float>>* layer_outputs = nullptr) const;
  std::vector<float> Forward(const std::vector<float>& embeddings, Lfm2Cache& cache) const;

  // Drops the positions from `position` on again. The cache must be rewindable and `position`
  // must lie within the last Forward chunk (>= its first position). Throws ModelError otherwise,
  // and with a sliding window (its dropped keys cannot come back).
  void Rewind(Lfm2Cache& cache, int position) const;

  // True when every row of a Forward chunk and of TextLogits comes out bit for bit as if it had
  // been computed on its own (the block-quantized formats: integer dot products, per-row
  // activation scales). Greedy draft verification is then exactly greedy decoding; float32 and
  // bf16 products round differently with the batch size (Eigen's GEMM blocks).
  bool rows_independent_of_batch() const;

  // logits[vocab] = hidden[hidden] . embed_tokens^T (tied text head).
  void TextLogits(const float* hidden, float* logits) const;
  // The same for n rows: logits[n, vocab] from hidden[n, hidden], one pass over the weights.
  void TextLogits(const float* hidden, int n, float* logits) const;
  std::vector<float> TextLogits(const float* hidden) const;

  // Input assembly: text rows from embed_tokens, audio-out frames as the sum over codebooks of
  // audio_embedding rows at code + 2049*c. Both throw ModelError on out-of-range ids.
  void EmbedText(const std::vector<int>& ids, float* out) const;
  std::vector<float> EmbedText(const std::vector<int>& ids) const;

 private:
  struct Weights;
  explicit Lfm2Model(const LfmConfig& config);
  void AttentionBlock(int layer, const float* x, int n, Lfm2Cache& cache, float* out) const;
  void ConvBlock(int layer, const float* x, int n, Lfm2Cache& cache, float* out) const;
  void FeedForward(int layer, const float* x, int n, float* out) const;
  void DropKeysOutsideWindow(Lfm2Cache& cache) const;

  LfmConfig config_;
  std::shared_ptr<const SafeTensors> st_;
  std::unique_ptr<const Weights> w_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  int sliding_window_ = 0;       // Lfm2Options::sliding_window
  bool kv_f16_ = false;
};

// How closely one backbone (e.g. quantized) follows another (e.g. float32) over a greedy decode:
// both prefill the same rows, then `reference` picks every next token and both are fed it.
struct LogitAgreement {
  int steps = 0;
  double rms_relative_error = 0.0;  // max over steps of ||l - l_ref|| / ||l_ref||
  double max_relative_error = 0.0;  // max over steps of max|l - l_ref| / max|l_ref|
  double top1 = 0.0;                // fraction of steps whose argmax equals the reference's
  // Fraction of steps whose argmax is among the reference's 5 highest logits: robust to the
  // near-ties of flat (random-weight) logits, where top-1 flips on the smallest error, while a
  // model whose logits do not follow the reference's lands there about 5 / vocab of the time.
  double top5 = 0.0;
};
LogitAgreement CompareGreedyDecode(const Lfm2Model& reference, const Lfm2Model& candidate,
                                   const std::vector<float>& prompt_rows, int steps);

// Sums `codes.size()` rows of the audio embedding table audio_embedding.embedding.weight
// ([codebooks * 2049, hidden]) at code + 2049*c: the backbone input for one audio-out frame.
class AudioEmbedding {
 public:
  static std::shared_ptr<const AudioEmbedding> Load(std::shared_ptr<const SafeTensors> st,
                                                    const AudioModelConfig& config);
  ~AudioEmbedding();
  void EmbedFrame(const int* codes, float* out) const;  // codes[codebooks] -> out[hidden]
  size_t weight_bytes() const;
  int codebooks() const { return codebooks_; }
  int hidden_size() const { return hidden_; }

 private:
  struct Table;
  AudioEmbedding() = default;
  std::shared_ptr<const SafeTensors> st_;
  std::unique_ptr<const Table> table_;
  int codebooks_ = 0, hidden_ = 0;
};

}  // namespace eddy
