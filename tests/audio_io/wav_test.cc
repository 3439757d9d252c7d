#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "eddy/audio_file.h"
#include "golden.h"

namespace eddy {
namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A WAV of integer PCM built byte by byte, independent of the writer.
std::string PcmWav(int bits, int channels, int rate, const std::vector<int32_t>& samples) {
  std::string b = "RIFF____WAVEfmt ";
  const auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  const auto u16 = [&](uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); };
  u32(16);
  u16(1);
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * bits / 8));
  u16(static_cast<uint16_t>(channels * bits / 8));
  u16(static_cast<uint16_t>(bits));
  b += "data";
  u32(static_cast<uint32_t>(samples.size() * bits / 8));
  for (int32_t s : samples) {
    const uint32_t u = bits == 8 ? static_cast<uint32_t>(s + 128) : static_cast<uint32_t>(s);
    b.append(reinterpret_cast<const char*>(&u), bits / 8);
  }
  return b;
}

TEST(Wav, ReadsEveryPcmWidth) {
  struct W {
    int bits;
    int32_t value;
    float expected;
  };
  for (const W& w :
       {W{8, -64, -0.5f}, W{16, 16384, 0.5f}, W{24, -4194304, -0.5f}, W{32, 1073741824, 0.5f}}) {
    const auto audio = ParseWav(PcmWav(w.bits, 2, 8000, {w.value, 0, 0, w.value}), "t");
    EXPECT_EQ(audio.channels, 2);
    EXPECT_EQ(audio.sample_rate, 8000);
    ASSERT_EQ(audio.samples.size(), 4u);
    EXPECT_FLOAT_EQ(audio.samples[0], w.expected) << w.bits;
    EXPECT_FLOAT_EQ(audio.samples[3], w.expected) << w.bits;
    EXPECT_EQ(Downmix(audio)[0], w.expected / 2);
  }
}

TEST(Wav, FloatRoundTripAndGoldenInput) {
  const auto golden = test::LoadRawF32(test::GoldenFile("mel/chirp.f32"));
  const auto audio = ReadWav(test::GoldenFile("mel/chirp.wav"));
  EXPECT_EQ(audio.samples, golden);  // the golden WAV holds exactly the .f32 samples
  const auto tmp = std::filesystem::temp_directory_path() / "eddy_wav_roundtrip.wav";
  WriteWav(tmp, audio);
  EXPECT_EQ(ReadWav(tmp).samples, golden);
  WriteWav(tmp, audio, /*pcm16=*/true);
  const auto back = ReadWav(tmp).samples;
  for (size_t i = 0; i < back.size(); ++i) ASSERT_NEAR(back[i], golden[i], 1.0 / 32767);
  std::filesystem::remove(tmp);
}

TEST(Wav, MalformedFilesGetClearErrorsNeverCrash) {
  const std::string good = Read(test::GoldenFile("mel/chirp.wav"));
  for (size_t cut = 0; cut < 200; ++cut) {
    try {
      ParseWav(good.substr(0, cut), "cut");
    } catch (const AudioError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cut: ", 0), 0u);
    }
  }
  std::mt19937 rng(9);
  for (int trial = 0; trial < 500; ++trial) {
    std::string bad = good.substr(0, 400);
    for (int k = 0; k < 3; ++k) bad[rng() % 64] = static_cast<char>(rng());
    try {
      ParseWav(bad, "flip");
    } catch (const AudioError&) {
    }
  }
  EXPECT_THROW(ParseWav("RIFF\x04\0\0\0WAVE", "x"), AudioError);
  EXPECT_THROW(ReadWav("/nonexistent.wav"), AudioError);
}

TEST(Resample, KeepsPassbandAndRejectsStopband) {
  // 48 kHz -> 16 kHz: 1 kHz must survive, 12 kHz (above the new Nyquist) must be removed.
  const auto tone = [](double hz) {
    std::vector<float> v(48000);
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(0.5 * std::sin(2 * M_PI * hz * i / 48000));
    return v;
  };
  const auto rms = [](const std::vector<float>& v) {
    double s = 0;
    for (size_t i = 1000; i + 1000 < v.size(); ++i) s += double(v[i]) * v[i];
    return std::sqrt(s / (v.size() - 2000));
  };
  const auto pass = Resample(tone(1000), 48000, 16000);
  const auto stop = Resample(tone(12000), 48000, 16000);
  EXPECT_NEAR(pass.size(), 16000u, 2u);
  EXPECT_NEAR(rms(pass), 0.5 / std::sqrt(2.0), 0.01);
  EXPECT_LT(20 * std::log10(rms(stop) / rms(pass)), -80.0);  // sinc best quality: > 80 dB
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

// tests/data/audio/chirp.opus was made from the golden chirp with opus-tools' opusenc (64 kbit/s).
const std::filesystem::path kOpus =
    std::filesystem::path(EDDY_TEST_DATA_DIR) / "audio" / "chirp.opus";

TEST(OggOpus, DecodesCloseToTheSource) {
  const auto source = test::LoadRawF32(test::GoldenFile("mel/chirp.f32"));
  const auto mono = LoadMono(kOpus, 16000);
  ASSERT_NEAR(static_cast<double>(mono.size()), static_cast<double>(source.size()), 2.0);
  double dot = 0, a2 = 0, b2 = 0;
  for (size_t i = 0; i < std::min(mono.size(), source.size()); ++i) {
    dot += double(mono[i]) * source[i], a2 += double(mono[i]) * mono[i],
        b2 += double(source[i]) * source[i];
  }
  EXPECT_GT(dot / std::sqrt(a2 * b2), 0.9);
}

TEST(OggOpus, TruncatedAndCorruptStreamsFailClearly) {
  const std::string good = Read(kOpus);
  EXPECT_EQ(ReadAudioFile(kOpus).sample_rate, 48000);
  std::mt19937 rng(4);
  for (int trial = 0; trial < 60; ++trial) {
    std::string bad = good.substr(0, rng() % good.size());
    if (trial % 2) {
      for (int k = 0; k < 8; ++k) bad[rng() % bad.size()] ^= static_cast<char>(rng());
    }
    try {
      ParseOggOpus(bad, "opus");
    } catch (const AudioError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("opus: ", 0), 0u);
    }
  }
}

}  // namespace
}  // namespace eddy
