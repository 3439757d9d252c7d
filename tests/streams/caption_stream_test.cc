#include <gtest/gtest.h>

#include <chrono>

#include <thread>

#include <algorithm>
#include <functional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "caption_synth.h"
#include "eddy/caption_stream.h"

namespace eddy {
namespace {

using caption_test::FakeTranscriber;
using caption_test::kRate;
using caption_test::Samples;
using caption_test::Synth;

struct CaptionRun {
  std::vector<CaptionEvent> events;
  std::vector<FakeTranscriber::Call> calls;
  CaptionStats stats;
};

CaptionRun Caption(const std::vector<float>& signal, size_t chunk,
                   const CaptionConfig& config = {}) {
  FakeTranscriber transcriber;
  CaptionStream stream(config, transcriber);
  CaptionRun run;
  for (size_t pos = 0; pos < signal.size(); pos += chunk) {
    stream.AcceptWaveform(signal.data() + pos, std::min(chunk, signal.size() - pos), kRate);
    for (CaptionEvent& e : stream.TakeEvents()) run.events.push_back(std::move(e));
  }
  stream.InputFinished();
  for (CaptionEvent& e : stream.TakeEvents()) run.events.push_back(std::move(e));
  run.calls = transcriber.calls;
  run.stats = stream.stats();
  return run;
}

std::vector<CaptionEvent> Finals(const std::vector<CaptionEvent>& events) {
  std::vector<CaptionEvent> out;
  for (const CaptionEvent& e : events) {
    if (e.type == CaptionEventType::kFinal) out.push_back(e);
  }
  return out;
}

// Three utterances (the first with a 300 ms pause inside), a click and noise between them.
Synth Utterances() {
  Synth s;
  s.Gap(0.5).Speech(0.5).Gap(0.3).Speech(0.7).Gap(1.0).Speech(0.8).Gap(1.0).Click().Gap(1.0);
  s.Speech(2.0).Gap(1.0);
  return s;
}

TEST(CaptionStream, FindsEachUtteranceWithPadding) {
  const Synth s = Utterances();
  const CaptionConfig config;
  const CaptionRun run = Caption(s.signal(), 160, config);
  const std::vector<CaptionEvent> finals = Finals(run.events);
  ASSERT_EQ(finals.size(), 3u);
  // The bursts: [0]+[1] form one utterance (pause shorter than the trailing silence).
  const std::vector<std::pair<int64_t, int64_t>> truth = {{s.bursts()[0].begin, s.bursts()[1].end},
                                                          {s.bursts()[2].begin, s.bursts()[2].end},
                                                          {s.bursts()[3].begin, s.bursts()[3].end}};
  const double frame = config.segmenter.frame_ms / 1000.0;
  for (size_t i = 0; i < finals.size(); ++i) {
    const double begin = double(truth[i].first) / kRate, end = double(truth[i].second) / kRate;
    EXPECT_NEAR(finals[i].start, begin - config.segmenter.pre_padding_ms / 1000.0, 2 * frame);
    EXPECT_NEAR(finals[i].end, end + config.segmenter.post_padding_ms / 1000.0, 2 * frame);
    EXPECT_EQ(finals[i].id, static_cast<int64_t>(i));
  }
}

TEST(CaptionStream, SameEventsForEveryChunkSize) {
  const Synth s = Utterances();
  const CaptionRun reference = Caption(s.signal(), 160);
  ASSERT_FALSE(reference.events.empty());
  for (size_t chunk : {size_t{1}, size_t{1000}, size_t{16000}, size_t{7}, size_t{4099}}) {
    const CaptionRun run = Caption(s.signal(), chunk);
    ASSERT_EQ(run.events.size(), reference.events.size()) << "chunk " << chunk;
    for (size_t i = 0; i < run.events.size(); ++i) {
      EXPECT_EQ(run.events[i].ToJson(), reference.events[i].ToJson()) << "chunk " << chunk;
    }
    ASSERT_EQ(run.calls.size(), reference.calls.size()) << "chunk " << chunk;
    for (size_t i = 0; i < run.calls.size(); ++i) {
      EXPECT_EQ(run.calls[i].hash, reference.calls[i].hash) << "chunk " << chunk << " call " << i;
    }
  }
}

TEST(CaptionStream, SilenceNoiseAndClicksNeverReachTheTranscriber) {
  for (double noise : {0.0, 0.005, 0.02}) {
    Synth s;
    s.SetNoise(noise).Gap(2.0).Click().Gap(1.5).Click().Gap(0.1).Click().Gap(3.0);
    const CaptionRun run = Caption(s.signal(), 320);
    EXPECT_TRUE(run.calls.empty()) << "noise " << noise;
    EXPECT_TRUE(run.events.empty()) << "noise " << noise;
  }
  // With speech present, every call holds speech-level audio, not background alone.
  const CaptionRun run = Caption(Utterances().signal(), 160);
  ASSERT_FALSE(run.calls.empty());
  for (const FakeTranscriber::Call& call : run.calls) EXPECT_GT(call.peak, 0.05f);
}

TEST(CaptionStream, SpeechInLouderNoiseIsStillSegmented) {
  Synth s;
  s.SetNoise(0.02).Gap(1.5).Speech(1.0).Gap(1.5).Speech(1.0).Gap(1.0);
  const CaptionRun run = Caption(s.signal(), 512);
  EXPECT_EQ(Finals(run.events).size(), 2u);
}

TEST(CaptionStream, MaxLengthCutsAtTheQuietestPointOfTheWindow) {
  CaptionConfig config;
  config.segmenter.max_segment_ms = 3000;
  config.segmenter.cut_search_ms = 1000;
  Synth s;
  s.Gap(0.5).Speech(4.3).Gap(1.5);
  // Digital silence outside the search window, a deep dip inside it.
  s.Scale(Samples(1.5), Samples(1.55), 0.0f);
  const int64_t dip_begin = Samples(2.70), dip_end = Samples(2.75);
  s.Scale(dip_begin, dip_end, 0.02f);
  const CaptionRun run = Caption(s.signal(), 1000, config);
  const std::vector<CaptionEvent> finals = Finals(run.events);
  ASSERT_EQ(finals.size(), 2u);
  const double segment_start = finals[0].start;
  EXPECT_LE(finals[0].end - segment_start, 3.0 + 1e-9);
  EXPECT_GE(finals[0].end, double(dip_begin) / kRate);
  EXPECT_LT(finals[0].end, double(dip_end) / kRate);
  EXPECT_DOUBLE_EQ(finals[1].start, finals[0].end);  // nothing lost, nothing repeated
  EXPECT_NEAR(finals[1].end, 4.8 + config.segmenter.post_padding_ms / 1000.0, 0.02);
}

TEST(CaptionStream, PartialsComeAtTheConfiguredInterval) {
  for (int interval_ms : {300, 500, 1000}) {
    CaptionConfig config;
    config.partial_interval_ms = interval_ms;
    Synth s;
    s.Gap(0.5).Speech(3.0).Gap(1.0);
    const CaptionRun run = Caption(s.signal(), 160, config);
    std::vector<CaptionEvent> partials;
    for (const CaptionEvent& e : run.events) {
      if (e.type == CaptionEventType::kPartial) partials.push_back(e);
    }
    const double interval = interval_ms / 1000.0;
    const double speech_end = 3.5;
    ASSERT_GE(partials.size(), static_cast<size_t>(2.5 / interval)) << interval_ms;
    // The first partial waits for the interval and for the segment to be confirmed.
    const double confirmed_at =
        (config.segmenter.pre_padding_ms + config.segmenter.min_speech_ms) / 1000.0;
    EXPECT_NEAR(partials[0].end - partials[0].start, std::max(interval, confirmed_at), 0.011);
    for (size_t i = 1; i < partials.size(); ++i) {
      EXPECT_NEAR(partials[i].end - partials[i - 1].end, interval, 1e-9) << interval_ms;
    }
    // Partials stop once the speech has: at most one interval of trailing audio.
    EXPECT_LE(partials.back().end, speech_end + interval + 1e-9);
    EXPECT_NEAR(run.stats.partial_interval_mean_s, interval, 1e-9);
    EXPECT_NEAR(run.stats.partial_interval_max_s, interval, 1e-9);
  }
}

TEST(CaptionStream, StablePrefixIsWhatConsecutiveHypothesesAgreeOn) {
  Synth s;
  s.Gap(0.5).Speech(2.5).Gap(1.0);
  const CaptionRun run = Caption(s.signal(), 160);
  std::vector<CaptionEvent> partials;
  for (const CaptionEvent& e : run.events) {
    if (e.type == CaptionEventType::kPartial) partials.push_back(e);
  }
  ASSERT_GE(partials.size(), 3u);
  EXPECT_EQ(partials[0].stable, "");  // a single hypothesis is never stable
  for (size_t i = 1; i < partials.size(); ++i) {
    // The fake's hypotheses only grow, so the agreed prefix is exactly the previous hypothesis.
    EXPECT_EQ(partials[i].stable, partials[i - 1].text);
    EXPECT_EQ(partials[i].text.compare(0, partials[i].stable.size(), partials[i].stable), 0);
  }
  const std::vector<CaptionEvent> finals = Finals(run.events);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].stable, finals[0].text);
}

TEST(StablePrefix, CutsOnWordBoundariesOnly) {
  EXPECT_EQ(StablePrefix({"hello wor", "hello world"}), "hello");
  EXPECT_EQ(StablePrefix({"a b c", "a b d"}), "a b");
  EXPECT_EQ(StablePrefix({"abc", "abd"}), "");
  EXPECT_EQ(StablePrefix({"same text", "same text"}), "same text");
  EXPECT_EQ(StablePrefix({"one two", "one two three", "one twelve"}), "one");
  EXPECT_EQ(StablePrefix({"h\xC3\xA9llo w\xC3\xB6rld", "h\xC3\xA9llo w\xC3\xB8rld"}),
            "h\xC3\xA9llo");
  EXPECT_EQ(StablePrefix({}), "");
}

TEST(CaptionStream, FinalsNeverReopenAndIdsIncrease) {
  CaptionConfig config;
  config.segmenter.max_segment_ms = 3000;
  config.segmenter.cut_search_ms = 1000;
  Synth s = Utterances();
  s.Speech(7.0).Gap(1.0);
  const CaptionRun run = Caption(s.signal(), 999, config);
  int64_t next_final_id = 0;
  double previous_final_end = 0.0;
  for (const CaptionEvent& e : run.events) {
    // Every event belongs to the segment after the last final: none reopens a closed one.
    EXPECT_EQ(e.id, next_final_id);
    EXPECT_GE(e.start, previous_final_end);
    EXPECT_GT(e.end, e.start);
    if (e.type == CaptionEventType::kFinal) {
      previous_final_end = e.end;
      ++next_final_id;
    }
  }
  EXPECT_GE(next_final_id, 5);  // 3 utterances + a 7 s one cut at least twice
  EXPECT_EQ(run.events.back().type, CaptionEventType::kFinal);
}

// One transcription per event, in order (no final decoded ahead of its endpoint).
CaptionConfig OneCallPerEvent() {
  CaptionConfig config;
  config.speculative_final = false;
  return config;
}

TEST(CaptionStream, TimesAreExactFromSampleCounts) {
  const Synth s = Utterances();
  const CaptionRun run = Caption(s.signal(), 1000, OneCallPerEvent());
  size_t call = 0;
  for (const CaptionEvent& e : run.events) {
    ASSERT_LT(call, run.calls.size());
    const double given = double(run.calls[call++].samples) / kRate;
    EXPECT_DOUBLE_EQ(e.end - e.start, given);
    EXPECT_DOUBLE_EQ(e.start * kRate, std::round(e.start * kRate));
  }
}

TEST(CaptionStream, JsonHasTheDocumentedSchema) {
  const CaptionRun run = Caption(Utterances().signal(), 160);
  ASSERT_FALSE(run.events.empty());
  for (const CaptionEvent& e : run.events) {
    const std::string line = e.ToJson();
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.rfind("{\"type\":", 0), 0u) << line;
    const nlohmann::json j = nlohmann::json::parse(line);
    ASSERT_EQ(j.size(), 6u) << line;
    ASSERT_TRUE(j.at("type").is_string());
    const std::string type = j.at("type");
    EXPECT_TRUE(type == "partial" || type == "final");
    EXPECT_EQ(type == "final", e.type == CaptionEventType::kFinal);
    EXPECT_TRUE(j.at("id").is_number_integer());
    EXPECT_TRUE(j.at("start").is_number());
    EXPECT_TRUE(j.at("end").is_number());
    EXPECT_TRUE(j.at("text").is_string());
    EXPECT_TRUE(j.at("stable").is_string());
    EXPECT_EQ(j.at("id").get<int64_t>(), e.id);
    EXPECT_DOUBLE_EQ(j.at("start").get<double>(), e.start);
    EXPECT_DOUBLE_EQ(j.at("end").get<double>(), e.end);
    EXPECT_EQ(j.at("text").get<std::string>(), e.text);
  }
  CaptionEvent odd;
  odd.text = "quote \" backslash \\ newline \n \xC3\xA9 bad \xC3";
  const nlohmann::json j = nlohmann::json::parse(odd.ToJson());
  EXPECT_EQ(j.at("text").get<std::string>().substr(0, 33), odd.text.substr(0, 33));
}

TEST(CaptionStream, RejectsOtherRatesBadSamplesAndInputAfterFinish) {
  FakeTranscriber transcriber;
  CaptionStream stream(CaptionConfig{}, transcriber);
  std::vector<float> audio(160, 0.0f);
  try {
    stream.AcceptWaveform(audio.data(), audio.size(), 44100);
    FAIL() << "44100 Hz accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("44100"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("16000"), std::string::npos);
  }
  audio[5] = std::nanf("");
  EXPECT_THROW(stream.AcceptWaveform(audio.data(), audio.size(), kRate), std::invalid_argument);
  audio[5] = 0.0f;
  EXPECT_THROW(stream.AcceptWaveform(nullptr, 10, kRate), std::invalid_argument);
  stream.AcceptWaveform(audio.data(), audio.size(), kRate);
  stream.InputFinished();
  EXPECT_THROW(stream.AcceptWaveform(audio.data(), audio.size(), kRate), std::logic_error);
  stream.reset();
  EXPECT_NO_THROW(stream.AcceptWaveform(audio.data(), audio.size(), kRate));
}

TEST(CaptionStream, ResetStartsAFreshStream) {
  const Synth s = Utterances();
  FakeTranscriber transcriber;
  CaptionStream stream(CaptionConfig{}, transcriber);
  std::vector<std::string> first, second;
  for (std::vector<std::string>* out : {&first, &second}) {
    stream.AcceptWaveform(s.signal().data(), s.signal().size(), kRate);
    stream.InputFinished();
    for (const CaptionEvent& e : stream.TakeEvents()) out->push_back(e.ToJson());
    stream.reset();
  }
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, second);
  EXPECT_EQ(stream.stats().finals, 0);
}

TEST(CaptionStream, InputFinishedClosesTheOpenSegment) {
  Synth s;
  s.Gap(0.5).Speech(1.0).SetNoise(0.0);
  std::vector<float> signal = s.signal();
  signal.resize(signal.size() + 37, 0.0f);  // a partial frame at the end
  const CaptionRun run = Caption(signal, 160);
  const std::vector<CaptionEvent> finals = Finals(run.events);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_LE(finals[0].end, double(signal.size()) / kRate);
  EXPECT_NEAR(finals[0].end, double(signal.size()) / kRate, 0.01);
}

TEST(CaptionStream, SpeculativeFinalsAreTheSameFinalsSooner) {
  const Synth s = Utterances();
  const CaptionRun plain = Caption(s.signal(), 480, OneCallPerEvent());
  const CaptionRun ahead = Caption(s.signal(), 480);
  const auto a = Finals(plain.events), b = Finals(ahead.events);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].start, b[i].start);
    EXPECT_EQ(a[i].end, b[i].end);
    EXPECT_EQ(a[i].text, b[i].text);
  }
  // Each endpointed final was decoded once the post-padding was in, not after the whole
  // trailing silence; the partials are untouched.
  EXPECT_EQ(plain.events.size(), ahead.events.size());
  const SegmenterConfig seg;
  EXPECT_NEAR(plain.stats.final_latency_mean_s - plain.stats.final_decode_mean_s,
              seg.trailing_silence_ms / 1000.0, 1e-9);
  EXPECT_LE(ahead.stats.final_latency_mean_s,
            std::max(seg.trailing_silence_ms, seg.post_padding_ms) / 1000.0 +
                ahead.stats.final_decode_mean_s + 1e-9);
  EXPECT_LT(ahead.stats.final_latency_mean_s, plain.stats.final_latency_mean_s);
}

// A transcriber that takes real time, fed by a source much faster than real time: with a budget
// the partials stop taking more than their share of the wall time.
class SlowTranscriber : public SegmentTranscriber {
 public:
  std::string Transcribe(std::span<const float> audio, bool is_final,
                         const std::atomic<bool>* /*cancel*/) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    partials += !is_final;
    return std::to_string(audio.size());
  }
  int partials = 0;
};

TEST(CaptionStream, PartialBudgetBoundsTheirShareOfWallTime) {
  Synth s;
  s.Gap(0.3).Speech(6.0).Gap(1.0);
  const auto run = [&](double budget) {
    CaptionConfig config;
    config.partial_interval_ms = 100;
    config.partial_compute_budget = budget;
    config.Validate();
    SlowTranscriber transcriber;
    CaptionStream stream(config, transcriber);
    const auto t0 = std::chrono::steady_clock::now();
    // 20 ms of audio every 4 ms of wall time: five times faster than real time.
    for (size_t pos = 0; pos < s.signal().size(); pos += 320) {
      stream.AcceptWaveform(s.signal().data() + pos, std::min<size_t>(320, s.size() - pos), kRate);
      std::this_thread::sleep_until(t0 + std::chrono::milliseconds(4 * (pos / 320 + 1)));
    }
    stream.InputFinished();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return std::pair{transcriber.partials, 0.020 * transcriber.partials / wall};
  };
  const auto [unlimited, unlimited_share] = run(0.0);
  const auto [limited, limited_share] = run(0.25);
  EXPECT_GT(unlimited_share, 0.5);  // without a budget the partials take most of the time
  EXPECT_LT(limited_share, 0.35);   // 0.25 plus scheduling slack
  EXPECT_GT(limited, 2);            // but they still come
  EXPECT_LT(limited, unlimited);
  CaptionConfig bad;
  bad.partial_compute_budget = 1.0;
  EXPECT_THROW(bad.Validate(), std::invalid_argument);
}

TEST(CaptionStream, StatsCountAudioLatencyAndDrops) {
  const Synth s = Utterances();
  CaptionConfig config = OneCallPerEvent();
  FakeTranscriber transcriber;
  CaptionStream stream(config, transcriber);
  stream.AcceptWaveform(s.signal().data(), s.signal().size(), kRate);
  stream.ReportDroppedSamples(1600);
  stream.InputFinished();
  const CaptionStats& st = stream.stats();
  EXPECT_DOUBLE_EQ(st.audio_seconds, double(s.size()) / kRate);
  EXPECT_DOUBLE_EQ(st.dropped_seconds(), 0.1);
  EXPECT_EQ(st.finals, 3);
  EXPECT_EQ(st.partials + st.finals, static_cast<int64_t>(transcriber.calls.size()));
  // Every final here ends at an endpoint: the wait is exactly the trailing silence.
  EXPECT_NEAR(st.final_latency_mean_s - st.final_decode_mean_s,
              config.segmenter.trailing_silence_ms / 1000.0, 1e-9);
  EXPECT_GE(st.final_latency_max_s, st.final_latency_mean_s);
  EXPECT_DOUBLE_EQ(st.real_time_factor(), st.transcribe_seconds / st.audio_seconds);
  EXPECT_THROW(stream.ReportDroppedSamples(-1), std::invalid_argument);
}

TEST(CaptionConfig, ValidateNamesTheBadField) {
  struct Case {
    const char* field;
    void (*spoil)(CaptionConfig&);
  };
  const Case cases[] = {
      {"frame_ms", [](CaptionConfig& c) { c.segmenter.frame_ms = 0; }},
      {"frame_ms", [](CaptionConfig& c) { c.segmenter.frame_ms = 200; }},
      {"trailing_silence_ms", [](CaptionConfig& c) { c.segmenter.trailing_silence_ms = 0; }},
      {"max_segment_ms", [](CaptionConfig& c) { c.segmenter.max_segment_ms = 1000; }},
      {"cut_search_ms", [](CaptionConfig& c) { c.segmenter.cut_search_ms = 0; }},
      {"min_speech_ms", [](CaptionConfig& c) { c.segmenter.min_speech_ms = -1; }},
      {"pre_padding_ms", [](CaptionConfig& c) { c.segmenter.pre_padding_ms = -5; }},
      {"post_padding_ms", [](CaptionConfig& c) { c.segmenter.post_padding_ms = 700; }},
      {"speech_margin_db", [](CaptionConfig& c) { c.segmenter.speech_margin_db = 0; }},
      {"max_flatness", [](CaptionConfig& c) { c.segmenter.max_flatness = 1.5; }},
      {"tail_hold_ms", [](CaptionConfig& c) { c.segmenter.tail_hold_ms = -10; }},
      {"tail_margin_db", [](CaptionConfig& c) { c.segmenter.tail_margin_db = 0; }},
      {"tail_margin_db", [](CaptionConfig& c) { c.segmenter.tail_margin_db = 12; }},
      {"min_speech_dbfs", [](CaptionConfig& c) { c.segmenter.min_speech_dbfs = 3; }},
      {"initial_noise_floor_dbfs",
       [](CaptionConfig& c) { c.segmenter.initial_noise_floor_dbfs = 1; }},
      {"noise_floor_fall", [](CaptionConfig& c) { c.segmenter.noise_floor_fall = 0; }},
      {"noise_floor_rise", [](CaptionConfig& c) { c.segmenter.noise_floor_rise = 2; }},
      {"noise_floor_rise_voiced",
       [](CaptionConfig& c) { c.segmenter.noise_floor_rise_voiced = 0.5; }},
      {"partial_interval_ms", [](CaptionConfig& c) { c.partial_interval_ms = -1; }},
      {"partial_interval_ms", [](CaptionConfig& c) { c.partial_interval_ms = 5; }},
      {"stability_hypotheses", [](CaptionConfig& c) { c.stability_hypotheses = 0; }},
  };
  EXPECT_NO_THROW(CaptionConfig{}.Validate());
  for (const Case& c : cases) {
    CaptionConfig config;
    c.spoil(config);
    try {
      config.Validate();
      ADD_FAILURE() << c.field << " not rejected";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.field), std::string::npos) << e.what();
    }
    FakeTranscriber transcriber;
    EXPECT_THROW(CaptionStream(config, transcriber), std::invalid_argument) << c.field;
  }
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

// Words from the audio length like FakeTranscriber; partials take `partial_ms` of wall time (or
// until cancelled, if block_partials), finals `final_ms` (or until cancelled), and the test checks
// that calls never overlap.
class ThreadedTranscriber : public SegmentTranscriber {
 public:
  int partial_ms = 5;
  int final_ms = 0;
  bool block_partials = false;
  std::atomic<int> in_call{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> cancelled_finals{0};
  std::atomic<int> partial_calls{0};

  std::string Transcribe(std::span<const float> audio, bool is_final,
                         const std::atomic<bool>* cancel) override {
    if (in_call.fetch_add(1) != 0) ++overlaps;
    partial_calls += !is_final;
    const int ms = is_final ? final_ms : block_partials ? 10000 : partial_ms;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      if (cancel != nullptr && cancel->load()) {
        ++(is_final ? cancelled_finals : cancelled);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::string text;
    for (size_t w = 1; w <= audio.size() / 1600; ++w) {
      text += 'w';
      text += std::to_string(w);
      text += ' ';
    }
    --in_call;
    return text;
  }
};

std::vector<CaptionEvent> RunLive(const std::vector<float>& signal, ThreadedTranscriber& t,
                                  bool background, int pace_us = 0) {
  CaptionConfig config;
  config.partial_interval_ms = 200;
  config.background_partials = background;
  CaptionStream stream(config, t);
  std::vector<CaptionEvent> events;
  for (size_t pos = 0; pos < signal.size(); pos += 320) {
    stream.AcceptWaveform(signal.data() + pos, std::min<size_t>(320, signal.size() - pos), kRate);
    for (CaptionEvent& e : stream.TakeEvents()) events.push_back(std::move(e));
    if (pace_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pace_us));
  }
  stream.InputFinished();
  for (CaptionEvent& e : stream.TakeEvents()) events.push_back(std::move(e));
  return events;
}

std::vector<std::string> FinalsOf(const std::vector<CaptionEvent>& events) {
  std::vector<std::string> out;
  for (const CaptionEvent& e : events) {
    if (e.type == CaptionEventType::kFinal) {
      out.push_back(std::to_string(e.start) + " " + std::to_string(e.end) + " " + e.text);
    }
  }
  return out;
}

TEST(CaptionStream, BackgroundPartialsLeaveTheFinalsAlone) {
  const Synth s = Utterances();
  ThreadedTranscriber inline_t;
  const std::vector<CaptionEvent> inline_events = RunLive(s.signal(), inline_t, false);
  ThreadedTranscriber background_t;
  // 20 ms of audio every 2 ms: partials (5 ms) overlap the audio that keeps coming.
  const std::vector<CaptionEvent> background_events = RunLive(s.signal(), background_t, true, 2000);
  EXPECT_EQ(FinalsOf(background_events), FinalsOf(inline_events));
  EXPECT_EQ(background_t.overlaps, 0);
  int partials = 0;
  int64_t id = 0;
  for (const CaptionEvent& e : background_events) {
    if (e.type == CaptionEventType::kPartial) {
      ++partials;
      EXPECT_EQ(e.id, id) << "a partial after its segment's final";
    } else {
      ++id;
    }
  }
  EXPECT_GT(partials, 3);
}

// A partial still running when the endpoint comes is cancelled, never shown, and its wait counts
// in the final's latency.
TEST(CaptionStream, TheFinalCancelsARunningPartial) {
  Synth s;
  s.Gap(0.3).Speech(2.0).Gap(1.0);
  ThreadedTranscriber t;
  t.block_partials = true;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<CaptionEvent> events = RunLive(s.signal(), t, true);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(FinalsOf(events).size(), 1u);
  EXPECT_GE(t.cancelled, 1);
  EXPECT_EQ(t.overlaps, 0);
  for (const CaptionEvent& e : events) EXPECT_EQ(e.type, CaptionEventType::kFinal);
}

void WaitFor(const std::function<bool()>& condition) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!condition() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A pause longer than the post-padding but shorter than the endpoint silence starts a speculative
// final in the background; the speech that follows cancels it, partials go on, and the finals are
// those of an inline run.
TEST(CaptionStream, ResumedSpeechCancelsABackgroundSpeculation) {
  Synth s;
  s.Gap(0.3).Speech(1.5).Gap(0.35).Speech(1.5).Gap(1.0);
  ThreadedTranscriber inline_t;
  const std::vector<CaptionEvent> inline_events = RunLive(s.signal(), inline_t, false);
  ThreadedTranscriber t;
  t.final_ms = 400;  // the pause lasts 35 ms of wall time at this pace
  const std::vector<CaptionEvent> events = RunLive(s.signal(), t, true, 2000);
  EXPECT_EQ(FinalsOf(events), FinalsOf(inline_events));
  ASSERT_EQ(FinalsOf(events).size(), 1u);
  EXPECT_GE(t.cancelled_finals, 1);
  EXPECT_EQ(t.overlaps, 0);
  const double resumed = (0.3 + 1.5 + 0.35);
  bool partial_after_pause = false;
  for (const CaptionEvent& e : events) {
    if (e.type == CaptionEventType::kPartial && e.end > resumed + 0.3) partial_after_pause = true;
  }
  EXPECT_TRUE(partial_after_pause) << "no partial once speech resumed";
}

TEST(CaptionStream, ResetAndDestructionStopARunningPartial) {
  Synth s;
  s.Gap(0.3).Speech(1.5);
  ThreadedTranscriber t;
  t.block_partials = true;
  CaptionConfig config;
  config.partial_interval_ms = 200;
  config.background_partials = true;
  const auto t0 = std::chrono::steady_clock::now();
  {
    CaptionStream stream(config, t);
    stream.AcceptWaveform(s.signal().data(), s.size(), kRate);
    WaitFor([&] { return t.partial_calls == 1; });  // running in the background
    EXPECT_FALSE(stream.HasEvents());
    stream.reset();
    EXPECT_EQ(t.cancelled, 1);
    stream.AcceptWaveform(s.signal().data(), s.size(), kRate);
    WaitFor([&] { return t.partial_calls == 2; });
  }  // destroyed with the second partial running
  EXPECT_EQ(t.partial_calls, 2);
  EXPECT_EQ(t.cancelled, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace eddy
