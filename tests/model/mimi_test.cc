// Mimi decoder unit tests on small random checkpoints: streaming vs batch past the attention
// window, Reset(), code validation, config validation and checkpoint shape checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "eddy/mimi.h"
#include "eddy/model_error.h"
#include "golden.h"
#include "mimi_random_checkpoint.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

// A small Mimi: hop 12 samples, 2 latent steps per frame, 24 samples per frame, a 6-step
// attention window so that 40 frames (80 latent steps) run far past it.
MimiConfig SmallConfig() {
  MimiConfig c;
  c.dimension = 16;
  c.n_filters = 2;
  c.ratios = {4, 3};
  c.quantizer_dimension = 8;
  c.n_q = 8;
  c.bins = 64;
  c.quantizer_input_dimension = c.quantizer_output_dimension = 16;
  c.d_model = 16;
  c.num_heads = 2;
  c.num_layers = 2;
  c.dim_feedforward = 32;
  c.context = 6;
  c.transformer_input_dimension = 16;
  c.transformer_output_dimensions = {16};
  c.sample_rate = 24000;
  c.frame_rate = 1000;
  c.num_codebooks_used = 8;
  return c;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("eddy_mimi_test_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::shared_ptr<const MimiDecoder> SmallDecoder(const TempDir& dir, const MimiConfig& c) {
  const fs::path file = dir.path() / "mimi.safetensors";
  test::WriteRandomMimi(file, c, 1234);
  return MimiDecoder::Load(file, c);
}

std::vector<int> RandomCodes(const MimiConfig& c, int frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, c.bins - 1);
  std::vector<int> codes(static_cast<size_t>(frames) * c.num_codebooks_used);
  for (int& v : codes) v = dist(rng);
  return codes;
}

std::vector<int> FrameCodes(const std::vector<int>& codes, int k, int frames, int t) {
  std::vector<int> frame(k);
  for (int i = 0; i < k; ++i) frame[i] = codes[static_cast<size_t>(i) * frames + t];
  return frame;
}

std::vector<float> Stream(MimiDecoderStream& stream, const std::vector<int>& codes, int frames) {
  std::vector<float> wave;
  for (int t = 0; t < frames; ++t) {
    const std::vector<float> s = stream.Step(FrameCodes(codes, stream.num_codebooks(), frames, t));
    wave.insert(wave.end(), s.begin(), s.end());
  }
  return wave;
}

double MaxAbs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

TEST(Mimi, BatchEquivalentStreamEqualsBatchPastTheWindow) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const auto decoder = SmallDecoder(dir, c);
  const int frames = 40;
  ASSERT_GT(frames * c.upsample_stride(), 4 * c.context);
  const std::vector<int> codes = RandomCodes(c, frames, 7);
  const std::vector<float> batch = decoder->Decode(codes, frames);
  ASSERT_EQ(batch.size(), static_cast<size_t>(frames) * c.samples_per_frame());
  ASSERT_GT(MaxAbs(batch), 1e-3);
  MimiDecoderStream stream(decoder, MimiDecoderStream::Window::kBatchEquivalent);
  const std::vector<float> streamed = Stream(stream, codes, frames);
  const test::Diff d = test::Compare(streamed.data(), batch.data(), batch.size());
  EXPECT_TRUE(test::WithinTolerance(d, 1e-5)) << test::Describe(d);
}

// The reference's ring cache (capacity = context, written before attending) hides the oldest key
// from a frame's first latent step once the window is full: frames before that point equal the
// batch decode, later ones do not.
TEST(Mimi, ReferenceStreamDropsOneKeyOnceTheWindowIsFull) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const auto decoder = SmallDecoder(dir, c);
  const int frames = 40;
  const std::vector<int> codes = RandomCodes(c, frames, 11);
  const std::vector<float> batch = decoder->Decode(codes, frames);
  MimiDecoderStream stream(decoder);
  const std::vector<float> streamed = Stream(stream, codes, frames);
  const int stride = c.upsample_stride();
  // First frame whose first latent step p = frame*stride has p - context + 1 >= 0.
  const int first_short = (c.context - 1 + stride - 1) / stride;
  const size_t split = static_cast<size_t>(first_short) * c.samples_per_frame();
  const test::Diff before = test::Compare(streamed.data(), batch.data(), split);
  EXPECT_TRUE(test::WithinTolerance(before, 1e-5)) << test::Describe(before);
  const test::Diff after =
      test::Compare(streamed.data() + split, batch.data() + split, batch.size() - split);
  EXPECT_GT(after.max_abs, 1e-4 * after.max_ref) << test::Describe(after);
}

TEST(Mimi, ResetGivesTheOutputOfAFreshStream) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const auto decoder = SmallDecoder(dir, c);
  const int frames = 12;
  const std::vector<int> first = RandomCodes(c, frames, 1);
  const std::vector<int> second = RandomCodes(c, frames, 2);
  MimiDecoderStream used(decoder);
  Stream(used, first, frames);
  used.Reset();
  EXPECT_EQ(used.frames_decoded(), 0);
  MimiDecoderStream fresh(decoder);
  EXPECT_EQ(Stream(used, second, frames), Stream(fresh, second, frames));
}

TEST(Mimi, OutOfRangeCodesAreRejectedWithoutTouchingTheState) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const auto decoder = SmallDecoder(dir, c);
  const std::vector<int> good = RandomCodes(c, 1, 3);
  MimiDecoderStream stream(decoder);
  for (int bad : {c.bins, -1, 1 << 30}) {
    std::vector<int> codes = good;
    codes[5] = bad;
    try {
      stream.Step(codes);
      ADD_FAILURE() << "code " << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("codebook 5"), std::string::npos) << e.what();
    }
    std::vector<int> batch_codes = RandomCodes(c, 3, 4);
    batch_codes[2] = bad;
    EXPECT_THROW(decoder->Decode(batch_codes, 3), std::invalid_argument);
  }
  EXPECT_EQ(stream.frames_decoded(), 0);
  MimiDecoderStream fresh(decoder);
  EXPECT_EQ(stream.Step(good), fresh.Step(good));
  EXPECT_THROW(stream.Step(std::vector<int>(3, 0)), std::invalid_argument);
  EXPECT_THROW(decoder->Decode(std::vector<int>(5, 0), 1), std::invalid_argument);
}

// The opt-in bf16 weights change the arithmetic (so the outputs differ) but only by bf16 rounding.
TEST(Mimi, Bf16StreamedWeightsStayCloseToFloat32) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const fs::path file = dir.path() / "mimi.safetensors";
  test::WriteRandomMimi(file, c, 9);
  const auto exact = MimiDecoder::Load(file, c);
  const auto rounded = MimiDecoder::Load(file, c, MimiWeightFormat::kBF16Streamed);
  const int frames = 10;
  const std::vector<int> codes = RandomCodes(c, frames, 5);
  const std::vector<float> a = exact->Decode(codes, frames);
  const std::vector<float> b = rounded->Decode(codes, frames);
  const test::Diff d = test::Compare(b.data(), a.data(), a.size());
  EXPECT_GT(d.max_abs, 0.0);
  EXPECT_TRUE(test::WithinTolerance(d, 3e-2)) << test::Describe(d);
  MimiDecoderStream stream(rounded, MimiDecoderStream::Window::kBatchEquivalent);
  const std::vector<float> streamed = Stream(stream, codes, frames);
  const test::Diff s = test::Compare(streamed.data(), b.data(), b.size());
  EXPECT_TRUE(test::WithinTolerance(s, 1e-5)) << test::Describe(s);
}

TEST(Mimi, Q8StreamedIsCloseToFloat32AndStreamsLikeItsBatch) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const fs::path file = dir.path() / "mimi.safetensors";
  test::WriteRandomMimi(file, c, 9);
  const auto exact = MimiDecoder::Load(file, c);
  const auto quantized = MimiDecoder::Load(file, c, MimiWeightFormat::kQ8Streamed);
  const int frames = 10;
  const std::vector<int> codes = RandomCodes(c, frames, 5);
  const std::vector<float> a = exact->Decode(codes, frames);
  const std::vector<float> b = quantized->Decode(codes, frames);
  const test::Diff d = test::Compare(b.data(), a.data(), a.size());
  EXPECT_GT(d.max_abs, 0.0);
  // int8 steps are 1/127 of each 32-weight block's largest magnitude: a few times bf16's error.
  EXPECT_TRUE(test::WithinTolerance(d, 6e-2)) << test::Describe(d);
  MimiDecoderStream stream(quantized, MimiDecoderStream::Window::kBatchEquivalent);
  const std::vector<float> streamed = Stream(stream, codes, frames);
  const test::Diff s = test::Compare(streamed.data(), b.data(), b.size());
  EXPECT_TRUE(test::WithinTolerance(s, 1e-5)) << test::Describe(s);
}

TEST(Mimi, CheckpointShapesAreCheckedAgainstTheConfig) {
  TempDir dir;
  const MimiConfig c = SmallConfig();
  const fs::path file = dir.path() / "mimi.safetensors";
  test::WriteRandomMimi(file, c, 5);
  MimiConfig other = c;
  other.n_filters = 4;
  try {
    MimiDecoder::Load(file, other);
    ADD_FAILURE() << "shape mismatch accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("decoder.model.0.conv.conv.weight"), std::string::npos)
        << e.what();
  }
}

TEST(MimiConfig, DefaultIsTheRealMimi) {
  const MimiConfig c;
  EXPECT_NO_THROW(c.Validate());
  EXPECT_EQ(c.dimension, 512);
  EXPECT_EQ(c.n_filters, 64);
  EXPECT_EQ(c.ratios, (std::vector<int>{8, 6, 5, 4}));
  EXPECT_EQ(c.quantizer_dimension, 256);
  EXPECT_EQ(c.n_q, 32);
  EXPECT_EQ(c.bins, 2048);
  EXPECT_EQ(c.num_layers, 8);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.dim_feedforward, 2048);
  EXPECT_EQ(c.context, 250);
  EXPECT_EQ(c.num_codebooks_used, 8);
  EXPECT_EQ(c.samples_per_frame(), 1920);
  EXPECT_EQ(c.upsample_stride(), 2);
}

TEST(MimiConfig, GoldenFileParses) {
  const MimiConfig c = MimiConfig::Load(test::GoldenFile("model/checkpoint/mimi_config.json"));
  EXPECT_EQ(c.samples_per_frame(), static_cast<int>(std::lround(c.sample_rate / c.frame_rate)));
}

std::string ErrorOf(const std::string& json) {
  try {
    MimiConfig::Parse(json, "mimi_config.json");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string ConfigWith(const std::string& section, const std::string& key,
                       const std::string& value) {
  nlohmann::json j = {
      {"seanet_kwargs", {{"dimension", 32}, {"n_filters", 4}, {"causal", true}, {"norm", "none"}}},
      {"quantizer_kwargs",
       {{"dimension", 16},
        {"n_q", 16},
        {"bins", 2048},
        {"input_dimension", 32},
        {"output_dimension", 32}}},
      {"transformer_kwargs",
       {{"d_model", 32},
        {"num_heads", 2},
        {"num_layers", 2},
        {"input_dimension", 32},
        {"output_dimensions", {32}}}},
      {"sample_rate", 24000},
      {"frame_rate", 12.5},
      {"num_codebooks_used", 8}};
  if (section.empty()) {
    j[key] = nlohmann::json::parse(value);
  } else {
    j[section][key] = nlohmann::json::parse(value);
  }
  return j.dump();
}

TEST(MimiConfig, BadFieldsAreRejectedByName) {
  EXPECT_EQ(ErrorOf(ConfigWith("", "num_codebooks_used", "8")), "");
  const struct {
    const char* section;
    const char* key;
    const char* value;
    const char* named;
  } cases[] = {
      {"seanet_kwargs", "norm", "\"weight_norm\"", "seanet_kwargs.norm"},
      {"seanet_kwargs", "causal", "false", "seanet_kwargs.causal"},
      {"seanet_kwargs", "pad_mode", "\"reflect\"", "seanet_kwargs.pad_mode"},
      {"seanet_kwargs", "ratios", "\"x\"", "seanet_kwargs.ratios"},
      {"transformer_kwargs", "gating", "\"silu\"", "transformer_kwargs.gating"},
      {"transformer_kwargs", "causal", "false", "transformer_kwargs.causal"},
      {"transformer_kwargs", "weights_per_step", "4", "transformer_kwargs.weights_per_step"},
      {"quantizer_kwargs", "output_dimension", "64", "quantizer_kwargs.output_dimension"},
      {"", "num_codebooks_used", "17", "num_codebooks_used"},
      {"", "frame_rate", "7", "frame_rate"},
  };
  for (const auto& bad : cases) {
    const std::string error = ErrorOf(ConfigWith(bad.section, bad.key, bad.value));
    EXPECT_NE(error.find(bad.named), std::string::npos)
        << bad.key << " = " << bad.value << ": \"" << error << "\"";
    EXPECT_NE(error.find("mimi_config.json"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace eddy
