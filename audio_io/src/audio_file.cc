#include "eddy/audio_file.h"

#include <opusfile.h>
#include <samplerate.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include "write_encoded.h"

namespace eddy {

namespace {

uint32_t Le32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint16_t Le16(const std::string& b, size_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

constexpr uint16_t kFormatPcm = 1, kFormatFloat = 3, kFormatExtensible = 0xFFFE;

}  // namespace

AudioBuffer ParseWav(const std::string& b, const std::string& origin) {
  const auto fail = [&](const std::string& why) { return AudioError(origin + ": " + why); };
  if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WAVE") != 0) {
    throw fail("not a WAV file (no RIFF/WAVE header)");
  }
  uint16_t format = 0, channels = 0, bits = 0, block_align = 0;
  uint32_t rate = 0;
  bool have_fmt = false;
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const std::string id = b.substr(pos, 4);
    const uint64_t size = Le32(b, pos + 4);
    const size_t body = pos + 8;
    if (id == "fmt ") {
      if (size < 16 || body + size > b.size()) throw fail("truncated fmt chunk");
      format = Le16(b, body);
      channels = Le16(b, body + 2);
      rate = Le32(b, body + 4);
      block_align = Le16(b, body + 12);
      bits = Le16(b, body + 14);
      if (format == kFormatExtensible) {
        if (size < 40) throw fail("truncated WAVE_FORMAT_EXTENSIBLE fmt chunk");
        format = Le16(b, body + 24);  // first two bytes of the sub-format GUID
      }
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt) throw fail("data chunk before the fmt chunk");
      if (channels == 0 || channels > 64)
        throw fail("invalid channel count " + std::to_string(channels));
      if (rate < 1000 || rate > 768000)
        throw fail("unsupported sample rate " + std::to_string(rate));
      const bool pcm =
          format == kFormatPcm && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
      const bool flt = format == kFormatFloat && bits == 32;
      if (!pcm && !flt) {
        throw fail("unsupported encoding (format " + std::to_string(format) + ", " +
                   std::to_string(bits) + " bits); supported: PCM 8/16/24/32-bit, float32");
      }
      const size_t bytes_per_sample = bits / 8;
      if (block_align != bytes_per_sample * channels) throw fail("inconsistent block alignment");
      // A data size past the end (streams written without a final size) reads what is there.
      const size_t available = std::min<uint64_t>(size, b.size() - body);
      const size_t frames = available / block_align;
      if (frames == 0) throw fail("no audio samples");
      AudioBuffer out;
      out.sample_rate = static_cast<int>(rate);
      out.channels = channels;
      out.samples.resize(frames * channels);
      const unsigned char* p = reinterpret_cast<const unsigned char*>(b.data() + body);
      for (size_t i = 0; i < out.samples.size(); ++i, p += bytes_per_sample) {
        float v;
        if (flt) {
          std::memcpy(&v, p, 4);
          if (!std::isfinite(v)) throw fail("non-finite float sample at " + std::to_string(i));
        } else if (bits == 8) {
          v = (static_cast<int>(p[0]) - 128) / 128.0f;
        } else if (bits == 16) {
          v = static_cast<int16_t>(p[0] | (p[1] << 8)) / 32768.0f;
        } else if (bits == 24) {
          const int32_t s = static_cast<int32_t>((p[0] << 8) | (p[1] << 16) | (p[2] << 24)) >> 8;
          v = s / 8388608.0f;
        } else {
          int32_t s;
          std::memcpy(&s, p, 4);
          v = static_cast<float>(s / 2147483648.0);
        }
        out.samples[i] = v;
      }
      return out;
    }
    pos = body + size + (size & 1);
  }
  throw fail(have_fmt ? "no data chunk" : "no fmt chunk");
}

AudioBuffer ReadWav(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AudioError(path.string() + ": cannot open audio file");
  std::ostringstream s;
  s << in.rdbuf();
  return ParseWav(s.str(), path.string());
}

std::string EncodeWav(const AudioBuffer& audio, WavEncoding encoding) {
  if (audio.channels <= 0 || audio.channels > 0xFFFF || audio.sample_rate <= 0) {
    throw AudioError("WAV: bad format (" + std::to_string(audio.channels) + " channels, " +
                     std::to_string(audio.sample_rate) + " Hz)");
  }
  const bool is_float = encoding == WavEncoding::kFloat32;
  const uint16_t bits = encoding == WavEncoding::kPcm8    ? 8
                        : encoding == WavEncoding::kPcm16 ? 16
                        : encoding == WavEncoding::kPcm24 ? 24
                                                          : 32;
  const uint16_t align = static_cast<uint16_t>(bits / 8 * audio.channels);
  const uint64_t data64 = static_cast<uint64_t>(audio.samples.size()) * (bits / 8);
  if (data64 > 0xFFFFFFFFull - 36) throw AudioError("WAV: audio too long for a RIFF file");
  const uint32_t data = static_cast<uint32_t>(data64);
  std::string h;
  h.reserve(44 + data);
  const auto u32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
  const auto u16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
  h += "RIFF";
  u32(36 + data);
  h += "WAVEfmt ";
  u32(16);
  u16(is_float ? kFormatFloat : kFormatPcm);
  u16(static_cast<uint16_t>(audio.channels));
  u32(static_cast<uint32_t>(audio.sample_rate));
  u32(static_cast<uint32_t>(audio.sample_rate) * align);
  u16(align);
  u16(bits);
  h += "data";
  u32(data);
  for (float v : audio.samples) {
    if (is_float) {
      h.append(reinterpret_cast<const char*>(&v), 4);
      continue;
    }
    const double x = std::clamp(static_cast<double>(v), -1.0, 1.0);
    const double full = std::ldexp(1.0, bits - 1);  // 2^(bits-1)
    const int64_t q = std::clamp<int64_t>(std::llround(x * full), static_cast<int64_t>(-full),
                                          static_cast<int64_t>(full) - 1);
    const uint32_t u = bits == 8 ? static_cast<uint32_t>(q + 128) : static_cast<uint32_t>(q);
    h.append(reinterpret_cast<const char*>(&u), bits / 8);  // little-endian low bytes
  }
  return h;
}

void WriteWav(const std::filesystem::path& path, const AudioBuffer& audio, WavEncoding encoding) {
  WriteEncoded(path, [&] { return EncodeWav(audio, encoding); });
}

void WriteWav(const std::filesystem::path& path, const AudioBuffer& audio, bool pcm16) {
  WriteWav(path, audio, pcm16 ? WavEncoding::kPcm16 : WavEncoding::kFloat32);
}

std::vector<float> Downmix(const AudioBuffer& audio) {
  if (audio.channels == 1) return audio.samples;
  std::vector<float> mono(audio.frames());
  for (size_t f = 0; f < mono.size(); ++f) {
    float sum = 0.0f;
    for (int c = 0; c < audio.channels; ++c) sum += audio.samples[f * audio.channels + c];
    mono[f] = sum / audio.channels;
  }
  return mono;
}

std::vector<float> Resample(const std::vector<float>& mono, int from_rate, int to_rate) {
  if (from_rate == to_rate || mono.empty()) return mono;
  const double ratio = static_cast<double>(to_rate) / from_rate;
  std::vector<float> out(static_cast<size_t>(std::ceil(mono.size() * ratio)) + 16);
  SRC_DATA data{};
  data.data_in = mono.data();
  data.input_frames = static_cast<long>(mono.size());
  data.data_out = out.data();
  data.output_frames = static_cast<long>(out.size());
  data.src_ratio = ratio;
  data.end_of_input = 1;
  const int err = src_simple(&data, SRC_SINC_BEST_QUALITY, 1);
  if (err != 0) throw AudioError(std::string("resampling failed: ") + src_strerror(err));
  out.resize(static_cast<size_t>(data.output_frames_gen));
  return out;
}

AudioBuffer ParseOggOpus(const std::string& bytes, const std::string& origin) {
  int err = 0;
  OggOpusFile* file =
      op_open_memory(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &err);
  if (file == nullptr) {
    throw AudioError(origin + ": not a readable Ogg Opus stream (opusfile error " +
                     std::to_string(err) + ")");
  }
  AudioBuffer out;
  out.sample_rate = 48000;  // Opus always decodes at 48 kHz
  out.channels = op_channel_count(file, -1);
  std::vector<float> buf(static_cast<size_t>(5760) * std::max(1, out.channels));
  for (;;) {
    const int n = op_read_float(file, buf.data(), static_cast<int>(buf.size()), nullptr);
    if (n == 0) break;
    if (n < 0) {
      op_free(file);
      throw AudioError(origin + ": corrupt Ogg Opus data (opusfile error " + std::to_string(n) +
                       ") after " + std::to_string(out.frames()) + " samples");
    }
    out.samples.insert(out.samples.end(), buf.begin(), buf.begin() + n * out.channels);
  }
  op_free(file);
  if (out.samples.empty()) throw AudioError(origin + ": no audio samples");
  return out;
}

AudioBuffer ReadAudioFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AudioError(path.string() + ": cannot open audio file");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string bytes = s.str();
  if (bytes.compare(0, 4, "OggS") == 0) return ParseOggOpus(bytes, path.string());
  if (bytes.compare(0, 4, "RIFF") == 0) return ParseWav(bytes, path.string());
  throw AudioError(path.string() + ": unknown audio format (supported: WAV, Ogg Opus)");
}

std::vector<float> LoadMono(const std::filesystem::path& path, int rate) {
  const AudioBuffer audio = ReadAudioFile(path);
  return Resample(Downmix(audio), audio.sample_rate, rate);
}

}  // namespace eddy
