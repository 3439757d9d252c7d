// Audio-out head: depth_linear + depthformer + per-codebook logits (spec_backbone.md §2.4-2.5).
#include <algorithm>
#include <cmath>

#include "eddy/audio_head.h"
#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "ops.h"
#include "rope.h"

namespace eddy {

using ops::Linear;
using ops::WeightMatrix;

struct AudioHead::Weights {
  struct Layer {
    std::vector<float> operator_norm, ffn_norm, q_layernorm, k_layernorm;
    Linear qkv_proj, out_proj, w1, w3, w2;
  };
  struct Codebook {
    WeightMatrix embedding;  // [2049, dim]
    std::vector<float> embedding_norm;
    WeightMatrix to_logits;  // [2049, dim]
    bool tied = false;       // to_logits shares embedding's storage
  };
  Linear depth_linear;  // [codebooks * dim, hidden] + bias
  std::vector<Layer> layers;
  std::vector<Codebook> codebooks;
};

AudioHead::~AudioHead() = default;

std::shared_ptr<const AudioHead> AudioHead::Load(std::shared_ptr<const SafeTensors> st,
                                                 const AudioModelConfig& config,
                                                 const std::string& weight_format) {
  const DepthformerConfig& dc = config.depthformer;
  dc.Validate();
  const ops::WeightFormat format = ops::ParseWeightFormat(weight_format);
  std::shared_ptr<AudioHead> head(new AudioHead());
  head->codebooks_ = config.codebooks;
  head->dim_ = dc.dim;
  head->hidden_ = config.lfm.hidden_size;
  const int dim = dc.dim, hd = dc.head_dim(), ff = dc.ff_dim();
  const int qkv = dim + 2 * DepthformerConfig::kKvHeads * hd;
  const int vocab = AudioModelConfig::kAudioVocab;
  auto w = std::make_unique<Weights>();
  w->depth_linear =
      Linear::Load(*st, "depth_linear", config.codebooks * dim, head->hidden_, true, format);
  for (int l = 0; l < dc.layers; ++l) {
    const std::string p = "depthformer.layers." + std::to_string(l) + ".";
    Weights::Layer layer;
    layer.operator_norm = ops::LoadF32(*st, p + "operator_norm.weight", {dim});
    layer.ffn_norm = ops::LoadF32(*st, p + "ffn_norm.weight", {dim});
    layer.qkv_proj = Linear::Load(*st, p + "operator.qkv_proj", qkv, dim, false, format);
    layer.out_proj = Linear::Load(*st, p + "operator.out_proj", dim, dim, false, format);
    layer.q_layernorm =
        ops::LoadF32(*st, p + "operator.bounded_attention.q_layernorm.weight", {hd});
    layer.k_layernorm =
        ops::LoadF32(*st, p + "operator.bounded_attention.k_layernorm.weight", {hd});
    layer.w1 = Linear::Load(*st, p + "feed_forward.w1", ff, dim, false, format);
    layer.w3 = Linear::Load(*st, p + "feed_forward.w3", ff, dim, false, format);
    layer.w2 = Linear::Load(*st, p + "feed_forward.w2", dim, ff, false, format);
    w->layers.push_back(std::move(layer));
  }
  for (int c = 0; c < config.codebooks; ++c) {
    const std::string p = "depth_embeddings." + std::to_string(c) + ".";
    Weights::Codebook cb;
    cb.embedding = WeightMatrix::Load(*st, p + "embedding.weight", {vocab, dim}, format);
    cb.embedding_norm = ops::LoadF32(*st, p + "embedding_norm.weight", {dim});
    if (st->Has(p + "to_logits.weight")) {
      cb.to_logits = WeightMatrix::Load(*st, p + "to_logits.weight", {vocab, dim}, format);
    } else if (dc.tie) {
      cb.to_logits = cb.embedding;
      cb.tied = true;
    } else {
      throw ModelError("tensor '" + p + "to_logits.weight' missing and depthformer.tie is false");
    }
    w->codebooks.push_back(std::move(cb));
  }
  head->w_ = std::move(w);
  head->inv_freq_ = rope::InverseFrequencies(hd, DepthformerConfig::kRopeTheta, false);
  head->st_ = std::move(st);
  return head;
}

size_t AudioHead::weight_bytes() const {
  size_t total = w_->depth_linear.bytes();
  for (const Weights::Layer& l : w_->layers) {
    total += ops::Bytes(l.operator_norm) + ops::Bytes(l.ffn_norm) + ops::Bytes(l.q_layernorm) +
             ops::Bytes(l.k_layernorm) + l.qkv_proj.bytes() + l.out_proj.bytes() + l.w1.bytes() +
             l.w3.bytes() + l.w2.bytes();
  }
  for (const Weights::Codebook& cb : w_->codebooks) {
    total += cb.embedding.bytes() + ops::Bytes(cb.embedding_norm);
    if (!cb.tied) total += cb.to_logits.bytes();
  }
  return total;
}

AudioHeadState AudioHead::NewState() const {
  AudioHeadState s;
  const int hd = dim_ / DepthformerConfig::kHeads;
  const size_t kv = static_cast<size_t>(DepthformerConfig::kKvHeads) * hd;
  const int ff = w_->layers.empty() ? 0 : w_->layers[0].w1.out();
  s.keys.assign(w_->layers.size(), std::vector<float>(codebooks_ * kv));
  s.values.assign(w_->layers.size(), std::vector<float>(codebooks_ * kv));
  s.depth_in.resize(static_cast<size_t>(codebooks_) * dim_);
  s.x.resize(dim_);
  s.normed.resize(dim_);
  s.delta.resize(dim_);
  s.qkv.resize(dim_ + 2 * kv);
  s.ctx.resize(dim_);
  s.gate.resize(ff);
  s.up.resize(ff);
  s.scores.resize(codebooks_);
  s.prev.resize(dim_);
  s.logits.resize(AudioModelConfig::kAudioVocab);
  return s;
}

void AudioHead::DepthLinear(const float* hidden, float* out) const {
  w_->depth_linear.Forward(hidden, 1, out);
}

void AudioHead::DepthformerStep(float* x, int pos, AudioHeadState& s) const {
  const int heads = DepthformerConfig::kHeads, kv_heads = DepthformerConfig::kKvHeads;
  const int hd = dim_ / heads, kv_width = kv_heads * hd, group = heads / kv_heads;
  const float eps = static_cast<float>(DepthformerConfig::kNormEps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (size_t l = 0; l < w_->layers.size(); ++l) {
    const Weights::Layer& layer = w_->layers[l];
    ops::RmsNorm(x, layer.operator_norm.data(), dim_, eps, s.normed.data());
    layer.qkv_proj.Forward(s.normed.data(), 1, s.qkv.data());
    float* q = s.qkv.data();
    float* k = q + dim_;
    const float* v = k + kv_width;
    for (int h = 0; h < heads; ++h) {
      ops::RmsNorm(q + h * hd, layer.q_layernorm.data(), hd, eps, q + h * hd);
      rope::ApplyInterleaved(q + h * hd, hd, pos, inv_freq_.data());
    }
    for (int h = 0; h < kv_heads; ++h) {
      ops::RmsNorm(k + h * hd, layer.k_layernorm.data(), hd, eps, k + h * hd);
      rope::ApplyInterleaved(k + h * hd, hd, pos, inv_freq_.data());
    }
    std::copy(k, k + kv_width, s.keys[l].begin() + static_cast<size_t>(pos) * kv_width);
    std::copy(v, v + kv_width, s.values[l].begin() + static_cast<size_t>(pos) * kv_width);
    for (int h = 0; h < heads; ++h) {
      const int kvh = h / group;
      rope::AttendOne(q + h * hd, s.keys[l].data() + kvh * hd, s.values[l].data() + kvh * hd,
                      kv_width, pos + 1, hd, scale, s.scores.data(), s.ctx.data() + h * hd);
    }
    layer.out_proj.Forward(s.ctx.data(), 1, s.delta.data());
    for (int i = 0; i < dim_; ++i) x[i] += s.delta[i];
    ops::RmsNorm(x, layer.ffn_norm.data(), dim_, eps, s.normed.data());
    const WeightMatrix* gate_up[] = {&layer.w1.weight, &layer.w3.weight};
    float* gate_up_out[] = {s.gate.data(), s.up.data()};
    WeightMatrix::MatMulTMany(gate_up, s.normed.data(), 1, gate_up_out);
    ops::SiluGateRows(s.gate.data(), s.up.data(), 1, static_cast<int>(s.gate.size()));
    layer.w2.Forward(s.gate.data(), 1, s.delta.data());
    for (int i = 0; i < dim_; ++i) x[i] += s.delta[i];
  }
}

AudioFrame AudioHead::SampleFrame(const float* hidden, const SamplingParams& params,
                                  Sampler& sampler, AudioHeadState& s, bool keep_logits) const {
  if (s.keys.size() != w_->layers.size() || s.depth_in.size() != size_t(codebooks_) * dim_) {
    throw ModelError("AudioHead::SampleFrame: state was not made by this head (NewState)");
  }
  const int vocab = AudioModelConfig::kAudioVocab;
  const float eps = static_cast<float>(DepthformerConfig::kNormEps);
  AudioFrame frame;
  frame.codes.resize(codebooks_);
  if (keep_logits) frame.logits.assign(codebooks_, std::vector<float>(vocab));
  std::vector<float>& logits = s.logits;
  DepthLinear(hidden, s.depth_in.data());
  std::fill(s.prev.begin(), s.prev.end(), 0.0f);
  for (int c = 0; c < codebooks_; ++c) {
    const float* in = s.depth_in.data() + static_cast<size_t>(c) * dim_;
    for (int i = 0; i < dim_; ++i) s.x[i] = in[i] + s.prev[i];
    DepthformerStep(s.x.data(), c, s);
    const Weights::Codebook& cb = w_->codebooks[c];
    ops::RmsNorm(s.x.data(), cb.embedding_norm.data(), dim_, eps, s.normed.data());
    cb.to_logits.MatMulT(s.normed.data(), 1, logits.data());
    if (keep_logits) frame.logits[c] = logits;
    frame.codes[c] = sampler.Sample(logits.data(), vocab, params);
    cb.embedding.Row(frame.codes[c], s.prev.data());
  }
  if (frame.codes[0] == AudioModelConfig::kEndOfAudio) {
    frame.end_of_audio = true;
    std::fill(frame.codes.begin(), frame.codes.end(), AudioModelConfig::kEndOfAudio);
  }
  return frame;
}

}  // namespace eddy
