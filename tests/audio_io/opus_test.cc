#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eddy/audio_file.h"
#include "eddy/opus_codec.h"
#include "eddy/resampler.h"

namespace eddy {
namespace {

// Voiced-speech-like test signal: harmonics of a gliding 110..180 Hz pitch with a falling
// spectral tilt, gated by a 4 Hz syllable envelope.
std::vector<float> SpeechLike(int rate, double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  std::vector<float> v(n);
  double phase = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    const double f0 = 145 + 35 * std::sin(2 * M_PI * 0.7 * t);
    phase += 2 * M_PI * f0 / rate;
    double s = 0;
    for (int k = 1; k * f0 < 0.45 * rate && k <= 40; ++k) s += std::sin(k * phase) / k;
    const double envelope = 0.5 - 0.5 * std::cos(2 * M_PI * 4 * t);
    v[i] = static_cast<float>(0.3 * envelope * s);
  }
  return v;
}

double SnrDb(const std::vector<float>& ref, const std::vector<float>& got, size_t delay,
             size_t skip) {
  double signal = 0, error = 0;
  for (size_t i = skip; i + delay < got.size() && i < ref.size(); ++i) {
    signal += double(ref[i]) * ref[i];
    const double e = double(got[i + delay]) - ref[i];
    error += e * e;
  }
  return 10 * std::log10(signal / error);
}

TEST(OpusPacket, RoundTripKeepsSpeechAtEveryRate) {
  for (int rate : {16000, 24000, 48000}) {
    const auto source = SpeechLike(rate, 2.0);
    OpusPacketEncoder encoder(rate, 1, 64000, OpusApplication::kAudio);
    OpusPacketDecoder decoder(rate);
    ASSERT_EQ(encoder.frame_samples(), rate / 50);
    std::vector<float> decoded;
    size_t bytes = 0;
    for (size_t at = 0; at + encoder.frame_samples() <= source.size();
         at += encoder.frame_samples()) {
      const auto packet =
          encoder.Encode(std::span<const float>(source).subspan(at, encoder.frame_samples()));
      ASSERT_GT(packet.size(), 0u);
      bytes += packet.size();
      const auto pcm = decoder.Decode(packet);
      ASSERT_EQ(pcm.size(), static_cast<size_t>(rate / 50));  // one 20 ms frame back
      decoded.insert(decoded.end(), pcm.begin(), pcm.end());
    }
    const double snr = SnrDb(source, decoded, encoder.lookahead(), rate / 10);
    std::printf("%d Hz: %.1f dB SNR, %.1f kbit/s\n", rate, snr, bytes * 8.0 / 2.0 / 1000);
    EXPECT_GT(snr, 15.0) << rate;
  }
}

TEST(OpusPacket, LostPacketIsConcealedWithOneFrame) {
  OpusPacketEncoder encoder(24000);
  OpusPacketDecoder decoder(24000);
  const auto source = SpeechLike(24000, 0.1);
  decoder.Decode(encoder.Encode(std::span<const float>(source).subspan(0, 480)));
  EXPECT_EQ(decoder.DecodeLost().size(), 480u);
}

TEST(OpusPacket, MalformedInputGetsClearErrors) {
  OpusPacketDecoder decoder(16000);
  const auto expect_error = [&](std::vector<uint8_t> packet, const std::string& fragment) {
    try {
      decoder.Decode(packet);
      ADD_FAILURE() << "no error for a packet of " << packet.size() << " bytes";
    } catch (const AudioError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error({}, "empty packet");
  // Code-3 packets declaring zero frames, and more frames than the bytes can hold.
  expect_error({0x03, 0x00}, "malformed packet");
  expect_error({0x03, 0x30}, "malformed packet");
  // Code-2 packet whose first frame length points past the end.
  expect_error({0x02, 0xFB, 0x01}, "malformed packet");
  OpusPacketEncoder encoder(16000);
  EXPECT_THROW(encoder.Encode(std::vector<float>(319)), AudioError);
  EXPECT_THROW(OpusPacketEncoder(44100), AudioError);
  EXPECT_THROW(OpusPacketDecoder(16000, 3), AudioError);
}

// Ogg Opus written with libopusenc must come back through the libopusfile reader at the same
// length and close to the source.
TEST(OggOpus, WriteReadRoundTrip) {
  for (const auto& [rate, channels] :
       {std::pair{16000, 1}, std::pair{24000, 1}, std::pair{48000, 2}}) {
    AudioBuffer source{rate, channels, {}};
    const auto mono = SpeechLike(rate, 1.5);
    for (float v : mono) {
      for (int c = 0; c < channels; ++c) source.samples.push_back(c == 0 ? v : -v);
    }
    const std::string bytes = EncodeOggOpus(source, 96000);
    ASSERT_EQ(bytes.compare(0, 4, "OggS"), 0);
    const AudioBuffer back = ParseOggOpus(bytes, "roundtrip");
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.sample_rate, 48000);
    // The pre-skip is removed by the reader, so the decoded length equals the source's at 48 kHz.
    EXPECT_NEAR(static_cast<double>(back.frames()), mono.size() * 48000.0 / rate, 2.0);
    std::vector<float> left(back.frames());
    for (size_t f = 0; f < left.size(); ++f) left[f] = back.samples[f * channels];
    const auto left_at_rate = Resample(left, 48000, rate);
    EXPECT_GT(SnrDb(mono, left_at_rate, 0, rate / 10), 15.0) << rate;
    if (channels == 2) {
      EXPECT_NEAR(back.samples[2 * 24000 + 1], -back.samples[2 * 24000], 0.05);
    }
  }
  const auto path = std::filesystem::temp_directory_path() / "eddy_ogg_roundtrip.opus";
  WriteOggOpus(path, {16000, 1, SpeechLike(16000, 0.5)});
  EXPECT_EQ(ReadAudioFile(path).sample_rate, 48000);
  std::filesystem::remove(path);
  EXPECT_THROW(WriteOggOpus("/nonexistent/dir/x.opus", {16000, 1, {0.0f}}), AudioError);
  EXPECT_THROW(EncodeOggOpus({16000, 9, std::vector<float>(9)}), AudioError);
}

// Every PCM width and float32 written by EncodeWav reads back within one quantization step.
TEST(Wav, EveryEncodingRoundTrips) {
  AudioBuffer source{22050, 3, {}};
  for (int i = 0; i < 3000; ++i) source.samples.push_back(static_cast<float>(std::sin(i * 0.01)));
  source.samples.push_back(1.0f);
  source.samples.push_back(-1.0f);
  source.samples.push_back(0.0f);
  struct E {
    WavEncoding encoding;
    double step;
  };
  for (const E e : {E{WavEncoding::kPcm8, 1.0 / 128}, E{WavEncoding::kPcm16, 1.0 / 32768},
                    E{WavEncoding::kPcm24, 1.0 / 8388608},
                    E{WavEncoding::kPcm32, 1.0 / 2147483648.0}, E{WavEncoding::kFloat32, 0.0}}) {
    const AudioBuffer back = ParseWav(EncodeWav(source, e.encoding), "enc");
    ASSERT_EQ(back.channels, 3);
    ASSERT_EQ(back.sample_rate, 22050);
    ASSERT_EQ(back.samples.size(), source.samples.size());
    for (size_t i = 0; i < back.samples.size(); ++i) {
      // +1.0 cannot be represented in two's complement: it clamps to the largest step below.
      ASSERT_NEAR(back.samples[i], source.samples[i], std::max(e.step, 1e-7) * 1.0001) << i;
    }
  }
  EXPECT_THROW(EncodeWav({16000, 0, {}}, WavEncoding::kPcm16), AudioError);
}

}  // namespace
}  // namespace eddy
