// Writes an LFM2.5 audio detokenizer folder (config.json + model.safetensors, the official layout
// of audio_detokenizer/, spec_audio.md §6.1-6.2) with random weights, for tests and
// bench_lfm25_detokenizer. Never committed.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "eddy/istft.h"
#include "eddy/lfm25_detokenizer.h"
#include "eddy/safetensors_writer.h"

namespace eddy::test {

struct RandomDetokenizerSpec {
  int hidden = 64;
  std::vector<std::string> layer_types = {"conv", "sliding_attention", "conv", "sliding_attention"};
  int heads = 4;
  int kv_heads = 2;
  int intermediate_size = 96;  // auto-adjusted: int(2 * 96 / 3) = 64, a multiple of 32
  int multiple_of = 32;
  int conv_L_cache = 3;
  std::optional<int> sliding_window = 10;  // nullopt: key absent (the reference then uses 30)
  int vocab = 64;                          // embed_tokens is stored but unused
  double rope_theta = 1e6;
  bool store_window = true;  // istft.window
  DType dtype = DType::kF32;

  // The sizes of the real detokenizer (spec_audio.md §6.1).
  static RandomDetokenizerSpec FullSize() {
    RandomDetokenizerSpec s;
    s.hidden = 512;
    s.layer_types = {"conv",
                     "conv",
                     "sliding_attention",
                     "conv",
                     "sliding_attention",
                     "conv",
                     "sliding_attention",
                     "conv"};
    s.heads = 16;
    s.kv_heads = 8;
    s.intermediate_size = 3328;  // -> 2304
    s.multiple_of = 256;
    s.sliding_window = 30;
    s.vocab = 65536;
    s.dtype = DType::kBF16;
    return s;
  }
};

inline nlohmann::ordered_json RandomDetokenizerConfig(const RandomDetokenizerSpec& s) {
  nlohmann::ordered_json c;
  c["architectures"] = {"Lfm2Model"};
  c["model_type"] = "lfm2";
  c["hidden_size"] = s.hidden;
  c["num_hidden_layers"] = s.layer_types.size();
  c["layer_types"] = s.layer_types;
  c["num_attention_heads"] = s.heads;
  c["num_key_value_heads"] = s.kv_heads;
  c["intermediate_size"] = s.intermediate_size;
  c["block_auto_adjust_ff_dim"] = true;
  c["block_ffn_dim_multiplier"] = 1.0;
  c["block_multiple_of"] = s.multiple_of;
  c["conv_L_cache"] = s.conv_L_cache;
  c["conv_bias"] = false;
  c["norm_eps"] = 1e-5;
  c["rope_theta"] = s.rope_theta;
  c["max_position_embeddings"] = 4096;
  c["vocab_size"] = s.vocab;
  c["tie_embedding"] = true;
  if (s.sliding_window) c["sliding_window"] = *s.sliding_window;
  return c;
}

// Weights are scaled so every block changes its input by O(1) and the log-magnitudes stay O(1):
// the test then exercises every term instead of a near-identity network.
inline std::vector<TensorToWrite> RandomDetokenizerTensors(const RandomDetokenizerSpec& s,
                                                           uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> around_one(0.5f, 1.5f);
  std::vector<TensorToWrite> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    TensorToWrite w{name, std::move(shape), std::vector<float>(static_cast<size_t>(n))};
    for (float& v : w.values) v = scale * normal(rng);
    t.push_back(std::move(w));
  };
  auto add_norm = [&](const std::string& name, int64_t size) {
    TensorToWrite w{name, {size}, std::vector<float>(static_cast<size_t>(size))};
    for (float& v : w.values) v = around_one(rng);
    t.push_back(std::move(w));
  };
  const int d = s.hidden, hd = s.hidden / s.heads;
  const int ff = [&] {
    const int raw = static_cast<int>(2.0 * s.intermediate_size / 3.0);
    return s.multiple_of * ((raw + s.multiple_of - 1) / s.multiple_of);
  }();
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(d));
  add("emb.emb.weight", {Lfm25Detokenizer::kCodebooks * Lfm25Detokenizer::kCodesPerCodebook, d},
      1.0f);
  add("lfm.embed_tokens.weight", {s.vocab, d}, 0.02f);
  for (size_t i = 0; i < s.layer_types.size(); ++i) {
    const std::string p = "lfm.layers." + std::to_string(i) + ".";
    add_norm(p + "operator_norm.weight", d);
    add_norm(p + "ffn_norm.weight", d);
    if (s.layer_types[i] == "conv") {
      add(p + "conv.in_proj.weight", {3 * d, d}, in_scale);
      add(p + "conv.conv.weight", {d, 1, s.conv_L_cache}, 0.6f);
      add(p + "conv.out_proj.weight", {d, d}, in_scale);
    } else {
      add(p + "self_attn.q_proj.weight", {s.heads * hd, d}, in_scale);
      add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, d}, in_scale);
      add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, d}, in_scale);
      add(p + "self_attn.out_proj.weight", {d, s.heads * hd}, in_scale);
      add_norm(p + "self_attn.q_layernorm.weight", hd);
      add_norm(p + "self_attn.k_layernorm.weight", hd);
    }
    add(p + "feed_forward.w1.weight", {ff, d}, in_scale);
    add(p + "feed_forward.w3.weight", {ff, d}, in_scale);
    add(p + "feed_forward.w2.weight", {d, ff}, 1.0f / std::sqrt(static_cast<float>(ff)));
  }
  add_norm("lfm.embedding_norm.weight", d);
  add("lin.weight", {2 * Lfm25Detokenizer::kBins, d}, 0.5f * in_scale);
  add("lin.bias", {2 * Lfm25Detokenizer::kBins}, 0.1f);
  if (s.store_window) {
    t.push_back({"istft.window", {Lfm25Detokenizer::kNFft}, PeriodicHann(Lfm25Detokenizer::kNFft)});
  }
  return t;
}

// Writes dir/config.json and dir/model.safetensors.
inline void WriteRandomDetokenizer(const std::filesystem::path& dir, const RandomDetokenizerSpec& s,
                                   uint32_t seed) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << RandomDetokenizerConfig(s).dump(2) << "\n";
  WriteSafeTensors(dir / "model.safetensors", RandomDetokenizerTensors(s, seed), s.dtype);
}

}  // namespace eddy::test
