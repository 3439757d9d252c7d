// Golden tests of the LFM2 backbone and the audio head against the reference vectors
// (b_backbone, c_decode, d_audio_head). Every size comes from config.json or the .npy shapes.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "eddy/audio_head.h"
#include "eddy/config.h"
#include "eddy/lfm2.h"
#include "eddy/safetensors.h"
#include "golden.h"

namespace eddy {
namespace {

using test::Compare;
using test::Describe;
using test::GoldenFile;
using test::GoldenModelDir;
using test::LoadNpy;
using test::NpyArray;

constexpr double kRel = 1e-4;

struct GoldenModel {
  AudioModelConfig config;
  std::shared_ptr<const SafeTensors> st;
  std::shared_ptr<const Lfm2Model> lfm;
  std::shared_ptr<const AudioHead> head;
  std::shared_ptr<const AudioEmbedding> audio_embedding;
};

const GoldenModel& Model() {
  static const GoldenModel m = [] {
    GoldenModel g;
    g.config = AudioModelConfig::Load(GoldenModelDir() / "config.json");
    g.st = std::make_shared<const SafeTensors>(
        SafeTensors::Open(GoldenModelDir() / "model.safetensors"));
    g.lfm = Lfm2Model::Load(g.st, g.config.lfm);
    g.head = AudioHead::Load(g.st, g.config);
    g.audio_embedding = AudioEmbedding::Load(g.st, g.config);
    return g;
  }();
  return m;
}

std::vector<int> Ids(const NpyArray& a) {
  return std::vector<int>(a.i64.begin(), a.i64.end());
}

void ExpectClose(const float* actual, const std::vector<float>& expected, const std::string& what) {
  const test::Diff d = Compare(actual, expected.data(), expected.size());
  EXPECT_TRUE(test::WithinTolerance(d, kRel)) << what << ": " << Describe(d);
}

TEST(BackboneGolden, HiddenStates) {
  const GoldenModel& m = Model();
  const NpyArray ids = LoadNpy(GoldenFile("model/outputs/b_backbone/prompt_ids.npy"));
  const NpyArray ref = LoadNpy(GoldenFile("model/outputs/b_backbone/hidden_states.npy"));
  const int layers = m.config.lfm.num_hidden_layers, d = m.lfm->hidden_size();
  const int n = static_cast<int>(ids.numel());
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{layers + 1, n, d}));
  const std::vector<float> emb = m.lfm->EmbedText(Ids(ids));
  Lfm2Cache cache = m.lfm->NewCache();
  std::vector<float> out(emb.size());
  std::vector<std::vector<float>> per_layer;
  m.lfm->Forward(emb.data(), n, cache, out.data(), &per_layer);
  const size_t slab = static_cast<size_t>(n) * d;
  auto ref_slab = [&](int i) {
    return std::vector<float>(ref.f32.begin() + i * slab, ref.f32.begin() + (i + 1) * slab);
  };
  // Index 0 = input embeddings, i = output of layer i-1, the last index = after the final norm.
  ExpectClose(emb.data(), ref_slab(0), "embeddings");
  for (int i = 1; i < layers; ++i) {
    ExpectClose(per_layer[i - 1].data(), ref_slab(i), "lfm.layers." + std::to_string(i - 1));
  }
  ExpectClose(out.data(), ref_slab(layers), "lfm.embedding_norm");
  const NpyArray last = LoadNpy(GoldenFile("model/outputs/b_backbone/last_hidden_state.npy"));
  ExpectClose(out.data(), last.f32, "last_hidden_state");
}

TEST(BackboneGolden, Logits) {
  const GoldenModel& m = Model();
  const NpyArray ids = LoadNpy(GoldenFile("model/outputs/b_backbone/prompt_ids.npy"));
  const NpyArray ref = LoadNpy(GoldenFile("model/outputs/b_backbone/logits.npy"));
  const int n = static_cast<int>(ids.numel()), d = m.lfm->hidden_size(), v = m.lfm->vocab_size();
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{n, v}));
  Lfm2Cache cache = m.lfm->NewCache();
  const std::vector<float> hidden = m.lfm->Forward(m.lfm->EmbedText(Ids(ids)), cache);
  std::vector<float> logits(static_cast<size_t>(n) * v);
  for (int t = 0; t < n; ++t) m.lfm->TextLogits(hidden.data() + t * d, logits.data() + t * v);
  ExpectClose(logits.data(), ref.f32, "logits");
}

// The end-to-end prompts' assembled inputs: AUDIO_OUT rows are summed audio embeddings, TEXT rows
// embed_tokens rows, and the backbone's prefill output matches the reference.
TEST(BackboneGolden, E2ePrefill) {
  const GoldenModel& m = Model();
  const int d = m.lfm->hidden_size(), cb = m.audio_embedding->codebooks();
  for (const char* name : {"asr_sequential", "interleaved_turn1", "interleaved_turn2"}) {
    const std::string dir = std::string("model/outputs/f_e2e/") + name + "/";
    const NpyArray emb = LoadNpy(GoldenFile(dir + "prefill_embeddings.npy"));
    const NpyArray last = LoadNpy(GoldenFile(dir + "prefill_last_hidden.npy"));
    const NpyArray flags = LoadNpy(GoldenFile(dir + "prompt_modality_flag.npy"));
    const NpyArray text = LoadNpy(GoldenFile(dir + "prompt_text_ids.npy"));
    const NpyArray audio_out = LoadNpy(GoldenFile(dir + "prompt_audio_out.npy"));
    const int n = static_cast<int>(flags.numel());
    ASSERT_EQ(emb.shape, (std::vector<int64_t>{n, d}));
    ASSERT_EQ(audio_out.dim(0), cb);
    const int64_t frames = audio_out.dim(1);
    int next_text = 0, next_frame = 0;
    std::vector<float> row(d);
    for (int t = 0; t < n; ++t) {
      const std::vector<float> ref(emb.f32.begin() + t * d, emb.f32.begin() + (t + 1) * d);
      if (flags.i64[t] == 1) {
        m.lfm->EmbedText({static_cast<int>(text.i64.at(next_text++))}, row.data());
        ExpectClose(row.data(), ref, std::string(name) + " text row " + std::to_string(t));
      } else if (flags.i64[t] == 3) {
        std::vector<int> codes(cb);
        for (int c = 0; c < cb; ++c)
          codes[c] = static_cast<int>(audio_out.i64[c * frames + next_frame]);
        ++next_frame;
        m.audio_embedding->EmbedFrame(codes.data(), row.data());
        ExpectClose(row.data(), ref, std::string(name) + " audio-out row " + std::to_string(t));
      }
    }
    EXPECT_EQ(next_text, text.numel());
    EXPECT_EQ(next_frame, frames);
    Lfm2Cache cache = m.lfm->NewCache();
    const std::vector<float> out = m.lfm->Forward(emb.f32, cache);
    ExpectClose(out.data(), last.f32, std::string(name) + " prefill_last_hidden");
  }
}

TEST(DecodeGolden, Greedy) {
  const GoldenModel& m = Model();
  const NpyArray ids = LoadNpy(GoldenFile("model/outputs/c_decode/prompt_ids.npy"));
  const NpyArray gen = LoadNpy(GoldenFile("model/outputs/c_decode/generated_ids.npy"));
  const NpyArray ref = LoadNpy(GoldenFile("model/outputs/c_decode/step_logits.npy"));
  const int steps = static_cast<int>(gen.numel()), d = m.lfm->hidden_size();
  const int v = m.lfm->vocab_size();
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{steps, v}));
  Lfm2Cache cache = m.lfm->NewCache();
  std::vector<float> hidden = m.lfm->Forward(m.lfm->EmbedText(Ids(ids)), cache);
  std::vector<float> last(hidden.end() - d, hidden.end());
  std::vector<int> generated;
  for (int s = 0; s < steps; ++s) {
    const std::vector<float> logits = m.lfm->TextLogits(last.data());
    ExpectClose(logits.data(),
                std::vector<float>(ref.f32.begin() + s * v, ref.f32.begin() + (s + 1) * v),
                "step " + std::to_string(s));
    const int token = ArgMax(logits.data(), v);
    generated.push_back(token);
    last = m.lfm->Forward(m.lfm->EmbedText({token}), cache);
  }
  EXPECT_EQ(generated, Ids(gen));
}

void CheckAudioHead(const std::string& name) {
  const GoldenModel& m = Model();
  const std::string dir = "model/outputs/d_audio_head/" + name + "/";
  const NpyArray hidden = LoadNpy(GoldenFile(dir + "hidden_in.npy"));
  const NpyArray linear = LoadNpy(GoldenFile(dir + "depth_linear_out.npy"));
  const NpyArray logits = LoadNpy(GoldenFile(dir + "logits.npy"));
  const NpyArray codes = LoadNpy(GoldenFile(dir + "codes.npy"));
  const NpyArray next = LoadNpy(GoldenFile(dir + "next_audio_embedding.npy"));
  const int cb = m.head->codebooks(), dim = m.head->dim();
  ASSERT_EQ(hidden.numel(), m.lfm->hidden_size());
  ASSERT_EQ(linear.shape, (std::vector<int64_t>{cb, dim}));
  ASSERT_EQ(logits.shape, (std::vector<int64_t>{cb, AudioModelConfig::kAudioVocab}));

  std::vector<float> depth_in(static_cast<size_t>(cb) * dim);
  m.head->DepthLinear(hidden.f32.data(), depth_in.data());
  ExpectClose(depth_in.data(), linear.f32, "depth_linear");

  AudioHeadState state = m.head->NewState();
  Sampler sampler(0);
  const AudioFrame frame = m.head->SampleFrame(hidden.f32.data(), {}, sampler, state, true);
  for (int c = 0; c < cb; ++c) {
    const size_t row = AudioModelConfig::kAudioVocab;
    ExpectClose(
        frame.logits[c].data(),
        std::vector<float>(logits.f32.begin() + c * row, logits.f32.begin() + (c + 1) * row),
        "depth_embeddings." + std::to_string(c) + " logits");
  }
  EXPECT_EQ(frame.codes, Ids(codes));
  std::vector<float> embedding(m.lfm->hidden_size());
  m.audio_embedding->EmbedFrame(frame.codes.data(), embedding.data());
  ExpectClose(embedding.data(), next.f32, "next_audio_embedding");

  // A second frame through the same state must not see the first frame's cache.
  const AudioFrame again = m.head->SampleFrame(hidden.f32.data(), {}, sampler, state, false);
  EXPECT_EQ(again.codes, frame.codes);
}

TEST(AudioHeadGolden, FixedRandomHidden) {
  CheckAudioHead("fixed_random_hidden");
}
TEST(AudioHeadGolden, BackboneLastHidden) {
  CheckAudioHead("backbone_last_hidden");
}

}  // namespace
}  // namespace eddy
