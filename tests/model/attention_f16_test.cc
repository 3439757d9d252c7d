// Attention over an f16 key/value cache: the AVX-512 and portable versions agree bit for bit, and
// both agree with float32 attention to f16 precision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant.h"
#include "rope.h"

namespace eddy::rope {
namespace {

struct Case {
  int dim, visible, stride;
};

TEST(AttentionF16, KernelsAgreeAndMatchFloat32) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Case c : {Case{64, 1, 64}, Case{64, 37, 128}, Case{16, 200, 48}, Case{32, 5, 32},
                       Case{128, 16, 256}, Case{256, 33, 256}}) {
    std::vector<float> q(c.dim), k32(size_t(c.visible) * c.stride), v32(k32.size());
    for (float& x : q) x = normal(rng);
    std::vector<uint16_t> k16(k32.size()), v16(v32.size());
    for (size_t i = 0; i < k32.size(); ++i) {
      // The float32 reference sees exactly the values the f16 cache holds.
      k16[i] = quant::FloatToHalf(normal(rng));
      v16[i] = quant::FloatToHalf(normal(rng));
      k32[i] = quant::HalfToFloat(k16[i]);
      v32[i] = quant::HalfToFloat(v16[i]);
    }
    const float scale = 1.0f / std::sqrt(float(c.dim));
    std::vector<float> scores(c.visible), ref(c.dim), portable(c.dim), simd(c.dim);
    AttendOne(q.data(), k32.data(), v32.data(), c.stride, c.visible, c.dim, scale, scores.data(),
              ref.data());
    AttendOneF16Portable(q.data(), k16.data(), v16.data(), c.stride, c.visible, c.dim, scale,
                         scores.data(), portable.data());
    for (int i = 0; i < c.dim; ++i) EXPECT_NEAR(portable[i], ref[i], 1e-5) << "dim " << i;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("f16c")) {
      std::fprintf(stderr, "NOTE: no AVX-512 on this CPU: the AVX-512 attention is not tested\n");
      continue;
    }
    AttendOneF16Avx512(q.data(), k16.data(), v16.data(), c.stride, c.visible, c.dim, scale,
                       scores.data(), simd.data());
    EXPECT_EQ(0, std::memcmp(simd.data(), portable.data(), sizeof(float) * c.dim))
        << "dim " << c.dim << " visible " << c.visible;
  }
}

}  // namespace
}  // namespace eddy::rope
