// Typed view of an LFM2-Audio checkpoint's config.json (spec_backbone.md §1.1, §2.1, §5.1;
// spec_audio.md §2.1, §3.1). Load() parses; Validate() checks every field and names the offender.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eddy/mel_config.h"

namespace eddy {

enum class LayerKind { kConv, kAttention };

struct LfmConfig {
  int vocab_size = 65536;
  int hidden_size = 2048;
  int intermediate_size = 12288;  // declared; see ff_dim()
  int num_hidden_layers = 16;
  int num_attention_heads = 32;
  int num_key_value_heads = 8;
  int max_position_embeddings = 128000;
  double norm_eps = 1e-5;
  bool conv_bias = false;
  int conv_L_cache = 3;
  bool block_auto_adjust_ff_dim = true;
  std::optional<double> block_ffn_dim_multiplier = 1.0;
  int block_multiple_of = 256;
  std::vector<LayerKind> layer_types;
  double rope_theta = 1e6;
  int bos_token_id = 1;
  int eos_token_id = 7;
  int pad_token_id = 0;
  bool tie_word_embeddings = true;

  int head_dim() const { return hidden_size / num_attention_heads; }
  int ff_dim() const;  // effective SwiGLU width (§1.3)
  int num_attention_layers() const;
  void Validate() const;
};

// A standalone transformers Lfm2Config file, as LFM2.5-Audio's audio_detokenizer/config.json
// (spec_audio.md §6.1): the fields of the `lfm` object, where layer_types may also name
// "sliding_attention" (an attention layer whose window is `sliding_window`).
struct StandaloneLfmConfig {
  std::vector<std::string> architectures;
  LfmConfig lfm;
  std::optional<int> sliding_window;   // absent from the file: nullopt
  bool has_sliding_attention = false;  // some layer_types entry said "sliding_attention"

  // Throws ModelError naming the file and field on anything unexpected.
  static StandaloneLfmConfig Parse(const std::string& json_text, const std::string& origin);
  static StandaloneLfmConfig Load(const std::filesystem::path& config_json);
};

struct EncoderConfig {
  int feat_in = 128;
  int feat_out = -1;
  int n_layers = 17;
  int d_model = 512;
  std::string subsampling = "dw_striding";
  int subsampling_factor = 8;
  int subsampling_conv_channels = 256;
  bool causal_downsampling = false;
  int ff_expansion_factor = 4;
  std::string self_attention_model = "rel_pos";
  int n_heads = 8;
  std::vector<int> att_context_size = {-1, -1};
  bool xscaling = false;
  bool untie_biases = true;
  int pos_emb_max_len = 5000;
  int conv_kernel_size = 9;
  std::string conv_norm_type = "batch_norm";

  int d_ff() const { return d_model * ff_expansion_factor; }
  void Validate() const;
};

struct DepthformerConfig {
  int layers = 6;
  int dim = 1024;
  bool tie = true;
  // Hard-coded in the reference (spec_backbone.md §2.5), not read from the file.
  static constexpr int kHeads = 32;
  static constexpr int kKvHeads = 8;
  static constexpr double kRopeTheta = 1e6;
  static constexpr double kNormEps = 1e-5;
  int head_dim() const { return dim / kHeads; }
  int ff_dim() const;  // GLU width: int(2*4*dim/3) rounded up to 256
  void Validate() const;
};

struct AudioModelConfig {
  std::vector<std::string> architectures;
  int codebooks = 8;
  bool tie_audio_embeddings = false;
  double semantic_codebook_factor = 100;
  std::string codebook_weight = "log";
  int interleaved_n_text = 6;
  int interleaved_n_audio = 12;
  MelConfig preprocessor;
  EncoderConfig encoder;
  LfmConfig lfm;
  DepthformerConfig depthformer;

  static constexpr int kAudioVocab = 2049;  // 2048 codes + end-of-audio
  static constexpr int kEndOfAudio = 2048;

  // Throws ModelError naming the file and field on anything unexpected.
  static AudioModelConfig Load(const std::filesystem::path& config_json);
  static AudioModelConfig Parse(const std::string& json_text, const std::string& origin);
  void Validate() const;
};

}  // namespace eddy
