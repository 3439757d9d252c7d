// Opus: raw packets for the network path (libopus, 20 ms frames) and Ogg Opus files (libopusenc;
// reading is ParseOggOpus in audio_file.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "eddy/audio_file.h"

struct OpusEncoder;
struct OpusDecoder;

namespace eddy {

enum class OpusApplication { kVoip, kAudio, kLowDelay };

// Encodes exactly one 20 ms frame per call. Rates: 8, 12, 16, 24 or 48 kHz.
class OpusPacketEncoder {
 public:
  // bitrate 0 = libopus's default for the rate and channels.
  OpusPacketEncoder(int sample_rate, int channels = 1, int bitrate = 0,
                    OpusApplication application = OpusApplication::kVoip);
  ~OpusPacketEncoder();
  OpusPacketEncoder(const OpusPacketEncoder&) = delete;
  OpusPacketEncoder& operator=(const OpusPacketEncoder&) = delete;

  // Samples per channel in one frame (sample_rate / 50).
  int frame_samples() const { return sample_rate_ / 50; }
  // Samples the decoder's output lags the input by.
  int lookahead() const;
  // `frame`: frame_samples() * channels interleaved floats; throws AudioError otherwise.
  std::vector<uint8_t> Encode(std::span<const float> frame);

 private:
  int sample_rate_, channels_;
  OpusEncoder* encoder_ = nullptr;
};

class OpusPacketDecoder {
 public:
  OpusPacketDecoder(int sample_rate, int channels = 1);
  ~OpusPacketDecoder();
  OpusPacketDecoder(const OpusPacketDecoder&) = delete;
  OpusPacketDecoder& operator=(const OpusPacketDecoder&) = delete;

  // Interleaved samples of one packet; throws AudioError for an empty or malformed packet.
  std::vector<float> Decode(std::span<const uint8_t> packet);
  // One 20 ms frame of concealment for a packet that never arrived.
  std::vector<float> DecodeLost();

 private:
  int sample_rate_, channels_;
  OpusDecoder* decoder_ = nullptr;
};

// Ogg Opus of any rate and 1..8 channels (libopusenc resamples to Opus's 48 kHz internally).
// bitrate 0 = libopusenc's default.
std::string EncodeOggOpus(const AudioBuffer& audio, int bitrate = 0);
void WriteOggOpus(const std::filesystem::path& path, const AudioBuffer& audio, int bitrate = 0);

}  // namespace eddy
