// Sampling rules of spec_backbone.md §2.6, checked against independent computations, and the
// depthformer head's tied-logits fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "eddy/audio_head.h"
#include "eddy/safetensors.h"
#include "eddy/safetensors_writer.h"
#include "eddy/sampling.h"
#include "golden.h"

namespace eddy {
namespace {

TEST(Sampling, GreedyTakesFirstMaximum) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  Sampler s(1);
  EXPECT_EQ(s.Sample(logits.data(), 5, {}), 1);
  EXPECT_EQ(s.Sample(logits.data(), 5, {0.0f, std::nullopt}), 1);
  EXPECT_EQ(s.Sample(logits.data(), 5, {-1.0f, 10}), 1);
  EXPECT_EQ(s.Sample(logits.data(), 5, {1.5f, 1}), 1);  // top_k == 1 is greedy
  EXPECT_EQ(ArgMax(logits.data(), 5), 1);
}

TEST(Sampling, TopKKeepsTiesAtTheThreshold) {
  // top_k = 2: the 2nd largest value is 2.0, shared by indices 1 and 3, so 0, 1 and 3 survive.
  const std::vector<float> logits = {5.0f, 2.0f, 1.0f, 2.0f, -1.0f};
  Sampler s(7);
  std::map<int, int> seen;
  for (int i = 0; i < 4000; ++i) ++seen[s.Sample(logits.data(), 5, {1.0f, 2})];
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_EQ(seen.count(4), 0u);
}

TEST(Sampling, TemperatureShapesTheDistribution) {
  // Two logits 0 and ln 3: at T = 1 p(1) = 3/4; at T = 2 p(1) = sqrt3/(1+sqrt3) ~ 0.634.
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  for (float t : {1.0f, 2.0f}) {
    Sampler s(123);
    int ones = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ones += s.Sample(logits.data(), 2, {t, std::nullopt});
    const double expected = std::pow(3.0, 1.0 / t) / (1.0 + std::pow(3.0, 1.0 / t));
    EXPECT_NEAR(static_cast<double>(ones) / n, expected, 0.015) << "T=" << t;
  }
}

TEST(Sampling, SeededDrawsAreReproducible) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = static_cast<float>((i * 7) % 13) * 0.3f;
  Sampler a(99), b(99), c(100);
  std::vector<int> da, db, dc;
  for (int i = 0; i < 100; ++i) {
    da.push_back(a.Sample(logits.data(), 50, {0.9f, 20}));
    db.push_back(b.Sample(logits.data(), 50, {0.9f, 20}));
    dc.push_back(c.Sample(logits.data(), 50, {0.9f, 20}));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

}  // namespace
}  // namespace eddy

// The audio head falls back to the embedding table when the tied to_logits copies are absent.
namespace eddy {
namespace {

TEST(Depthformer, TiedLogitsFallBackToTheEmbeddingTable) {
  namespace fs = std::filesystem;
  const AudioModelConfig config = AudioModelConfig::Load(test::GoldenModelDir() / "config.json");
  if (!config.depthformer.tie) {
    GTEST_SKIP() << "SKIPPED: this golden set's depthformer is untied (depthformer.tie false), so "
                    "there is no tied to_logits copy to drop";
  }
  auto st = std::make_shared<const SafeTensors>(
      SafeTensors::Open(test::GoldenModelDir() / "model.safetensors"));
  const fs::path file = fs::temp_directory_path() / ("eddy_tie_" + std::to_string(::getpid()));
  {
    SafeTensorsWriter w(file);
    std::vector<std::string> kept;
    for (const std::string& n : st->Names()) {
      if (n.find(".to_logits.") != std::string::npos && n.rfind("depth_embeddings.", 0) == 0) {
        continue;
      }
      kept.push_back(n);
      w.Declare(n, st->Get(n).dtype, st->Get(n).shape);
    }
    w.Begin();
    for (const std::string& n : kept) w.Append(st->Get(n).data, st->Get(n).nbytes);
    w.Finish();
  }
  auto stripped = std::make_shared<const SafeTensors>(SafeTensors::Open(file));
  EXPECT_FALSE(stripped->Has("depth_embeddings.0.to_logits.weight"));
  auto full = AudioHead::Load(st, config);
  auto tied = AudioHead::Load(stripped, config);
  std::vector<float> hidden(config.lfm.hidden_size);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = std::sin(0.7f * i);
  AudioHeadState s1 = full->NewState(), s2 = tied->NewState();
  Sampler sampler(0);
  const AudioFrame a = full->SampleFrame(hidden.data(), {}, sampler, s1, true);
  const AudioFrame b = tied->SampleFrame(hidden.data(), {}, sampler, s2, true);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.logits, b.logits);  // the golden file stores the tied copies bit-identically
  fs::remove(file);
}

}  // namespace
}  // namespace eddy
