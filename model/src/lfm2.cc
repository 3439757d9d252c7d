// LFM2 backbone (spec_backbone.md §1). Tensor names follow the checkpoint's module paths.
#include "eddy/lfm2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "eddy/sampling.h"
#include "ops.h"
#include "rope.h"

namespace eddy {

using ops::Linear;
using ops::WeightMatrix;

struct Lfm2Model::Weights {
  struct Layer {
    LayerKind kind = LayerKind::kConv;
    std::vector<float> operator_norm, ffn_norm;
    Linear w1, w3, w2;  // feed_forward gate, up, down
    // conv
    Linear in_proj, conv_out_proj;
    std::vector<float> conv_kernel;  // [hidden, L]
    // attention
    Linear q_proj, k_proj, v_proj, attn_out_proj;
    std::vector<float> q_layernorm, k_layernorm;
  };
  WeightMatrix embed_tokens;  // [vocab, hidden], also the tied text head
  std::vector<float> embedding_norm;
  std::vector<Layer> layers;
};

namespace {

// Activations of one Forward call, kept per thread between calls: prefill chunks need tens of
// megabytes, and fresh allocations of that size are page-faulted and zeroed every time.
struct Workspace {
  std::vector<float> bcx, conv_in, conv_out, q, new_k, new_v, ctx, gate, up, h, normed, delta;
};

Workspace& ThreadWorkspace() {
  thread_local Workspace ws;
  return ws;
}

// Grows `v` to at least n floats and returns its data; contents are unspecified.
float* Scratch(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

void Lfm2Cache::Reset() {
  position_ = 0;
  for (auto& k : keys_) k.clear();
  for (auto& v : values_) v.clear();
  for (auto& k : keys16_) k.clear();
  for (auto& v : values16_) v.clear();
  for (auto& c : conv_tail_) std::fill(c.begin(), c.end(), 0.0f);
  kv_first_ = 0;
  chunk_first_ = -1;
  for (auto& c : conv_chunk_) c.clear();
}

void Lfm2Cache::set_rewindable(bool on) {
  rewindable_ = on;
  chunk_first_ = -1;
  if (!on) conv_chunk_.clear();
}

Lfm2Model::Lfm2Model(const LfmConfig& config) : config_(config) {}
Lfm2Model::~Lfm2Model() = default;

std::shared_ptr<const Lfm2Model> Lfm2Model::Load(std::shared_ptr<const SafeTensors> st,
                                                 const LfmConfig& config,
                                                 const Lfm2Options& options) {
  config.Validate();
  if (static_cast<int>(config.layer_types.size()) != config.num_hidden_layers) {
    throw ModelError("lfm config: layer_types has " + std::to_string(config.layer_types.size()) +
                     " entries but num_hidden_layers is " +
                     std::to_string(config.num_hidden_layers));
  }
  if (config.conv_bias) throw ModelError("lfm config: conv_bias=true is not supported");
  if (!config.tie_word_embeddings) {
    throw ModelError("lfm config: tie_word_embeddings=false is not supported (no lm_head)");
  }
  const ops::WeightFormat format = ops::ParseWeightFormat(options.weight_format);
  std::shared_ptr<Lfm2Model> model(new Lfm2Model(config));
  model->st_ = st;
  auto w = std::make_unique<Weights>();
  const int d = config.hidden_size, ff = config.ff_dim(), hd = config.head_dim();
  const int q_width = config.num_attention_heads * hd, kv_width = config.num_key_value_heads * hd;
  const int L = config.conv_L_cache;
  w->embed_tokens =
      WeightMatrix::Load(*st, "lfm.embed_tokens.weight", {config.vocab_size, d}, format);
  w->embedding_norm = ops::LoadF32(*st, "lfm.embedding_norm.weight", {d});
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "lfm.layers." + std::to_string(i) + ".";
    Weights::Layer l;
    l.kind = config.layer_types[i];
    l.operator_norm = ops::LoadF32(*st, p + "operator_norm.weight", {d});
    l.ffn_norm = ops::LoadF32(*st, p + "ffn_norm.weight", {d});
    l.w1 = Linear::Load(*st, p + "feed_forward.w1", ff, d, false, format);
    l.w3 = Linear::Load(*st, p + "feed_forward.w3", ff, d, false, format);
    l.w2 = Linear::Load(*st, p + "feed_forward.w2", d, ff, false, format);
    if (l.kind == LayerKind::kConv) {
      l.in_proj = Linear::Load(*st, p + "conv.in_proj", 3 * d, d, false, format);
      l.conv_kernel = ops::LoadF32(*st, p + "conv.conv.weight", {d, 1, L});
      l.conv_out_proj = Linear::Load(*st, p + "conv.out_proj", d, d, false, format);
    } else {
      l.q_proj = Linear::Load(*st, p + "self_attn.q_proj", q_width, d, false, format);
      l.k_proj = Linear::Load(*st, p + "self_attn.k_proj", kv_width, d, false, format);
      l.v_proj = Linear::Load(*st, p + "self_attn.v_proj", kv_width, d, false, format);
      l.attn_out_proj = Linear::Load(*st, p + "self_attn.out_proj", d, q_width, false, format);
      l.q_layernorm = ops::LoadF32(*st, p + "self_attn.q_layernorm.weight", {hd});
      l.k_layernorm = ops::LoadF32(*st, p + "self_attn.k_layernorm.weight", {hd});
    }
    w->layers.push_back(std::move(l));
  }
  model->w_ = std::move(w);
  model->inv_freq_ = rope::InverseFrequencies(hd, config.rope_theta, options.bf16_rope_inv_freq);
  if (options.sliding_window < 0) {
    throw ModelError("lfm: sliding_window " + std::to_string(options.sliding_window) +
                     " is negative (0 = full attention)");
  }
  model->sliding_window_ = options.sliding_window;
  if (options.kv_cache == "auto") {
    model->kv_f16_ = model->w_->embed_tokens.format() != ops::WeightFormat::kF32;
  } else if (options.kv_cache == "f16" || options.kv_cache == "f32") {
    model->kv_f16_ = options.kv_cache == "f16";
  } else {
    throw ModelError("unknown kv_cache '" + options.kv_cache + "' (expected auto, f16 or f32)");
  }
  return model;
}

size_t Lfm2Model::weight_bytes() const {
  size_t total = w_->embed_tokens.bytes() + ops::Bytes(w_->embedding_norm);
  for (const Weights::Layer& l : w_->layers) {
    total += ops::Bytes(l.operator_norm) + ops::Bytes(l.ffn_norm) + l.w1.bytes() + l.w3.bytes() +
             l.w2.bytes() + l.in_proj.bytes() + l.conv_out_proj.bytes() +
             ops::Bytes(l.conv_kernel) + l.q_proj.bytes() + l.k_proj.bytes() + l.v_proj.bytes() +
             l.attn_out_proj.bytes() + ops::Bytes(l.q_layernorm) + ops::Bytes(l.k_layernorm);
  }
  return total;
}

Lfm2Cache Lfm2Model::NewCache() const {
  Lfm2Cache c;
  const int n = config_.num_hidden_layers;
  c.kv_width_ = config_.num_key_value_heads * config_.head_dim();
  c.kv_f16_ = kv_f16_;
  c.keys_.resize(n);
  c.values_.resize(n);
  c.keys16_.resize(n);
  c.values16_.resize(n);
  c.conv_tail_.resize(n);
  for (int i = 0; i < n; ++i) {
    if (config_.layer_types[i] == LayerKind::kConv) {
      c.conv_tail_[i].assign(static_cast<size_t>(config_.conv_L_cache - 1) * config_.hidden_size,
                             0.0f);
    }
  }
  return c;
}

void Lfm2Model::ConvBlock(int layer, const float* x, int n, Lfm2Cache& cache, float* out) const {
  const Weights::Layer& l = w_->layers[layer];
  const int d = config_.hidden_size, L = config_.conv_L_cache, tail = L - 1;
  Workspace& ws = ThreadWorkspace();
  float* bcx = Scratch(ws.bcx, static_cast<size_t>(n) * 3 * d);
  l.in_proj.Forward(x, n, bcx);
  // Conv inputs v = B*X, preceded by the cached inputs of the previous L-1 positions.
  std::vector<float>& state = cache.conv_tail_[layer];
  float* v = Scratch(ws.conv_in, static_cast<size_t>(tail + n) * d);
  std::copy(state.begin(), state.end(), v);
#pragma omp parallel for schedule(static) if (n > 8)
  for (int t = 0; t < n; ++t) {
    const float* row = bcx + static_cast<size_t>(t) * 3 * d;
    float* dst = v + static_cast<size_t>(tail + t) * d;
    for (int c = 0; c < d; ++c) dst[c] = row[c] * row[2 * d + c];
  }
  // y = C * causal depthwise conv(v); the last tap multiplies the current position.
  float* y = Scratch(ws.conv_out, static_cast<size_t>(n) * d);
#pragma omp parallel for schedule(static) if (n > 8)
  for (int t = 0; t < n; ++t) {
    const float* gate_c = bcx + static_cast<size_t>(t) * 3 * d + d;
    float* dst = y + static_cast<size_t>(t) * d;
    for (int c = 0; c < d; ++c) {
      const float* kernel = l.conv_kernel.data() + static_cast<size_t>(c) * L;
      float acc = 0.0f;
      for (int k = 0; k < L; ++k) acc += kernel[k] * v[static_cast<size_t>(t + k) * d + c];
      dst[c] = gate_c[c] * acc;
    }
  }
  std::copy(v + static_cast<size_t>(n) * d, v + static_cast<size_t>(tail + n) * d, state.begin());
  if (cache.rewindable_) {
    cache.conv_chunk_.resize(cache.conv_tail_.size());
    cache.conv_chunk_[layer].assign(v, v + static_cast<size_t>(tail + n) * d);
  }
  l.conv_out_proj.Forward(y, n, out);
}

namespace {

void AppendF16(const float* src, size_t n, std::vector<uint16_t>& dst) {
  const size_t old = dst.size();
  dst.resize(old + n);
  for (size_t i = 0; i < n; ++i) dst[old + i] = quant::FloatToHalf(src[i]);
}

}  // namespace

void Lfm2Model::AttentionBlock(int layer, const float* x, int n, Lfm2Cache& cache,
                               float* out) const {
  const Weights::Layer& l = w_->layers[layer];
  const int hd = config_.head_dim(), heads = config_.num_attention_heads;
  const int kv_heads = config_.num_key_value_heads, group = heads / kv_heads;
  const int q_width = heads * hd, kv_width = kv_heads * hd;
  const float eps = static_cast<float>(config_.norm_eps);
  const int p0 = cache.position_;
  const size_t new_kv = static_cast<size_t>(n) * kv_width;
  Workspace& ws = ThreadWorkspace();
  float* q = Scratch(ws.q, static_cast<size_t>(n) * q_width);
  // New keys and values go straight into a float32 cache, or through scratch into an f16 one.
  std::vector<float>& keys = cache.keys_[layer];
  std::vector<float>& values = cache.values_[layer];
  float* new_k = Scratch(ws.new_k, new_kv);
  float* new_v = Scratch(ws.new_v, new_kv);
  const int first = cache.kv_first_;  // row 0 of the cached keys/values holds this position
  if (!cache.kv_f16_) {
    keys.resize(static_cast<size_t>(p0 - first + n) * kv_width);
    values.resize(static_cast<size_t>(p0 - first + n) * kv_width);
    new_k = keys.data() + static_cast<size_t>(p0 - first) * kv_width;
    new_v = values.data() + static_cast<size_t>(p0 - first) * kv_width;
  }
  const WeightMatrix* qkv[] = {&l.q_proj.weight, &l.k_proj.weight, &l.v_proj.weight};
  float* qkv_out[] = {q, new_k, new_v};
  WeightMatrix::MatMulTMany(qkv, x, n, qkv_out);
#pragma omp parallel for schedule(static) if (n > 8)
  for (int t = 0; t < n; ++t) {
    for (int h = 0; h < heads; ++h) {
      float* qh = q + static_cast<size_t>(t) * q_width + h * hd;
      ops::RmsNorm(qh, l.q_layernorm.data(), hd, eps, qh);
      rope::ApplyNeox(qh, hd, p0 + t, inv_freq_.data());
    }
    for (int h = 0; h < kv_heads; ++h) {
      float* kh = new_k + static_cast<size_t>(t) * kv_width + h * hd;
      ops::RmsNorm(kh, l.k_layernorm.data(), hd, eps, kh);
      rope::ApplyNeox(kh, hd, p0 + t, inv_freq_.data());
    }
  }
  if (cache.kv_f16_) {
    AppendF16(new_k, new_kv, cache.keys16_[layer]);
    AppendF16(new_v, new_kv, cache.values16_[layer]);
  }
  const uint16_t* keys16 = cache.keys16_[layer].data();
  const uint16_t* values16 = cache.values16_[layer].data();
  const rope::AttendF16Fn attend_f16 = rope::SelectAttendF16(hd);
  float* ctx = Scratch(ws.ctx, static_cast<size_t>(n) * q_width);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // A decode step splits its heads too once they see a few dozen positions each: the threads are
  // already spinning between the products, so the fork costs less than the serial heads.
#pragma omp parallel if (static_cast <long>(n) * (p0 + n) * heads > 2048)
  {
    // Per-thread and kept between calls: this runs for every attention layer of every step.
    thread_local std::vector<float> scores;
    if (scores.size() < static_cast<size_t>(p0 - first + n)) scores.resize(p0 - first + n);
#pragma omp for collapse(2) schedule(static)
    for (int h = 0; h < heads; ++h) {
      for (int t = 0; t < n; ++t) {
        const int kvh = h / group, p = p0 + t;
        const int oldest = sliding_window_ > 0 ? std::max(first, p - sliding_window_ + 1) : first;
        const int visible = p - oldest + 1;
        const size_t row = static_cast<size_t>(oldest - first) * kv_width + kvh * hd;
        const float* qh = q + static_cast<size_t>(t) * q_width + h * hd;
        float* ctx_h = ctx + static_cast<size_t>(t) * q_width + h * hd;
        if (cache.kv_f16_) {
          attend_f16(qh, keys16 + row, values16 + row, kv_width, visible, hd, scale, scores.data(),
                     ctx_h);
        } else {
          rope::AttendOne(qh, keys.data() + row, values.data() + row, kv_width, visible, hd, scale,
                          scores.data(), ctx_h);
        }
      }
    }
  }
  l.attn_out_proj.Forward(ctx, n, out);
}

void Lfm2Model::FeedForward(int layer, const float* x, int n, float* out) const {
  const Weights::Layer& l = w_->layers[layer];
  const int ff = l.w1.out();
  Workspace& ws = ThreadWorkspace();
  const size_t size = static_cast<size_t>(n) * ff;
  float* gate = Scratch(ws.gate, size);
  float* up = Scratch(ws.up, size);
  const WeightMatrix* gate_up[] = {&l.w1.weight, &l.w3.weight};
  float* gate_up_out[] = {gate, up};
  WeightMatrix::MatMulTMany(gate_up, x, n, gate_up_out);
  ops::SiluGateRows(gate, up, n, ff);
  l.w2.Forward(gate, n, out);
}

// The next query (position p) sees keys from p - window + 1 on, so older rows are never read
// again: a stream of any length keeps window - 1 rows per attention layer.
void Lfm2Model::DropKeysOutsideWindow(Lfm2Cache& cache) const {
  if (sliding_window_ <= 0) return;
  const int keep_from = std::max(cache.kv_first_, cache.position_ - (sliding_window_ - 1));
  const size_t drop = static_cast<size_t>(keep_from - cache.kv_first_) * cache.kv_width_;
  if (drop == 0) return;
  auto drop_front = [drop](auto& rows) {
    if (!rows.empty()) rows.erase(rows.begin(), rows.begin() + drop);
  };
  for (size_t i = 0; i < cache.keys_.size(); ++i) {
    drop_front(cache.keys_[i]);
    drop_front(cache.values_[i]);
    drop_front(cache.keys16_[i]);
    drop_front(cache.values16_[i]);
  }
  cache.kv_first_ = keep_from;
}

void Lfm2Model::Forward(const float* embeddings, int n, Lfm2Cache& cache, float* out,
                        std::vector<std::vector<float>>* layer_outputs) const {
  if (n <= 0) return;
  if (cache.keys_.size() != w_->layers.size()) {
    throw ModelError("Lfm2Model::Forward: cache was not made by this model (NewCache)");
  }
  const int d = config_.hidden_size;
  const float eps = static_cast<float>(config_.norm_eps);
  const size_t size = static_cast<size_t>(n) * d;
  Workspace& ws = ThreadWorkspace();
  float* h = Scratch(ws.h, size);
  float* normed = Scratch(ws.normed, size);
  float* delta = Scratch(ws.delta, size);
  std::copy(embeddings, embeddings + size, h);
  if (layer_outputs) layer_outputs->clear();
  if (cache.rewindable_) cache.chunk_first_ = cache.position_;
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    ThrowIfCancelled(cache.cancel_, "Lfm2Model::Forward");
    const Weights::Layer& l = w_->layers[i];
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; ++t) {
      ops::RmsNorm(h + static_cast<size_t>(t) * d, l.operator_norm.data(), d, eps,
                   normed + static_cast<size_t>(t) * d);
    }
    if (l.kind == LayerKind::kConv) {
      ConvBlock(i, normed, n, cache, delta);
    } else {
      AttentionBlock(i, normed, n, cache, delta);
    }
    for (size_t k = 0; k < size; ++k) h[k] += delta[k];
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; ++t) {
      ops::RmsNorm(h + static_cast<size_t>(t) * d, l.ffn_norm.data(), d, eps,
                   normed + static_cast<size_t>(t) * d);
    }
    FeedForward(i, normed, n, delta);
    for (size_t k = 0; k < size; ++k) h[k] += delta[k];
    if (layer_outputs) layer_outputs->emplace_back(h, h + size);
  }
  cache.position_ += n;
  DropKeysOutsideWindow(cache);
  for (int t = 0; t < n; ++t) {
    ops::RmsNorm(h + static_cast<size_t>(t) * d, w_->embedding_norm.data(), d, eps,
                 out + static_cast<size_t>(t) * d);
  }
}

std::vector<float> Lfm2Model::Forward(const std::vector<float>& embeddings,
                                      Lfm2Cache& cache) const {
  const int d = config_.hidden_size;
  if (embeddings.size() % d != 0) {
    throw ModelError("Lfm2Model::Forward: embeddings size " + std::to_string(embeddings.size()) +
                     " is not a multiple of hidden_size " + std::to_string(d));
  }
  std::vector<float> out(embeddings.size());
  Forward(embeddings.data(), static_cast<int>(embeddings.size() / d), cache, out.data());
  return out;
}

void Lfm2Model::TextLogits(const float* hidden, float* logits) const {
  w_->embed_tokens.MatMulT(hidden, 1, logits);
}

void Lfm2Model::TextLogits(const float* hidden, int n, float* logits) const {
  if (n > 0) w_->embed_tokens.MatMulT(hidden, n, logits);
}

bool Lfm2Model::rows_independent_of_batch() const {
  auto quantized = [](const WeightMatrix& m) {
    return m.format() == ops::WeightFormat::kQ8 || m.format() == ops::WeightFormat::kQ4;
  };
  if (!quantized(w_->embed_tokens)) return false;
  for (const Weights::Layer& l : w_->layers) {
    const bool ok = l.kind == LayerKind::kConv
                        ? quantized(l.in_proj.weight) && quantized(l.conv_out_proj.weight)
                        : quantized(l.q_proj.weight) && quantized(l.k_proj.weight) &&
                              quantized(l.v_proj.weight) && quantized(l.attn_out_proj.weight);
    if (!ok || !quantized(l.w1.weight) || !quantized(l.w2.weight) || !quantized(l.w3.weight)) {
      return false;
    }
  }
  return true;
}

void Lfm2Model::Rewind(Lfm2Cache& cache, int position) const {
  if (position == cache.position_) return;
  if (!cache.rewindable_ || cache.chunk_first_ < 0 || position < cache.chunk_first_ ||
      position > cache.position_) {
    throw ModelError("Lfm2Model::Rewind: position " + std::to_string(position) +
                     " is not within the last rewindable chunk");
  }
  if (sliding_window_ > 0) {
    throw ModelError("Lfm2Model::Rewind: not possible with a sliding window");
  }
  const int d = config_.hidden_size, tail = config_.conv_L_cache - 1;
  const size_t keep_rows = static_cast<size_t>(position - cache.kv_first_);
  for (size_t i = 0; i < cache.keys_.size(); ++i) {
    if (config_.layer_types[i] == LayerKind::kConv) {
      // Inputs of positions position - tail .. position - 1, counted from the chunk's history.
      const std::vector<float>& chunk = cache.conv_chunk_[i];
      const size_t from = static_cast<size_t>(position - cache.chunk_first_) * d;
      std::copy(chunk.begin() + from, chunk.begin() + from + static_cast<size_t>(tail) * d,
                cache.conv_tail_[i].begin());
    } else {
      const size_t width = static_cast<size_t>(cache.kv_width_);
      auto shrink = [&](auto& rows) {
        if (!rows.empty()) rows.resize(keep_rows * width);
      };
      shrink(cache.keys_[i]);
      shrink(cache.values_[i]);
      shrink(cache.keys16_[i]);
      shrink(cache.values16_[i]);
    }
  }
  cache.position_ = position;
}

std::vector<float> Lfm2Model::TextLogits(const float* hidden) const {
  std::vector<float> logits(config_.vocab_size);
  TextLogits(hidden, logits.data());
  return logits;
}

void Lfm2Model::EmbedText(const std::vector<int>& ids, float* out) const {
  const int d = config_.hidden_size;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= config_.vocab_size) {
      throw ModelError("text token id " + std::to_string(ids[i]) + " outside [0, " +
                       std::to_string(config_.vocab_size) + ")");
    }
    w_->embed_tokens.Row(ids[i], out + i * d);
  }
}

std::vector<float> Lfm2Model::EmbedText(const std::vector<int>& ids) const {
  std::vector<float> out(ids.size() * config_.hidden_size);
  EmbedText(ids, out.data());
  return out;
}

LogitAgreement CompareGreedyDecode(const Lfm2Model& reference, const Lfm2Model& candidate,
                                   const std::vector<float>& prompt_rows, int steps) {
  const int d = reference.hidden_size();
  if (candidate.hidden_size() != d || candidate.vocab_size() != reference.vocab_size() ||
      prompt_rows.empty() || prompt_rows.size() % d != 0) {
    throw ModelError("CompareGreedyDecode: models or prompt rows do not match");
  }
  Lfm2Cache cache_ref = reference.NewCache(), cache_cand = candidate.NewCache();
  std::vector<float> last_ref = reference.Forward(prompt_rows, cache_ref);
  std::vector<float> last_cand = candidate.Forward(prompt_rows, cache_cand);
  last_ref.erase(last_ref.begin(), last_ref.end() - d);
  last_cand.erase(last_cand.begin(), last_cand.end() - d);
  LogitAgreement a;
  a.steps = steps;
  int agree = 0, in_top5 = 0;
  for (int step = 0; step < steps; ++step) {
    const std::vector<float> l_ref = reference.TextLogits(last_ref.data());
    const std::vector<float> l_cand = candidate.TextLogits(last_cand.data());
    double max_ref = 0.0, max_diff = 0.0, sum_ref = 0.0, sum_diff = 0.0;
    for (size_t i = 0; i < l_ref.size(); ++i) {
      const double diff = static_cast<double>(l_cand[i]) - l_ref[i];
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(l_ref[i])));
      max_diff = std::max(max_diff, std::fabs(diff));
      sum_ref += static_cast<double>(l_ref[i]) * l_ref[i];
      sum_diff += diff * diff;
    }
    a.max_relative_error = std::max(a.max_relative_error, max_diff / std::max(max_ref, 1e-30));
    a.rms_relative_error =
        std::max(a.rms_relative_error, std::sqrt(sum_diff / std::max(sum_ref, 1e-30)));
    const int token = ArgMax(l_ref.data(), static_cast<int>(l_ref.size()));
    const int picked = ArgMax(l_cand.data(), static_cast<int>(l_cand.size()));
    agree += token == picked;
    // Reference logits above the picked one's (ties count for the pick): fewer than 5 puts the
    // pick in the reference's top 5.
    int above = 0;
    for (float v : l_ref) above += v > l_ref[picked];
    in_top5 += above < 5;
    last_ref = reference.Forward(reference.EmbedText({token}), cache_ref);
    last_cand = candidate.Forward(candidate.EmbedText({token}), cache_cand);
  }
  a.top1 = steps > 0 ? static_cast<double>(agree) / steps : 1.0;
  a.top5 = steps > 0 ? static_cast<double>(in_top5) / steps : 1.0;
  return a;
}

struct AudioEmbedding::Table {
  WeightMatrix embedding;  // [codebooks * 2049, hidden]
};

AudioEmbedding::~AudioEmbedding() = default;

std::shared_ptr<const AudioEmbedding> AudioEmbedding::Load(std::shared_ptr<const SafeTensors> st,
                                                           const AudioModelConfig& config) {
  std::shared_ptr<AudioEmbedding> e(new AudioEmbedding());
  e->codebooks_ = config.codebooks;
  e->hidden_ = config.lfm.hidden_size;
  auto table = std::make_unique<Table>();
  table->embedding = WeightMatrix::Load(
      *st, "audio_embedding.embedding.weight",
      {config.codebooks * AudioModelConfig::kAudioVocab, config.lfm.hidden_size});
  e->table_ = std::move(table);
  e->st_ = std::move(st);
  return e;
}

size_t AudioEmbedding::weight_bytes() const {
  return table_->embedding.bytes();
}

void AudioEmbedding::EmbedFrame(const int* codes, float* out) const {
  std::fill(out, out + hidden_, 0.0f);
  for (int c = 0; c < codebooks_; ++c) {
    if (codes[c] < 0 || codes[c] >= AudioModelConfig::kAudioVocab) {
      throw ModelError("audio code " + std::to_string(codes[c]) + " of codebook " +
                       std::to_string(c) + " outside [0, 2049)");
    }
    table_->embedding.AddRow(codes[c] + AudioModelConfig::kAudioVocab * c, out);
  }
}

}  // namespace eddy
