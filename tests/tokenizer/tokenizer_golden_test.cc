// The tokenizer against the reference's own outputs: every case of tokenizer/cases.jsonl, and the
// text ids of the end-to-end prompts the reference built with ChatState.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "eddy/conversation.h"
#include "eddy/tokenizer.h"
#include "golden.h"

namespace eddy {
namespace {

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(TokenizerGolden, Cases) {
  const auto tok = Tokenizer::Load(test::GoldenFile("tokenizer/tokenizer.json"));
  std::ifstream in(test::GoldenFile("tokenizer/cases.jsonl"));
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto c = nlohmann::json::parse(line);
    const std::string text = FromHex(c.at("text_utf8_hex").get<std::string>());
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    SCOPED_TRACE("case " + std::to_string(c.at("id").get<int>()) + " (" +
                 c.at("category").get<std::string>() + ")");
    EXPECT_EQ(tok.Encode(text, false), ids);
    EXPECT_EQ(tok.Encode(text, true), c.at("ids_add_special_tokens").get<std::vector<int32_t>>());
    EXPECT_EQ(tok.Decode(ids, false), c.at("decoded").get<std::string>());
    EXPECT_EQ(tok.Decode(ids, true), c.at("decoded_skip_special").get<std::string>());
    ++cases;
  }
  EXPECT_GT(cases, 0);
}

// The reference prompts of the end-to-end vectors (README "End-to-end prompts"): system text,
// a user turn holding only audio, the assistant generation prompt. Audio positions add no ids.
std::vector<int32_t> AsrLikePrompt(const Tokenizer& tok, const std::string& system) {
  Conversation conv([&](std::string_view t) { return tok.Encode(t); }, 8, 128);
  conv.NewTurn(Role::kSystem);
  conv.AddText(system);
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);
  return conv.prompt().text_ids;
}

std::vector<int32_t> GoldenIds(const std::string& rel) {
  const auto a = test::LoadNpy(test::GoldenFile(rel));
  return std::vector<int32_t>(a.i64.begin(), a.i64.end());
}

TEST(TokenizerGolden, ChatPrompt) {
  const auto tok = Tokenizer::Load(test::GoldenModelDir() / "tokenizer.json");
  const std::string base = "model/outputs/f_e2e/";
  EXPECT_EQ(AsrLikePrompt(tok, "Perform ASR."),
            GoldenIds(base + "asr_sequential/prompt_text_ids.npy"));
  const auto turn1 = AsrLikePrompt(tok, "Respond with interleaved text and audio.");
  EXPECT_EQ(turn1, GoldenIds(base + "interleaved_turn1/prompt_text_ids.npy"));

  // Turn 2: turn 1's generated text ids appended, the turn ended, a user text turn, the assistant.
  Conversation conv([&](std::string_view t) { return tok.Encode(t); }, 8, 128);
  conv.NewTurn(Role::kSystem);
  conv.AddText("Respond with interleaved text and audio.");
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);
  for (int32_t id : GoldenIds(base + "interleaved_turn1/out_text_ids.npy")) conv.AppendText(id);
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  conv.AddText("Thanks! Can you say that again, shorter?");
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);
  EXPECT_EQ(conv.prompt().text_ids, GoldenIds(base + "interleaved_turn2/prompt_text_ids.npy"));
}

}  // namespace
}  // namespace eddy
