// Golden tests of the FastConformer encoder + adapter against the reference's a_encoder outputs.
// Sizes (layers, widths, frames) come from config.json and the .npy shapes only.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eddy/config.h"
#include "eddy/conformer.h"
#include "eddy/safetensors.h"
#include "golden.h"
#include "npy.h"

namespace eddy {
namespace {

using test::Compare;
using test::Describe;
using test::GoldenFile;
using test::LoadNpy;
using test::NpyArray;
using test::WithinTolerance;

constexpr double kRelativeTolerance = 1e-4;
const char* const kDir = "model/outputs/a_encoder/";

// Loads the checkpoint once and runs the encoder on mel_in.npy once for all cases.
class EncoderGolden : public ::testing::Test {
 protected:
  struct Run {
    AudioModelConfig config;
    ConformerTrace trace;
    int mel_frames = 0;
  };

  static const Run& Get() {
    static const Run run = [] {
      Run r;
      r.config = AudioModelConfig::Load(test::GoldenModelDir() / "config.json");
      const SafeTensors st = SafeTensors::Open(test::GoldenModelDir() / "model.safetensors");
      const auto encoder = ConformerEncoder::Load(st, r.config.encoder, r.config.lfm.hidden_size);
      const NpyArray mel = LoadNpy(GoldenFile(std::string(kDir) + "mel_in.npy"));
      if (mel.shape.size() != 2 || mel.shape[0] != r.config.encoder.feat_in) {
        throw std::runtime_error("mel_in.npy: expected [feat_in, frames]");
      }
      r.mel_frames = static_cast<int>(mel.shape[1]);
      r.trace = encoder.EncodeWithTrace(mel.f32.data(), r.mel_frames);
      return r;
    }();
    return run;
  }

  static void ExpectMatches(const RowMatrix& actual, const std::string& file) {
    const NpyArray ref = LoadNpy(GoldenFile(std::string(kDir) + file));
    ASSERT_EQ(ref.shape, (std::vector<int64_t>{actual.rows(), actual.cols()}))
        << file << ": golden shape differs from the computed one";
    const test::Diff d = Compare(actual.data(), ref.f32.data(), ref.f32.size());
    EXPECT_TRUE(WithinTolerance(d, kRelativeTolerance)) << file << ": " << Describe(d);
    std::cout << file << ": " << Describe(d) << "\n";
  }
};

TEST_F(EncoderGolden, OutputLength) {
  const Run& r = Get();
  std::ifstream in(GoldenFile(std::string(kDir) + "meta.json"));
  const auto meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta.at("mel_frames").get<int>(), r.mel_frames);
  EXPECT_EQ(meta.at("encoded_len").get<int>(), ConformerEncoder::OutputFrames(r.mel_frames));
  const int factor = r.config.encoder.subsampling_factor;
  EXPECT_EQ(meta.at("mel2emb_len").get<int>(), (r.mel_frames + factor - 1) / factor);
  EXPECT_EQ(r.trace.adapter_out.rows(), meta.at("encoded_len").get<int>());
}

TEST_F(EncoderGolden, PreEncode) {
  ExpectMatches(Get().trace.pre_encode, "pre_encode_out.npy");
}

TEST_F(EncoderGolden, Layers) {
  const Run& r = Get();
  ASSERT_EQ(static_cast<int>(r.trace.layers.size()), r.config.encoder.n_layers);
  for (int i = 0; i < r.config.encoder.n_layers; ++i) {
    ExpectMatches(r.trace.layers[i], "conformer_layer" + std::to_string(i) + "_out.npy");
  }
}

TEST_F(EncoderGolden, ConformerOut) {
  ExpectMatches(Get().trace.conformer_out, "conformer_out.npy");
}

TEST_F(EncoderGolden, AdapterOut) {
  ExpectMatches(Get().trace.adapter_out, "adapter_out.npy");
}

}  // namespace
}  // namespace eddy
