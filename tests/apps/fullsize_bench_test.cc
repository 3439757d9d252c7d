// `eddy bench` on a full-size random checkpoint (made with `eddy make-random-model`, or taken from
// EDDY_FULLSIZE_MODEL): every documented key is present, the memory stays within 1.15x the
// weights in use, and the quantized backbones follow the checkpoint's own (bf16) precision within
// stated bounds. Timings are printed, never asserted.
//
// Bounds: a random network has no structure that absorbs rounding noise, so a layer's relative
// error grows through all 16 layers and the tied text head. Measured over 32-48 steps on seeds 1,
// 3 and 7: q8 rms 0.09-0.10, top-1 0.77-0.88, top-5 1.0; q4 rms 0.86-0.91, top-1 and top-5 near
// 0.1 (4-bit noise, an eighth of each block's largest weight, swamps random logits; trained
// weights are far more forgiving). Random logits over 65536 tokens have small top-1 margins, so
// top-1 flips often and greedy decoding repeats itself (fewer independent steps than it seems):
// its bound is loose, and top-5 (the pick among the checkpoint's five best) carries the q8 check.
// The q4 bound only says the quantized model is still the same model: logits unrelated to the
// checkpoint's, of the same size, would be sqrt(2) = 1.41 apart.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_command.h"

namespace {

namespace fs = std::filesystem;

class FullSize : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (const char* env = std::getenv("EDDY_FULLSIZE_MODEL")) {
      dir_ = env;
      return;
    }
    dir_ = fs::temp_directory_path() / ("eddy_fullsize_" + std::to_string(getpid()));
    owned_ = true;
    int status = 0;
    const std::string out = eddy::test::RunCommand(
        std::string(EDDY_BINARY) + " make-random-model --out " + dir_.string() + " --seed 3 2>&1",
        &status);
    ASSERT_EQ(status, 0) << out;
  }
  static void TearDownTestSuite() {
    if (owned_) fs::remove_all(dir_);
  }

  static nlohmann::json Bench(const std::string& quant) {
    int status = 0;
    const std::string out = eddy::test::RunCommand(
        std::string(EDDY_BINARY) + " bench --json --threads 2 -m " + dir_.string() + " --quant " +
            quant +
            " --decode-tokens 8 --audio-frames 2 --encoder-seconds 2 --mimi-frames 10 "
            "--accuracy-steps 32 2>/dev/null",
        &status);
    EXPECT_EQ(status, 0) << out;
    std::printf("%s\n", out.c_str());
    return nlohmann::json::parse(out);
  }

  static void ExpectDocumentedKeys(const nlohmann::json& j) {
    for (const char* key : {"quant", "threads", "load_s", "prefill64_tok_s", "prefill256_tok_s",
                            "decode_tok_s", "audio_frames_s", "encoder_rtf", "mimi_frame_ms",
                            "peak_rss_mb", "weight_mb", "read_gb_s", "decode_weight_gb_s"}) {
      EXPECT_TRUE(j.contains(key)) << key;
    }
    EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);
    EXPECT_GT(j.at("read_gb_s").get<double>(), 0.0);
    EXPECT_GT(j.at("decode_weight_gb_s").get<double>(), 0.0);
    EXPECT_GT(j.at("mimi_frame_ms").get<double>(), 0.0);
    EXPECT_LE(j.at("peak_rss_mb").get<double>(), 1.15 * j.at("weight_mb").get<double>());
  }

  static inline fs::path dir_;
  static inline bool owned_ = false;
};

TEST_F(FullSize, Q8BenchAndAgreement) {
  const auto j = Bench("q8");
  ExpectDocumentedKeys(j);
  EXPECT_LT(j.at("logit_rms_rel_err").get<double>(), 0.25);
  EXPECT_GE(j.at("top1_agreement").get<double>(), 0.5);
  EXPECT_GE(j.at("top5_agreement").get<double>(), 0.9);
}

TEST_F(FullSize, Q4BenchAndAgreement) {
  const auto j = Bench("q4");
  ExpectDocumentedKeys(j);
  EXPECT_LT(j.at("logit_rms_rel_err").get<double>(), 1.2);
}

}  // namespace
