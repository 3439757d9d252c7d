#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "caption_synth.h"
#include "eddy/speech_segmenter.h"

namespace eddy {
namespace {

TEST(VoiceActivityDetector, EnergyAndFlatnessOfKnownSignals) {
  const SegmenterConfig config;
  VoiceActivityDetector vad(config);
  const size_t n = vad.frame_samples();
  ASSERT_EQ(n, 160u);

  std::vector<float> square(n);
  for (size_t i = 0; i < n; ++i) square[i] = i % 2 ? 1.0f : -1.0f;
  EXPECT_NEAR(vad.Classify(square.data()).energy_dbfs, 0.0, 1e-9);

  // A sine centred on DFT bin 10: mean square 1/2, all power in bins 9..11 after the Hann window.
  std::vector<float> sine(n);
  for (size_t i = 0; i < n; ++i) sine[i] = float(std::sin(2.0 * std::numbers::pi * 10.0 * i / n));
  const FrameDecision tone = vad.Classify(sine.data());
  EXPECT_NEAR(tone.energy_dbfs, 10.0 * std::log10(0.5), 1e-4);
  EXPECT_LT(tone.flatness, 1e-3);

  // A windowed impulse has the same magnitude in every bin: perfectly flat.
  std::vector<float> impulse(n, 0.0f);
  impulse[n / 2] = 1.0f;
  EXPECT_NEAR(vad.Classify(impulse.data()).flatness, 1.0, 1e-6);
}

TEST(VoiceActivityDetector, NoiseFloorFollowsStationaryNoise) {
  caption_test::Synth s;
  s.SetNoise(0.05).Gap(3.0);  // about -31 dBFS of white noise, 29 dB over the initial floor
  SegmenterConfig config;
  VoiceActivityDetector vad(config);
  FrameDecision last;
  int voiced = 0;
  for (size_t pos = 0; pos + 160 <= s.signal().size(); pos += 160) {
    last = vad.Classify(s.signal().data() + pos);
    voiced += last.voiced;
  }
  EXPECT_EQ(voiced, 0);
  EXPECT_NEAR(last.noise_floor_dbfs, last.energy_dbfs, 3.0);
  vad.reset();
  EXPECT_NEAR(vad.Classify(s.signal().data()).noise_floor_dbfs, config.initial_noise_floor_dbfs,
              30.0 * config.noise_floor_rise + 1e-9);
}

// Frames of `signal` classified in order.
std::vector<FrameDecision> ClassifyAll(const std::vector<float>& signal, SegmenterConfig config) {
  VoiceActivityDetector vad(config);
  std::vector<FrameDecision> frames;
  for (size_t pos = 0; pos + vad.frame_samples() <= signal.size(); pos += vad.frame_samples()) {
    frames.push_back(vad.Classify(signal.data() + pos));
  }
  return frames;
}

TEST(VoiceActivityDetector, HissRightAfterSpeechIsItsTailForTheHoldOnly) {
  const SegmenterConfig config;
  const int hold = config.tail_hold_ms / config.frame_ms;
  caption_test::Synth s;
  s.Gap(0.5).Speech(1.0).Hiss(1.0, 0.03).Gap(0.5).Hiss(0.1, 0.03).Gap(0.5);
  const std::vector<FrameDecision> frames = ClassifyAll(s.signal(), config);
  const int speech_end = 150, hiss_end = 250, lone_hiss = 300;  // frame indices
  ASSERT_TRUE(frames[speech_end - 1].voiced && !frames[speech_end - 1].tail);
  // The hiss is white (never speech by itself) and starts well above the floor (which then
  // climbs to it).
  for (int f = speech_end; f < hiss_end; ++f) EXPECT_GT(frames[f].flatness, config.max_flatness);
  for (int f = speech_end; f < speech_end + hold; ++f) {
    EXPECT_GT(frames[f].energy_dbfs - frames[f].noise_floor_dbfs, 2 * config.tail_margin_db) << f;
  }
  // Its first tail_hold_ms are the speech's tail; the rest is not speech.
  for (int f = speech_end; f < speech_end + hold; ++f) {
    EXPECT_TRUE(frames[f].voiced && frames[f].tail) << f;
  }
  for (int f = speech_end + hold; f < hiss_end; ++f) EXPECT_FALSE(frames[f].voiced) << f;
  // The same hiss after silence has no speech to belong to.
  for (int f = lone_hiss; f < lone_hiss + 10; ++f) EXPECT_FALSE(frames[f].voiced) << f;

  SegmenterConfig no_tail = config;
  no_tail.tail_hold_ms = 0;
  const std::vector<FrameDecision> plain = ClassifyAll(s.signal(), no_tail);
  for (int f = speech_end; f < hiss_end; ++f) EXPECT_FALSE(plain[f].voiced) << f;
}

TEST(SpeechSegmenter, SegmentEndsAfterTheTailOfSpeech) {
  SegmenterConfig config;
  caption_test::Synth s;
  s.Gap(0.5).Speech(1.0).Hiss(0.12, 0.03).Gap(1.5);
  SpeechSegmenter segmenter(config);
  std::vector<SegmentEvent> events = segmenter.Feed(s.signal().data(), s.signal().size());
  for (const SegmentEvent& e : segmenter.Finish()) events.push_back(e);
  ASSERT_FALSE(events.empty());
  const SegmentEvent& last = events.back();
  ASSERT_EQ(last.kind, SegmentEventKind::kCompleted);
  const int64_t hiss_end = caption_test::Samples(1.62);
  EXPECT_EQ(last.last_voiced_end_sample, hiss_end);
  EXPECT_EQ(last.end_sample, hiss_end + caption_test::Samples(config.post_padding_ms / 1000.0));
}

TEST(SpeechSegmenter, TailsAloneNeitherOpenNorConfirmASegment) {
  SegmenterConfig config;
  config.min_speech_ms = 150;
  caption_test::Synth s;
  // 100 ms of speech and 200 ms of tail: 300 ms voiced, but only 100 ms of it speech.
  s.Gap(0.5).Speech(0.1).Hiss(0.2, 0.03).Gap(1.5);
  SpeechSegmenter segmenter(config);
  std::vector<SegmentEvent> events = segmenter.Feed(s.signal().data(), s.signal().size());
  for (const SegmentEvent& e : segmenter.Finish()) events.push_back(e);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, SegmentEventKind::kDropped);
}

TEST(SpeechSegmenter, AudioOutsideTheHistoryIsAClearError) {
  SpeechSegmenter segmenter(SegmenterConfig{});
  std::vector<float> audio(1000, 0.0f);
  segmenter.Feed(audio.data(), audio.size());
  EXPECT_EQ(segmenter.Audio(100, 200).size(), 100u);
  try {
    segmenter.Audio(900, 1200);
    FAIL() << "read past the input";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("[900, 1200)"), std::string::npos) << e.what();
  }
}

TEST(SpeechSegmenter, ShortBurstIsDroppedLongerOneCompleted) {
  SegmenterConfig config;
  for (double seconds : {0.1, 0.2, 0.3, 0.6}) {
    caption_test::Synth s;
    s.Gap(0.5).Speech(seconds).Gap(1.0);
    SpeechSegmenter segmenter(config);
    std::vector<SegmentEvent> events = segmenter.Feed(s.signal().data(), s.signal().size());
    for (const SegmentEvent& e : segmenter.Finish()) events.push_back(e);
    int completed = 0, dropped = 0;
    for (const SegmentEvent& e : events) {
      completed += e.kind == SegmentEventKind::kCompleted;
      dropped += e.kind == SegmentEventKind::kDropped;
    }
    const bool long_enough = seconds * 1000.0 >= config.min_speech_ms;
    EXPECT_EQ(completed, long_enough ? 1 : 0) << seconds;
    EXPECT_EQ(dropped, long_enough ? 0 : 1) << seconds;
  }
}

}  // namespace
}  // namespace eddy
