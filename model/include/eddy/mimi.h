// Mimi codec, decoder side (spec_audio.md §5): 8 codes per 12.5 Hz frame -> 24 kHz samples.
// MimiDecoder holds the weights (immutable after load, shared by any number of streams);
// MimiDecoderStream holds one stream's state and decodes frame by frame.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace eddy {

// The configuration the reference hard-codes in moshi/models/loaders.py (spec_audio.md §5.1).
// A model directory may override it with mimi_config.json (the golden set does); every value the
// decoder does not implement is rejected by Validate() naming the field.
struct MimiConfig {
  // SEANet (seanet_kwargs)
  int channels = 1;
  int dimension = 512;
  bool seanet_causal = true;
  int n_filters = 64;
  int n_residual_layers = 1;
  std::string activation = "ELU";
  double activation_alpha = 1.0;
  int compress = 2;
  int dilation_base = 2;
  int disable_norm_outer_blocks = 0;
  int kernel_size = 7;
  int residual_kernel_size = 3;
  int last_kernel_size = 3;
  std::string norm = "none";
  std::string pad_mode = "constant";
  std::vector<int> ratios = {8, 6, 5, 4};
  bool true_skip = true;
  // Quantizer (quantizer_kwargs)
  int quantizer_dimension = 256;
  int n_q = 32;
  int bins = 2048;
  int quantizer_input_dimension = 512;
  int quantizer_output_dimension = 512;
  // Transformers (transformer_kwargs)
  int d_model = 512;
  int num_heads = 8;
  int num_layers = 8;
  bool transformer_causal = true;
  double layer_scale = 0.01;
  int context = 250;
  bool conv_layout = true;
  double max_period = 10000.0;
  std::string gating = "none";
  std::string transformer_norm = "layer_norm";
  std::string positional_embedding = "rope";
  int dim_feedforward = 2048;
  int transformer_input_dimension = 512;
  std::vector<int> transformer_output_dimensions = {512};
  // Model
  double sample_rate = 24000.0;
  double frame_rate = 12.5;
  int num_codebooks_used = 8;

  int hop_length() const;         // product of the SEANet ratios (samples per latent step)
  int upsample_stride() const;    // latent steps per code frame (2 for the real Mimi)
  int samples_per_frame() const;  // sample_rate / frame_rate
  int head_dim() const { return d_model / num_heads; }

  // Throws std::invalid_argument naming the field.
  void Validate() const;
  // Parses the golden set's mimi_config.json layout (seanet_kwargs, quantizer_kwargs,
  // transformer_kwargs, sample_rate, frame_rate, num_codebooks_used). Unknown keys are rejected.
  static MimiConfig Parse(const std::string& json_text, const std::string& origin);
  static MimiConfig Load(const std::filesystem::path& path);
  // dir/mimi_config.json when present, else the built-in real configuration. Validated.
  static MimiConfig ForModelDir(const std::filesystem::path& dir);
};

// Name of the Mimi weights in a model directory.
inline constexpr const char* kMimiWeightsFile = "tokenizer-e351c8d8-checkpoint125.safetensors";

// Intermediate results of a batch decode, [channels, time] row-major like the reference's
// [B=1, C, T] tensors; named after the checkpoint's modules.
struct MimiIntermediates {
  std::vector<float> quantizer_latent;         // [dimension, T]
  std::vector<float> upsampled_latent;         // [dimension, T * upsample_stride]
  std::vector<float> decoder_transformer_out;  // [dimension, T * upsample_stride]
};

// kF32: the reference's float32 arithmetic (exact path, matches the golden vectors).
// kBF16Streamed: the decoder transformer and the first conv and transposed conv (the weights a
// streaming frame multiplies by only a couple of rows, ~90% of the bytes read per frame) rounded
// to bf16, halving the memory traffic that bounds a frame's time. Not bit-faithful to the
// reference (waveform differences of order 1e-3); opt-in for speed.
// kQ8Streamed: the same, with the decoder transformer's matrices block-quantized to int8 instead.
enum class MimiWeightFormat { kF32, kBF16Streamed, kQ8Streamed };
// The Mimi format that goes with the language model's weight format: exact for native/f32,
// bf16-streamed for bf16, q8-streamed for q8 and q4.
MimiWeightFormat MimiFormatFor(const std::string& weight_format);

class MimiDecoder {
 public:
  struct Weights;  // defined in model/src

  // Reads the decoder side of a Mimi safetensors file; every tensor shape is checked against
  // `config` (validated first). Throws ModelError / std::invalid_argument.
  static std::shared_ptr<const MimiDecoder> Load(const std::filesystem::path& safetensors_path,
                                                 const MimiConfig& config,
                                                 MimiWeightFormat format = MimiWeightFormat::kF32);
  // MimiConfig::ForModelDir(dir) + dir/kMimiWeightsFile.
  static std::shared_ptr<const MimiDecoder> LoadFromModelDir(
      const std::filesystem::path& dir, MimiWeightFormat format = MimiWeightFormat::kF32);

  ~MimiDecoder();
  const MimiConfig& config() const;
  const Weights& weights() const { return *weights_; }

  // codes: [num_codebooks_used, num_frames] row-major (codebook-major, like codes.npy).
  // Returns num_frames * samples_per_frame samples. Codes outside [0, bins) throw
  // std::invalid_argument.
  std::vector<float> Decode(const std::vector<int>& codes, int num_frames,
                            MimiIntermediates* intermediates = nullptr) const;

 private:
  MimiDecoder();
  std::unique_ptr<Weights> weights_;
};

// One stream's decoder state (spec_audio.md §5.5): upsampler and transposed-conv tails, causal
// conv left context, ring KV caches and the position counter.
class MimiDecoderStream {
 public:
  // How far back the first latent step of a frame can attend. The reference streams through a
  // ring KV cache of capacity `context` and writes a frame's keys before attending, so once the
  // window is full the first of a frame's latent steps sees context-1 keys where the batch decode
  // lets it see `context`. kReference reproduces that (Python `mimi.streaming(1)` output);
  // kBatchEquivalent keeps one more slot so the stream equals MimiDecoder::Decode exactly.
  enum class Window { kReference, kBatchEquivalent };

  explicit MimiDecoderStream(std::shared_ptr<const MimiDecoder> decoder,
                             Window window = Window::kReference);
  ~MimiDecoderStream();
  MimiDecoderStream(MimiDecoderStream&&) noexcept;
  MimiDecoderStream& operator=(MimiDecoderStream&&) noexcept;

  int samples_per_frame() const;
  int num_codebooks() const;
  int64_t frames_decoded() const;

  // codes: num_codebooks() values (codebook 0 first). Writes samples_per_frame() samples.
  // Throws std::invalid_argument for a code outside [0, bins), leaving the state untouched.
  void Step(const int* codes, float* out);
  std::vector<float> Step(const std::vector<int>& codes);
  // Back to the state of a fresh stream (start of an assistant turn).
  void Reset();

  struct State;  // defined in model/src

 private:
  std::shared_ptr<const MimiDecoder> decoder_;
  std::unique_ptr<State> state_;
};

}  // namespace eddy
