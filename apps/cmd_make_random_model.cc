// `eddy make-random-model`: writes a full-size, shape-identical random LFM2-Audio-1.5B checkpoint
// (config.json, model.safetensors in BF16, the Mimi file in F32, a 65536-entry byte-level BPE
// tokenizer.json; with --preset lfm2.5-audio-1.5b also the audio_detokenizer/ folder of
// LFM2.5-Audio) for benchmarks and load tests without the real weights. Outputs are gibberish.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "eddy/model_error.h"
#include "eddy/safetensors_writer.h"

namespace eddy::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// How a tensor's values are drawn: N(0, 0.02)-like weights, ones for norms/scales, zeros for
// biases and running means, or constants for buffers.
enum class Init { kNormal, kOnes, kZeros, kCodebookOffsets, kLayerScale, kPeriodicHann };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Init init = Init::kNormal;
  DType dtype = DType::kBF16;
};

// splitmix64: fast and good enough for random weights.
class FastRng {
 public:
  explicit FastRng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), rescaled.
  float Normal() {
    const uint64_t r = Next();
    const float sum =
        static_cast<float>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48)) /
        65536.0f;
    return (sum - 2.0f) * 1.7320508f;  // var of the sum is 4/12
  }

 private:
  uint64_t s_;
};

// An LFM2 stack (spec_backbone.md §1) as the random checkpoints lay it out: short-conv blocks,
// and GQA attention blocks at the given indices. One description feeds both the config file and
// the tensor list, so the two cannot disagree.
struct LfmShape {
  int layers;
  std::vector<int> attention;
  int64_t hidden;
  int64_t intermediate_size;  // as written in the config (block_auto_adjust_ff_dim shrinks it)
  int64_t ff;                 // the SwiGLU width it adjusts to
  int64_t heads, kv_heads, head_dim;

  bool is_attention(int layer) const {
    return std::find(attention.begin(), attention.end(), layer) != attention.end();
  }
};

// The real LFM2-Audio-1.5B backbone and the LFM2.5 audio detokenizer (spec_audio.md §6.1).
const LfmShape kBackbone{16, {2, 5, 8, 10, 12, 14}, 2048, 12288, 8192, 32, 8, 64};
const LfmShape kDetokenizer{8, {2, 4, 6}, 512, 3328, 2304, 16, 8, 32};

// The Lfm2Config fields of a stack; attention layers are named `attention_type`.
ordered_json LfmConfigFields(const LfmShape& s, const char* attention_type) {
  ordered_json types = ordered_json::array();
  for (int i = 0; i < s.layers; ++i) types.push_back(s.is_attention(i) ? attention_type : "conv");
  return {{"vocab_size", 65536},
          {"hidden_size", s.hidden},
          {"intermediate_size", s.intermediate_size},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"max_position_embeddings", 128000},
          {"norm_eps", 1e-5},
          {"conv_bias", false},
          {"conv_L_cache", 3},
          {"block_multiple_of", 256},
          {"block_ffn_dim_multiplier", 1.0},
          {"block_auto_adjust_ff_dim", true},
          {"layer_types", types},
          {"rope_theta", 1000000.0},
          {"pad_token_id", 0},
          {"bos_token_id", 1},
          {"eos_token_id", 7},
          {"tie_word_embeddings", true}};
}

template <typename Add>
void AddLfmLayers(Add& add, const LfmShape& s) {
  const int64_t d = s.hidden, hd = s.head_dim;
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "lfm.layers." + std::to_string(i) + ".";
    if (s.is_attention(i)) {
      add(p + "self_attn.q_proj.weight", {s.heads * hd, d});
      add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, d});
      add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, d});
      add(p + "self_attn.out_proj.weight", {d, s.heads * hd});
      add(p + "self_attn.q_layernorm.weight", {hd}, Init::kOnes);
      add(p + "self_attn.k_layernorm.weight", {hd}, Init::kOnes);
    } else {
      add(p + "conv.in_proj.weight", {3 * d, d});
      add(p + "conv.conv.weight", {d, 1, 3});
      add(p + "conv.out_proj.weight", {d, d});
    }
    add(p + "feed_forward.w1.weight", {s.ff, d});
    add(p + "feed_forward.w3.weight", {s.ff, d});
    add(p + "feed_forward.w2.weight", {d, s.ff});
    add(p + "operator_norm.weight", {d}, Init::kOnes);
    add(p + "ffn_norm.weight", {d}, Init::kOnes);
  }
}

ordered_json RealConfig() {
  ordered_json c;
  c["architectures"] = {"Lfm2AudioForConditionalGeneration"};
  c["codebooks"] = 8;
  c["tie_audio_embeddings"] = false;
  c["semantic_codebook_factor"] = 100;
  c["codebook_weight"] = "log";
  c["interleaved_n_text"] = 6;
  c["interleaved_n_audio"] = 12;
  c["preprocessor"] = {{"sample_rate", 16000}, {"normalize", "per_feature"},
                       {"window_size", 0.025}, {"window_stride", 0.01},
                       {"window", "hann"},     {"features", 128},
                       {"n_fft", 512},         {"log", true},
                       {"frame_splicing", 1},  {"dither", 1e-5},
                       {"pad_to", 0},          {"pad_value", 0.0}};
  c["encoder"] = {{"feat_in", 128},
                  {"feat_out", -1},
                  {"n_layers", 17},
                  {"d_model", 512},
                  {"subsampling", "dw_striding"},
                  {"subsampling_factor", 8},
                  {"subsampling_conv_channels", 256},
                  {"causal_downsampling", false},
                  {"reduction", nullptr},
                  {"reduction_position", nullptr},
                  {"reduction_factor", 1},
                  {"ff_expansion_factor", 4},
                  {"self_attention_model", "rel_pos"},
                  {"n_heads", 8},
                  {"att_context_size", {-1, -1}},
                  {"xscaling", false},
                  {"untie_biases", true},
                  {"pos_emb_max_len", 5000},
                  {"conv_kernel_size", 9},
                  {"conv_norm_type", "batch_norm"},
                  {"conv_context_size", nullptr},
                  {"dropout", 0.1},
                  {"dropout_pre_encoder", 0.1},
                  {"dropout_emb", 0.0},
                  {"dropout_att", 0.1}};
  c["lfm"] = LfmConfigFields(kBackbone, "full_attention");
  c["depthformer"] = {{"layers", 6}, {"dim", 1024}, {"tie", true}};
  return c;
}

std::vector<TensorSpec> MainTensors() {
  std::vector<TensorSpec> t;
  auto add = [&](const std::string& n, std::vector<int64_t> s, Init i = Init::kNormal) {
    t.push_back({n, std::move(s), i, DType::kBF16});
  };
  const int64_t d = kBackbone.hidden;
  add("lfm.embed_tokens.weight", {65536, d});
  add("lfm.embedding_norm.weight", {d}, Init::kOnes);
  AddLfmLayers(add, kBackbone);
  // FastConformer encoder (spec_audio.md §3.7).
  const int64_t ch = 256, dm = 512, dff = 2048, heads = 8;
  for (int k : {0, 2, 5}) {
    add("conformer.pre_encode.conv." + std::to_string(k) + ".weight", {ch, 1, 3, 3});
    add("conformer.pre_encode.conv." + std::to_string(k) + ".bias", {ch}, Init::kZeros);
  }
  for (int k : {3, 6}) {
    add("conformer.pre_encode.conv." + std::to_string(k) + ".weight", {ch, ch, 1, 1});
    add("conformer.pre_encode.conv." + std::to_string(k) + ".bias", {ch}, Init::kZeros);
  }
  add("conformer.pre_encode.out.weight", {dm, ch * 16});
  add("conformer.pre_encode.out.bias", {dm}, Init::kZeros);
  for (int l = 0; l < 17; ++l) {
    const std::string p = "conformer.layers." + std::to_string(l) + ".";
    auto norm = [&](const std::string& n) {
      add(p + n + ".weight", {dm}, Init::kOnes);
      add(p + n + ".bias", {dm}, Init::kZeros);
    };
    auto linear = [&](const std::string& n, int64_t out, int64_t in) {
      add(p + n + ".weight", {out, in});
      add(p + n + ".bias", {out}, Init::kZeros);
    };
    for (const char* ffn : {"feed_forward1", "feed_forward2"}) {
      norm(std::string("norm_") + ffn);
      linear(std::string(ffn) + ".linear1", dff, dm);
      linear(std::string(ffn) + ".linear2", dm, dff);
    }
    norm("norm_self_att");
    for (const char* n : {"linear_q", "linear_k", "linear_v", "linear_out"}) {
      linear(std::string("self_attn.") + n, dm, dm);
    }
    add(p + "self_attn.linear_pos.weight", {dm, dm});
    add(p + "self_attn.pos_bias_u", {heads, dm / heads});
    add(p + "self_attn.pos_bias_v", {heads, dm / heads});
    norm("norm_conv");
    add(p + "conv.pointwise_conv1.weight", {2 * dm, dm, 1});
    add(p + "conv.pointwise_conv1.bias", {2 * dm}, Init::kZeros);
    add(p + "conv.depthwise_conv.weight", {dm, 1, 9});
    add(p + "conv.depthwise_conv.bias", {dm}, Init::kZeros);
    add(p + "conv.batch_norm.weight", {dm}, Init::kOnes);
    add(p + "conv.batch_norm.bias", {dm}, Init::kZeros);
    add(p + "conv.batch_norm.running_mean", {dm}, Init::kZeros);
    add(p + "conv.batch_norm.running_var", {dm}, Init::kOnes);
    t.push_back({p + "conv.batch_norm.num_batches_tracked", {}, Init::kZeros, DType::kI64});
    add(p + "conv.pointwise_conv2.weight", {dm, dm, 1});
    add(p + "conv.pointwise_conv2.bias", {dm}, Init::kZeros);
    norm("norm_out");
  }
  add("audio_adapter.model.0.weight", {dm}, Init::kOnes);
  add("audio_adapter.model.0.bias", {dm}, Init::kZeros);
  add("audio_adapter.model.1.weight", {d, dm});
  add("audio_adapter.model.1.bias", {d}, Init::kZeros);
  add("audio_adapter.model.3.weight", {d, d});
  add("audio_adapter.model.3.bias", {d}, Init::kZeros);
  // Audio-out side (spec_backbone.md §2.7).
  const int64_t codebooks = 8, vocab = 2049, dd = 1024, dff2 = 2816;
  add("audio_embedding.embedding.weight", {codebooks * vocab, d});
  add("audio_embedding.embedding_norm.weight", {d}, Init::kOnes);
  add("audio_embedding.to_logits.weight", {codebooks * vocab, d});
  add("depth_linear.weight", {codebooks * dd, d});
  add("depth_linear.bias", {codebooks * dd}, Init::kZeros);
  for (int l = 0; l < 6; ++l) {
    const std::string p = "depthformer.layers." + std::to_string(l) + ".";
    add(p + "operator_norm.weight", {dd}, Init::kOnes);
    add(p + "ffn_norm.weight", {dd}, Init::kOnes);
    add(p + "operator.qkv_proj.weight", {dd + 2 * 8 * 32, dd});
    add(p + "operator.out_proj.weight", {dd, dd});
    add(p + "operator.bounded_attention.q_layernorm.weight", {32}, Init::kOnes);
    add(p + "operator.bounded_attention.k_layernorm.weight", {32}, Init::kOnes);
    add(p + "feed_forward.w1.weight", {dff2, dd});
    add(p + "feed_forward.w3.weight", {dff2, dd});
    add(p + "feed_forward.w2.weight", {dd, dff2});
  }
  for (int c = 0; c < codebooks; ++c) {
    const std::string p = "depth_embeddings." + std::to_string(c) + ".";
    add(p + "embedding.weight", {vocab, dd});
    add(p + "embedding_norm.weight", {dd}, Init::kOnes);
    add(p + "to_logits.weight", {vocab, dd});  // a tied copy, as the official file stores it
  }
  t.push_back({"codebook_offsets", {codebooks}, Init::kCodebookOffsets, DType::kI64});
  add("audio_loss_weights", {codebooks}, Init::kOnes);
  return t;
}

// LFM2.5-Audio's audio_detokenizer/ (spec_audio.md §6.1-6.2): an Lfm2Config with sliding-window
// attention layers, and the module's tensors emb.emb, lfm.*, lin, istft.window.
ordered_json DetokenizerConfig() {
  ordered_json c = {{"architectures", {"Lfm25AudioTokenizer"}}, {"model_type", "lfm2"}};
  c.update(LfmConfigFields(kDetokenizer, "sliding_attention"));
  c["sliding_window"] = 30;
  return c;
}

std::vector<TensorSpec> DetokenizerTensors() {
  std::vector<TensorSpec> t;
  auto add = [&](const std::string& n, std::vector<int64_t> s, Init i = Init::kNormal) {
    t.push_back({n, std::move(s), i, DType::kBF16});
  };
  const int64_t d = kDetokenizer.hidden;
  add("emb.emb.weight", {8 * 2048, d});
  add("lfm.embed_tokens.weight", {65536, d});
  add("lfm.embedding_norm.weight", {d}, Init::kOnes);
  AddLfmLayers(add, kDetokenizer);
  add("lin.weight", {1282, d});
  add("lin.bias", {1282}, Init::kZeros);
  add("istft.window", {1280}, Init::kPeriodicHann);
  return t;
}

// Mimi (spec_audio.md §5.2, names as MimiModel.state_dict()): SEANet n_filters 64, dimension 512,
// ratios [8, 6, 5, 4]; 8-layer transformers; quantizer dimension 256, n_q 32.
std::vector<TensorSpec> MimiTensors() {
  std::vector<TensorSpec> t;
  auto add = [&](const std::string& n, std::vector<int64_t> s, Init i = Init::kNormal) {
    t.push_back({n, std::move(s), i, DType::kF32});
  };
  auto conv = [&](const std::string& n, int64_t out, int64_t in, int64_t k) {
    add(n + ".weight", {out, in, k});
    add(n + ".bias", {out}, Init::kZeros);
  };
  const int64_t F = 64, D = 512;
  const std::vector<int> ratios = {8, 6, 5, 4};
  // Encoder: ratios reversed, channels doubling.
  conv("encoder.model.0.conv.conv", F, 1, 7);
  int64_t mult = 1;
  for (int i = 0; i < 4; ++i) {
    const int r = ratios[3 - i];
    const std::string block = "encoder.model." + std::to_string(1 + 3 * i) + ".block.";
    conv(block + "1.conv.conv", mult * F / 2, mult * F, 3);
    conv(block + "3.conv.conv", mult * F, mult * F / 2, 1);
    conv("encoder.model." + std::to_string(3 + 3 * i) + ".conv.conv", mult * 2 * F, mult * F,
         2 * r);
    mult *= 2;
  }
  conv("encoder.model.14.conv.conv", D, mult * F, 3);
  // Decoder.
  conv("decoder.model.0.conv.conv", mult * F, D, 7);
  for (int i = 0; i < 4; ++i) {
    const int r = ratios[i];
    const std::string tr = "decoder.model." + std::to_string(2 + 3 * i) + ".convtr.convtr";
    add(tr + ".weight", {mult * F, mult * F / 2, 2 * r});
    add(tr + ".bias", {mult * F / 2}, Init::kZeros);
    const std::string block = "decoder.model." + std::to_string(3 + 3 * i) + ".block.";
    conv(block + "1.conv.conv", mult * F / 4, mult * F / 2, 3);
    conv(block + "3.conv.conv", mult * F / 2, mult * F / 4, 1);
    mult /= 2;
  }
  conv("decoder.model.14.conv.conv", 1, F, 3);
  for (const char* side : {"encoder_transformer", "decoder_transformer"}) {
    for (int l = 0; l < 8; ++l) {
      const std::string p = std::string(side) + ".transformer.layers." + std::to_string(l) + ".";
      add(p + "self_attn.in_projs.0.weight", {3 * D, D});
      add(p + "self_attn.out_projs.0.weight", {D, D});
      add(p + "norm1.weight", {D}, Init::kOnes);
      add(p + "norm1.bias", {D}, Init::kZeros);
      add(p + "norm2.weight", {D}, Init::kOnes);
      add(p + "norm2.bias", {D}, Init::kZeros);
      add(p + "linear1.weight", {2048, D});
      add(p + "linear2.weight", {D, 2048});
      add(p + "layer_scale_1.scale", {D}, Init::kLayerScale);
      add(p + "layer_scale_2.scale", {D}, Init::kLayerScale);
    }
  }
  const int64_t qd = 256, bins = 2048;
  for (const char* rvq : {"rvq_first", "rvq_rest"}) {
    const std::string p = std::string("quantizer.") + rvq + ".";
    add(p + "input_proj.weight", {qd, D, 1});
    add(p + "output_proj.weight", {D, qd, 1});
    const int layers = std::string(rvq) == "rvq_first" ? 1 : 31;
    for (int l = 0; l < layers; ++l) {
      const std::string cb = p + "vq.layers." + std::to_string(l) + "._codebook.";
      add(cb + "_initialized", {1}, Init::kOnes);
      add(cb + "cluster_usage", {bins}, Init::kOnes);
      add(cb + "embedding_sum", {bins, qd});
    }
  }
  add("upsample.convtr.convtr.convtr.weight", {D, 1, 4});
  add("downsample.conv.conv.conv.weight", {D, D, 4});
  return t;
}

void WriteTensors(const fs::path& path, const std::vector<TensorSpec>& specs, uint64_t seed) {
  SafeTensorsWriter w(path);
  w.SetMetadata("format", "pt");
  for (const TensorSpec& s : specs) w.Declare(s.name, s.dtype, s.shape);
  w.Begin();
  FastRng rng(seed);
  const size_t chunk = 1 << 20;
  std::vector<float> f32(chunk);
  std::vector<uint16_t> bf16(chunk);
  size_t last_report = 0;
  for (const TensorSpec& s : specs) {
    size_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<size_t>(d);
    if (s.dtype == DType::kI64) {
      std::vector<int64_t> v(n, 0);
      if (s.init == Init::kCodebookOffsets) {
        for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(i) * 2049;
      }
      w.Append(v.data(), n * 8);
      continue;
    }
    for (size_t at = 0; at < n; at += chunk) {
      const size_t m = std::min(chunk, n - at);
      for (size_t i = 0; i < m; ++i) {
        switch (s.init) {
          case Init::kNormal:
            f32[i] = 0.02f * rng.Normal();
            break;
          case Init::kOnes:
            f32[i] = 1.0f;
            break;
          case Init::kLayerScale:
            f32[i] = 0.01f;
            break;
          case Init::kPeriodicHann:
            f32[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * (at + i) / n));
            break;
          default:
            f32[i] = 0.0f;
        }
      }
      if (s.dtype == DType::kBF16) {
        for (size_t i = 0; i < m; ++i) bf16[i] = FloatToBf16(f32[i]);
        w.Append(bf16.data(), m * 2);
      } else {
        w.Append(f32.data(), m * 4);
      }
      if (w.written_bytes() - last_report > (size_t{256} << 20)) {
        last_report = w.written_bytes();
        std::fprintf(stderr, "\r%s: %.0f%% (%zu / %zu MB)", path.filename().c_str(),
                     100.0 * w.written_bytes() / w.total_bytes(), w.written_bytes() >> 20,
                     w.total_bytes() >> 20);
      }
    }
  }
  w.Finish();
  std::fprintf(stderr, "\r%s: 100%% (%zu MB)            \n", path.filename().c_str(),
               w.total_bytes() >> 20);
}

// GPT-2 byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards.
std::vector<std::string> ByteSymbols() {
  std::vector<int> cps(256, -1);
  for (int b = 0; b < 256; ++b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
      cps[b] = b;
    }
  }
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    if (cps[b] < 0) cps[b] = next++;
  }
  std::vector<std::string> out(256);
  for (int b = 0; b < 256; ++b) {
    const int cp = cps[b];
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}

ordered_json RandomTokenizer(int vocab) {
  const int specials = 131;
  std::vector<std::string> names(specials);
  for (int i = 0; i < specials; ++i) names[i] = "<|reserved_" + std::to_string(i) + "|>";
  const char* known[] = {"<|pad|>",
                         "<|startoftext|>",
                         "<|endoftext|>",
                         "<|fim_pre|>",
                         "<|fim_mid|>",
                         "<|fim_suf|>",
                         "<|im_start|>",
                         "<|im_end|>",
                         "<|tool_list_start|>",
                         "<|tool_list_end|>",
                         "<|tool_call_start|>",
                         "<|tool_call_end|>",
                         "<|tool_response_start|>",
                         "<|tool_response_end|>"};
  for (int i = 0; i < 14; ++i) names[i] = known[i];
  names[128] = "<|audio_start|>";
  names[129] = "<|audio_end|>";
  names[130] = "<|text_end|>";
  ordered_json added = ordered_json::array();
  ordered_json vocab_json = ordered_json::object();
  for (int i = 0; i < specials; ++i) {
    added.push_back({{"id", i},
                     {"content", names[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
    vocab_json[names[i]] = i;
  }
  // Byte symbols in the order of their code points (printable ones first), as trained files do.
  const std::vector<std::string> bytes = ByteSymbols();
  std::vector<int> order(256);
  for (int b = 0; b < 256; ++b) order[b] = b;
  std::vector<int> cp(256);
  for (int b = 0; b < 256; ++b) {
    const std::string& s = bytes[b];
    cp[b] = s.size() == 1 ? static_cast<unsigned char>(s[0])
                          : ((static_cast<unsigned char>(s[0]) & 0x1F) << 6) |
                                (static_cast<unsigned char>(s[1]) & 0x3F);
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) { return cp[a] < cp[b]; });
  int id = specials;
  for (int b : order) vocab_json[bytes[b]] = id++;
  ordered_json merges = ordered_json::array();
  for (int a = 0; a < 256 && id < vocab; ++a) {
    for (int b = 0; b < 256 && id < vocab; ++b) {
      const std::string& l = bytes[order[a]];
      const std::string& r = bytes[order[b]];
      merges.push_back({l, r});
      vocab_json[l + r] = id++;
    }
  }
  ordered_json t;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"},
         {"add_prefix_space", false},
         {"trim_offsets", true},
         {"use_regex", false}}}}};
  t["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<|startoftext|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", {{"id", "<|startoftext|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "<|startoftext|>"}, {"type_id", 1}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"<|startoftext|>",
         {{"id", "<|startoftext|>"}, {"ids", {1}}, {"tokens", {"<|startoftext|>"}}}}}}};
  t["decoder"] = {{"type", "ByteLevel"},
                  {"add_prefix_space", true},
                  {"trim_offsets", true},
                  {"use_regex", true}};
  t["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", true},
                {"vocab", vocab_json},
                {"merges", merges}};
  return t;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw ModelError(path.string() + ": write failed");
}

int RunMakeRandomModel(const std::string& out, const std::string& preset, uint64_t seed) {
  const bool lfm25 = preset == "lfm2.5-audio-1.5b";
  if (preset != "lfm2-audio-1.5b" && !lfm25) {
    std::fprintf(stderr, "error: unknown preset '%s' (known: lfm2-audio-1.5b, lfm2.5-audio-1.5b)\n",
                 preset.c_str());
    return 2;
  }
  const fs::path dir(out);
  fs::create_directories(dir);
  WriteText(dir / "config.json", RealConfig().dump(2) + "\n");
  WriteText(dir / "tokenizer.json", RandomTokenizer(65536).dump() + "\n");
  const ordered_json tokenizer_config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                         {"bos_token", "<|startoftext|>"},
                                         {"eos_token", "<|im_end|>"},
                                         {"pad_token", "<|pad|>"},
                                         {"clean_up_tokenization_spaces", false}};
  WriteText(dir / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
  WriteTensors(dir / "model.safetensors", MainTensors(), seed);
  WriteTensors(dir / "tokenizer-e351c8d8-checkpoint125.safetensors", MimiTensors(), seed + 1);
  if (lfm25) {
    fs::create_directories(dir / "audio_detokenizer");
    WriteText(dir / "audio_detokenizer" / "config.json", DetokenizerConfig().dump(2) + "\n");
    WriteTensors(dir / "audio_detokenizer" / "model.safetensors", DetokenizerTensors(), seed + 2);
  }
  std::printf("wrote a random %s-shaped model to %s\n",
              lfm25 ? "LFM2.5-Audio-1.5B" : "LFM2-Audio-1.5B", dir.c_str());
  return 0;
}

EDDY_COMMAND("make-random-model",
             "Write a full-size random checkpoint with the official layout (for benchmarks)",
             [](CLI::App& cmd) -> std::function<int()> {
               auto out = std::make_shared<std::string>();
               auto preset = std::make_shared<std::string>("lfm2-audio-1.5b");
               auto seed = std::make_shared<uint64_t>(1);
               cmd.add_option("--out", *out, "Directory to write")->required();
               cmd.add_option("--preset", *preset,
                              "Model layout (lfm2-audio-1.5b, or lfm2.5-audio-1.5b: adds "
                              "audio_detokenizer/)");
               cmd.add_option("--seed", *seed, "Random seed");
               return [=] { return RunMakeRandomModel(*out, *preset, *seed); };
             });

}  // namespace
}  // namespace eddy::app
