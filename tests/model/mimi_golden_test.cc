// golden.mimi.*: the Mimi decoder against the reference's e_mimi vectors. Every size comes from
// mimi_config.json and the .npy shapes.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eddy/mimi.h"
#include "golden.h"
#include "npy.h"

namespace eddy {
namespace {

using test::Compare;
using test::Describe;
using test::GoldenFile;
using test::GoldenModelDir;
using test::LoadNpy;
using test::NpyArray;
using test::WithinTolerance;

// Latents: the project's default relative rule; waveforms: the golden README's atol 1e-4.
constexpr double kLatentRelativeTolerance = 1e-4;
constexpr double kWaveformAbsoluteTolerance = 1e-4;

struct GoldenCase {
  std::shared_ptr<const MimiDecoder> decoder;
  std::vector<int> codes;
  int frames = 0;
};

GoldenCase LoadCase() {
  GoldenCase g;
  g.decoder = MimiDecoder::LoadFromModelDir(GoldenModelDir());
  const NpyArray codes = LoadNpy(GoldenFile("model/outputs/e_mimi/codes.npy"));
  EXPECT_EQ(codes.shape.size(), 2u);
  EXPECT_EQ(codes.dim(0), g.decoder->config().num_codebooks_used);
  g.frames = static_cast<int>(codes.dim(1));
  g.codes.assign(codes.i64.begin(), codes.i64.end());
  return g;
}

void ExpectMatches(const std::vector<float>& actual, const std::string& file, double rel,
                   double abs) {
  const NpyArray expected = LoadNpy(GoldenFile("model/outputs/e_mimi/" + file));
  ASSERT_EQ(static_cast<int64_t>(actual.size()), expected.numel()) << file;
  const test::Diff d = Compare(actual.data(), expected.f32.data(), actual.size());
  EXPECT_TRUE(WithinTolerance(d, rel, abs)) << file << ": " << Describe(d);
  std::printf("%s: %s\n", file.c_str(), Describe(d).c_str());
}

TEST(MimiGolden, QuantizerLatent) {
  const GoldenCase g = LoadCase();
  MimiIntermediates im;
  g.decoder->Decode(g.codes, g.frames, &im);
  ExpectMatches(im.quantizer_latent, "quantizer_latent.npy", kLatentRelativeTolerance, 0.0);
}

TEST(MimiGolden, UpsampledLatent) {
  const GoldenCase g = LoadCase();
  MimiIntermediates im;
  g.decoder->Decode(g.codes, g.frames, &im);
  ExpectMatches(im.upsampled_latent, "upsampled_latent.npy", kLatentRelativeTolerance, 0.0);
}

TEST(MimiGolden, DecoderTransformer) {
  const GoldenCase g = LoadCase();
  MimiIntermediates im;
  g.decoder->Decode(g.codes, g.frames, &im);
  ExpectMatches(im.decoder_transformer_out, "decoder_transformer_out.npy", kLatentRelativeTolerance,
                0.0);
}

TEST(MimiGolden, Waveform) {
  const GoldenCase g = LoadCase();
  const std::vector<float> wave = g.decoder->Decode(g.codes, g.frames);
  ExpectMatches(wave, "waveform.npy", 0.0, kWaveformAbsoluteTolerance);
}

TEST(MimiGolden, WaveformStreaming) {
  const GoldenCase g = LoadCase();
  std::ifstream meta_in(GoldenFile("model/outputs/e_mimi/meta.json"));
  const auto frame_samples = nlohmann::json::parse(meta_in).at("frame_samples");
  ASSERT_EQ(static_cast<int>(frame_samples.size()), g.frames);
  MimiDecoderStream stream(g.decoder);
  const int k = stream.num_codebooks();
  std::vector<float> wave;
  for (int t = 0; t < g.frames; ++t) {
    std::vector<int> frame(k);
    for (int i = 0; i < k; ++i) frame[i] = g.codes[static_cast<size_t>(i) * g.frames + t];
    const std::vector<float> samples = stream.Step(frame);
    ASSERT_EQ(static_cast<int>(samples.size()), frame_samples[t].get<int>()) << "frame " << t;
    wave.insert(wave.end(), samples.begin(), samples.end());
  }
  ExpectMatches(wave, "waveform_streaming.npy", 0.0, kWaveformAbsoluteTolerance);
}

}  // namespace
}  // namespace eddy
