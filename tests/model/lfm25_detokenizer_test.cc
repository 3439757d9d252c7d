// Unit tests of the LFM2.5 audio detokenizer (spec_audio.md §6) on small random checkpoints.
// The golden set has no detokenizer vectors, so every stage is checked against an independent
// double-precision computation written here from the spec: the mean code embedding, the LFM2
// stack with its sliding-window mask, the Linear + exp/phase + inverse DFT (direct O(N^2) sums)
// with window-sum normalisation and the 480-sample trims; then streaming against batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eddy/config.h"
#include "eddy/lfm2.h"
#include "eddy/lfm25_detokenizer.h"
#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "golden.h"
#include "lfm25_random_detokenizer.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;
using D = Lfm25Detokenizer;

// A temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ =
        fs::temp_directory_path() / ("eddy_lfm25_test_" + std::to_string(std::random_device()()) +
                                     "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

struct Fixture {
  TempDir dir;
  test::RandomDetokenizerSpec spec;
  std::shared_ptr<const Lfm25Detokenizer> detokenizer;
  std::shared_ptr<const SafeTensors> st;  // the same file, read independently by the oracles
};

// The default spec: 4 layers, window 10 (sequences of 6T > 10 positions exercise it).
const Fixture& Small() {
  static const Fixture* f = [] {
    auto* x = new Fixture();
    test::WriteRandomDetokenizer(x->dir.path() / D::kDirName, x->spec, 7);
    x->detokenizer = D::LoadFromModelDir(x->dir.path());
    x->st = std::make_shared<const SafeTensors>(
        SafeTensors::Open(x->dir.path() / D::kDirName / "model.safetensors"));
    return x;
  }();
  return *f;
}

std::vector<int> RandomCodes(int frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, D::kCodesPerCodebook - 1);
  std::vector<int> codes(static_cast<size_t>(D::kCodebooks) * frames);
  for (int& c : codes) c = code(rng);
  return codes;
}

std::vector<int> FrameCodes(const std::vector<int>& codes, int frames, int t) {
  std::vector<int> frame(D::kCodebooks);
  for (int k = 0; k < D::kCodebooks; ++k) frame[k] = codes[static_cast<size_t>(k) * frames + t];
  return frame;
}

std::vector<double> Tensor(const SafeTensors& st, const std::string& name) {
  const std::vector<float> f = ToFloat32(st.Get(name));
  return {f.begin(), f.end()};
}

template <typename A, typename B>
void ExpectClose(const std::vector<A>& actual, const std::vector<B>& expected, double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  const std::vector<float> e(expected.begin(), expected.end());
  const std::vector<float> a(actual.begin(), actual.end());
  const test::Diff d = test::Compare(a.data(), e.data(), a.size());
  EXPECT_TRUE(test::WithinTolerance(d, tolerance)) << test::Describe(d);
}

// ---- independent double-precision oracles --------------------------------------------------

// y[n, out] = x[n, in] W[out, in]^T
std::vector<double> MatMulT(const std::vector<double>& x, int n, const std::vector<double>& w,
                            int out, int in) {
  std::vector<double> y(static_cast<size_t>(n) * out, 0.0);
  for (int t = 0; t < n; ++t) {
    for (int o = 0; o < out; ++o) {
      double acc = 0.0;
      for (int i = 0; i < in; ++i) acc += x[static_cast<size_t>(t) * in + i] * w[o * in + i];
      y[static_cast<size_t>(t) * out + o] = acc;
    }
  }
  return y;
}

std::vector<double> RmsNormRows(const std::vector<double>& x, int n, int d,
                                const std::vector<double>& w, double eps) {
  std::vector<double> y(x.size());
  for (int t = 0; t < n; ++t) {
    double ss = 0.0;
    for (int i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int i = 0; i < d; ++i) y[t * d + i] = x[t * d + i] * inv * w[i];
  }
  return y;
}

// spec_backbone.md §1.2-1.7 with the detokenizer's mask: key j visible to query i iff
// 0 <= i - j < window (window <= 0: plain causal).
std::vector<double> NaiveBackbone(const SafeTensors& st, const LfmConfig& c, int window,
                                  const std::vector<float>& embeddings) {
  const int d = c.hidden_size, ff = c.ff_dim(), hd = c.head_dim(), L = c.conv_L_cache;
  const int heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
  const int n = static_cast<int>(embeddings.size()) / d;
  const double eps = c.norm_eps;
  std::vector<double> h(embeddings.begin(), embeddings.end());
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = "lfm.layers." + std::to_string(layer) + ".";
    const std::vector<double> u = RmsNormRows(h, n, d, Tensor(st, p + "operator_norm.weight"), eps);
    std::vector<double> delta;
    if (c.layer_types[layer] == LayerKind::kConv) {
      const std::vector<double> z = MatMulT(u, n, Tensor(st, p + "conv.in_proj.weight"), 3 * d, d);
      const std::vector<double> kernel = Tensor(st, p + "conv.conv.weight");  // [d, 1, L]
      std::vector<double> y(static_cast<size_t>(n) * d);
      for (int t = 0; t < n; ++t) {
        for (int ch = 0; ch < d; ++ch) {
          double acc = 0.0;
          for (int k = 0; k < L; ++k) {
            const int src = t - (L - 1) + k;
            if (src < 0) continue;
            const double b = z[src * 3 * d + ch], x = z[src * 3 * d + 2 * d + ch];
            acc += kernel[ch * L + k] * b * x;
          }
          y[t * d + ch] = z[t * 3 * d + d + ch] * acc;
        }
      }
      delta = MatMulT(y, n, Tensor(st, p + "conv.out_proj.weight"), d, d);
    } else {
      std::vector<double> q =
          MatMulT(u, n, Tensor(st, p + "self_attn.q_proj.weight"), heads * hd, d);
      std::vector<double> k =
          MatMulT(u, n, Tensor(st, p + "self_attn.k_proj.weight"), kv_heads * hd, d);
      const std::vector<double> v =
          MatMulT(u, n, Tensor(st, p + "self_attn.v_proj.weight"), kv_heads * hd, d);
      const std::vector<double> qn = Tensor(st, p + "self_attn.q_layernorm.weight");
      const std::vector<double> kn = Tensor(st, p + "self_attn.k_layernorm.weight");
      auto norm_rope = [&](std::vector<double>& x, int nh, const std::vector<double>& w) {
        for (int t = 0; t < n; ++t) {
          for (int head = 0; head < nh; ++head) {
            double* r = x.data() + (static_cast<size_t>(t) * nh + head) * hd;
            double ss = 0.0;
            for (int i = 0; i < hd; ++i) ss += r[i] * r[i];
            const double inv = 1.0 / std::sqrt(ss / hd + eps);
            for (int i = 0; i < hd; ++i) r[i] *= inv * w[i];
            for (int j = 0; j < hd / 2; ++j) {
              const double angle = t * std::pow(c.rope_theta, -2.0 * j / hd);
              const double a = r[j], b = r[j + hd / 2];
              r[j] = a * std::cos(angle) - b * std::sin(angle);
              r[j + hd / 2] = b * std::cos(angle) + a * std::sin(angle);
            }
          }
        }
      };
      norm_rope(q, heads, qn);
      norm_rope(k, kv_heads, kn);
      std::vector<double> ctx(static_cast<size_t>(n) * heads * hd, 0.0);
      for (int head = 0; head < heads; ++head) {
        const int kvh = head / (heads / kv_heads);
        for (int i = 0; i < n; ++i) {
          std::vector<double> score(n, -INFINITY);
          double top = -INFINITY;
          for (int j = 0; j <= i; ++j) {
            if (window > 0 && i - j >= window) continue;
            double dot = 0.0;
            for (int e = 0; e < hd; ++e) {
              dot += q[(static_cast<size_t>(i) * heads + head) * hd + e] *
                     k[(static_cast<size_t>(j) * kv_heads + kvh) * hd + e];
            }
            score[j] = dot / std::sqrt(static_cast<double>(hd));
            top = std::max(top, score[j]);
          }
          double sum = 0.0;
          for (int j = 0; j <= i; ++j) sum += std::isinf(score[j]) ? 0.0 : std::exp(score[j] - top);
          for (int j = 0; j <= i; ++j) {
            if (std::isinf(score[j])) continue;
            const double prob = std::exp(score[j] - top) / sum;
            for (int e = 0; e < hd; ++e) {
              ctx[(static_cast<size_t>(i) * heads + head) * hd + e] +=
                  prob * v[(static_cast<size_t>(j) * kv_heads + kvh) * hd + e];
            }
          }
        }
      }
      delta = MatMulT(ctx, n, Tensor(st, p + "self_attn.out_proj.weight"), d, heads * hd);
    }
    for (size_t i = 0; i < h.size(); ++i) h[i] += delta[i];
    const std::vector<double> u2 = RmsNormRows(h, n, d, Tensor(st, p + "ffn_norm.weight"), eps);
    std::vector<double> gate = MatMulT(u2, n, Tensor(st, p + "feed_forward.w1.weight"), ff, d);
    const std::vector<double> up = MatMulT(u2, n, Tensor(st, p + "feed_forward.w3.weight"), ff, d);
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    const std::vector<double> down =
        MatMulT(gate, n, Tensor(st, p + "feed_forward.w2.weight"), d, ff);
    for (size_t i = 0; i < h.size(); ++i) h[i] += down[i];
  }
  return RmsNormRows(h, n, d, Tensor(st, "lfm.embedding_norm.weight"), eps);
}

// Spectrum rows [n, 2 * bins] (log-magnitude, phase) -> waveform: exp/polar, a direct inverse
// real DFT (1/N, imaginary parts of DC and Nyquist dropped), the synthesis window, overlap-add at
// the hop, division by the overlap-added squared window, (n_fft - hop) / 2 samples cut per end.
std::vector<double> NaiveWaveform(const std::vector<float>& spectrum,
                                  const std::vector<float>& window) {
  const int N = D::kNFft, hop = D::kHop, bins = D::kBins;
  const int n = static_cast<int>(spectrum.size()) / (2 * bins);
  std::vector<double> cos_table(N), sin_table(N);
  for (int m = 0; m < N; ++m) {
    cos_table[m] = std::cos(2.0 * M_PI * m / N);
    sin_table[m] = std::sin(2.0 * M_PI * m / N);
  }
  const int length = (n - 1) * hop + N;
  std::vector<double> signal(length, 0.0), envelope(length, 0.0);
  std::vector<double> re(bins), im(bins);
  for (int t = 0; t < n; ++t) {
    for (int k = 0; k < bins; ++k) {
      const double magnitude = std::exp(static_cast<double>(spectrum[t * 2 * bins + k]));
      const double phase = spectrum[t * 2 * bins + bins + k];
      re[k] = magnitude * std::cos(phase);
      im[k] = magnitude * std::sin(phase);
    }
    for (int m = 0; m < N; ++m) {
      double x = re[0] + re[N / 2] * (m % 2 == 0 ? 1.0 : -1.0);
      for (int k = 1; k < N / 2; ++k) {
        const int idx = static_cast<int>((static_cast<int64_t>(k) * m) % N);
        x += 2.0 * (re[k] * cos_table[idx] - im[k] * sin_table[idx]);
      }
      x /= N;
      signal[t * hop + m] += x * window[m];
      envelope[t * hop + m] += static_cast<double>(window[m]) * window[m];
    }
  }
  const int pad = (N - hop) / 2;
  std::vector<double> out;
  for (int i = pad; i < length - pad; ++i) out.push_back(signal[i] / envelope[i]);
  return out;
}

// ---- stages -------------------------------------------------------------------------------

TEST(Lfm25Detokenizer, LoadsTheFolderOfAModelDirectory) {
  const Fixture& f = Small();
  ASSERT_NE(f.detokenizer, nullptr);
  EXPECT_EQ(f.detokenizer->hidden_size(), f.spec.hidden);
  EXPECT_EQ(f.detokenizer->sliding_window(), *f.spec.sliding_window);
  EXPECT_TRUE(f.detokenizer->config().has_sliding_attention);
  EXPECT_EQ(f.detokenizer->config().lfm.num_attention_layers(), 2);
  TempDir without;
  EXPECT_EQ(D::LoadFromModelDir(without.path()), nullptr);
}

TEST(Lfm25Detokenizer, FrameEmbeddingIsTheMeanOfOffsetRows) {
  const Fixture& f = Small();
  const std::vector<double> table = Tensor(*f.st, "emb.emb.weight");
  const int d = f.detokenizer->hidden_size();
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<int> codes = RandomCodes(1, seed);
    if (seed == 3) codes = {0, 2047, 0, 2047, 1, 2046, 1024, 5};  // range ends
    std::vector<double> expected(d, 0.0);
    for (int k = 0; k < D::kCodebooks; ++k) {
      for (int i = 0; i < d; ++i) {
        expected[i] += table[static_cast<size_t>(codes[k] + 2048 * k) * d + i] / D::kCodebooks;
      }
    }
    std::vector<float> actual(d);
    f.detokenizer->EmbedFrame(codes.data(), actual.data());
    ExpectClose(actual, expected, 1e-6);
  }
}

TEST(Lfm25Detokenizer, EmbeddingsRepeatEachFrameSixTimes) {
  const Fixture& f = Small();
  const int frames = 3, d = f.detokenizer->hidden_size();
  const std::vector<int> codes = RandomCodes(frames, 11);
  Lfm25Intermediates mid;
  f.detokenizer->Decode(codes, frames, &mid);
  ASSERT_EQ(mid.embeddings.size(), static_cast<size_t>(6 * frames * d));
  for (int t = 0; t < frames; ++t) {
    std::vector<float> frame(d);
    f.detokenizer->EmbedFrame(FrameCodes(codes, frames, t).data(), frame.data());
    for (int r = 0; r < 6; ++r) {
      const std::vector<float> row(mid.embeddings.begin() + (6 * t + r) * d,
                                   mid.embeddings.begin() + (6 * t + r + 1) * d);
      EXPECT_EQ(row, frame) << "frame " << t << " copy " << r;
    }
  }
}

TEST(Lfm25Detokenizer, BackboneMatchesANaiveSlidingWindowStack) {
  const Fixture& f = Small();
  const int frames = 9;  // 54 positions, window 10
  Lfm25Intermediates mid;
  f.detokenizer->Decode(RandomCodes(frames, 5), frames, &mid);
  const LfmConfig& c = f.detokenizer->config().lfm;
  const std::vector<double> expected =
      NaiveBackbone(*f.st, c, f.detokenizer->sliding_window(), mid.embeddings);
  ExpectClose(mid.hidden, expected, 1e-4);
  // The window matters here: plain causal attention gives something else.
  const std::vector<double> full = NaiveBackbone(*f.st, c, 0, mid.embeddings);
  std::vector<float> full_f(full.begin(), full.end());
  const test::Diff d = test::Compare(mid.hidden.data(), full_f.data(), full_f.size());
  EXPECT_FALSE(test::WithinTolerance(d, 1e-2)) << test::Describe(d);
}

TEST(Lfm25Detokenizer, ProjectionMatchesANaiveLinear) {
  const Fixture& f = Small();
  const int frames = 2;
  Lfm25Intermediates mid;
  f.detokenizer->Decode(RandomCodes(frames, 6), frames, &mid);
  const int d = f.detokenizer->hidden_size(), n = 6 * frames, out = 2 * D::kBins;
  const std::vector<double> hidden(mid.hidden.begin(), mid.hidden.end());
  std::vector<double> expected = MatMulT(hidden, n, Tensor(*f.st, "lin.weight"), out, d);
  const std::vector<double> bias = Tensor(*f.st, "lin.bias");
  for (int t = 0; t < n; ++t) {
    for (int o = 0; o < out; ++o) expected[t * out + o] += bias[o];
  }
  ExpectClose(mid.spectrum, expected, 1e-5);
}

TEST(Lfm25Detokenizer, WaveformIsTheDirectInverseDftOfTheSpectrum) {
  const Fixture& f = Small();
  const int frames = 4;
  Lfm25Intermediates mid;
  const std::vector<float> wave = f.detokenizer->Decode(RandomCodes(frames, 8), frames, &mid);
  ASSERT_EQ(wave.size(), static_cast<size_t>(frames) * 1920);
  ExpectClose(wave, NaiveWaveform(mid.spectrum, f.detokenizer->window()), 1e-5);
}

TEST(Lfm25Detokenizer, StoredWindowIsUsed) {
  const Fixture& f = Small();
  const std::vector<float> stored = ToFloat32(f.st->Get("istft.window"));
  EXPECT_EQ(f.detokenizer->window(), stored);
}

TEST(Lfm25Detokenizer, ZeroFramesGiveNoSamples) {
  EXPECT_TRUE(Small().detokenizer->Decode({}, 0).empty());
}

// ---- streaming ----------------------------------------------------------------------------

void ExpectStreamEqualsBatch(const std::shared_ptr<const Lfm25Detokenizer>& detokenizer, int frames,
                             uint32_t seed, double tolerance) {
  const std::vector<int> codes = RandomCodes(frames, seed);
  const std::vector<float> batch = detokenizer->Decode(codes, frames);
  Lfm25DetokenizerStream stream(detokenizer);
  for (int pass = 0; pass < 2; ++pass) {  // the second pass follows Flush (a new utterance)
    std::vector<float> streamed;
    for (int t = 0; t < frames; ++t) {
      const std::vector<float> chunk = stream.Step(FrameCodes(codes, frames, t));
      EXPECT_EQ(chunk.size(), t == 0 ? 1440u : 1920u) << "frame " << t;
      streamed.insert(streamed.end(), chunk.begin(), chunk.end());
    }
    EXPECT_EQ(stream.frames_decoded(), frames);
    const std::vector<float> tail = stream.Flush();
    EXPECT_EQ(tail.size(), 480u);
    streamed.insert(streamed.end(), tail.begin(), tail.end());
    ExpectClose(streamed, batch, tolerance);
    EXPECT_EQ(stream.frames_decoded(), 0);
  }
}

TEST(Lfm25DetokenizerStream, StepsAndFlushEqualBatchDecode) {
  ExpectStreamEqualsBatch(Small().detokenizer, 12, 21, 1e-5);
}

TEST(Lfm25DetokenizerStream, ResetStartsAFreshStream) {
  const Fixture& f = Small();
  const int frames = 7;
  const std::vector<int> codes = RandomCodes(frames, 31);
  Lfm25DetokenizerStream stream(f.detokenizer);
  for (int t = 0; t < 3; ++t) stream.Step(RandomCodes(1, 100 + t));
  stream.Reset();
  std::vector<float> streamed;
  for (int t = 0; t < frames; ++t) stream.Step(FrameCodes(codes, frames, t).data(), streamed);
  stream.Flush(streamed);
  ExpectClose(streamed, f.detokenizer->Decode(codes, frames), 1e-5);
}

TEST(Lfm25DetokenizerStream, FlushWithoutFramesGivesNothing) {
  Lfm25DetokenizerStream stream(Small().detokenizer);
  EXPECT_TRUE(stream.Flush().empty());
}

// No sliding_window in config.json: the reference's default window of 30, here over 48 positions,
// with both attention layer names and bf16 weights (the real checkpoint's dtype, UNCERTAIN).
TEST(Lfm25DetokenizerStream, Bf16CheckpointWithTheDefaultWindow) {
  TempDir dir;
  test::RandomDetokenizerSpec spec;
  spec.layer_types = {"conv", "conv", "sliding_attention", "conv", "full_attention", "conv"};
  spec.sliding_window.reset();
  spec.dtype = DType::kBF16;
  test::WriteRandomDetokenizer(dir.path() / D::kDirName, spec, 9);
  const auto detokenizer = D::LoadFromModelDir(dir.path());
  ASSERT_NE(detokenizer, nullptr);
  EXPECT_EQ(detokenizer->sliding_window(), D::kDefaultSlidingWindow);
  ExpectStreamEqualsBatch(detokenizer, 8, 41, 1e-5);  // 48 positions > 30
}

// ---- the LFM2 window itself ---------------------------------------------------------------

// The windowed backbone against the naive stack, in one shot and in chunks of any size (the
// cache drops rows as it goes), with the f32 cache of the detokenizer and the f16 cache the
// backbone may also use (whose rounding of keys and values loosens the tolerances).
class Lfm2SlidingWindowCache : public testing::TestWithParam<const char*> {};

TEST_P(Lfm2SlidingWindowCache, ChunkedForwardMatchesTheNaiveStack) {
  const Fixture& f = Small();
  const bool f16 = std::string(GetParam()) == "f16";
  Lfm2Options options;
  options.sliding_window = f.detokenizer->sliding_window();
  options.kv_cache = GetParam();
  const LfmConfig& c = f.detokenizer->config().lfm;
  const auto model = Lfm2Model::Load(f.st, c, options);
  const Lfm2Model& m = *model;
  const int n = 41, d = m.hidden_size();
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * d);
  for (float& v : x) v = normal(rng);
  const std::vector<double> naive = NaiveBackbone(*f.st, c, options.sliding_window, x);
  Lfm2Cache one_shot = m.NewCache();
  std::vector<float> expected(x.size());
  m.Forward(x.data(), n, one_shot, expected.data());
  ExpectClose(expected, naive, f16 ? 5e-3 : 1e-4);
  for (int chunk : {1, 3, 7, 10, 11}) {
    Lfm2Cache cache = m.NewCache();
    std::vector<float> actual(x.size());
    for (int p = 0; p < n; p += chunk) {
      const int len = std::min(chunk, n - p);
      m.Forward(x.data() + static_cast<size_t>(p) * d, len, cache,
                actual.data() + static_cast<size_t>(p) * d);
    }
    EXPECT_EQ(cache.position(), n);
    ExpectClose(actual, expected, f16 ? 1e-4 : 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(KvCache, Lfm2SlidingWindowCache, testing::Values("f32", "f16"));

TEST(Lfm2SlidingWindow, WindowLongerThanTheSequenceIsFullAttention) {
  const Fixture& f = Small();
  const fs::path file = f.dir.path() / D::kDirName / "model.safetensors";
  const LfmConfig& c = f.detokenizer->config().lfm;
  Lfm2Options wide;
  wide.sliding_window = 1000;
  const auto windowed = Lfm2Model::Load(f.st, c, wide);
  const auto full = Lfm2Model::Load(f.st, c);
  const int n = 25, d = c.hidden_size;
  std::vector<float> x(static_cast<size_t>(n) * d);
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  Lfm2Cache a = windowed->NewCache(), b = full->NewCache();
  std::vector<float> ya(x.size()), yb(x.size());
  windowed->Forward(x.data(), n, a, ya.data());
  full->Forward(x.data(), n, b, yb.data());
  EXPECT_EQ(ya, yb);
  Lfm2Options negative;
  negative.sliding_window = -1;
  EXPECT_THROW(Lfm2Model::Load(f.st, c, negative), ModelError);
}

// ---- bad input ----------------------------------------------------------------------------

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "(no ModelError)";
}

TEST(Lfm25Detokenizer, OutOfRangeCodesAreRejectedByName) {
  const Fixture& f = Small();
  const int frames = 3;
  std::vector<int> codes = RandomCodes(frames, 12);
  codes[3 * frames + 1] = 2048;  // codebook 3, frame 1
  std::string msg = ErrorOf([&] { f.detokenizer->Decode(codes, frames); });
  EXPECT_NE(msg.find("code 2048 of codebook 3 (frame 1)"), std::string::npos) << msg;
  codes[3 * frames + 1] = -1;
  msg = ErrorOf([&] { f.detokenizer->Decode(codes, frames); });
  EXPECT_NE(msg.find("code -1 of codebook 3"), std::string::npos) << msg;
  msg = ErrorOf([&] { f.detokenizer->Decode(codes, frames + 1); });
  EXPECT_NE(msg.find("expected 8 x 4 codes"), std::string::npos) << msg;

  // A stream rejects a bad frame without changing its state.
  const std::vector<int> good = RandomCodes(frames, 13);
  Lfm25DetokenizerStream stream(f.detokenizer);
  std::vector<float> streamed = stream.Step(FrameCodes(good, frames, 0));
  std::vector<int> bad = FrameCodes(good, frames, 1);
  bad[7] = 4096;
  msg = ErrorOf([&] { stream.Step(bad); });
  EXPECT_NE(msg.find("code 4096 of codebook 7"), std::string::npos) << msg;
  EXPECT_EQ(stream.frames_decoded(), 1);
  EXPECT_THROW(stream.Step(std::vector<int>(7, 0)), ModelError);
  for (int t = 1; t < frames; ++t) stream.Step(FrameCodes(good, frames, t).data(), streamed);
  stream.Flush(streamed);
  ExpectClose(streamed, f.detokenizer->Decode(good, frames), 1e-5);
}

// Writes a valid folder, lets `spoil` break it, and returns the load error.
std::string LoadError(const std::function<void(const fs::path&)>& spoil) {
  TempDir dir;
  const fs::path sub = dir.path() / D::kDirName;
  test::WriteRandomDetokenizer(sub, test::RandomDetokenizerSpec(), 1);
  spoil(sub);
  return ErrorOf([&] { D::LoadFromModelDir(dir.path()); });
}

void WriteConfig(const fs::path& sub, const nlohmann::ordered_json& config) {
  std::ofstream(sub / "config.json", std::ios::trunc) << config.dump();
}

TEST(Lfm25Detokenizer, BrokenFoldersGiveClearErrors) {
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nexpected: " << part;
  };
  has(LoadError([](const fs::path& s) { fs::remove(s / "config.json"); }), "config.json: missing");
  has(LoadError([](const fs::path& s) { fs::remove(s / "model.safetensors"); }),
      "model.safetensors: missing");
  has(LoadError([](const fs::path& s) { std::ofstream(s / "config.json") << "{ not json"; }),
      "invalid JSON");
  has(LoadError([](const fs::path& s) {
        auto c = test::RandomDetokenizerConfig(test::RandomDetokenizerSpec());
        c["layer_types"][1] = "mamba";
        WriteConfig(s, c);
      }),
      "layer_types[1]: unknown layer type \"mamba\"");
  has(LoadError([](const fs::path& s) {
        auto c = test::RandomDetokenizerConfig(test::RandomDetokenizerSpec());
        c["sliding_window"] = 0;
        WriteConfig(s, c);
      }),
      "sliding_window: must be positive");
  has(LoadError([](const fs::path& s) {
        auto c = test::RandomDetokenizerConfig(test::RandomDetokenizerSpec());
        c["sliding_window"] = nullptr;
        WriteConfig(s, c);
      }),
      "sliding_window: is null");
  has(LoadError([](const fs::path& s) {
        auto c = test::RandomDetokenizerConfig(test::RandomDetokenizerSpec());
        c["hidden_size"] = 128;  // the tensors say 64
        c["num_attention_heads"] = 8;
        c["num_key_value_heads"] = 4;
        WriteConfig(s, c);
      }),
      "lfm.");
  has(LoadError([](const fs::path& s) {
        auto tensors = test::RandomDetokenizerTensors(test::RandomDetokenizerSpec(), 1);
        tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                     [](const TensorToWrite& t) { return t.name == "lin.bias"; }),
                      tensors.end());
        WriteSafeTensors(s / "model.safetensors", tensors);
      }),
      "lin.bias");
  has(LoadError([](const fs::path& s) {
        auto tensors = test::RandomDetokenizerTensors(test::RandomDetokenizerSpec(), 1);
        for (auto& t : tensors) {
          if (t.name == "istft.window") std::fill(t.values.begin(), t.values.end(), 1.0f);
        }
        WriteSafeTensors(s / "model.safetensors", tensors);
      }),
      "istft.window[0]");
  has(LoadError([](const fs::path& s) {
        fs::remove_all(s);
        std::ofstream(s) << "not a folder";
      }),
      "expected a directory");
}

}  // namespace
}  // namespace eddy
