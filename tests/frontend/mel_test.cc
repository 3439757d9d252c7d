// Unit tests of the log-mel front end: streaming equals one-shot bit for bit, an independent
// double-precision DFT agrees, bad input and bad configs are rejected with clear messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "eddy/mel.h"

namespace eddy {
namespace {

std::vector<float> RandomAudio(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> samples(n);
  for (float& s : samples) s = noise(rng);
  return samples;
}

bool BitwiseEqual(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Frames whose whole n_fft span (centred on t * hop) lies inside the first n samples.
int64_t CompleteFrames(const MelFrontend& fe, int64_t n) {
  const int64_t half = fe.n_fft() / 2;
  return n < half ? 0 : (n - half) / fe.hop_length() + 1;
}

TEST(MelStream, RandomChunkingMatchesOneShotBitwise) {
  const MelFrontend fe{MelConfig{}};
  std::mt19937 rng(7);
  for (const size_t length : {320u, 1234u, 4000u, 16077u, 24321u}) {
    SCOPED_TRACE("length " + std::to_string(length));
    const std::vector<float> audio = RandomAudio(length, static_cast<uint32_t>(length));
    const LogMelFeatures raw_once = fe.ComputeRawLogMel(audio);
    const LogMelFeatures mel_once = fe.ComputeLogMel(audio);
    ASSERT_EQ(raw_once.frames, static_cast<int64_t>(length) / fe.hop_length() + 1);

    for (int trial = 0; trial < 4; ++trial) {
      std::uniform_int_distribution<size_t> chunk_size(0, trial == 0 ? 3 : 700);
      MelStream stream(fe);
      std::vector<float> early_frames;  // each frame as it was when first produced
      size_t pos = 0;
      while (pos < length) {
        const size_t n = std::min(chunk_size(rng), length - pos);
        const int64_t before = stream.end_frame();
        const int64_t produced = stream.AcceptSamples(audio.data() + pos, n);
        pos += n;
        // A frame appears as soon as its audio is complete, not later.
        ASSERT_EQ(stream.end_frame(), CompleteFrames(fe, static_cast<int64_t>(pos)));
        ASSERT_EQ(produced, stream.end_frame() - before);
        const auto fresh = stream.Frames(before, stream.end_frame());
        early_frames.insert(early_frames.end(), fresh.begin(), fresh.end());
      }
      const int64_t before = stream.end_frame();
      EXPECT_EQ(stream.InputFinished(), raw_once.frames - before);
      const auto tail = stream.Frames(before, stream.end_frame());
      early_frames.insert(early_frames.end(), tail.begin(), tail.end());

      const auto all = stream.Frames(0, stream.end_frame());
      ASSERT_TRUE(BitwiseEqual(all, early_frames));
      const LogMelFeatures raw_streamed = fe.ToFeatureMajor(all);
      EXPECT_TRUE(BitwiseEqual(raw_streamed.data, raw_once.data)) << "trial " << trial;
      const LogMelFeatures mel_streamed = fe.Normalize(all, fe.ValidFrames(length));
      EXPECT_TRUE(BitwiseEqual(mel_streamed.data, mel_once.data)) << "trial " << trial;
    }
  }
}

TEST(MelStream, ResetStartsAnEmptyStream) {
  const MelFrontend fe{MelConfig{}};
  const std::vector<float> first = RandomAudio(5000, 1);
  const std::vector<float> second = RandomAudio(3333, 2);
  MelStream stream(fe);
  stream.AcceptSamples(first.data(), first.size());
  stream.InputFinished();
  EXPECT_THROW(stream.AcceptSamples(first.data(), 1), std::logic_error);
  stream.reset();
  EXPECT_EQ(stream.end_frame(), 0);
  EXPECT_EQ(stream.samples_accepted(), 0);
  stream.AcceptSamples(second.data(), second.size());
  stream.InputFinished();
  EXPECT_TRUE(BitwiseEqual(fe.ToFeatureMajor(stream.Frames(0, stream.end_frame())).data,
                           fe.ComputeRawLogMel(second).data));
}

TEST(MelStream, DiscardKeepsAbsoluteFrameIndices) {
  const MelFrontend fe{MelConfig{}};
  const std::vector<float> audio = RandomAudio(8000, 3);
  MelStream stream(fe);
  stream.AcceptSamples(audio.data(), audio.size());
  const std::vector<float> frame10(stream.Frame(10).begin(), stream.Frame(10).end());
  stream.DiscardFramesBefore(10);
  EXPECT_EQ(stream.first_frame(), 10);
  EXPECT_TRUE(BitwiseEqual(stream.Frame(10), frame10));
  EXPECT_THROW(stream.Frame(9), std::out_of_range);
  EXPECT_THROW(stream.Frames(10, stream.end_frame() + 1), std::out_of_range);
  EXPECT_THROW(stream.DiscardFramesBefore(stream.end_frame() + 1), std::out_of_range);
}

// Independent reference: the spec's formulas in double precision with an O(N^2) DFT. Only the
// filterbank is taken from the front end (the golden test checks it against the reference's).
std::vector<double> NaiveRawLogMel(const MelFrontend& fe, const std::vector<float>& x) {
  const MelConfig& c = fe.config();
  const int n_fft = fe.n_fft(), half = n_fft / 2, win = fe.win_length(), hop = fe.hop_length();
  const int bins = fe.spectrum_bins(), features = fe.features();
  std::vector<double> padded(x.size() + 2 * static_cast<size_t>(half), 0.0);
  for (size_t n = 0; n < x.size(); ++n) {
    padded[half + n] = n == 0 ? x[0] : x[n] - c.preemph * static_cast<double>(x[n - 1]);
  }
  std::vector<double> window(static_cast<size_t>(n_fft), 0.0);
  for (int k = 0; k < win; ++k) {
    window[(n_fft - win) / 2 + k] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * k / (win - 1));
  }
  const int64_t frames = static_cast<int64_t>(x.size()) / hop + 1;
  std::vector<double> out;
  std::vector<double> power(static_cast<size_t>(bins));
  for (int64_t t = 0; t < frames; ++t) {
    for (int f = 0; f < bins; ++f) {
      double re = 0.0, im = 0.0;
      for (int k = 0; k < n_fft; ++k) {
        const double v = padded[t * hop + k] * window[k];
        const double angle =
            2.0 * std::numbers::pi * ((static_cast<int64_t>(f) * k) % n_fft) / n_fft;
        re += v * std::cos(angle);
        im -= v * std::sin(angle);
      }
      power[f] = re * re + im * im;
    }
    for (int m = 0; m < features; ++m) {
      double energy = 0.0;
      for (int f = 0; f < bins; ++f) energy += fe.filterbank()[m * bins + f] * power[f];
      out.push_back(std::log(energy + c.log_zero_guard_value));
    }
  }
  return out;  // time-major
}

TEST(MelFrontend, MatchesNaiveDoublePrecisionComputation) {
  const MelFrontend fe{MelConfig{}};
  for (const size_t length : {333u, 1234u}) {
    const std::vector<float> audio = RandomAudio(length, 11);
    const std::vector<double> expected = NaiveRawLogMel(fe, audio);
    const LogMelFeatures raw = fe.ComputeRawLogMel(audio);
    ASSERT_EQ(static_cast<size_t>(raw.frames * raw.features), expected.size());
    double max_diff = 0.0, max_ref = 0.0;
    for (int64_t t = 0; t < raw.frames; ++t) {
      for (int m = 0; m < raw.features; ++m) {
        const double e = expected[t * raw.features + m];
        max_diff = std::max(max_diff, std::fabs(raw.at(m, t) - e));
        max_ref = std::max(max_ref, std::fabs(e));
      }
    }
    EXPECT_LE(max_diff, 1e-4 * max_ref) << "length " << length << " max|ref| " << max_ref;

    // Normalisation, again in double: (x - mean) / (unbiased std + 1e-5) over the valid frames.
    const int64_t valid = fe.ValidFrames(length);
    const LogMelFeatures mel = fe.ComputeLogMel(audio);
    double max_norm_diff = 0.0;
    for (int m = 0; m < mel.features; ++m) {
      double mean = 0.0;
      for (int64_t t = 0; t < valid; ++t) mean += raw.at(m, t);
      mean /= valid;
      double var = 0.0;
      for (int64_t t = 0; t < valid; ++t) var += (raw.at(m, t) - mean) * (raw.at(m, t) - mean);
      const double std_dev = std::sqrt(var / (valid - 1)) + 1e-5;
      for (int64_t t = 0; t < mel.frames; ++t) {
        const double e = t < valid ? (raw.at(m, t) - mean) / std_dev : fe.config().pad_value;
        max_norm_diff = std::max(max_norm_diff, std::fabs(mel.at(m, t) - e));
      }
    }
    EXPECT_LE(max_norm_diff, 1e-5) << "length " << length;
  }
}

TEST(MelFrontend, OutputShapeForLengthsNotDivisibleByHop) {
  const MelFrontend fe{MelConfig{}};
  for (const size_t length : {320u, 321u, 479u, 480u, 12345u}) {
    const LogMelFeatures mel = fe.ComputeLogMel(RandomAudio(length, 5));
    EXPECT_EQ(mel.features, fe.features());
    EXPECT_EQ(mel.frames, static_cast<int64_t>(length / 160 + 1));
    // The terminal frame(s) past seq_len carry pad_value.
    for (int m = 0; m < mel.features; ++m) {
      EXPECT_EQ(mel.at(m, mel.frames - 1), static_cast<float>(fe.config().pad_value));
    }
  }
}

TEST(MelFrontend, TooShortClipsAreRejectedClearly) {
  const MelFrontend fe{MelConfig{}};
  ASSERT_EQ(fe.MinSamples(), 2 * fe.hop_length());
  for (const size_t length : {0u, 1u, 159u, 160u, 319u}) {
    const std::vector<float> audio = RandomAudio(length, 9);
    try {
      fe.ComputeLogMel(audio);
      ADD_FAILURE() << length << " samples were accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(fe.MinSamples())), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(fe.ComputeRawLogMel(audio), std::invalid_argument);
  }
  EXPECT_EQ(fe.ComputeLogMel(RandomAudio(fe.MinSamples(), 9)).frames, 3);
}

TEST(MelFrontend, NormalizeRejectsBadSpans) {
  const MelFrontend fe{MelConfig{}};
  const std::vector<float> raw(static_cast<size_t>(fe.features()) * 5, 1.0f);
  EXPECT_THROW(fe.Normalize(raw, 1), std::invalid_argument);
  EXPECT_THROW(fe.Normalize(raw, 6), std::invalid_argument);
  EXPECT_THROW(fe.Normalize(std::span<const float>(raw).first(raw.size() - 1), 4),
               std::invalid_argument);
  EXPECT_EQ(fe.Normalize(raw, 5).frames, 5);
}

TEST(MelFrontend, SilenceGivesFiniteFeatures) {
  const MelFrontend fe{MelConfig{}};
  const std::vector<float> silence(8000, 0.0f);
  const LogMelFeatures raw = fe.ComputeRawLogMel(silence);
  const float floor = std::log(static_cast<float>(fe.config().log_zero_guard_value));
  for (float v : raw.data) EXPECT_EQ(v, floor);
  const LogMelFeatures mel = fe.ComputeLogMel(silence);
  for (float v : mel.data) EXPECT_TRUE(std::isfinite(v));
}

TEST(MelStream, NonFiniteSamplesAreRejectedWithoutConsumingThem) {
  const MelFrontend fe{MelConfig{}};
  std::vector<float> audio = RandomAudio(1000, 4);
  audio[700] = std::nanf("");
  MelStream stream(fe);
  try {
    stream.AcceptSamples(audio.data(), audio.size());
    ADD_FAILURE() << "NaN sample accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("700"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stream.samples_accepted(), 0);
  audio[700] = INFINITY;
  EXPECT_THROW(fe.ComputeLogMel(audio), std::invalid_argument);
}

void ExpectRejected(const MelConfig& config, const std::string& field) {
  try {
    config.Validate();
    ADD_FAILURE() << "config with bad " << field << " accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("preprocessor." + field), std::string::npos) << e.what();
  }
  EXPECT_THROW(MelFrontend{config}, std::invalid_argument) << field;
}

TEST(MelConfig, ValidateNamesTheBadField) {
  EXPECT_NO_THROW(MelConfig{}.Validate());
  const auto with = [](auto change) {
    MelConfig c;
    change(c);
    return c;
  };
  ExpectRejected(with([](MelConfig& c) { c.sample_rate = 22050; }), "sample_rate");
  ExpectRejected(with([](MelConfig& c) { c.window_size = 0.0; }), "window_size");
  ExpectRejected(with([](MelConfig& c) { c.window_size = 1e30; }), "window_size");
  ExpectRejected(with([](MelConfig& c) { c.window_stride = -0.01; }), "window_stride");
  ExpectRejected(with([](MelConfig& c) { c.window_stride = 0.05; }), "window_stride");
  ExpectRejected(with([](MelConfig& c) { c.window = "hamming"; }), "window");
  ExpectRejected(with([](MelConfig& c) { c.features = 0; }), "features");
  ExpectRejected(with([](MelConfig& c) { c.n_fft = 256; }), "n_fft");
  ExpectRejected(with([](MelConfig& c) { c.n_fft = 500; }), "n_fft");
  ExpectRejected(with([](MelConfig& c) { c.log = false; }), "log");
  ExpectRejected(with([](MelConfig& c) { c.normalize = "all_features"; }), "normalize");
  ExpectRejected(with([](MelConfig& c) { c.frame_splicing = 3; }), "frame_splicing");
  ExpectRejected(with([](MelConfig& c) { c.pad_to = 16; }), "pad_to");
  ExpectRejected(with([](MelConfig& c) { c.pad_value = NAN; }), "pad_value");
  ExpectRejected(with([](MelConfig& c) { c.preemph = 1.5; }), "preemph");
  ExpectRejected(with([](MelConfig& c) { c.log_zero_guard_value = 0.0; }), "log_zero_guard_value");
  ExpectRejected(with([](MelConfig& c) { c.lowfreq = -1.0; }), "lowfreq");
  ExpectRejected(with([](MelConfig& c) { c.highfreq = 9000.0; }), "highfreq");
}

// Prints how long the front end takes on 10 s of audio; never fails on time.
TEST(MelFrontend, TimingOfTenSeconds) {
  const MelFrontend fe{MelConfig{}};
  const std::vector<float> audio = RandomAudio(10 * 16000, 6);
  using Clock = std::chrono::steady_clock;
  double best_raw_ms = 1e30, best_full_ms = 1e30;
  for (int run = 0; run < 5; ++run) {
    auto start = Clock::now();
    const LogMelFeatures raw = fe.ComputeRawLogMel(audio);
    best_raw_ms = std::min(best_raw_ms,
                           std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    start = Clock::now();
    const LogMelFeatures mel = fe.ComputeLogMel(audio);
    best_full_ms = std::min(
        best_full_ms, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    ASSERT_EQ(raw.frames, mel.frames);
  }
  std::cout << "log-mel of 10 s of 16 kHz audio (" << fe.OutputFrames(audio.size())
            << " frames), best of 5: raw " << best_raw_ms << " ms, normalised " << best_full_ms
            << " ms\n";
  RecordProperty("raw_ms", std::to_string(best_raw_ms));
  RecordProperty("normalised_ms", std::to_string(best_full_ms));
}

}  // namespace
}  // namespace eddy
