// The generation state machines against a scripted backend: the step order of the reference
// (spec_backbone.md §3.3/§3.4), what is yielded, what is fed back, and when it stops.
#include "eddy/generation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <string>
#include <thread>

namespace eddy {
namespace {

constexpr int kEoa = 2048;

// Hands out scripted samples and records everything the generator does with them.
class ScriptedBackend : public GenerationBackend {
 public:
  std::deque<int> texts;
  std::deque<std::vector<int>> frames;
  int advances = 0;
  std::string fed;  // "T<id>" / "A<code0>" per Feed call
  std::function<void()> on_advance;

  void Advance() override {
    ++advances;
    if (on_advance) on_advance();
  }
  int SampleText() override {
    if (texts.empty()) throw std::runtime_error("script ran out of text");
    int id = texts.front();
    texts.pop_front();
    return id;
  }
  std::vector<int> SampleAudioFrame() override {
    if (frames.empty()) throw std::runtime_error("script ran out of frames");
    auto f = frames.front();
    frames.pop_front();
    return f;
  }
  void FeedText(int id) override {
    fed += 'T';
    fed += std::to_string(id);
    fed += ' ';
  }
  // With verify_drafts, keeps the draft's longest prefix that the script would sample next and
  // consumes it as if each token had been sampled and fed.
  bool verify_drafts = false;
  int draft_passes = 0;
  int AdvanceWithDraft(const std::vector<int>& draft) override {
    if (!verify_drafts) return GenerationBackend::AdvanceWithDraft(draft);
    Advance();
    ++draft_passes;
    size_t kept = 0;
    while (kept < draft.size() && kept < texts.size() && texts[kept] == draft[kept]) ++kept;
    for (size_t i = 0; i < kept; ++i) FeedText(SampleText());
    return static_cast<int>(kept);
  }
  void FeedAudioFrame(const std::vector<int>& codes) override {
    for (int c : codes) {
      if (codes[0] == kEoa && c != kEoa) throw std::runtime_error("EOA frame not uniform");
    }
    fed += "A" + std::to_string(codes[0]) + " ";
  }
};

std::vector<int> Frame(int code0) {
  return {code0, 1, 2, 3, 4, 5, 6, 7};
}

// Renders outputs as "T5 A100 ..." in order.
struct Recorder {
  std::string text;
  std::vector<GenerationOutput> outputs;
  GenerationSink sink() {
    return [this](const GenerationOutput& o) {
      outputs.push_back(o);
      text += (o.kind == OutputKind::kText ? "T" + std::to_string(o.text_id)
                                           : "A" + std::to_string(o.codes[0])) +
              " ";
    };
  }
};

void Script(ScriptedBackend& b, int n_text, int n_frames, int first_text = 1000,
            int first_code = 100) {
  for (int i = 0; i < n_text; ++i) b.texts.push_back(first_text + i);
  for (int i = 0; i < n_frames; ++i) b.frames.push_back(Frame(first_code + i));
}

std::string Pattern(const std::string& rendered) {
  std::string p;
  for (char c : rendered) {
    if (c == 'T' || c == 'A') p += c;
  }
  return p;
}

TEST(Interleaved, AlternatesTextAndAudioChunks) {
  ScriptedBackend b;
  Script(b, 100, 100);
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 40;
  EXPECT_EQ(GenerateInterleaved(b, 6, 12, limits, {}, r.sink()), StopReason::kMaxTokens);
  EXPECT_EQ(Pattern(r.text), std::string(6, 'T') + std::string(12, 'A') + std::string(6, 'T') +
                                 std::string(12, 'A') + std::string(4, 'T'));
  EXPECT_EQ(b.advances, 40);
  EXPECT_EQ(r.text, b.fed);  // every output is fed back as the next input
  for (size_t i = 0; i < r.outputs.size(); ++i) EXPECT_EQ(r.outputs[i].step, static_cast<int>(i));
}

TEST(Interleaved, TextEndSwitchesToAudioUntilEndOfAudio) {
  ScriptedBackend b;
  b.texts = {11, 12, 130, 7};  // <|text_end|> cuts the first chunk short
  for (int i = 0; i < 20; ++i) b.frames.push_back(Frame(300 + i));
  b.frames.push_back(Frame(kEoa));
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 100;
  EXPECT_EQ(GenerateInterleaved(b, 6, 12, limits, {}, r.sink()), StopReason::kEndOfTurn);
  // After text_end, audio continues past the 12-frame chunk until EOA; then <|im_end|> stops
  // without being yielded.
  EXPECT_EQ(Pattern(r.text), "TTT" + std::string(21, 'A'));
  EXPECT_TRUE(r.outputs.back().is_end_of_audio());
  EXPECT_EQ(r.outputs.back().codes, std::vector<int>(8, kEoa));
  EXPECT_EQ(b.advances, 3 + 21 + 1);
}

TEST(Interleaved, EarlyEndOfAudioKeepsTheRemainingCount) {
  ScriptedBackend b;
  Script(b, 30, 0);
  b.frames = {Frame(1), Frame(2), Frame(kEoa)};
  for (int i = 0; i < 30; ++i) b.frames.push_back(Frame(500 + i));
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 6 + 3 + 9 + 2;
  GenerateInterleaved(b, 6, 12, limits, {}, r.sink());
  // EOA after 3 of 12 frames: back to text with left = 9, so 9 text tokens follow.
  EXPECT_EQ(Pattern(r.text), "TTTTTTAAA" + std::string(9, 'T') + "AA");
}

TEST(Interleaved, RejectsNonPositiveChunks) {
  ScriptedBackend b;
  EXPECT_THROW(GenerateInterleaved(b, 0, 12, {}, {}, [](const GenerationOutput&) {}),
               std::invalid_argument);
}

TEST(Sequential, TextThenAudioThenEndOfTurn) {
  ScriptedBackend b;
  b.texts = {21, 22, 128, 7};
  b.frames = {Frame(40), Frame(41), Frame(kEoa)};
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 50;
  EXPECT_EQ(GenerateSequential(b, limits, {}, r.sink()), StopReason::kEndOfTurn);
  EXPECT_EQ(r.text, "T21 T22 T128 A40 A41 A2048 T7 ");  // the stop token is yielded here
  EXPECT_EQ(b.fed, "T21 T22 T128 A40 A41 A2048 ");      // but never fed back
}

TEST(Sequential, EndOfAudioDecidedByCodebookZeroOnly) {
  ScriptedBackend b;
  b.texts = {128, 7};
  b.frames = {{5, kEoa, kEoa, 1, 1, 1, 1, 1}, {kEoa, 3, 4, 5, 6, 7, 8, 9}};
  Recorder r;
  GenerateSequential(b, {}, {}, r.sink());
  ASSERT_EQ(r.outputs.size(), 4u);
  EXPECT_FALSE(r.outputs[1].is_end_of_audio());
  EXPECT_EQ(r.outputs[1].codes[1], kEoa);  // left as sampled
  EXPECT_EQ(r.outputs[2].codes, std::vector<int>(8, kEoa));
}

TEST(Sequential, MaxTokensCountsTextAndAudio) {
  ScriptedBackend b;
  b.texts = {128};
  Script(b, 0, 10);
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 5;
  EXPECT_EQ(GenerateSequential(b, limits, {}, r.sink()), StopReason::kMaxTokens);
  EXPECT_EQ(r.outputs.size(), 5u);
}

TEST(Generation, CancelStopsBeforeTheNextStep) {
  ScriptedBackend b;
  Script(b, 100, 100);
  std::atomic<bool> cancel{false};
  b.on_advance = [&] {
    if (b.advances == 3) cancel = true;
  };
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = 100;
  limits.cancel = &cancel;
  EXPECT_EQ(GenerateInterleaved(b, 6, 12, limits, {}, r.sink()), StopReason::kCancelled);
  EXPECT_EQ(b.advances, 3);
  EXPECT_EQ(r.outputs.size(), 3u);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

TEST(Generation, CancelFromAnotherThread) {
  ScriptedBackend b;
  Script(b, 100000, 100000);
  std::atomic<bool> cancel{false};
  std::atomic<int> outputs{0};
  GenerationLimits limits;
  limits.max_new_tokens = 100000;
  limits.cancel = &cancel;
  b.on_advance = [&] {
    // Slow enough that the other thread's flag lands mid-generation.
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  };
  StopReason reason = StopReason::kMaxTokens;
  std::thread worker([&] {
    reason = GenerateInterleaved(b, 6, 12, limits, {}, [&](const GenerationOutput&) { ++outputs; });
  });
  while (outputs.load() < 10) std::this_thread::yield();
  cancel = true;
  worker.join();
  EXPECT_EQ(reason, StopReason::kCancelled);
  EXPECT_LT(outputs.load(), 100000);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

// Text, a switch to audio, four frames and end-of-audio, more text, end of turn.
void ScriptSpeech(ScriptedBackend& b) {
  b.texts = {1000, 1001, 1002, 1003, 128, 1004, 7};
  Script(b, 0, 4);
  b.frames.push_back(Frame(kEoa));
}

std::string RunSequential(ScriptedBackend& b, const std::vector<int>& draft, int max_new = 100,
                          int after_draft = 0) {
  Recorder r;
  GenerationLimits limits;
  limits.max_new_tokens = max_new;
  limits.max_new_tokens_after_draft = after_draft;
  GenerateSequential(b, limits, {}, r.sink(), draft);
  return r.text;
}

TEST(SequentialDraft, OutputsDoNotDependOnTheDraft) {
  ScriptedBackend plain;
  ScriptSpeech(plain);
  const std::string want = RunSequential(plain, {});
  ASSERT_EQ(want, "T1000 T1001 T1002 T1003 T128 A100 A101 A102 A103 A2048 T1004 T7 ");
  for (const std::vector<int>& draft : {std::vector<int>{1000, 1001, 1002, 1003, 128, 1004},
                                        {1000, 1001, 55},
                                        {55},
                                        {1000, 1001, 1002, 1003, 128},
                                        {1000, 1001, 1002, 1003, 1004, 1005, 1006}}) {
    ScriptedBackend b;
    ScriptSpeech(b);
    b.verify_drafts = true;
    EXPECT_EQ(RunSequential(b, draft), want) << "draft of " << draft.size();
    EXPECT_EQ(b.draft_passes, 1);
  }
}

TEST(SequentialDraft, AKeptDraftSavesItsSteps) {
  ScriptedBackend plain;
  ScriptSpeech(plain);
  RunSequential(plain, {});
  ScriptedBackend drafted;
  ScriptSpeech(drafted);
  drafted.verify_drafts = true;
  // Kept up to and including the switch to audio: one pass instead of those five steps, and it
  // also leaves the state the first audio frame is sampled from.
  RunSequential(drafted, {1000, 1001, 1002, 1003, 128, 1004});
  EXPECT_EQ(drafted.advances, plain.advances - 5);
  EXPECT_EQ(drafted.fed, plain.fed);  // the same inputs reached the model, in the same order
}

TEST(SequentialDraft, ABackendThatCannotVerifyJustAdvances) {
  ScriptedBackend b;
  ScriptSpeech(b);
  EXPECT_EQ(RunSequential(b, {1000, 1001, 1002}),
            "T1000 T1001 T1002 T1003 T128 A100 A101 A102 A103 A2048 T1004 T7 ");
}

TEST(SequentialDraft, StepsAfterTheDraftAreLimited) {
  ScriptedBackend b;
  Script(b, 20, 0);
  b.verify_drafts = true;
  EXPECT_EQ(RunSequential(b, {1000, 1001, 1002, 9}, 100, 2), "T1000 T1001 T1002 T1003 T1004 ");
  ScriptedBackend undrafted;
  Script(undrafted, 20, 0);
  EXPECT_EQ(RunSequential(undrafted, {}, 100, 2), "T1000 T1001 ");
  ScriptedBackend capped;
  Script(capped, 20, 0);
  capped.verify_drafts = true;
  EXPECT_EQ(RunSequential(capped, {1000, 1001, 1002}, 4, 3), "T1000 T1001 T1002 T1003 ");
}

}  // namespace
}  // namespace eddy
