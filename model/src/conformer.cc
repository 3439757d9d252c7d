// FastConformer encoder + adapter (spec_audio.md §3). Member names follow the checkpoint's module
// paths (conformer.pre_encode.conv.N, conformer.layers.i.self_attn.linear_q, ...).
#include "eddy/conformer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "eddy/model_error.h"
#include "ops.h"

namespace eddy {

using ops::Mat;

namespace {

// The reference's nn.LayerNorm and nn.BatchNorm1d defaults.
constexpr float kLayerNormEps = 1e-5f;
constexpr double kBatchNormEps = 1e-5;
// dw_striding: 3x3 kernels, stride 2, padding 1 on every side (non-causal).
constexpr int kSubsamplingKernel = 3;
constexpr int kSubsamplingStride = 2;
constexpr int kSubsamplingPad = 1;
constexpr int kSubsamplingStages = 3;  // log2(subsampling_factor 8)
constexpr double kPositionalBase = 10000.0;

// The reference's calc_length for one stride-2 conv: floor((len + 2*pad - k) / stride) + 1.
int StridedLength(int len) {
  return (len + 2 * kSubsamplingPad - kSubsamplingKernel) / kSubsamplingStride + 1;
}

// A [C, 1, 3, 3] conv kernel transposed to tap-major [9][C] so that the inner loops run over
// contiguous channels.
std::vector<float> TapMajor(const std::vector<float>& w, int channels, int taps) {
  std::vector<float> out(w.size());
  for (int c = 0; c < channels; ++c) {
    for (int k = 0; k < taps; ++k) out[static_cast<size_t>(k) * channels + c] = w[c * taps + k];
  }
  return out;
}

}  // namespace

struct DepthwisePointwise {
  std::vector<float> depthwise_weight;  // conv.{2,5}.weight, tap-major [9][C]
  std::vector<float> depthwise_bias;    // [C]
  ops::Linear pointwise;                // conv.{3,6} as [C, C]
};

struct PreEncodeWeights {
  std::vector<float> conv0_weight;  // conv.0.weight, tap-major [9][C]
  std::vector<float> conv0_bias;    // [C]
  std::vector<DepthwisePointwise> stages;
  ops::Linear out;  // [d_model, C * F']
};

struct ConformerLayerWeights {
  std::vector<float> norm_feed_forward1_weight, norm_feed_forward1_bias;
  ops::Linear feed_forward1_linear1, feed_forward1_linear2;
  std::vector<float> norm_self_att_weight, norm_self_att_bias;
  ops::Linear linear_q, linear_k, linear_v, linear_out;
  ops::Linear linear_pos;                     // no bias
  std::vector<float> pos_bias_u, pos_bias_v;  // [heads * d_k]
  std::vector<float> norm_conv_weight, norm_conv_bias;
  ops::Linear pointwise_conv1;          // [2d, d]
  std::vector<float> depthwise_weight;  // tap-major [k][d]
  std::vector<float> depthwise_bias;    // [d]
  std::vector<float> batch_norm_scale;  // weight / sqrt(running_var + eps)
  std::vector<float> batch_norm_shift;  // bias - running_mean * scale
  ops::Linear pointwise_conv2;          // [d, d]
  std::vector<float> norm_feed_forward2_weight, norm_feed_forward2_bias;
  ops::Linear feed_forward2_linear1, feed_forward2_linear2;
  std::vector<float> norm_out_weight, norm_out_bias;
};

struct AdapterWeights {
  std::vector<float> norm_weight, norm_bias;  // audio_adapter.model.0
  ops::Linear linear1;                        // audio_adapter.model.1
  ops::Linear linear2;                        // audio_adapter.model.3
};

struct ConformerWeights {
  EncoderConfig config;
  int backbone_hidden = 0;
  int freq_out = 0;  // F' after subsampling
  PreEncodeWeights pre_encode;
  std::vector<ConformerLayerWeights> layers;
  AdapterWeights adapter;
  size_t bytes = 0;  // as held: float32 copies, or the mapping's dtype when viewed
};

namespace {

int SubsampledFeatures(const EncoderConfig& c) {
  int f = c.feat_in;
  for (int i = 0; i < kSubsamplingStages; ++i) f = StridedLength(f);
  return f;
}

// Big matrices either view the file mapping or are copied into process memory as float32.
struct MatrixLoader {
  const SafeTensors& st;
  EncoderWeightStorage storage;
  std::map<std::string, size_t>* matrix_bytes;  // bytes of every matrix as held, by name

  ops::WeightMatrix Matrix(const std::string& name, const std::vector<int64_t>& shape) const {
    ops::WeightMatrix m;
    if (storage == EncoderWeightStorage::kMapped) {
      m = ops::WeightMatrix::Load(st, name, shape);
    } else if (storage == EncoderWeightStorage::kQuantizedQ8) {
      m = ops::WeightMatrix::Load(st, name, shape, ops::WeightFormat::kQ8);
    } else {
      int64_t cols = 1;
      for (size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
      m = ops::WeightMatrix::FromOwned(ops::LoadF32(st, name, shape), static_cast<int>(shape[0]),
                                       static_cast<int>(cols));
    }
    (*matrix_bytes)[name] = m.bytes();
    return m;
  }
  ops::Linear Linear(const std::string& prefix, int out, int in, bool has_bias) const {
    ops::Linear l;
    l.weight = Matrix(prefix + ".weight", {out, in});
    if (has_bias) l.bias = ops::LoadF32(st, prefix + ".bias", {out});
    return l;
  }
};

std::string LayerPrefix(int i) {
  return "conformer.layers." + std::to_string(i) + ".";
}

ConformerLayerWeights LoadLayer(const SafeTensors& st, const MatrixLoader& load,
                                const EncoderConfig& c, int index) {
  const std::string p = LayerPrefix(index);
  const int d = c.d_model, ff = c.d_ff(), k = c.conv_kernel_size;
  ConformerLayerWeights w;
  w.norm_feed_forward1_weight = ops::LoadF32(st, p + "norm_feed_forward1.weight", {d});
  w.norm_feed_forward1_bias = ops::LoadF32(st, p + "norm_feed_forward1.bias", {d});
  w.feed_forward1_linear1 = load.Linear(p + "feed_forward1.linear1", ff, d, true);
  w.feed_forward1_linear2 = load.Linear(p + "feed_forward1.linear2", d, ff, true);
  w.norm_self_att_weight = ops::LoadF32(st, p + "norm_self_att.weight", {d});
  w.norm_self_att_bias = ops::LoadF32(st, p + "norm_self_att.bias", {d});
  w.linear_q = load.Linear(p + "self_attn.linear_q", d, d, true);
  w.linear_k = load.Linear(p + "self_attn.linear_k", d, d, true);
  w.linear_v = load.Linear(p + "self_attn.linear_v", d, d, true);
  w.linear_out = load.Linear(p + "self_attn.linear_out", d, d, true);
  w.linear_pos = load.Linear(p + "self_attn.linear_pos", d, d, false);
  const int heads = c.n_heads, dk = d / heads;
  w.pos_bias_u = ops::LoadF32(st, p + "self_attn.pos_bias_u", {heads, dk});
  w.pos_bias_v = ops::LoadF32(st, p + "self_attn.pos_bias_v", {heads, dk});
  w.norm_conv_weight = ops::LoadF32(st, p + "norm_conv.weight", {d});
  w.norm_conv_bias = ops::LoadF32(st, p + "norm_conv.bias", {d});
  w.pointwise_conv1.weight = load.Matrix(p + "conv.pointwise_conv1.weight", {2 * d, d, 1});
  w.pointwise_conv1.bias = ops::LoadF32(st, p + "conv.pointwise_conv1.bias", {2 * d});
  w.depthwise_weight =
      TapMajor(ops::LoadF32(st, p + "conv.depthwise_conv.weight", {d, 1, k}), d, k);
  w.depthwise_bias = ops::LoadF32(st, p + "conv.depthwise_conv.bias", {d});
  const auto bn_weight = ops::LoadF32(st, p + "conv.batch_norm.weight", {d});
  const auto bn_bias = ops::LoadF32(st, p + "conv.batch_norm.bias", {d});
  const auto bn_mean = ops::LoadF32(st, p + "conv.batch_norm.running_mean", {d});
  const auto bn_var = ops::LoadF32(st, p + "conv.batch_norm.running_var", {d});
  w.batch_norm_scale.resize(d);
  w.batch_norm_shift.resize(d);
  for (int i = 0; i < d; ++i) {
    if (!(bn_var[i] >= 0.0f)) {
      throw ModelError("tensor '" + p + "conv.batch_norm.running_var' has a negative or NaN value");
    }
    const double scale = bn_weight[i] / std::sqrt(static_cast<double>(bn_var[i]) + kBatchNormEps);
    w.batch_norm_scale[i] = static_cast<float>(scale);
    w.batch_norm_shift[i] = static_cast<float>(bn_bias[i] - bn_mean[i] * scale);
  }
  w.pointwise_conv2.weight = load.Matrix(p + "conv.pointwise_conv2.weight", {d, d, 1});
  w.pointwise_conv2.bias = ops::LoadF32(st, p + "conv.pointwise_conv2.bias", {d});
  w.norm_feed_forward2_weight = ops::LoadF32(st, p + "norm_feed_forward2.weight", {d});
  w.norm_feed_forward2_bias = ops::LoadF32(st, p + "norm_feed_forward2.bias", {d});
  w.feed_forward2_linear1 = load.Linear(p + "feed_forward2.linear1", ff, d, true);
  w.feed_forward2_linear2 = load.Linear(p + "feed_forward2.linear2", d, ff, true);
  w.norm_out_weight = ops::LoadF32(st, p + "norm_out.weight", {d});
  w.norm_out_bias = ops::LoadF32(st, p + "norm_out.bias", {d});
  return w;
}

// ---- element-wise helpers (vectorised through Eigen's array functions) ----

void ReluInPlace(Mat& x) {
  x = x.cwiseMax(0.0f);
}

void SiluInPlace(Mat& x) {
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    auto row = x.row(r).array();
    row = row / (1.0f + (-row).exp());
  }
}

void GeluErfInPlace(Mat& x) {
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    float* row = x.row(r).data();
    for (Eigen::Index i = 0; i < x.cols(); ++i) row[i] = ops::GeluErf(row[i]);
  }
}

Mat LayerNormed(const Mat& x, const std::vector<float>& weight, const std::vector<float>& bias) {
  Mat y = x;
  ops::LayerNormRows(y, weight, bias, kLayerNormEps);
  return y;
}

// ---- pre_encode: activations are [time][freq][channel] so channel loops are contiguous ----

struct Image {
  int time = 0, freq = 0, channels = 0;
  Mat data;  // [time * freq, channels]
  const float* at(int t, int f) const {
    return data.data() + (static_cast<size_t>(t) * freq + f) * channels;
  }
  float* at(int t, int f) { return data.data() + (static_cast<size_t>(t) * freq + f) * channels; }
};

// conv.0: one input channel to C channels, 3x3, stride 2, padding 1, as im2col + GEMM; then
// ReLU (conv.1).
Image Conv0(const float* mel, int n_frames, int n_features, const PreEncodeWeights& w) {
  constexpr int kTaps = kSubsamplingKernel * kSubsamplingKernel;
  Image out;
  out.time = StridedLength(n_frames);
  out.freq = StridedLength(n_features);
  out.channels = static_cast<int>(w.conv0_bias.size());
  Mat patches(static_cast<Eigen::Index>(out.time) * out.freq, kTaps);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < out.time; ++t) {
    for (int f = 0; f < out.freq; ++f) {
      float* patch = patches.row(static_cast<Eigen::Index>(t) * out.freq + f).data();
      for (int dt = 0; dt < kSubsamplingKernel; ++dt) {
        const int ti = t * kSubsamplingStride + dt - kSubsamplingPad;
        for (int df = 0; df < kSubsamplingKernel; ++df) {
          const int fi = f * kSubsamplingStride + df - kSubsamplingPad;
          const bool inside = ti >= 0 && ti < n_frames && fi >= 0 && fi < n_features;
          // mel is feature-major: element (feature fi, frame ti).
          patch[dt * kSubsamplingKernel + df] =
              inside ? mel[static_cast<size_t>(fi) * n_frames + ti] : 0.0f;
        }
      }
    }
  }
  const ops::ConstMatMap taps(w.conv0_weight.data(), kTaps, out.channels);  // [9][C]
  const Eigen::Map<const Eigen::RowVectorXf> bias(w.conv0_bias.data(), out.channels);
  out.data.resize(patches.rows(), out.channels);
  // Row blocks in parallel: one product with k = 9 is too thin for Eigen's own threading.
  const Eigen::Index rows = patches.rows();
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), id = omp_get_thread_num();
    const Eigen::Index r0 = rows * id / threads, r1 = rows * (id + 1) / threads;
    auto block = out.data.middleRows(r0, r1 - r0);
    block.noalias() = patches.middleRows(r0, r1 - r0) * taps;
    block = (block.rowwise() + bias).cwiseMax(0.0f);
  }
  return out;
}

// Depthwise 3x3 stride-2 conv (conv.2 / conv.5), then pointwise 1x1 (conv.3 / conv.6), ReLU.
Image DepthwisePointwiseStage(const Image& in, const DepthwisePointwise& w) {
  using Channels = Eigen::Map<Eigen::ArrayXf>;
  using ConstChannels = Eigen::Map<const Eigen::ArrayXf>;
  const int channels = in.channels;
  Image dw;
  dw.time = StridedLength(in.time);
  dw.freq = StridedLength(in.freq);
  dw.channels = channels;
  dw.data.resize(static_cast<Eigen::Index>(dw.time) * dw.freq, channels);
  const ConstChannels bias(w.depthwise_bias.data(), channels);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < dw.time; ++t) {
    for (int f = 0; f < dw.freq; ++f) {
      Channels acc(dw.at(t, f), channels);
      acc = bias;
      for (int dt = 0; dt < kSubsamplingKernel; ++dt) {
        const int ti = t * kSubsamplingStride + dt - kSubsamplingPad;
        if (ti < 0 || ti >= in.time) continue;
        for (int df = 0; df < kSubsamplingKernel; ++df) {
          const int fi = f * kSubsamplingStride + df - kSubsamplingPad;
          if (fi < 0 || fi >= in.freq) continue;
          const ConstChannels tap(w.depthwise_weight.data() +
                                      static_cast<size_t>(dt * kSubsamplingKernel + df) * channels,
                                  channels);
          acc += ConstChannels(in.at(ti, fi), channels) * tap;
        }
      }
    }
  }
  Image out;
  out.time = dw.time;
  out.freq = dw.freq;
  out.channels = w.pointwise.out();
  out.data = w.pointwise.Forward(dw.data);
  ReluInPlace(out.data);
  return out;
}

Mat PreEncode(const float* mel, int n_frames, const ConformerWeights& w) {
  Image x = Conv0(mel, n_frames, w.config.feat_in, w.pre_encode);
  for (const auto& stage : w.pre_encode.stages) x = DepthwisePointwiseStage(x, stage);
  // The reference flattens [C, T', F'] as [T', C * F'] (channel-major within a frame).
  Mat flat(x.time, static_cast<Eigen::Index>(x.channels) * x.freq);
  for (int t = 0; t < x.time; ++t) {
    float* dst = flat.row(t).data();
    for (int f = 0; f < x.freq; ++f) {
      const float* src = x.at(t, f);
      for (int c = 0; c < x.channels; ++c) dst[static_cast<size_t>(c) * x.freq + f] = src[c];
    }
  }
  return w.pre_encode.out.Forward(flat);
}

// ---- relative positional encoding ----

// Row k holds PE(T'-1-k), k = 0..2T'-2, computed in float32 like the reference's table.
Mat RelativePositionTable(int frames, int d_model) {
  Mat pe(2 * frames - 1, d_model);
  const float step = static_cast<float>(-(std::log(kPositionalBase) / d_model));
  std::vector<float> inv_freq(d_model / 2);
  for (int i = 0; i < d_model / 2; ++i) inv_freq[i] = std::exp(static_cast<float>(2 * i) * step);
#pragma omp parallel for schedule(static)
  for (int k = 0; k < 2 * frames - 1; ++k) {
    const float position = static_cast<float>(frames - 1 - k);
    float* row = pe.row(k).data();
    for (int i = 0; i < d_model / 2; ++i) {
      const float angle = position * inv_freq[i];
      row[2 * i] = std::sin(angle);
      if (2 * i + 1 < d_model) row[2 * i + 1] = std::cos(angle);
    }
  }
  return pe;
}

// ---- one conformer layer ----

Mat FeedForward(const Mat& x, const ops::Linear& linear1, const ops::Linear& linear2) {
  Mat h = linear1.Forward(x);
  SiluInPlace(h);
  return linear2.Forward(h);
}

// Transformer-XL attention with the rel_shift of the reference: the score of query i on key j
// uses the positional row of relative position i - j, i.e. column T'-1-i+j of (q+v)·P^T.
Mat SelfAttention(const Mat& z, const Mat& pos_table, const ConformerLayerWeights& w, int heads) {
  const int frames = static_cast<int>(z.rows());
  const int d = static_cast<int>(z.cols());
  const int dk = d / heads;
  const Mat q = w.linear_q.Forward(z);
  const Mat k = w.linear_k.Forward(z);
  const Mat v = w.linear_v.Forward(z);
  const Mat p = w.linear_pos.Forward(pos_table);
  const float scale = std::sqrt(static_cast<float>(dk));
  Mat context(frames, d);
#pragma omp parallel for schedule(dynamic)
  for (int h = 0; h < heads; ++h) {
    const Eigen::Map<const Eigen::RowVectorXf> u(w.pos_bias_u.data() + h * dk, dk);
    const Eigen::Map<const Eigen::RowVectorXf> vb(w.pos_bias_v.data() + h * dk, dk);
    const Mat q_u = q.middleCols(h * dk, dk).rowwise() + u;
    const Mat q_v = q.middleCols(h * dk, dk).rowwise() + vb;
    Mat scores = q_u * k.middleCols(h * dk, dk).transpose();
    const Mat bd_raw = q_v * p.middleCols(h * dk, dk).transpose();
    for (int i = 0; i < frames; ++i) {
      auto row = scores.row(i).array();
      row = (row + bd_raw.row(i).segment(frames - 1 - i, frames).array()) / scale;
      row = (row - row.maxCoeff()).exp();
      row /= row.sum();
    }
    context.middleCols(h * dk, dk).noalias() = scores * v.middleCols(h * dk, dk);
  }
  return w.linear_out.Forward(context);
}

// pointwise_conv1 -> GLU -> depthwise conv ('same') -> BatchNorm (folded) -> SiLU ->
// pointwise_conv2.
Mat ConvModule(const Mat& z, const ConformerLayerWeights& w, int kernel) {
  const int frames = static_cast<int>(z.rows());
  const int d = static_cast<int>(z.cols());
  const Mat pw1 = w.pointwise_conv1.Forward(z);
  Mat glu(frames, d);
  for (int t = 0; t < frames; ++t) {
    const auto a = pw1.row(t).head(d).array();
    const auto b = pw1.row(t).tail(d).array();
    glu.row(t).array() = a / (1.0f + (-b).exp());
  }
  const int pad = (kernel - 1) / 2;
  using Channels = Eigen::Map<Eigen::ArrayXf>;
  using ConstChannels = Eigen::Map<const Eigen::ArrayXf>;
  const ConstChannels bias(w.depthwise_bias.data(), d);
  const ConstChannels bn_scale(w.batch_norm_scale.data(), d);
  const ConstChannels bn_shift(w.batch_norm_shift.data(), d);
  Mat dw(frames, d);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < frames; ++t) {
    Channels acc(dw.row(t).data(), d);
    acc = bias;
    for (int j = 0; j < kernel; ++j) {
      const int ti = t + j - pad;
      if (ti < 0 || ti >= frames) continue;
      acc += ConstChannels(glu.row(ti).data(), d) *
             ConstChannels(w.depthwise_weight.data() + static_cast<size_t>(j) * d, d);
    }
    acc = acc * bn_scale + bn_shift;
  }
  SiluInPlace(dw);
  return w.pointwise_conv2.Forward(dw);
}

Mat ConformerLayer(const Mat& x, const Mat& pos_table, const ConformerLayerWeights& w,
                   const EncoderConfig& c) {
  Mat r = x;
  r += 0.5f * FeedForward(LayerNormed(r, w.norm_feed_forward1_weight, w.norm_feed_forward1_bias),
                          w.feed_forward1_linear1, w.feed_forward1_linear2);
  r += SelfAttention(LayerNormed(r, w.norm_self_att_weight, w.norm_self_att_bias), pos_table, w,
                     c.n_heads);
  r += ConvModule(LayerNormed(r, w.norm_conv_weight, w.norm_conv_bias), w, c.conv_kernel_size);
  r += 0.5f * FeedForward(LayerNormed(r, w.norm_feed_forward2_weight, w.norm_feed_forward2_bias),
                          w.feed_forward2_linear1, w.feed_forward2_linear2);
  ops::LayerNormRows(r, w.norm_out_weight, w.norm_out_bias, kLayerNormEps);
  return r;
}

Mat Adapter(const Mat& x, const AdapterWeights& w) {
  Mat h = w.linear1.Forward(LayerNormed(x, w.norm_weight, w.norm_bias));
  GeluErfInPlace(h);
  return w.linear2.Forward(h);
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> ConformerEncoder::TensorShapes(
    const EncoderConfig& c, int backbone_hidden) {
  const int64_t ch = c.subsampling_conv_channels, d = c.d_model, ff = c.d_ff();
  const int64_t heads = c.n_heads, k = c.conv_kernel_size, hidden = backbone_hidden;
  const int64_t flat = ch * SubsampledFeatures(c);
  std::vector<std::pair<std::string, std::vector<int64_t>>> s = {
      {"conformer.pre_encode.conv.0.weight", {ch, 1, 3, 3}},
      {"conformer.pre_encode.conv.0.bias", {ch}},
      {"conformer.pre_encode.conv.2.weight", {ch, 1, 3, 3}},
      {"conformer.pre_encode.conv.2.bias", {ch}},
      {"conformer.pre_encode.conv.3.weight", {ch, ch, 1, 1}},
      {"conformer.pre_encode.conv.3.bias", {ch}},
      {"conformer.pre_encode.conv.5.weight", {ch, 1, 3, 3}},
      {"conformer.pre_encode.conv.5.bias", {ch}},
      {"conformer.pre_encode.conv.6.weight", {ch, ch, 1, 1}},
      {"conformer.pre_encode.conv.6.bias", {ch}},
      {"conformer.pre_encode.out.weight", {d, flat}},
      {"conformer.pre_encode.out.bias", {d}},
  };
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = LayerPrefix(i);
    const std::vector<std::pair<std::string, std::vector<int64_t>>> layer = {
        {"norm_feed_forward1.weight", {d}},
        {"norm_feed_forward1.bias", {d}},
        {"feed_forward1.linear1.weight", {ff, d}},
        {"feed_forward1.linear1.bias", {ff}},
        {"feed_forward1.linear2.weight", {d, ff}},
        {"feed_forward1.linear2.bias", {d}},
        {"norm_self_att.weight", {d}},
        {"norm_self_att.bias", {d}},
        {"self_attn.linear_q.weight", {d, d}},
        {"self_attn.linear_q.bias", {d}},
        {"self_attn.linear_k.weight", {d, d}},
        {"self_attn.linear_k.bias", {d}},
        {"self_attn.linear_v.weight", {d, d}},
        {"self_attn.linear_v.bias", {d}},
        {"self_attn.linear_out.weight", {d, d}},
        {"self_attn.linear_out.bias", {d}},
        {"self_attn.linear_pos.weight", {d, d}},
        {"self_attn.pos_bias_u", {heads, d / heads}},
        {"self_attn.pos_bias_v", {heads, d / heads}},
        {"norm_conv.weight", {d}},
        {"norm_conv.bias", {d}},
        {"conv.pointwise_conv1.weight", {2 * d, d, 1}},
        {"conv.pointwise_conv1.bias", {2 * d}},
        {"conv.depthwise_conv.weight", {d, 1, k}},
        {"conv.depthwise_conv.bias", {d}},
        {"conv.batch_norm.weight", {d}},
        {"conv.batch_norm.bias", {d}},
        {"conv.batch_norm.running_mean", {d}},
        {"conv.batch_norm.running_var", {d}},
        {"conv.pointwise_conv2.weight", {d, d, 1}},
        {"conv.pointwise_conv2.bias", {d}},
        {"norm_feed_forward2.weight", {d}},
        {"norm_feed_forward2.bias", {d}},
        {"feed_forward2.linear1.weight", {ff, d}},
        {"feed_forward2.linear1.bias", {ff}},
        {"feed_forward2.linear2.weight", {d, ff}},
        {"feed_forward2.linear2.bias", {d}},
        {"norm_out.weight", {d}},
        {"norm_out.bias", {d}},
    };
    for (const auto& [name, shape] : layer) s.emplace_back(p + name, shape);
  }
  s.push_back({"audio_adapter.model.0.weight", {d}});
  s.push_back({"audio_adapter.model.0.bias", {d}});
  s.push_back({"audio_adapter.model.1.weight", {hidden, d}});
  s.push_back({"audio_adapter.model.1.bias", {hidden}});
  s.push_back({"audio_adapter.model.3.weight", {hidden, hidden}});
  s.push_back({"audio_adapter.model.3.bias", {hidden}});
  return s;
}

ConformerEncoder ConformerEncoder::Load(const SafeTensors& st, const EncoderConfig& config,
                                        int backbone_hidden, EncoderWeightStorage storage) {
  std::map<std::string, size_t> matrix_bytes;
  const MatrixLoader load{st, storage, &matrix_bytes};
  try {
    config.Validate();
  } catch (const std::invalid_argument& e) {
    throw ModelError(st.path().string() + ": " + e.what());
  }
  if (backbone_hidden <= 0) {
    throw ModelError("ConformerEncoder: backbone hidden size must be positive, got " +
                     std::to_string(backbone_hidden));
  }
  auto w = std::make_shared<ConformerWeights>();
  w->config = config;
  w->backbone_hidden = backbone_hidden;
  w->freq_out = SubsampledFeatures(config);
  const int ch = config.subsampling_conv_channels, d = config.d_model;
  const std::string pre = "conformer.pre_encode.";
  auto& pe = w->pre_encode;
  pe.conv0_weight = TapMajor(ops::LoadF32(st, pre + "conv.0.weight", {ch, 1, 3, 3}), ch, 9);
  pe.conv0_bias = ops::LoadF32(st, pre + "conv.0.bias", {ch});
  for (int conv : {2, 5}) {
    const std::string dw = pre + "conv." + std::to_string(conv) + ".";
    const std::string pw = pre + "conv." + std::to_string(conv + 1) + ".";
    DepthwisePointwise stage;
    stage.depthwise_weight = TapMajor(ops::LoadF32(st, dw + "weight", {ch, 1, 3, 3}), ch, 9);
    stage.depthwise_bias = ops::LoadF32(st, dw + "bias", {ch});
    stage.pointwise.weight = load.Matrix(pw + "weight", {ch, ch, 1, 1});
    stage.pointwise.bias = ops::LoadF32(st, pw + "bias", {ch});
    pe.stages.push_back(std::move(stage));
  }
  pe.out = load.Linear(pre + "out", d, ch * w->freq_out, true);
  for (int i = 0; i < config.n_layers; ++i) w->layers.push_back(LoadLayer(st, load, config, i));
  const std::string ad = "audio_adapter.model.";
  w->adapter.norm_weight = ops::LoadF32(st, ad + "0.weight", {d});
  w->adapter.norm_bias = ops::LoadF32(st, ad + "0.bias", {d});
  w->adapter.linear1 = load.Linear(ad + "1", backbone_hidden, d, true);
  w->adapter.linear2 = load.Linear(ad + "3", backbone_hidden, backbone_hidden, true);
  for (const auto& [name, shape] : TensorShapes(config, backbone_hidden)) {
    const TensorView& t = st.Get(name);
    const auto matrix = matrix_bytes.find(name);
    w->bytes += matrix != matrix_bytes.end() ? matrix->second
                                             : static_cast<size_t>(t.numel()) * sizeof(float);
  }
  ConformerEncoder e;
  e.weights_ = std::move(w);
  return e;
}

size_t ConformerEncoder::weight_bytes() const {
  return weights_->bytes;
}

int ConformerEncoder::OutputFrames(int n_frames) {
  int t = n_frames;
  for (int i = 0; i < kSubsamplingStages; ++i) t = StridedLength(t);
  return t;
}

const EncoderConfig& ConformerEncoder::config() const {
  return weights_->config;
}

int ConformerEncoder::backbone_hidden() const {
  return weights_->backbone_hidden;
}

ConformerTrace ConformerEncoder::Run(const float* mel, int n_frames, bool keep,
                                     const std::atomic<bool>* cancel) const {
  if (!weights_) throw std::logic_error("ConformerEncoder used before Load");
  if (n_frames < 1) {
    throw std::invalid_argument("ConformerEncoder: the mel input needs at least 1 frame, got " +
                                std::to_string(n_frames));
  }
  if (mel == nullptr) throw std::invalid_argument("ConformerEncoder: mel input is null");
  const ConformerWeights& w = *weights_;
  ConformerTrace trace;
  Mat x = PreEncode(mel, n_frames, w);
  if (keep) trace.pre_encode = x;
  const Mat pos_table = RelativePositionTable(static_cast<int>(x.rows()), w.config.d_model);
  for (const auto& layer : w.layers) {
    ThrowIfCancelled(cancel, "ConformerEncoder");
    x = ConformerLayer(x, pos_table, layer, w.config);
    if (keep) trace.layers.push_back(x);
  }
  trace.adapter_out = Adapter(x, w.adapter);
  if (keep) trace.conformer_out = std::move(x);
  return trace;
}

RowMatrix ConformerEncoder::Encode(const float* mel_feature_major, int n_frames,
                                   const std::atomic<bool>* cancel) const {
  return std::move(Run(mel_feature_major, n_frames, false, cancel).adapter_out);
}

ConformerTrace ConformerEncoder::EncodeWithTrace(const float* mel_feature_major,
                                                 int n_frames) const {
  return Run(mel_feature_major, n_frames, true, nullptr);
}

}  // namespace eddy
