#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include "eddy/spsc_ring.h"

namespace eddy {
namespace {

TEST(SpscRing, CapacityIsAPowerOfTwo) {
  EXPECT_EQ(SpscRing<float>(1).capacity(), 1u);
  EXPECT_EQ(SpscRing<float>(1000).capacity(), 1024u);
  EXPECT_EQ(SpscRing<float>(1024).capacity(), 1024u);
}

TEST(SpscRing, WrapsAroundAndCountsWhatDidNotFit) {
  SpscRing<int> ring(8);
  std::vector<int> in(6), out(8);
  std::iota(in.begin(), in.end(), 0);
  EXPECT_EQ(ring.Write(in.data(), 6), 6u);
  EXPECT_EQ(ring.Read(out.data(), 4), 4u);
  EXPECT_EQ(std::vector<int>(out.begin(), out.begin() + 4), (std::vector<int>{0, 1, 2, 3}));
  // 2 left; 6 more fit and wrap past the end of the storage; the rest is refused.
  std::iota(in.begin(), in.end(), 100);
  EXPECT_EQ(ring.Write(in.data(), 6), 6u);
  EXPECT_EQ(ring.Write(in.data(), 6), 0u);
  EXPECT_EQ(ring.writable(), 0u);
  EXPECT_EQ(ring.Read(out.data(), 100), 8u);
  EXPECT_EQ(out, (std::vector<int>{4, 5, 100, 101, 102, 103, 104, 105}));
  EXPECT_EQ(ring.Read(out.data(), 1), 0u);
  EXPECT_EQ(ring.total_written(), 12u);
  EXPECT_EQ(ring.total_read(), 12u);
}

TEST(SpscRing, WaitTimesOutAndWakesOnData) {
  SpscRing<float> ring(16);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ring.WaitReadable(1, std::chrono::milliseconds(30)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const float v = 1.5f;
    ring.Write(&v, 1);
  });
  EXPECT_TRUE(ring.WaitReadable(1, std::chrono::seconds(5)));
  producer.join();
  float v = 0;
  EXPECT_EQ(ring.Read(&v, 1), 1u);
  EXPECT_EQ(v, 1.5f);
  EXPECT_TRUE(ring.WaitWritable(16, std::chrono::milliseconds(0)));
}

// A producer thread writes a counting sequence in bursts of varying size into a small ring; the
// consumer must see every value exactly once and in order, though many writes are refused.
TEST(SpscRing, ThreadedStressKeepsExactOrder) {
  constexpr uint64_t kTotal = 2'000'000;
  SpscRing<uint64_t> ring(256);
  std::thread producer([&] {
    std::vector<uint64_t> burst(97);
    uint64_t next = 0;
    size_t size = 1;
    while (next < kTotal) {
      size = size % burst.size() + 1;
      const size_t n = std::min<uint64_t>(size, kTotal - next);
      for (size_t i = 0; i < n; ++i) burst[i] = next + i;
      next += ring.Write(burst.data(), n);
    }
  });
  std::vector<uint64_t> got(61);
  uint64_t expected = 0;
  bool in_order = true;
  while (expected < kTotal) {
    if (!ring.WaitReadable(1, std::chrono::seconds(10))) break;
    const size_t n = ring.Read(got.data(), got.size());
    for (size_t i = 0; i < n; ++i) in_order &= got[i] == expected++;
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(expected, kTotal);
  EXPECT_EQ(ring.total_written(), kTotal);
  EXPECT_EQ(ring.readable(), 0u);
}

// Overflow accounting the way the capture callback does it: whole frames that do not fit are
// counted as dropped, and what was written is still intact.
TEST(SpscRing, OverflowDropsWholeFramesAndCountsThem) {
  constexpr size_t kChannels = 2;
  SpscRing<float> ring(16);
  uint64_t dropped = 0, overflows = 0;
  std::vector<float> block(5 * kChannels);
  for (int cb = 0; cb < 3; ++cb) {
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<float>(cb * 100 + i);
    const size_t fit = std::min(block.size() / kChannels, ring.writable() / kChannels);
    ring.Write(block.data(), fit * kChannels);
    if (fit < block.size() / kChannels) {
      ++overflows;
      dropped += block.size() / kChannels - fit;
    }
  }
  EXPECT_EQ(overflows, 2u);  // 16 slots = 8 frames: 5 fit, then 3, then 0
  EXPECT_EQ(dropped, 2u + 5u);
  std::vector<float> out(16);
  ASSERT_EQ(ring.Read(out.data(), 16), 16u);
  EXPECT_EQ(out[10], 100.0f);
  EXPECT_EQ(out[15], 105.0f);
}

}  // namespace
}  // namespace eddy
