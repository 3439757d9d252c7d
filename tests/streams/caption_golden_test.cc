// Live captions on the golden tiny model: the real transcriber (ASR prompt with the cached
// system-prompt prefix) behind a CaptionStream. Segment boundaries and finals must not depend on
// how the audio is chunked, and every final must equal a fresh, uncached transcription of its
// segment's audio.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>

#include "caption_synth.h"
#include "eddy/conversation.h"
#include "eddy/engine.h"
#include "eddy/model_transcriber.h"
#include "eddy/tokenizer.h"
#include "golden.h"

namespace eddy {
namespace {

using caption_test::Synth;

constexpr int kMaxTokens = 8;

struct Fixture {
  std::shared_ptr<const AudioModel> model;
  Tokenizer tokenizer = Tokenizer::Load(test::GoldenModelDir() / "tokenizer.json");
};

// The model as checkpointed (float32 here), or with weights converted at load ("q8").
Fixture& Shared(const std::string& weight_format = "native") {
  static std::map<std::string, Fixture> fixtures;
  Fixture& f = fixtures[weight_format];
  if (!f.model) {
    AudioModelOptions options;
    options.weight_format = weight_format;
    f.model = AudioModel::Load(test::GoldenModelDir(), options);
  }
  return f;
}

// Three utterances of different lengths and voices separated by silence.
std::vector<float> ThreeUtterances() {
  Synth s;
  s.Gap(0.4).Speech(1.3, 0.2, 140.0).Gap(1.2).Speech(0.9, 0.25, 210.0).Gap(1.5);
  s.Speech(2.2, 0.15, 120.0).Gap(1.0);
  return s.signal();
}

std::vector<CaptionEvent> RunStream(const std::vector<float>& audio, size_t chunk,
                                    const std::string& weight_format = "native",
                                    int64_t* drafted = nullptr) {
  ModelTranscriberOptions options;
  options.max_tokens = kMaxTokens;
  ModelTranscriber transcriber(Shared(weight_format).model, Shared().tokenizer, options);
  CaptionConfig config;
  config.Validate();
  CaptionStream stream(config, transcriber);
  std::vector<CaptionEvent> events;
  for (size_t pos = 0; pos < audio.size(); pos += chunk) {
    stream.AcceptWaveform(audio.data() + pos, std::min(chunk, audio.size() - pos), 16000);
    for (auto& e : stream.TakeEvents()) events.push_back(std::move(e));
  }
  stream.InputFinished();
  for (auto& e : stream.TakeEvents()) events.push_back(std::move(e));
  if (drafted != nullptr) *drafted = transcriber.drafted_tokens_kept();
  return events;
}

std::vector<CaptionEvent> Finals(const std::vector<CaptionEvent>& events) {
  std::vector<CaptionEvent> finals;
  for (const auto& e : events) {
    if (e.type == CaptionEventType::kFinal) finals.push_back(e);
  }
  return finals;
}

// What `eddy transcribe` does: the whole ASR prompt prefilled from an empty cache.
std::string UncachedTranscription(std::span<const float> samples,
                                  const std::string& weight_format = "native") {
  const AudioModel& model = *Shared(weight_format).model;
  const Tokenizer& tok = Shared().tokenizer;
  MelFrontend mel(model.config().preprocessor);
  const LogMelFeatures features = mel.ComputeLogMel(samples);
  Conversation conv([&](std::string_view t) { return tok.Encode(t); }, model.config().codebooks,
                    model.config().preprocessor.features);
  conv.NewTurn(Role::kSystem);
  conv.AddText(ModelTranscriberOptions{}.system_prompt);
  conv.EndTurn();
  conv.NewTurn(Role::kUser);
  conv.AddAudioFeatures(features.data, features.frames);
  conv.EndTurn();
  conv.NewTurn(Role::kAssistant);
  ModelBackend backend(Shared(weight_format).model, GenerationSampling{});
  backend.Begin(conv.prompt(), nullptr);
  GenerationLimits limits;
  limits.max_new_tokens = kMaxTokens;
  std::vector<int32_t> ids;
  GenerateSequential(backend, limits,
                     {tok.RequireTokenId("<|im_end|>"), tok.RequireTokenId("<|audio_start|>"),
                      tok.RequireTokenId("<|text_end|>"), AudioModelConfig::kEndOfAudio},
                     [&](const GenerationOutput& o) {
                       if (o.kind == OutputKind::kText) ids.push_back(o.text_id);
                     });
  return tok.Decode(ids, /*skip_special_tokens=*/true);
}

TEST(CaptionGolden, FinalsIndependentOfChunkSize) {
  const std::vector<float> audio = ThreeUtterances();
  const auto reference = Finals(RunStream(audio, 320));
  ASSERT_EQ(reference.size(), 3u) << "the segmenter should find the three utterances";
  for (const size_t chunk : {size_t{1}, size_t{161}, size_t{1024}, size_t{4801}, audio.size()}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    const auto finals = Finals(RunStream(audio, chunk));
    ASSERT_EQ(finals.size(), reference.size());
    for (size_t i = 0; i < finals.size(); ++i) {
      EXPECT_EQ(finals[i].id, reference[i].id);
      EXPECT_EQ(finals[i].start, reference[i].start);
      EXPECT_EQ(finals[i].end, reference[i].end);
      EXPECT_EQ(finals[i].text, reference[i].text);
    }
  }
}

void ExpectFinalsEqualUncachedTranscription(const std::string& weight_format) {
  const std::vector<float> audio = ThreeUtterances();
  int64_t drafted = 0;
  const auto events = RunStream(audio, 320, weight_format, &drafted);
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 3u);
  bool some_text = false;
  for (const auto& f : finals) {
    const auto begin = static_cast<size_t>(std::llround(f.start * 16000));
    const auto end = static_cast<size_t>(std::llround(f.end * 16000));
    ASSERT_LT(begin, end);
    ASSERT_LE(end, audio.size());
    EXPECT_EQ(f.text,
              UncachedTranscription(std::span(audio).subspan(begin, end - begin), weight_format))
        << "segment " << f.id;
    some_text = some_text || !f.text.empty();
  }
  // Partials came while each utterance was open and never after its final.
  int64_t partials = 0;
  for (const auto& e : events) partials += e.type == CaptionEventType::kPartial;
  EXPECT_GT(partials, 0);
  std::printf("%s: %lld draft tokens kept over %lld partials and %zu finals\n",
              weight_format.c_str(), static_cast<long long>(drafted),
              static_cast<long long>(partials), finals.size());
  if (!some_text) {
    // Another golden set's random model may end every segment at once; then both sides agree on
    // nothing, which is a pass that proves little, so say so instead of passing quietly.
    GTEST_SKIP() << "SKIPPED: this golden set's model writes no text for these synthetic "
                    "utterances (finals and uncached transcriptions are all empty)";
  }
}

// A cancelled call returns nothing and leaves the transcriber as it was: the next call drafts
// from the last completed result, exactly as if the cancelled one had never happened.
TEST(CaptionGolden, CancelledTranscriptionChangesNothing) {
  Synth s;
  s.Gap(0.3).Speech(1.6, 0.2, 150.0).Gap(0.3);
  const std::vector<float> audio = s.signal();
  const std::span<const float> first(audio.data(), audio.size() * 2 / 3);
  ModelTranscriberOptions options;
  options.max_tokens = kMaxTokens;
  ModelTranscriber plain(Shared("q8").model, Shared().tokenizer, options);
  ModelTranscriber interrupted(Shared("q8").model, Shared().tokenizer, options);
  EXPECT_EQ(plain.Transcribe(first, false, nullptr), interrupted.Transcribe(first, false, nullptr));
  std::atomic<bool> cancel{true};
  EXPECT_EQ(interrupted.Transcribe(audio, false, &cancel), "");
  EXPECT_EQ(interrupted.Transcribe(audio, true, nullptr), plain.Transcribe(audio, true, nullptr));
  EXPECT_EQ(interrupted.drafted_tokens_kept(), plain.drafted_tokens_kept());
  EXPECT_EQ(interrupted.transcriptions(), plain.transcriptions() + 1);
}

TEST(CaptionGolden, WarmUpChangesNothing) {
  Synth s;
  s.Gap(0.3).Speech(1.2, 0.2, 170.0).Gap(0.3);
  ModelTranscriberOptions options;
  options.max_tokens = kMaxTokens;
  ModelTranscriber plain(Shared("q8").model, Shared().tokenizer, options);
  ModelTranscriber warmed(Shared("q8").model, Shared().tokenizer, options);
  warmed.WarmUp(3.0);
  warmed.WarmUp(0.001);  // too short to transcribe: nothing happens
  const std::span<const float> audio(s.signal());
  EXPECT_EQ(warmed.Transcribe(audio.first(audio.size() / 2), false, nullptr),
            plain.Transcribe(audio.first(audio.size() / 2), false, nullptr));
  EXPECT_EQ(warmed.Transcribe(audio, true, nullptr), plain.Transcribe(audio, true, nullptr));
  EXPECT_EQ(warmed.transcriptions(), plain.transcriptions());
  EXPECT_EQ(warmed.generated_tokens(), plain.generated_tokens());
  EXPECT_EQ(warmed.drafted_tokens_kept(), plain.drafted_tokens_kept());
}

TEST(CaptionGolden, FinalsEqualUncachedTranscriptionOfEachSegment) {
  ExpectFinalsEqualUncachedTranscription("native");
}

// With quantized weights each re-decode starts from the previous hypothesis as a draft
// (verified exactly); the finals must still be those of a plain transcription.
TEST(CaptionGolden, DraftedFinalsEqualUncachedTranscription) {
  ExpectFinalsEqualUncachedTranscription("q8");
}

}  // namespace
}  // namespace eddy
