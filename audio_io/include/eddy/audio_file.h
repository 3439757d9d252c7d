// Audio files and resampling: WAV (PCM 8/16/24/32-bit, float32, WAVE_FORMAT_EXTENSIBLE, any
// channel count) read and write, and libsamplerate conversion to the model's rates.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace eddy {

class AudioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct AudioBuffer {
  int sample_rate = 0;
  int channels = 0;
  std::vector<float> samples;  // interleaved, in [-1, 1]
  size_t frames() const { return channels > 0 ? samples.size() / channels : 0; }
};

// Throws AudioError naming the file and the problem (not RIFF/WAVE, unsupported encoding,
// truncated or absurd chunk sizes, no data).
AudioBuffer ReadWav(const std::filesystem::path& path);
AudioBuffer ParseWav(const std::string& bytes, const std::string& origin);
enum class WavEncoding { kFloat32, kPcm8, kPcm16, kPcm24, kPcm32 };
// Writes float32 (IEEE) or 16-bit PCM.
void WriteWav(const std::filesystem::path& path, const AudioBuffer& audio, bool pcm16 = false);
// Integer encodings clamp to [-1, 1] and round to the nearest step.
void WriteWav(const std::filesystem::path& path, const AudioBuffer& audio, WavEncoding encoding);
std::string EncodeWav(const AudioBuffer& audio, WavEncoding encoding);

// Ogg Opus (libopusfile), decoded at 48 kHz.
AudioBuffer ParseOggOpus(const std::string& bytes, const std::string& origin);
// WAV or Ogg Opus, told apart by content.
AudioBuffer ReadAudioFile(const std::filesystem::path& path);

// Mean of the channels.
std::vector<float> Downmix(const AudioBuffer& audio);
// Band-limited conversion (libsamplerate, SRC_SINC_BEST_QUALITY by default).
std::vector<float> Resample(const std::vector<float>& mono, int from_rate, int to_rate);

// Any supported file as mono float at `rate` (16000 for the model's input).
std::vector<float> LoadMono(const std::filesystem::path& path, int rate);

}  // namespace eddy
