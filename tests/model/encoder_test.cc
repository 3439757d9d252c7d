// Unit tests of the FastConformer encoder on a small random checkpoint written to a temp file:
// output lengths, determinism, silence, bad input and bad checkpoints.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "eddy/config.h"
#include "eddy/conformer.h"
#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "eddy/safetensors_writer.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "eddy_encoder_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

EncoderConfig SmallConfig() {
  EncoderConfig c;
  c.n_layers = 2;
  c.d_model = 32;
  c.n_heads = 4;
  c.subsampling_conv_channels = 8;
  c.conv_kernel_size = 9;
  return c;
}
constexpr int kHidden = 24;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Random weights of a plausible scale; norms near 1 and a positive BatchNorm variance.
std::vector<TensorToWrite> RandomTensors(const EncoderConfig& c, int hidden, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.5f, 2.0f);
  std::vector<TensorToWrite> out;
  for (const auto& [name, shape] : ConformerEncoder::TensorShapes(c, hidden)) {
    TensorToWrite t{name, shape, {}};
    int64_t n = 1, fan_in = 1;
    for (int64_t d : shape) n *= d;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    t.values.resize(n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(fan_in));
    for (auto& v : t.values) {
      if (EndsWith(name, "running_var")) {
        v = uniform(rng);
      } else if (shape.size() == 1 && EndsWith(name, ".weight")) {
        v = 1.0f + 0.1f * normal(rng);
      } else if (shape.size() == 1) {
        v = 0.1f * normal(rng);
      } else {
        v = scale * normal(rng);
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<float> RandomMel(int features, int frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> mel(static_cast<size_t>(features) * frames);
  for (auto& v : mel) v = normal(rng);
  return mel;
}

class EncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() / "encoder.safetensors";
    WriteSafeTensors(path_, RandomTensors(config_, kHidden, 7));
  }
  TempDir dir_;
  fs::path path_;
  EncoderConfig config_ = SmallConfig();
};

bool AllFinite(const RowMatrix& m) {
  return m.array().isFinite().all();
}

TEST_F(EncoderTest, OutputLengthIsCeilOfFramesOverEight) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  for (int frames : {1, 2, 7, 8, 9, 15, 16, 17, 63, 100, 101, 103}) {
    const auto mel = RandomMel(config_.feat_in, frames, 100 + frames);
    const RowMatrix a = encoder.Encode(mel.data(), frames);
    EXPECT_EQ(ConformerEncoder::OutputFrames(frames), (frames + 7) / 8) << frames;
    ASSERT_EQ(a.rows(), (frames + 7) / 8) << frames;
    ASSERT_EQ(a.cols(), kHidden);
    EXPECT_TRUE(AllFinite(a)) << frames;
    // A longer clip in between leaves different contents in freed memory; a result that read
    // uninitialised memory would change.
    const auto other = RandomMel(config_.feat_in, frames + 41, 5);
    encoder.Encode(other.data(), frames + 41);
    const RowMatrix b = encoder.Encode(mel.data(), frames);
    EXPECT_TRUE((a.array() == b.array()).all()) << frames << " frames: not deterministic";
  }
}

TEST_F(EncoderTest, CancelFlagStopsTheEncoder) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  const int frames = 45;
  const auto mel = RandomMel(config_.feat_in, frames, 9);
  std::atomic<bool> cancel{true};
  EXPECT_THROW(encoder.Encode(mel.data(), frames, &cancel), Cancelled);
  cancel = false;
  EXPECT_TRUE((encoder.Encode(mel.data(), frames, &cancel).array() ==
               encoder.Encode(mel.data(), frames).array())
                  .all());
}

TEST_F(EncoderTest, TraceMatchesEncodeAndHasEveryLayer) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  const int frames = 45;
  const auto mel = RandomMel(config_.feat_in, frames, 3);
  const ConformerTrace trace = encoder.EncodeWithTrace(mel.data(), frames);
  const RowMatrix out = encoder.Encode(mel.data(), frames);
  ASSERT_EQ(static_cast<int>(trace.layers.size()), config_.n_layers);
  EXPECT_EQ(trace.pre_encode.rows(), 6);
  EXPECT_EQ(trace.pre_encode.cols(), config_.d_model);
  EXPECT_TRUE((trace.layers.back().array() == trace.conformer_out.array()).all());
  EXPECT_TRUE((trace.adapter_out.array() == out.array()).all());
}

TEST_F(EncoderTest, SilenceGivesFiniteOutput) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  for (int frames : {1, 13, 101}) {
    const std::vector<float> mel(static_cast<size_t>(config_.feat_in) * frames, 0.0f);
    const RowMatrix out = encoder.Encode(mel.data(), frames);
    EXPECT_EQ(out.rows(), (frames + 7) / 8);
    EXPECT_TRUE(AllFinite(out)) << frames;
  }
}

TEST_F(EncoderTest, ZeroFramesIsAClearError) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  const std::vector<float> mel(config_.feat_in, 0.0f);
  try {
    encoder.Encode(mel.data(), 0);
    FAIL() << "expected an exception for 0 frames";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at least 1 frame"), std::string::npos) << e.what();
  }
  EXPECT_THROW(encoder.Encode(mel.data(), -3), std::invalid_argument);
  EXPECT_THROW(encoder.Encode(nullptr, 5), std::invalid_argument);
}

TEST_F(EncoderTest, WrongShapedTensorNamesTheTensor) {
  for (const std::string bad :
       {"conformer.layers.1.self_attn.linear_pos.weight", "conformer.pre_encode.out.weight",
        "audio_adapter.model.3.bias", "conformer.layers.0.conv.depthwise_conv.weight"}) {
    auto tensors = RandomTensors(config_, kHidden, 7);
    for (auto& t : tensors) {
      if (t.name == bad) {
        t.shape[0] += 1;
        t.values.resize(t.values.size() / (t.shape[0] - 1) * t.shape[0], 0.5f);
      }
    }
    const fs::path path = dir_.path() / "bad.safetensors";
    WriteSafeTensors(path, tensors);
    const SafeTensors st = SafeTensors::Open(path);
    try {
      ConformerEncoder::Load(st, config_, kHidden);
      FAIL() << "expected a ModelError for " << bad;
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST_F(EncoderTest, MissingTensorNamesTheTensor) {
  auto tensors = RandomTensors(config_, kHidden, 7);
  const std::string missing = "conformer.layers.1.conv.batch_norm.running_mean";
  std::erase_if(tensors, [&](const TensorToWrite& t) { return t.name == missing; });
  const fs::path path = dir_.path() / "missing.safetensors";
  WriteSafeTensors(path, tensors);
  const SafeTensors st = SafeTensors::Open(path);
  try {
    ConformerEncoder::Load(st, config_, kHidden);
    FAIL() << "expected a ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

TEST_F(EncoderTest, Bf16CheckpointMatchesTheSameValuesInF32) {
  auto tensors = RandomTensors(config_, kHidden, 11);
  // Round once to bf16 so that both files hold identical values.
  for (auto& t : tensors) {
    for (auto& v : t.values) v = Bf16ToFloat(FloatToBf16(v));
  }
  const fs::path f32_path = dir_.path() / "f32.safetensors";
  const fs::path bf16_path = dir_.path() / "bf16.safetensors";
  WriteSafeTensors(f32_path, tensors, DType::kF32);
  WriteSafeTensors(bf16_path, tensors, DType::kBF16);
  const SafeTensors f32 = SafeTensors::Open(f32_path);
  const SafeTensors bf16 = SafeTensors::Open(bf16_path);
  const int frames = 77;
  const auto mel = RandomMel(config_.feat_in, frames, 9);
  const RowMatrix expected =
      ConformerEncoder::Load(f32, config_, kHidden, EncoderWeightStorage::kOwnedF32)
          .Encode(mel.data(), frames);
  const float max_ref = expected.cwiseAbs().maxCoeff();
  for (const SafeTensors* st : {&f32, &bf16}) {
    for (auto storage : {EncoderWeightStorage::kOwnedF32, EncoderWeightStorage::kMapped}) {
      const auto encoder = ConformerEncoder::Load(*st, config_, kHidden, storage);
      const RowMatrix out = encoder.Encode(mel.data(), frames);
      EXPECT_LE((out - expected).cwiseAbs().maxCoeff(), 1e-5f * max_ref)
          << st->path() << (storage == EncoderWeightStorage::kMapped ? " mapped" : " owned");
    }
  }
}

// The fast path's int8 matrices: close to float32 (int8 steps of 1/127 of each block's largest
// weight, over a few layers), different from it, and reporting fewer weight bytes.
TEST_F(EncoderTest, Q8MatricesStayCloseToFloat32) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto exact = ConformerEncoder::Load(st, config_, kHidden, EncoderWeightStorage::kOwnedF32);
  const auto fast =
      ConformerEncoder::Load(st, config_, kHidden, EncoderWeightStorage::kQuantizedQ8);
  const int frames = 77;
  const auto mel = RandomMel(config_.feat_in, frames, 9);
  const RowMatrix expected = exact.Encode(mel.data(), frames);
  const RowMatrix out = fast.Encode(mel.data(), frames);
  const double rel = (out - expected).norm() / expected.norm();
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 0.05);
  EXPECT_LT(fast.weight_bytes(), exact.weight_bytes());
}

TEST_F(EncoderTest, ConcurrentCallsAgree) {
  const SafeTensors st = SafeTensors::Open(path_);
  const auto encoder = ConformerEncoder::Load(st, config_, kHidden);
  const int frames = 90;
  const auto mel = RandomMel(config_.feat_in, frames, 21);
  const RowMatrix expected = encoder.Encode(mel.data(), frames);
  std::vector<RowMatrix> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) {
    threads.emplace_back([&encoder, &mel, &r] { r = encoder.Encode(mel.data(), frames); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE((r.array() == expected.array()).all());
}

}  // namespace
}  // namespace eddy
