#include "eddy/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eddy/model_error.h"
#include "json_object.h"

namespace eddy {

using nlohmann::json;

namespace {

[[noreturn]] void Bad(const std::string& field, const std::string& why) {
  throw std::invalid_argument(field + ": " + why);
}

// Reads obj[key] as T if present, naming "section.key" in the error when the type is wrong.
template <typename T>
void Read(const json& obj, const char* key, const std::string& section, T& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    Bad(section.empty() ? std::string(key) : section + "." + key,
        "has the wrong type (" + std::string(it->type_name()) + ")");
  }
}

template <typename T>
void ReadRequired(const json& obj, const char* key, const std::string& section, T& out) {
  if (!obj.contains(key) || obj[key].is_null()) {
    Bad(section.empty() ? std::string(key) : section + "." + key, "is missing");
  }
  Read(obj, key, section, out);
}

const json& Section(const json& root, const char* name) {
  auto it = root.find(name);
  if (it == root.end() || !it->is_object()) Bad(name, "section is missing or not an object");
  return *it;
}

void ParseLfm(const json& j, LfmConfig& c) {
  const std::string s = "lfm";
  Read(j, "vocab_size", s, c.vocab_size);
  Read(j, "block_dim", s, c.hidden_size);
  Read(j, "hidden_size", s, c.hidden_size);
  Read(j, "intermediate_size", s, c.intermediate_size);
  Read(j, "block_ff_dim", s, c.intermediate_size);  // preferred by the HF config when present
  ReadRequired(j, "num_hidden_layers", s, c.num_hidden_layers);
  ReadRequired(j, "num_attention_heads", s, c.num_attention_heads);
  ReadRequired(j, "num_key_value_heads", s, c.num_key_value_heads);
  Read(j, "max_position_embeddings", s, c.max_position_embeddings);
  Read(j, "block_norm_eps", s, c.norm_eps);
  Read(j, "norm_eps", s, c.norm_eps);
  Read(j, "conv_bias", s, c.conv_bias);
  Read(j, "conv_L_cache", s, c.conv_L_cache);
  Read(j, "block_auto_adjust_ff_dim", s, c.block_auto_adjust_ff_dim);
  if (j.contains("block_ffn_dim_multiplier")) {
    if (j["block_ffn_dim_multiplier"].is_null()) {
      c.block_ffn_dim_multiplier.reset();
    } else {
      double m = 1.0;
      Read(j, "block_ffn_dim_multiplier", s, m);
      c.block_ffn_dim_multiplier = m;
    }
  }
  Read(j, "block_multiple_of", s, c.block_multiple_of);
  Read(j, "rope_theta", s, c.rope_theta);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    Read(j["rope_parameters"], "rope_theta", s + ".rope_parameters", c.rope_theta);
  }
  Read(j, "bos_token_id", s, c.bos_token_id);
  Read(j, "eos_token_id", s, c.eos_token_id);
  Read(j, "pad_token_id", s, c.pad_token_id);
  Read(j, "tie_embedding", s, c.tie_word_embeddings);
  Read(j, "tie_word_embeddings", s, c.tie_word_embeddings);

  c.layer_types.clear();
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    std::vector<std::string> names;
    Read(j, "layer_types", s, names);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "conv") {
        c.layer_types.push_back(LayerKind::kConv);
      } else if (names[i] == "full_attention") {
        c.layer_types.push_back(LayerKind::kAttention);
      } else {
        Bad("lfm.layer_types[" + std::to_string(i) + "]",
            "unknown layer type '" + names[i] + "' (expected 'conv' or 'full_attention')");
      }
    }
  } else if (j.contains("full_attn_idxs") && !j["full_attn_idxs"].is_null()) {
    std::vector<int> idxs;
    Read(j, "full_attn_idxs", s, idxs);
    if (c.num_hidden_layers <= 0) Bad("lfm.num_hidden_layers", "must be positive");
    c.layer_types.assign(c.num_hidden_layers, LayerKind::kConv);
    for (int i : idxs) {
      if (i < 0 || i >= c.num_hidden_layers) {
        Bad("lfm.full_attn_idxs", "index " + std::to_string(i) + " is out of range");
      }
      c.layer_types[i] = LayerKind::kAttention;
    }
  } else {
    Bad("lfm.layer_types", "is missing (neither layer_types nor full_attn_idxs given)");
  }
}

void ParseEncoder(const json& j, EncoderConfig& c) {
  const std::string s = "encoder";
  ReadRequired(j, "feat_in", s, c.feat_in);
  Read(j, "feat_out", s, c.feat_out);
  ReadRequired(j, "n_layers", s, c.n_layers);
  ReadRequired(j, "d_model", s, c.d_model);
  Read(j, "subsampling", s, c.subsampling);
  Read(j, "subsampling_factor", s, c.subsampling_factor);
  Read(j, "subsampling_conv_channels", s, c.subsampling_conv_channels);
  Read(j, "causal_downsampling", s, c.causal_downsampling);
  Read(j, "ff_expansion_factor", s, c.ff_expansion_factor);
  Read(j, "self_attention_model", s, c.self_attention_model);
  ReadRequired(j, "n_heads", s, c.n_heads);
  Read(j, "att_context_size", s, c.att_context_size);
  Read(j, "xscaling", s, c.xscaling);
  Read(j, "untie_biases", s, c.untie_biases);
  Read(j, "pos_emb_max_len", s, c.pos_emb_max_len);
  Read(j, "conv_kernel_size", s, c.conv_kernel_size);
  Read(j, "conv_norm_type", s, c.conv_norm_type);
  // reduction is only supported when absent.
  if (j.contains("reduction") && !j["reduction"].is_null()) {
    Bad("encoder.reduction", "time reduction is not supported (expected null)");
  }
}

void ParsePreprocessor(const json& j, MelConfig& c) {
  const std::string s = "preprocessor";
  Read(j, "sample_rate", s, c.sample_rate);
  Read(j, "window_size", s, c.window_size);
  Read(j, "window_stride", s, c.window_stride);
  Read(j, "window", s, c.window);
  Read(j, "features", s, c.features);
  Read(j, "n_fft", s, c.n_fft);
  Read(j, "log", s, c.log);
  Read(j, "normalize", s, c.normalize);
  Read(j, "frame_splicing", s, c.frame_splicing);
  Read(j, "dither", s, c.dither);
  Read(j, "pad_to", s, c.pad_to);
  Read(j, "pad_value", s, c.pad_value);
}

void ParseDepthformer(const json& j, DepthformerConfig& c) {
  const std::string s = "depthformer";
  ReadRequired(j, "layers", s, c.layers);
  ReadRequired(j, "dim", s, c.dim);
  Read(j, "tie", s, c.tie);
}

int RoundUp(int x, int multiple) {
  return multiple * ((x + multiple - 1) / multiple);
}

}  // namespace

int LfmConfig::ff_dim() const {
  if (!block_auto_adjust_ff_dim) return intermediate_size;
  int ff = static_cast<int>(2.0 * intermediate_size / 3.0);
  if (block_ffn_dim_multiplier) {
    ff = static_cast<int>(*block_ffn_dim_multiplier * ff);
    ff = RoundUp(ff, block_multiple_of);
  }
  return ff;
}

int LfmConfig::num_attention_layers() const {
  int n = 0;
  for (auto k : layer_types) n += k == LayerKind::kAttention;
  return n;
}

void LfmConfig::Validate() const {
  if (vocab_size <= 0) Bad("lfm.vocab_size", "must be positive");
  if (hidden_size <= 0) Bad("lfm.hidden_size", "must be positive");
  if (num_hidden_layers <= 0) Bad("lfm.num_hidden_layers", "must be positive");
  if (static_cast<int>(layer_types.size()) != num_hidden_layers) {
    Bad("lfm.layer_types", "has " + std::to_string(layer_types.size()) +
                               " entries but num_hidden_layers is " +
                               std::to_string(num_hidden_layers));
  }
  if (num_attention_heads <= 0 || hidden_size % num_attention_heads != 0) {
    Bad("lfm.num_attention_heads", "must divide hidden_size (" + std::to_string(hidden_size) + ")");
  }
  if (head_dim() % 2 != 0) Bad("lfm.num_attention_heads", "head_dim must be even for RoPE");
  if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0) {
    Bad("lfm.num_key_value_heads", "must divide num_attention_heads");
  }
  if (conv_L_cache < 1) Bad("lfm.conv_L_cache", "must be at least 1");
  if (conv_bias) Bad("lfm.conv_bias", "conv biases are not supported (LFM2 has none)");
  if (block_multiple_of <= 0) Bad("lfm.block_multiple_of", "must be positive");
  if (intermediate_size <= 0 || ff_dim() <= 0) Bad("lfm.intermediate_size", "must be positive");
  if (!(norm_eps > 0)) Bad("lfm.norm_eps", "must be positive");
  if (!(rope_theta > 0)) Bad("lfm.rope_theta", "must be positive");
  if (!tie_word_embeddings) {
    Bad("lfm.tie_word_embeddings",
        "LFM2-Audio projects text logits with embed_tokens; must be true");
  }
  for (int id : {bos_token_id, eos_token_id, pad_token_id}) {
    if (id < 0 || id >= vocab_size) Bad("lfm.bos/eos/pad_token_id", "outside the vocabulary");
  }
}

void EncoderConfig::Validate() const {
  if (feat_in != 128) Bad("encoder.feat_in", "expected 128 mel features");
  if (feat_out != -1) Bad("encoder.feat_out", "an encoder output projection is not supported");
  if (n_layers <= 0) Bad("encoder.n_layers", "must be positive");
  if (d_model <= 0) Bad("encoder.d_model", "must be positive");
  if (n_heads <= 0 || d_model % n_heads != 0) Bad("encoder.n_heads", "must divide d_model");
  if (subsampling != "dw_striding") Bad("encoder.subsampling", "only 'dw_striding' is supported");
  if (subsampling_factor != 8) Bad("encoder.subsampling_factor", "only 8 is supported");
  if (subsampling_conv_channels <= 0) Bad("encoder.subsampling_conv_channels", "must be positive");
  if (causal_downsampling) Bad("encoder.causal_downsampling", "only false is supported");
  if (ff_expansion_factor <= 0) Bad("encoder.ff_expansion_factor", "must be positive");
  if (self_attention_model != "rel_pos") {
    Bad("encoder.self_attention_model", "only 'rel_pos' is supported");
  }
  if (att_context_size.size() != 2 || att_context_size[0] != -1 || att_context_size[1] != -1) {
    Bad("encoder.att_context_size", "only full context [-1, -1] is supported");
  }
  if (xscaling) Bad("encoder.xscaling", "the reference forces xscaling off; true is not supported");
  if (conv_kernel_size <= 0 || conv_kernel_size % 2 == 0) {
    Bad("encoder.conv_kernel_size", "must be odd and positive");
  }
  if (conv_norm_type != "batch_norm")
    Bad("encoder.conv_norm_type", "only 'batch_norm' is supported");
  if (pos_emb_max_len <= 0) Bad("encoder.pos_emb_max_len", "must be positive");
}

int DepthformerConfig::ff_dim() const {
  int ff = static_cast<int>(2.0 * (4 * dim) / 3.0);
  return RoundUp(ff, 256);
}

void DepthformerConfig::Validate() const {
  if (layers <= 0) Bad("depthformer.layers", "must be positive");
  if (dim <= 0 || dim % kHeads != 0) {
    Bad("depthformer.dim", "must be a positive multiple of " + std::to_string(kHeads));
  }
  if (head_dim() % 2 != 0) Bad("depthformer.dim", "head_dim (dim/32) must be even for RoPE");
}

void AudioModelConfig::Validate() const {
  if (codebooks <= 0) Bad("codebooks", "must be positive");
  if (interleaved_n_text <= 0) Bad("interleaved_n_text", "must be positive");
  if (interleaved_n_audio <= 0) Bad("interleaved_n_audio", "must be positive");
  preprocessor.Validate();
  encoder.Validate();
  lfm.Validate();
  depthformer.Validate();
  if (encoder.feat_in != preprocessor.features) {
    Bad("encoder.feat_in", "differs from preprocessor.features");
  }
}

AudioModelConfig AudioModelConfig::Parse(const std::string& json_text, const std::string& origin) {
  AudioModelConfig c;
  try {
    const json root = ParseJsonObject(json_text, origin);
    Read(root, "architectures", "", c.architectures);
    Read(root, "codebooks", "", c.codebooks);
    Read(root, "tie_audio_embeddings", "", c.tie_audio_embeddings);
    Read(root, "semantic_codebook_factor", "", c.semantic_codebook_factor);
    Read(root, "codebook_weight", "", c.codebook_weight);
    Read(root, "interleaved_n_text", "", c.interleaved_n_text);
    Read(root, "interleaved_n_audio", "", c.interleaved_n_audio);
    ParsePreprocessor(Section(root, "preprocessor"), c.preprocessor);
    ParseEncoder(Section(root, "encoder"), c.encoder);
    ParseLfm(Section(root, "lfm"), c.lfm);
    ParseDepthformer(Section(root, "depthformer"), c.depthformer);
    c.Validate();
  } catch (const std::invalid_argument& e) {
    throw ModelError(origin + ": " + e.what());
  }
  return c;
}

StandaloneLfmConfig StandaloneLfmConfig::Parse(const std::string& json_text,
                                               const std::string& origin) {
  StandaloneLfmConfig c;
  try {
    json root = ParseJsonObject(json_text, origin);
    Read(root, "architectures", "", c.architectures);
    // liquid-audio renames "sliding_attention" to "full_attention" before building Lfm2Model and
    // applies the window with an explicit mask; the parser of the `lfm` object then sees the same.
    if (root.contains("layer_types") && root["layer_types"].is_array()) {
      json& types = root["layer_types"];
      for (size_t i = 0; i < types.size(); ++i) {
        const std::string type = types[i].is_string() ? types[i].get<std::string>() : "";
        if (type == "sliding_attention") {
          types[i] = "full_attention";
          c.has_sliding_attention = true;
        } else if (type != "conv" && type != "full_attention") {
          Bad("layer_types[" + std::to_string(i) + "]",
              "unknown layer type " + types[i].dump() +
                  " (expected 'conv', 'full_attention' or 'sliding_attention')");
        }
      }
    }
    ParseLfm(root, c.lfm);
    // A bare Lfm2Model has no text head, so tying it to embed_tokens means nothing here.
    c.lfm.tie_word_embeddings = true;
    if (root.contains("sliding_window") && root["sliding_window"].is_null()) {
      Bad("sliding_window", "is null (expected a positive window length)");
    }
    if (root.contains("sliding_window")) {
      int window = 0;
      Read(root, "sliding_window", "", window);
      if (window <= 0) Bad("sliding_window", "must be positive");
      c.sliding_window = window;
    }
    c.lfm.Validate();
  } catch (const std::invalid_argument& e) {
    throw ModelError(origin + ": " + e.what());
  }
  return c;
}

StandaloneLfmConfig StandaloneLfmConfig::Load(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in) throw ModelError(config_json.string() + ": cannot open config");
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), config_json.string());
}

AudioModelConfig AudioModelConfig::Load(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in) throw ModelError(config_json.string() + ": cannot open model config");
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), config_json.string());
}

}  // namespace eddy
