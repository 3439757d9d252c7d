// `eddy transcribe` as a user runs it, on the golden ASR input: the text it prints must be the
// reference's greedy ASR tokens decoded (special tokens skipped).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "eddy/tokenizer.h"
#include "golden.h"

namespace {

std::string RunCommand(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  *status = pclose(p);
  return out;
}

TEST(TranscribeGolden, AsrSequential) {
  const auto case_dir = eddy::test::GoldenDir() / "model" / "outputs" / "f_e2e" / "asr_sequential";
  const auto ids_npy = eddy::test::LoadNpy(case_dir / "out_text_ids.npy");
  const std::vector<int32_t> ids(ids_npy.i64.begin(), ids_npy.i64.end());
  // The golden ASR prompt's audio is the chirp clip (README "End-to-end prompts").
  const auto wav = eddy::test::GoldenFile("mel/chirp.wav");
  int status = 0;
  const std::string out = RunCommand(std::string(EDDY_BINARY) + " transcribe --json -m " +
                                         eddy::test::GoldenModelDir().string() + " --max-tokens " +
                                         std::to_string(ids.size()) + " " + wav.string() + " 2>&1",
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
  std::string out =
      RunCommand(std::string(EDDY_BINARY) + " transcribe" + model + EDDY_BINARY + " 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("not a WAV file"), std::string::npos) << out;
  out = RunCommand(std::string(EDDY_BINARY) + " transcribe -m /nonexistent/model x.wav 2>&1",
                   &status);
  EXPECT_NE(status, 0);
  out = RunCommand(std::string(EDDY_BINARY) + " transcribe --help 2>&1", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("--max-tokens"), std::string::npos) << out;
}

}  // namespace
