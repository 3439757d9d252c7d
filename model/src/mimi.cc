// Mimi decoder (spec_audio.md §5.3-5.5). The batch decode is the streaming decode run once over
// all frames from a fresh state whose KV cache holds every position: every causal conv, transposed
// conv and the attention window then compute exactly what the reference's batch path computes.
#include "eddy/mimi.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "ops.h"

namespace eddy {

using ops::Mat;
using ops::WeightFormat;
using ops::WeightMatrix;

MimiWeightFormat MimiFormatFor(const std::string& weight_format) {
  if (weight_format == "bf16") return MimiWeightFormat::kBF16Streamed;
  if (weight_format == "q8" || weight_format == "q4") return MimiWeightFormat::kQ8Streamed;
  return MimiWeightFormat::kF32;
}

namespace {

constexpr float kLayerNormEps = 1e-5f;
constexpr float kMinClusterUsage = 1e-5f;

// Conv1d weight [out, in, k] held as a matrix [out, k*in] (column kk*in + ci) so that one GEMM
// over the im2col of the input computes the convolution.
struct CausalConv {
  int in = 0, out = 0, kernel = 1, dilation = 1;
  WeightMatrix weight;
  std::vector<float> bias;
  int left_context() const { return (kernel - 1) * dilation; }
};

// ConvTranspose1d weight [in, out, k] held as [k*out, in] (row kk*out + o): x * W^T gives every
// output tap at once, then the taps are overlap-added at the stride.
struct TransposedConv {
  int in = 0, out = 0, kernel = 1, stride = 1;
  WeightMatrix weight;
  std::vector<float> bias;  // empty: no bias
  int tail() const { return kernel - stride; }
};

struct ResidualBlock {
  CausalConv conv_in;   // block.1, dim -> dim/compress, kernel residual_kernel_size
  CausalConv conv_out;  // block.3, 1x1 back to dim
};

struct DecoderStage {
  TransposedConv upsample;
  std::vector<ResidualBlock> blocks;
};

struct TransformerLayer {
  std::vector<float> norm1_weight, norm1_bias, norm2_weight, norm2_bias;
  std::vector<float> layer_scale_1, layer_scale_2;
  WeightMatrix in_proj, out_proj, linear1, linear2;
};

CausalConv LoadConv(const SafeTensors& st, const std::string& prefix, int in, int out, int kernel,
                    int dilation) {
  CausalConv c;
  c.in = in;
  c.out = out;
  c.kernel = kernel;
  c.dilation = dilation;
  const std::vector<float> w = ops::LoadF32(st, prefix + ".weight", {out, in, kernel});
  std::vector<float> m(static_cast<size_t>(out) * kernel * in);
  for (int o = 0; o < out; ++o) {
    for (int ci = 0; ci < in; ++ci) {
      for (int kk = 0; kk < kernel; ++kk) {
        m[(static_cast<size_t>(o) * kernel + kk) * in + ci] =
            w[(static_cast<size_t>(o) * in + ci) * kernel + kk];
      }
    }
  }
  c.weight = WeightMatrix::FromOwned(std::move(m), out, kernel * in);
  c.bias = ops::LoadF32(st, prefix + ".bias", {out});
  return c;
}

TransposedConv LoadTransposedConv(const SafeTensors& st, const std::string& prefix, int in, int out,
                                  int kernel, int stride) {
  TransposedConv c;
  c.in = in;
  c.out = out;
  c.kernel = kernel;
  c.stride = stride;
  const std::vector<float> w = ops::LoadF32(st, prefix + ".weight", {in, out, kernel});
  std::vector<float> m(static_cast<size_t>(kernel) * out * in);
  for (int ci = 0; ci < in; ++ci) {
    for (int o = 0; o < out; ++o) {
      for (int kk = 0; kk < kernel; ++kk) {
        m[(static_cast<size_t>(kk) * out + o) * in + ci] =
            w[(static_cast<size_t>(ci) * out + o) * kernel + kk];
      }
    }
  }
  c.weight = WeightMatrix::FromOwned(std::move(m), kernel * out, in);
  c.bias = ops::LoadF32(st, prefix + ".bias", {out});
  return c;
}

// The reference's checkpoints name the attention projections either way (its load hook maps
// in_proj_weight / out_proj.weight to in_projs.0.weight / out_projs.0.weight).
std::string FirstPresent(const SafeTensors& st, const std::string& a, const std::string& b) {
  return st.Has(a) || !st.Has(b) ? a : b;
}

std::vector<float> LoadCodebook(const SafeTensors& st, const std::string& prefix, int bins,
                                int dim) {
  std::vector<float> sum = ops::LoadF32(st, prefix + ".embedding_sum", {bins, dim});
  const std::vector<float> usage = ops::LoadF32(st, prefix + ".cluster_usage", {bins});
  for (int b = 0; b < bins; ++b) {
    const float denom = std::max(usage[b], kMinClusterUsage);
    for (int i = 0; i < dim; ++i) sum[static_cast<size_t>(b) * dim + i] /= denom;
  }
  return sum;
}

// ELU(alpha = 1). expm1 through Kahan's identity expm1(x) = (e^x - 1) * x / log(e^x), so that
// Eigen's vectorised exp and log carry the work while staying accurate near zero.
void Elu(Mat& x) {
  const Eigen::Index n = x.size();
  Eigen::Map<Eigen::ArrayXf> v(x.data(), n);
  const Eigen::ArrayXf e = v.min(0.0f).exp();
  const Eigen::ArrayXf log_e = e.log();
  float* p = x.data();
  const float* ep = e.data();
  const float* lp = log_e.data();
#pragma omp simd
  for (Eigen::Index i = 0; i < n; ++i) {
    const float neg = p[i] < 0.0f ? p[i] : 0.0f;
    const float em1 = ep[i] - 1.0f;
    const float expm1 = ep[i] == 1.0f ? neg : (em1 == -1.0f ? -1.0f : em1 * neg / lp[i]);
    p[i] = p[i] > 0.0f ? p[i] : expm1;
  }
}

void AddBias(Mat& y, const std::vector<float>& bias) {
  if (bias.empty()) return;
  y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), static_cast<int>(bias.size()));
}

void ScaleAdd(Mat& x, const Mat& update, const std::vector<float>& scale) {
  x.array() +=
      update.array().rowwise() *
      Eigen::Map<const Eigen::RowVectorXf>(scale.data(), static_cast<int>(scale.size())).array();
}

}  // namespace

struct MimiDecoder::Weights {
  MimiConfig config;
  std::optional<SafeTensors> file;                   // keeps viewed tensors mapped
  std::vector<float> codebook_first;                 // [bins, qdim]
  std::vector<std::vector<float>> codebooks_rest;    // num_codebooks_used - 1 tables [bins, qdim]
  WeightMatrix output_proj_first, output_proj_rest;  // [dimension, qdim]
  std::vector<float> upsample_weight;                // [dimension, 2*stride], depthwise, no bias
  std::vector<TransformerLayer> layers;
  std::vector<float> rope_frequencies;  // [head_dim / 2]
  CausalConv first_conv;
  std::vector<DecoderStage> stages;
  CausalConv last_conv;
};

struct MimiDecoderStream::State {
  int ring_capacity = 0;
  int64_t position = 0;  // latent steps (25 Hz) decoded so far
  int64_t frames = 0;
  Mat upsample_tail;
  std::vector<Mat> keys, values;  // per layer [ring_capacity, d_model]
  Mat first_conv_prev;
  std::vector<Mat> stage_tails;
  std::vector<std::vector<Mat>> block_prev;
  Mat last_conv_prev;
};

namespace {

using Weights = MimiDecoder::Weights;
using State = MimiDecoderStream::State;

void InitState(const Weights& w, int ring_capacity, State& s) {
  const MimiConfig& c = w.config;
  s.ring_capacity = ring_capacity;
  s.position = 0;
  s.frames = 0;
  const int stride = c.upsample_stride();
  s.upsample_tail = Mat::Zero(stride > 1 ? stride : 0, c.dimension);
  s.keys.assign(w.layers.size(), Mat::Zero(ring_capacity, c.d_model));
  s.values.assign(w.layers.size(), Mat::Zero(ring_capacity, c.d_model));
  s.first_conv_prev = Mat::Zero(w.first_conv.left_context(), w.first_conv.in);
  s.stage_tails.clear();
  s.block_prev.clear();
  for (const DecoderStage& stage : w.stages) {
    s.stage_tails.push_back(Mat::Zero(stage.upsample.tail(), stage.upsample.out));
    std::vector<Mat> prev;
    for (const ResidualBlock& b : stage.blocks) {
      prev.push_back(Mat::Zero(b.conv_in.left_context(), b.conv_in.in));
    }
    s.block_prev.push_back(std::move(prev));
  }
  s.last_conv_prev = Mat::Zero(w.last_conv.left_context(), w.last_conv.in);
}

// Causal conv over x [n, in] with the previous left_context() input rows in `prev`.
Mat ConvStep(const CausalConv& c, Mat& prev, const Mat& x) {
  const int n = static_cast<int>(x.rows());
  Mat y(n, c.out);
  if (c.kernel == 1) {
    c.weight.MatMulT(x.data(), n, y.data());
    AddBias(y, c.bias);
    return y;
  }
  const int ctx = c.left_context();
  Mat buf(ctx + n, c.in);
  buf.topRows(ctx) = prev;
  buf.bottomRows(n) = x;
  Mat col(n, static_cast<Eigen::Index>(c.kernel) * c.in);
  for (int t = 0; t < n; ++t) {
    for (int kk = 0; kk < c.kernel; ++kk) {
      col.row(t).segment(static_cast<Eigen::Index>(kk) * c.in, c.in) = buf.row(t + kk * c.dilation);
    }
  }
  c.weight.MatMulT(col.data(), n, y.data());
  AddBias(y, c.bias);
  prev = buf.bottomRows(ctx);
  return y;
}

// Transposed conv over x [n, in]: the first n*stride outputs are final; the last kernel-stride
// (without bias) are carried in `tail` and added to the next chunk's first outputs.
Mat TransposedConvStep(const TransposedConv& c, Mat& tail, const Mat& x) {
  const int n = static_cast<int>(x.rows());
  Mat taps(n, static_cast<Eigen::Index>(c.kernel) * c.out);
  c.weight.MatMulT(x.data(), n, taps.data());
  Mat y = Mat::Zero(static_cast<Eigen::Index>(n) * c.stride + c.tail(), c.out);
  for (int t = 0; t < n; ++t) {
    for (int kk = 0; kk < c.kernel; ++kk) {
      y.row(static_cast<Eigen::Index>(t) * c.stride + kk) +=
          taps.row(t).segment(static_cast<Eigen::Index>(kk) * c.out, c.out);
    }
  }
  AddBias(y, c.bias);
  y.topRows(c.tail()) += tail;
  tail = y.bottomRows(c.tail());
  if (!c.bias.empty()) {
    tail.rowwise() -= Eigen::Map<const Eigen::RowVectorXf>(c.bias.data(), c.out);
  }
  return y.topRows(static_cast<Eigen::Index>(n) * c.stride);
}

// Channel-wise learnt upsampler (ConvTrUpsample1d, kernel 2*stride, no bias).
Mat UpsampleStep(const Weights& w, State& s, const Mat& z) {
  const int stride = w.config.upsample_stride();
  const int kernel = 2 * stride;
  const int dim = w.config.dimension;
  const int n = static_cast<int>(z.rows());
  Mat y = Mat::Zero(static_cast<Eigen::Index>(n + 1) * stride, dim);
  for (int t = 0; t < n; ++t) {
    for (int kk = 0; kk < kernel; ++kk) {
      float* out = y.row(static_cast<Eigen::Index>(t) * stride + kk).data();
      const float* in = z.row(t).data();
      for (int ch = 0; ch < dim; ++ch) out[ch] += in[ch] * w.upsample_weight[ch * kernel + kk];
    }
  }
  y.topRows(stride) += s.upsample_tail;
  s.upsample_tail = y.bottomRows(stride);
  return y.topRows(static_cast<Eigen::Index>(n) * stride);
}

// Interleaved-pair rotation of one head vector at `position`, in float32 like the reference.
void ApplyRope(const std::vector<float>& freqs, int64_t position, float* v) {
  const float pos = static_cast<float>(position);
  for (size_t i = 0; i < freqs.size(); ++i) {
    const float angle = freqs[i] * pos;
    const float c = std::cos(angle), sn = std::sin(angle);
    const float re = v[2 * i], im = v[2 * i + 1];
    v[2 * i] = re * c - im * sn;
    v[2 * i + 1] = re * sn + im * c;
  }
}

void AttentionStep(const Weights& w, State& s, size_t layer, const Mat& qkv, Mat& out) {
  const MimiConfig& c = w.config;
  const int n = static_cast<int>(qkv.rows());
  const int d = c.d_model, hd = c.head_dim(), cap = s.ring_capacity;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  Mat& keys = s.keys[layer];
  Mat& values = s.values[layer];
  Mat q = qkv.leftCols(d);
  for (int t = 0; t < n; ++t) {
    const int64_t pos = s.position + t;
    const int slot = static_cast<int>(pos % cap);
    keys.row(slot) = qkv.row(t).segment(d, d);
    values.row(slot) = qkv.row(t).segment(2 * d, d);
    for (int h = 0; h < c.num_heads; ++h) {
      ApplyRope(w.rope_frequencies, pos, q.row(t).data() + h * hd);
      ApplyRope(w.rope_frequencies, pos, keys.row(slot).data() + h * hd);
    }
  }
  const int64_t last = s.position + n - 1;
  std::vector<float> scores;
  out.resize(n, d);
  for (int t = 0; t < n; ++t) {
    const int64_t pos = s.position + t;
    // Keys still in the ring after this chunk was written, within the causal window.
    const int64_t lo = std::max<int64_t>({0, pos - c.context + 1, last - cap + 1});
    const int count = static_cast<int>(pos - lo + 1);
    scores.resize(count);
    for (int h = 0; h < c.num_heads; ++h) {
      Eigen::Map<const Eigen::VectorXf> qh(q.row(t).data() + h * hd, hd);
      float max_score = -INFINITY;
      for (int i = 0; i < count; ++i) {
        const int slot = static_cast<int>((lo + i) % cap);
        Eigen::Map<const Eigen::VectorXf> kh(keys.row(slot).data() + h * hd, hd);
        scores[i] = qh.dot(kh) * scale;
        max_score = std::max(max_score, scores[i]);
      }
      float total = 0.0f;
      for (int i = 0; i < count; ++i) {
        scores[i] = std::exp(scores[i] - max_score);
        total += scores[i];
      }
      Eigen::Map<Eigen::VectorXf> oh(out.row(t).data() + h * hd, hd);
      oh.setZero();
      for (int i = 0; i < count; ++i) {
        const int slot = static_cast<int>((lo + i) % cap);
        oh += (scores[i] / total) *
              Eigen::Map<const Eigen::VectorXf>(values.row(slot).data() + h * hd, hd);
      }
    }
  }
}

void TransformerStep(const Weights& w, State& s, Mat& x) {
  const MimiConfig& c = w.config;
  const int n = static_cast<int>(x.rows());
  Mat h, qkv(n, 3 * c.d_model), attn, proj(n, c.d_model), ff(n, c.dim_feedforward);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const TransformerLayer& layer = w.layers[l];
    h = x;
    ops::LayerNormRows(h, layer.norm1_weight, layer.norm1_bias, kLayerNormEps);
    layer.in_proj.MatMulT(h.data(), n, qkv.data());
    AttentionStep(w, s, l, qkv, attn);
    layer.out_proj.MatMulT(attn.data(), n, proj.data());
    ScaleAdd(x, proj, layer.layer_scale_1);
    h = x;
    ops::LayerNormRows(h, layer.norm2_weight, layer.norm2_bias, kLayerNormEps);
    layer.linear1.MatMulT(h.data(), n, ff.data());
    float* f = ff.data();
    for (Eigen::Index i = 0; i < ff.size(); ++i) f[i] = ops::GeluErf(f[i]);
    layer.linear2.MatMulT(ff.data(), n, proj.data());
    ScaleAdd(x, proj, layer.layer_scale_2);
  }
  s.position += n;
}

Mat SeanetStep(const Weights& w, State& s, const Mat& latent) {
  Mat x = ConvStep(w.first_conv, s.first_conv_prev, latent);
  Mat dummy;
  for (size_t i = 0; i < w.stages.size(); ++i) {
    const DecoderStage& stage = w.stages[i];
    Elu(x);
    x = TransposedConvStep(stage.upsample, s.stage_tails[i], x);
    for (size_t b = 0; b < stage.blocks.size(); ++b) {
      Mat h = x;
      Elu(h);
      h = ConvStep(stage.blocks[b].conv_in, s.block_prev[i][b], h);
      Elu(h);
      h = ConvStep(stage.blocks[b].conv_out, dummy, h);
      x += h;
    }
  }
  Elu(x);
  return ConvStep(w.last_conv, s.last_conv_prev, x);
}

void CheckCodes(const MimiConfig& c, const int* codes, int64_t code_stride, int n,
                int64_t first_frame) {
  for (int k = 0; k < c.num_codebooks_used; ++k) {
    for (int t = 0; t < n; ++t) {
      const int code = codes[k * code_stride + t];
      if (code < 0 || code >= c.bins) {
        throw std::invalid_argument("Mimi code " + std::to_string(code) + " in codebook " +
                                    std::to_string(k) + " of frame " +
                                    std::to_string(first_frame + t) + " is outside [0, " +
                                    std::to_string(c.bins) + ")");
      }
    }
  }
}

void AppendTransposed(const Mat& x, std::vector<float>* out) {
  if (out == nullptr) return;
  Mat t = x.transpose();
  out->assign(t.data(), t.data() + t.size());
}

// Decodes n frames; codes[k * code_stride + t]. Writes n * samples_per_frame samples.
void Run(const Weights& w, State& s, const int* codes, int64_t code_stride, int n, float* out,
         MimiIntermediates* im) {
  const MimiConfig& c = w.config;
  CheckCodes(c, codes, code_stride, n, s.frames);
  const int qdim = c.quantizer_dimension;
  Mat semantic(n, qdim), acoustic = Mat::Zero(n, qdim);
  for (int t = 0; t < n; ++t) {
    const int code0 = codes[t];
    semantic.row(t) = Eigen::Map<const Eigen::RowVectorXf>(
        w.codebook_first.data() + static_cast<size_t>(code0) * qdim, qdim);
    for (int k = 1; k < c.num_codebooks_used; ++k) {
      const int code = codes[k * code_stride + t];
      acoustic.row(t) += Eigen::Map<const Eigen::RowVectorXf>(
          w.codebooks_rest[k - 1].data() + static_cast<size_t>(code) * qdim, qdim);
    }
  }
  Mat latent(n, c.dimension), acoustic_latent(n, c.dimension);
  w.output_proj_first.MatMulT(semantic.data(), n, latent.data());
  if (c.num_codebooks_used > 1) {
    w.output_proj_rest.MatMulT(acoustic.data(), n, acoustic_latent.data());
    latent += acoustic_latent;
  }
  if (im) AppendTransposed(latent, &im->quantizer_latent);
  Mat x = c.upsample_stride() > 1 ? UpsampleStep(w, s, latent) : latent;
  if (im) AppendTransposed(x, &im->upsampled_latent);
  TransformerStep(w, s, x);
  if (im) AppendTransposed(x, &im->decoder_transformer_out);
  const Mat wave = SeanetStep(w, s, x);
  std::copy(wave.data(), wave.data() + wave.size(), out);
  s.frames += n;
}

}  // namespace

MimiDecoder::MimiDecoder() : weights_(std::make_unique<Weights>()) {}
MimiDecoder::~MimiDecoder() = default;

const MimiConfig& MimiDecoder::config() const {
  return weights_->config;
}

std::shared_ptr<const MimiDecoder> MimiDecoder::Load(const std::filesystem::path& path,
                                                     const MimiConfig& config,
                                                     MimiWeightFormat format) {
  config.Validate();
  std::shared_ptr<MimiDecoder> decoder(new MimiDecoder());
  Weights& w = *decoder->weights_;
  w.config = config;
  w.file.emplace(SafeTensors::Open(path));
  const SafeTensors& st = *w.file;
  const MimiConfig& c = w.config;
  const int qdim = c.quantizer_dimension, dim = c.dimension;

  const std::string q = "quantizer.";
  w.codebook_first = LoadCodebook(st, q + "rvq_first.vq.layers.0._codebook", c.bins, qdim);
  for (int k = 0; k + 1 < c.num_codebooks_used; ++k) {
    w.codebooks_rest.push_back(LoadCodebook(
        st, q + "rvq_rest.vq.layers." + std::to_string(k) + "._codebook", c.bins, qdim));
  }
  w.output_proj_first = WeightMatrix::Load(st, q + "rvq_first.output_proj.weight", {dim, qdim, 1},
                                           WeightFormat::kF32);
  if (c.num_codebooks_used > 1) {
    w.output_proj_rest = WeightMatrix::Load(st, q + "rvq_rest.output_proj.weight", {dim, qdim, 1},
                                            WeightFormat::kF32);
  }

  const int stride = c.upsample_stride();
  if (stride > 1) {
    w.upsample_weight =
        ops::LoadF32(st, "upsample.convtr.convtr.convtr.weight", {dim, 1, 2 * stride});
  }

  const int d = c.d_model, ff = c.dim_feedforward;
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "decoder_transformer.transformer.layers." + std::to_string(l) + ".";
    TransformerLayer layer;
    layer.norm1_weight = ops::LoadF32(st, p + "norm1.weight", {d});
    layer.norm1_bias = ops::LoadF32(st, p + "norm1.bias", {d});
    layer.norm2_weight = ops::LoadF32(st, p + "norm2.weight", {d});
    layer.norm2_bias = ops::LoadF32(st, p + "norm2.bias", {d});
    layer.layer_scale_1 = ops::LoadF32(st, p + "layer_scale_1.scale", {d});
    layer.layer_scale_2 = ops::LoadF32(st, p + "layer_scale_2.scale", {d});
    layer.in_proj = WeightMatrix::Load(
        st, FirstPresent(st, p + "self_attn.in_projs.0.weight", p + "self_attn.in_proj_weight"),
        {3 * d, d}, WeightFormat::kF32);
    layer.out_proj = WeightMatrix::Load(
        st, FirstPresent(st, p + "self_attn.out_projs.0.weight", p + "self_attn.out_proj.weight"),
        {d, d}, WeightFormat::kF32);
    layer.linear1 = WeightMatrix::Load(st, p + "linear1.weight", {ff, d}, WeightFormat::kF32);
    layer.linear2 = WeightMatrix::Load(st, p + "linear2.weight", {d, ff}, WeightFormat::kF32);
    w.layers.push_back(std::move(layer));
  }
  const int hd = c.head_dim();
  const float coefficient = static_cast<float>(-std::log(c.max_period) * 2.0 / hd);
  for (int i = 0; i < hd / 2; ++i) {
    w.rope_frequencies.push_back(std::exp(static_cast<float>(i) * coefficient));
  }

  // SEANet decoder: model.0 conv; per ratio: ELU, convtr, residual blocks; ELU; last conv.
  int mult = 1 << c.ratios.size();
  int index = 0;
  auto module = [](int i) { return "decoder.model." + std::to_string(i) + "."; };
  w.first_conv =
      LoadConv(st, module(index) + "conv.conv", dim, mult * c.n_filters, c.kernel_size, 1);
  ++index;
  for (int ratio : c.ratios) {
    ++index;  // ELU
    DecoderStage stage;
    const int width = mult * c.n_filters;
    stage.upsample =
        LoadTransposedConv(st, module(index) + "convtr.convtr", width, width / 2, 2 * ratio, ratio);
    ++index;
    int dilation = 1;
    for (int j = 0; j < c.n_residual_layers; ++j) {
      ResidualBlock block;
      const int hidden = (width / 2) / c.compress;
      block.conv_in = LoadConv(st, module(index) + "block.1.conv.conv", width / 2, hidden,
                               c.residual_kernel_size, dilation);
      block.conv_out = LoadConv(st, module(index) + "block.3.conv.conv", hidden, width / 2, 1, 1);
      stage.blocks.push_back(std::move(block));
      dilation *= c.dilation_base;
      ++index;
    }
    w.stages.push_back(std::move(stage));
    mult /= 2;
  }
  ++index;  // ELU
  w.last_conv =
      LoadConv(st, module(index) + "conv.conv", c.n_filters, c.channels, c.last_kernel_size, 1);
  if (format != MimiWeightFormat::kF32) {
    const WeightFormat streamed =
        format == MimiWeightFormat::kQ8Streamed ? WeightFormat::kQ8 : WeightFormat::kBF16;
    for (TransformerLayer& layer : w.layers) {
      for (WeightMatrix* m : {&layer.in_proj, &layer.out_proj, &layer.linear1, &layer.linear2}) {
        *m = m->Converted(streamed);
      }
    }
    // The convolutions stay bf16: their products are too small to gain from int8.
    w.first_conv.weight = w.first_conv.weight.Converted(WeightFormat::kBF16);
    w.stages.front().upsample.weight =
        w.stages.front().upsample.weight.Converted(WeightFormat::kBF16);
  }
  return decoder;
}

std::shared_ptr<const MimiDecoder> MimiDecoder::LoadFromModelDir(const std::filesystem::path& dir,
                                                                 MimiWeightFormat format) {
  return Load(dir / kMimiWeightsFile, MimiConfig::ForModelDir(dir), format);
}

std::vector<float> MimiDecoder::Decode(const std::vector<int>& codes, int num_frames,
                                       MimiIntermediates* intermediates) const {
  const MimiConfig& c = weights_->config;
  if (num_frames < 0 || codes.size() != static_cast<size_t>(num_frames) * c.num_codebooks_used) {
    throw std::invalid_argument("Mimi decode: expected " + std::to_string(c.num_codebooks_used) +
                                " x " + std::to_string(num_frames) + " codes, got " +
                                std::to_string(codes.size()));
  }
  std::vector<float> out(static_cast<size_t>(num_frames) * c.samples_per_frame());
  if (num_frames == 0) return out;
  State state;
  // Room for every position: only the attention window limits what a query sees.
  InitState(*weights_, num_frames * c.upsample_stride(), state);
  Run(*weights_, state, codes.data(), num_frames, num_frames, out.data(), intermediates);
  return out;
}

MimiDecoderStream::MimiDecoderStream(std::shared_ptr<const MimiDecoder> decoder, Window window)
    : decoder_(std::move(decoder)), state_(std::make_unique<State>()) {
  if (!decoder_) throw std::invalid_argument("MimiDecoderStream: no decoder");
  const MimiConfig& c = decoder_->config();
  const int per_frame = c.upsample_stride();
  const int capacity = window == Window::kReference ? c.context : c.context + per_frame - 1;
  if (capacity < per_frame) {
    throw std::invalid_argument("MimiDecoderStream: transformer context " +
                                std::to_string(c.context) + " is shorter than one frame (" +
                                std::to_string(per_frame) + " latent steps)");
  }
  InitState(decoder_->weights(), capacity, *state_);
}

MimiDecoderStream::~MimiDecoderStream() = default;
MimiDecoderStream::MimiDecoderStream(MimiDecoderStream&&) noexcept = default;
MimiDecoderStream& MimiDecoderStream::operator=(MimiDecoderStream&&) noexcept = default;

int MimiDecoderStream::samples_per_frame() const {
  return decoder_->config().samples_per_frame();
}

int MimiDecoderStream::num_codebooks() const {
  return decoder_->config().num_codebooks_used;
}

int64_t MimiDecoderStream::frames_decoded() const {
  return state_->frames;
}

void MimiDecoderStream::Step(const int* codes, float* out) {
  Run(decoder_->weights(), *state_, codes, 1, 1, out, nullptr);
}

std::vector<float> MimiDecoderStream::Step(const std::vector<int>& codes) {
  if (codes.size() != static_cast<size_t>(num_codebooks())) {
    throw std::invalid_argument("MimiDecoderStream::Step: expected " +
                                std::to_string(num_codebooks()) + " codes, got " +
                                std::to_string(codes.size()));
  }
  std::vector<float> out(samples_per_frame());
  Step(codes.data(), out.data());
  return out;
}

void MimiDecoderStream::Reset() {
  InitState(decoder_->weights(), state_->ring_capacity, *state_);
}

}  // namespace eddy
