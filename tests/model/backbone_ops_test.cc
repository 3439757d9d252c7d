// The bf16 few-row product used by decode steps, and the safetensors writer, against naive loops.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "eddy/safetensors_writer.h"
#include "ops.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

TEST(BackboneOps, Bf16ProductMatchesNaiveLoopForAnyRowCount) {
  const int rows = 37, cols = 53;  // not multiples of the vector width
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<uint16_t> w(rows * cols);
  for (auto& v : w) v = FloatToBf16(normal(rng));
  const fs::path file = fs::temp_directory_path() / ("eddy_ops_" + std::to_string(::getpid()));
  {
    SafeTensorsWriter writer(file);
    writer.Declare("w", DType::kBF16, {rows, cols});
    writer.Begin();
    writer.Append(w.data(), w.size() * 2);
    writer.Finish();
  }
  const SafeTensors st = SafeTensors::Open(file);
  const ops::WeightMatrix m = ops::WeightMatrix::Load(st, "w", {rows, cols});
  EXPECT_EQ(m.format(), ops::WeightFormat::kBF16);
  for (int n : {1, 2, 4, 5, 9}) {
    std::vector<float> x(n * cols), y(n * rows);
    for (auto& v : x) v = normal(rng);
    m.MatMulT(x.data(), n, y.data());
    for (int i = 0; i < n; ++i) {
      for (int r = 0; r < rows; ++r) {
        double ref = 0;
        for (int c = 0; c < cols; ++c)
          ref += double(Bf16ToFloat(w[r * cols + c])) * x[i * cols + c];
        EXPECT_NEAR(y[i * rows + r], ref, 1e-4) << "n=" << n << " row " << r;
      }
    }
  }
  fs::remove(file);
}

TEST(BackboneOps, WriterRejectsIncompleteAndOverfullData) {
  const fs::path file = fs::temp_directory_path() / ("eddy_w_" + std::to_string(::getpid()));
  {
    SafeTensorsWriter w(file);
    w.Declare("a", DType::kF32, {2});
    w.Declare("b", DType::kF32, {3});
    w.Begin();
    const float v[5] = {1, 2, 3, 4, 5};
    w.Append(v, 8);
    try {
      w.Finish();
      FAIL() << "expected ModelError";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
    }
    EXPECT_THROW(w.Append(v, 20), ModelError);
  }
  SafeTensorsWriter dup(file);
  dup.Declare("a", DType::kF32, {1});
  EXPECT_THROW(dup.Declare("a", DType::kF32, {1}), ModelError);
  fs::remove(file);
}

}  // namespace
}  // namespace eddy
