// Sampling rules of spec_backbone.md §2.6, checked against independent computations.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "eddy/sampling.h"

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
