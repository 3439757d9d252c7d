#include "eddy/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "golden.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Tokenizer Golden() {
  return Tokenizer::Load(test::GoldenFile("tokenizer/tokenizer.json"));
}

const char* kMixed =
    "Grüße, naïve café! 你好世界 👋🏽 — 12345 x² ∑ \n\n  tabs\tand <|im_end|> "
    "done";

TEST(Tokenizer, StringMergesGiveTheSameResultAsArrayMerges) {
  auto j = nlohmann::json::parse(ReadFile(test::GoldenFile("tokenizer/tokenizer.json")));
  for (auto& m : j["model"]["merges"]) {
    if (m.is_array()) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  const auto strings = Tokenizer::Parse(j.dump(), "string-merges");
  const auto arrays = Golden();
  EXPECT_EQ(strings.Encode(kMixed), arrays.Encode(kMixed));
}

TEST(Tokenizer, StreamingNeverSplitsUtf8AndConcatenatesToDecode) {
  const auto tok = Golden();
  const auto ids = tok.Encode(kMixed);
  StreamingDetokenizer stream(tok);
  std::string joined;
  for (int32_t id : ids) {
    const std::string piece = stream.Push(id);
    EXPECT_EQ(SanitizeUtf8(piece), piece) << "piece is not valid UTF-8";
    joined += piece;
  }
  joined += stream.Flush();
  EXPECT_EQ(joined, tok.Decode(ids));
}

TEST(Tokenizer, StreamingHoldsBackEveryPartialSequence) {
  const auto tok = Golden();
  const std::string text = "€😀";  // 3- and 4-byte sequences
  // Byte-level tokens of unknown multi-byte characters split sequences between ids.
  const auto ids = tok.Encode(text);
  ASSERT_GT(ids.size(), 2u);
  StreamingDetokenizer stream(tok);
  std::string out;
  for (int32_t id : ids) out += stream.Push(id);
  out += stream.Flush();
  EXPECT_EQ(out, text);
  // An unfinished tail is flushed as one replacement character.
  std::string broken = "\xF0\x9F\x98";
  EXPECT_EQ(SanitizeUtf8(broken), "\xEF\xBF\xBD");
}

TEST(Tokenizer, InvalidUtf8InputDoesNotCrash) {
  const auto tok = Golden();
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    const auto ids = tok.Encode(s);
    EXPECT_EQ(tok.Decode(ids), SanitizeUtf8(s));
  }
}

TEST(Tokenizer, SanitizeFollowsMaximalSubparts) {
  EXPECT_EQ(SanitizeUtf8("a\x80"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD");  // truncated 3-byte: one
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
}

TEST(Tokenizer, SpecialTokensAreMatchedBeforeBpe) {
  const auto tok = Golden();
  const int32_t im_end = tok.RequireTokenId("<|im_end|>");
  const auto ids = tok.Encode("x<|im_end|>y");
  EXPECT_NE(std::find(ids.begin(), ids.end(), im_end), ids.end());
  EXPECT_TRUE(tok.IsSpecial(im_end));
  EXPECT_EQ(tok.Decode(ids, true), "xy");
}

TEST(Tokenizer, MalformedFilesGetClearErrors) {
  EXPECT_THROW(Tokenizer::Load("/nonexistent/tokenizer.json"), TokenizerError);
  try {
    Tokenizer::Parse("{ nope", "t.json");
    FAIL();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: invalid JSON"), std::string::npos);
  }
  auto j = nlohmann::json::parse(ReadFile(test::GoldenFile("tokenizer/tokenizer.json")));
  auto wordpiece = j;
  wordpiece["model"]["type"] = "WordPiece";
  EXPECT_THROW(Tokenizer::Parse(wordpiece.dump(), "w"), TokenizerError);
  auto bad_merge = j;
  bad_merge["model"]["merges"][0] = nlohmann::json::array({"notatoken", "x"});
  EXPECT_THROW(Tokenizer::Parse(bad_merge.dump(), "m"), TokenizerError);
  auto no_vocab = j;
  no_vocab["model"].erase("vocab");
  EXPECT_THROW(Tokenizer::Parse(no_vocab.dump(), "v"), TokenizerError);
  EXPECT_THROW(Golden().RequireTokenId("<|nope|>"), TokenizerError);
  EXPECT_THROW(Golden().TokenBytes(1 << 30), TokenizerError);
}

}  // namespace
}  // namespace eddy
