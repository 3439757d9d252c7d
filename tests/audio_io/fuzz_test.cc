// Fuzz-style robustness of the file readers: every truncation and many corruptions of valid
// files must give an AudioError naming the origin, or a well-formed buffer, never a crash or an
// out-of-bounds read (this binary also runs under AddressSanitizer+UBSan, label asan).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "eddy/audio_file.h"
#include "eddy/opus_codec.h"

namespace eddy {
namespace {

AudioBuffer Tone(int rate, int channels, double seconds) {
  AudioBuffer a{rate, channels, {}};
  for (size_t i = 0; i < static_cast<size_t>(rate * seconds); ++i) {
    for (int c = 0; c < channels; ++c) {
      a.samples.push_back(
          static_cast<float>(0.4 * std::sin(2 * M_PI * (300 + 100 * c) * i / rate)));
    }
  }
  return a;
}

// A parsed buffer must be self-consistent; anything else must be a clear error.
void ExpectWellFormedOrClearError(const std::function<AudioBuffer()>& parse,
                                  const std::string& origin) {
  try {
    const AudioBuffer a = parse();
    ASSERT_GT(a.channels, 0);
    ASSERT_GT(a.sample_rate, 0);
    ASSERT_EQ(a.samples.size() % a.channels, 0u);
    ASSERT_FALSE(a.samples.empty());
    for (float v : a.samples) ASSERT_TRUE(std::isfinite(v));
  } catch (const AudioError& e) {
    ASSERT_EQ(std::string(e.what()).rfind(origin + ": ", 0), 0u) << e.what();
  }
}

std::vector<std::string> WavSamples() {
  std::vector<std::string> files;
  for (const auto enc : {WavEncoding::kPcm8, WavEncoding::kPcm16, WavEncoding::kPcm24,
                         WavEncoding::kPcm32, WavEncoding::kFloat32}) {
    files.push_back(EncodeWav(Tone(8000, 2, 0.01), enc));
  }
  // A file with an extra chunk before "data" and an odd-sized chunk (padding byte).
  std::string extra = EncodeWav(Tone(8000, 1, 0.01), WavEncoding::kPcm16);
  extra.insert(36, std::string("LIST\x03\0\0\0abc\0", 12));
  files.push_back(extra);
  return files;
}

TEST(WavFuzz, EveryTruncationFailsClearly) {
  for (const std::string& file : WavSamples()) {
    ASSERT_NO_THROW(ParseWav(file, "whole"));
    for (size_t cut = 0; cut < file.size(); ++cut) {
      const std::string part = file.substr(0, cut);
      ExpectWellFormedOrClearError([&] { return ParseWav(part, "cut"); }, "cut");
    }
  }
}

TEST(WavFuzz, CorruptedBytesFailClearly) {
  std::mt19937 rng(17);
  for (const std::string& file : WavSamples()) {
    for (int trial = 0; trial < 2000; ++trial) {
      std::string bad = file;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        // Mostly the header, where the sizes and formats live.
        const size_t at = rng() % 3 ? rng() % std::min<size_t>(60, bad.size()) : rng() % bad.size();
        bad[at] = static_cast<char>(rng());
      }
      ExpectWellFormedOrClearError([&] { return ParseWav(bad, "flip"); }, "flip");
    }
  }
}

TEST(WavFuzz, AbsurdSizesAreRejected) {
  std::string file = EncodeWav(Tone(8000, 1, 0.01), WavEncoding::kPcm16);
  std::string huge_fmt = file;
  huge_fmt[16] = huge_fmt[17] = huge_fmt[18] = huge_fmt[19] = '\xff';
  EXPECT_THROW(ParseWav(huge_fmt, "x"), AudioError);
  std::string zero_channels = file;
  zero_channels[22] = zero_channels[23] = 0;
  EXPECT_THROW(ParseWav(zero_channels, "x"), AudioError);
}

std::string OggSample(int channels) {
  return EncodeOggOpus(Tone(16000, channels, 0.3), 24000);
}

TEST(OggFuzz, EveryTruncationFailsClearly) {
  for (int channels : {1, 2}) {
    const std::string file = OggSample(channels);
    ASSERT_NO_THROW(ParseOggOpus(file, "whole"));
    for (size_t cut = 0; cut < file.size(); ++cut) {
      const std::string part = file.substr(0, cut);
      ExpectWellFormedOrClearError([&] { return ParseOggOpus(part, "cut"); }, "cut");
    }
  }
}

TEST(OggFuzz, CorruptedBytesFailClearly) {
  std::mt19937 rng(23);
  const std::string file = OggSample(1);
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bad = file;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      // Half the flips hit the identification/comment headers at the start.
      const size_t at = rng() % 2 ? rng() % std::min<size_t>(200, bad.size()) : rng() % bad.size();
      bad[at] = static_cast<char>(rng());
    }
    ExpectWellFormedOrClearError([&] { return ParseOggOpus(bad, "flip"); }, "flip");
  }
}

TEST(AudioFileFuzz, UnknownContentNamesTheFormats) {
  const auto path = std::filesystem::temp_directory_path() / "eddy_fuzz_unknown.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "ID3\x03 not audio";
  }
  try {
    ReadAudioFile(path);
    FAIL();
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("WAV, Ogg Opus"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace eddy
