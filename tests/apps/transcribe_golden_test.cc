// `eddy transcribe` as a user runs it, on the golden ASR input: the text it prints must be the
// reference's greedy ASR tokens decoded (special tokens skipped).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "eddy/audio_file.h"
#include "eddy/lfm25_detokenizer.h"
#include "eddy/mimi.h"
#include "eddy/tokenizer.h"
#include "golden.h"
#include "lfm25_random_detokenizer.h"
#include "run_command.h"

namespace {

TEST(TranscribeGolden, AsrSequential) {
  const auto case_dir = eddy::test::GoldenDir() / "model" / "outputs" / "f_e2e" / "asr_sequential";
  const auto ids_npy = eddy::test::LoadNpy(case_dir / "out_text_ids.npy");
  const std::vector<int32_t> ids(ids_npy.i64.begin(), ids_npy.i64.end());
  // The golden ASR prompt's audio is the chirp clip (README "End-to-end prompts").
  const auto wav = eddy::test::GoldenFile("mel/chirp.wav");
  int status = 0;
  const std::string out = eddy::test::RunCommand(
      std::string(EDDY_BINARY) + " transcribe --json -m " + eddy::test::GoldenModelDir().string() +
          " --max-tokens " + std::to_string(ids.size()) + " " + wav.string() + " 2>&1",
      &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  const auto tok = eddy::Tokenizer::Load(eddy::test::GoldenModelDir() / "tokenizer.json");
  EXPECT_EQ(j.at("text").get<std::string>(), tok.Decode(ids, /*skip_special_tokens=*/true));
  EXPECT_EQ(j.at("tokens").get<size_t>(), ids.size());
}

TEST(TranscribeCli, BadInputsFailClearly) {
  int status = 0;
  const std::string model = " -m " + eddy::test::GoldenModelDir().string() + " ";
  std::string out = eddy::test::RunCommand(
      std::string(EDDY_BINARY) + " transcribe" + model + EDDY_BINARY + " 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("unknown audio format"), std::string::npos) << out;
  out = eddy::test::RunCommand(
      std::string(EDDY_BINARY) + " transcribe -m /nonexistent/model x.wav 2>&1", &status);
  EXPECT_NE(status, 0);
  out = eddy::test::RunCommand(std::string(EDDY_BINARY) + " transcribe --help 2>&1", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("--max-tokens"), std::string::npos) << out;
}

}  // namespace

namespace {

// `eddy chat` with greedy sampling on the golden interleaved prompt: the speech it writes must be
// the Mimi decoding of the reference's generated audio codes, frame by frame.
TEST(ChatGolden, InterleavedTurn1) {
  const auto dir = eddy::test::GoldenDir() / "model" / "outputs" / "f_e2e" / "interleaved_turn1";
  const auto codes = eddy::test::LoadNpy(dir / "out_audio_codes.npy");  // [codebooks, frames]
  const auto modality = eddy::test::LoadNpy(dir / "out_modality.npy");
  if (codes.dim(1) == 0) {
    GTEST_SKIP() << "SKIPPED: this golden set's interleaved_turn1 has no audio frames, so there "
                    "is no speech to compare";
  }
  const auto out_wav = std::filesystem::temp_directory_path() / "eddy_chat_golden.wav";
  int status = 0;
  const std::string out =
      eddy::test::RunCommand(std::string(EDDY_BINARY) + " chat --audio-temperature 0 -m " +
                                 eddy::test::GoldenModelDir().string() + " --max-tokens " +
                                 std::to_string(modality.numel()) + " -o " + out_wav.string() +
                                 " " + eddy::test::GoldenFile("mel/chirp.wav").string() + " 2>&1",
                             &status);
  ASSERT_EQ(status, 0) << out;
  const auto written = eddy::ReadWav(out_wav);
  std::filesystem::remove(out_wav);

  const auto mimi = eddy::MimiDecoder::LoadFromModelDir(eddy::test::GoldenModelDir());
  eddy::MimiDecoderStream stream(mimi);
  std::vector<float> expected;
  const int64_t cb = codes.dim(0), frames = codes.dim(1);
  for (int64_t j = 0; j < frames; ++j) {
    std::vector<int> frame(cb);
    bool speech = true;
    for (int64_t c = 0; c < cb; ++c) {
      frame[c] = static_cast<int>(codes.i64[c * frames + j]);
      speech = speech && frame[c] < 2048;
    }
    if (!speech) continue;
    const auto samples = stream.Step(frame);
    expected.insert(expected.end(), samples.begin(), samples.end());
  }
  ASSERT_EQ(written.samples.size(), expected.size());
  const auto d = eddy::test::Compare(written.samples.data(), expected.data(), expected.size());
  EXPECT_LE(d.max_abs, 1e-6) << eddy::test::Describe(d);
}

// The same chat on a copy of the golden model with an LFM2.5 audio_detokenizer/ folder added
// (random weights): the speech must then be that detokenizer's decoding of the reference's speech
// frames (the detokenizer itself is tested in tests/model/lfm25_detokenizer_test.cc).
TEST(ChatGolden, InterleavedTurn1WithLfm25Detokenizer) {
  namespace fs = std::filesystem;
  const auto dir = eddy::test::GoldenDir() / "model" / "outputs" / "f_e2e" / "interleaved_turn1";
  const auto codes = eddy::test::LoadNpy(dir / "out_audio_codes.npy");  // [codebooks, frames]
  const auto modality = eddy::test::LoadNpy(dir / "out_modality.npy");
  if (codes.dim(0) != eddy::Lfm25Detokenizer::kCodebooks) {
    GTEST_SKIP() << "SKIPPED: this golden set's model has " << codes.dim(0)
                 << " codebooks; the LFM2.5 audio detokenizer takes exactly "
                 << eddy::Lfm25Detokenizer::kCodebooks;
  }
  const fs::path model = fs::temp_directory_path() / "eddy_chat_lfm25_model";
  fs::remove_all(model);
  fs::create_directories(model);
  for (const auto& entry : fs::directory_iterator(eddy::test::GoldenModelDir())) {
    fs::create_symlink(fs::absolute(entry.path()), model / entry.path().filename());
  }
  eddy::test::WriteRandomDetokenizer(model / eddy::Lfm25Detokenizer::kDirName,
                                     eddy::test::RandomDetokenizerSpec(), 5);
  const auto out_wav = fs::temp_directory_path() / "eddy_chat_lfm25.wav";
  int status = 0;
  const std::string out = eddy::test::RunCommand(
      std::string(EDDY_BINARY) + " chat --audio-temperature 0 -m " + model.string() +
          " --max-tokens " + std::to_string(modality.numel()) + " -o " + out_wav.string() + " " +
          eddy::test::GoldenFile("mel/chirp.wav").string() + " 2>&1",
      &status);
  const auto detokenizer = eddy::Lfm25Detokenizer::LoadFromModelDir(model);
  fs::remove_all(model);
  ASSERT_EQ(status, 0) << out;
  const auto written = eddy::ReadWav(out_wav);
  fs::remove(out_wav);
  ASSERT_NE(detokenizer, nullptr);

  const int64_t cb = codes.dim(0), frames = codes.dim(1);
  std::vector<std::vector<int>> speech;
  for (int64_t j = 0; j < frames; ++j) {
    std::vector<int> frame(cb);
    bool is_speech = true;
    for (int64_t c = 0; c < cb; ++c) {
      frame[c] = static_cast<int>(codes.i64[c * frames + j]);
      is_speech = is_speech && frame[c] < 2048;
    }
    if (is_speech) speech.push_back(frame);
  }
  ASSERT_FALSE(speech.empty());
  const int n = static_cast<int>(speech.size());
  std::vector<int> batch_codes(static_cast<size_t>(cb) * n);
  for (int t = 0; t < n; ++t) {
    for (int64_t c = 0; c < cb; ++c) batch_codes[c * n + t] = speech[t][c];
  }
  const std::vector<float> expected = detokenizer->Decode(batch_codes, n);
  EXPECT_EQ(written.sample_rate, 24000);
  ASSERT_EQ(written.samples.size(), expected.size());
  const auto d = eddy::test::Compare(written.samples.data(), expected.data(), expected.size());
  EXPECT_TRUE(eddy::test::WithinTolerance(d, 1e-5)) << eddy::test::Describe(d);
}

}  // namespace
