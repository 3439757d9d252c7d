// The whole LFM2-Audio model of one checkpoint directory: shared, immutable after load, used by
// any number of streams. It turns a prompt (text ids, audio-in clips, audio-out frames, one
// modality flag per position) into backbone input rows exactly as the reference's _prefill does.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eddy/audio_head.h"
#include "eddy/config.h"
#include "eddy/conformer.h"
#include "eddy/lfm2.h"
#include "eddy/safetensors.h"

namespace eddy {

enum class Modality : int { kText = 1, kAudioIn = 2, kAudioOut = 3 };

// One audio-in clip's log-mel features, feature-major [mel_features, frames].
struct MelClip {
  std::vector<float> features;
  int64_t frames = 0;
};

// What the reference's _prefill consumes.
struct PromptInputs {
  std::vector<int32_t> text_ids;
  std::vector<MelClip> audio_in;
  std::vector<int> audio_out;  // frame-major, codebooks codes per frame
  std::vector<Modality> modality;
};

struct AudioModelOptions {
  std::string weight_format = "native";  // native | f32 | bf16 | q8 | q4 (backbone and head)
  bool bf16_rope_inv_freq = false;       // the official bf16 loader's RoPE rounding (spec §1.8)
};

// Threads of the shared compute pool used by every heavy op (0 = one per physical core).
void SetComputeThreads(int threads);
int ComputeThreads();
// The quantized-product kernel this CPU runs ("avx512-vnni", "avx2" or "portable").
const char* QuantKernelName();
// Bytes per second a plain parallel read of a buffer of `bytes` reaches on the compute threads
// (best of a few passes): the memory bandwidth that bounds decoding, which reads every weight once
// per step.
double MeasureReadBandwidth(size_t bytes);

class AudioModel {
 public:
  // Loads config.json and model.safetensors from `dir`. Throws ModelError.
  static std::shared_ptr<const AudioModel> Load(const std::filesystem::path& dir,
                                                const AudioModelOptions& options = {});

  const AudioModelConfig& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }
  const Lfm2Model& backbone() const { return *backbone_; }
  const AudioHead& audio_head() const { return *head_; }
  const AudioEmbedding& audio_embedding() const { return *audio_embedding_; }
  const ConformerEncoder& encoder() const { return *encoder_; }
  int hidden_size() const { return config_.lfm.hidden_size; }
  // Bytes of all weights as held in memory, by part.
  size_t weight_bytes() const;

  // Backbone input rows [positions, hidden] for a prompt. Throws std::invalid_argument when the
  // flags disagree with the contents (the reference's asserts), naming the counts, and Cancelled
  // when `cancel` is set while the encoder runs.
  std::vector<float> AssembleEmbeddings(const PromptInputs& prompt,
                                        const std::atomic<bool>* cancel = nullptr) const;

 private:
  AudioModel() = default;
  std::filesystem::path dir_;
  AudioModelConfig config_;
  std::shared_ptr<const SafeTensors> weights_;
  std::shared_ptr<const Lfm2Model> backbone_;
  std::shared_ptr<const AudioHead> head_;
  std::shared_ptr<const AudioEmbedding> audio_embedding_;
  std::unique_ptr<const ConformerEncoder> encoder_;
};

}  // namespace eddy
