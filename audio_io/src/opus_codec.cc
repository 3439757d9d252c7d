#include "eddy/opus_codec.h"

#include <opus.h>
#include <opusenc.h>

#include <fstream>
#include <memory>
#include "write_encoded.h"

namespace eddy {

namespace {

void CheckOpusRate(int rate, int channels, const char* who) {
  if (rate != 8000 && rate != 12000 && rate != 16000 && rate != 24000 && rate != 48000) {
    throw AudioError(std::string(who) +
                     ": Opus rate must be 8000, 12000, 16000, 24000 or 48000, not " +
                     std::to_string(rate));
  }
  if (channels != 1 && channels != 2) {
    throw AudioError(std::string(who) + ": Opus packets carry 1 or 2 channels, not " +
                     std::to_string(channels));
  }
}

int ApplicationCode(OpusApplication application) {
  switch (application) {
    case OpusApplication::kVoip:
      return OPUS_APPLICATION_VOIP;
    case OpusApplication::kAudio:
      return OPUS_APPLICATION_AUDIO;
    case OpusApplication::kLowDelay:
      return OPUS_APPLICATION_RESTRICTED_LOWDELAY;
  }
  return OPUS_APPLICATION_VOIP;
}

constexpr int kMaxPacketBytes = 1500;

}  // namespace

OpusPacketEncoder::OpusPacketEncoder(int sample_rate, int channels, int bitrate,
                                     OpusApplication application)
    : sample_rate_(sample_rate), channels_(channels) {
  CheckOpusRate(sample_rate, channels, "Opus encoder");
  int err = OPUS_OK;
  encoder_ = opus_encoder_create(sample_rate, channels, ApplicationCode(application), &err);
  if (err != OPUS_OK) throw AudioError(std::string("Opus encoder: ") + opus_strerror(err));
  if (bitrate > 0) {
    err = opus_encoder_ctl(encoder_, OPUS_SET_BITRATE(bitrate));
    if (err != OPUS_OK) {
      opus_encoder_destroy(encoder_);
      throw AudioError("Opus encoder: bitrate " + std::to_string(bitrate) + ": " +
                       opus_strerror(err));
    }
  }
}

OpusPacketEncoder::~OpusPacketEncoder() {
  opus_encoder_destroy(encoder_);
}

int OpusPacketEncoder::lookahead() const {
  opus_int32 samples = 0;
  opus_encoder_ctl(encoder_, OPUS_GET_LOOKAHEAD(&samples));
  return samples;
}

std::vector<uint8_t> OpusPacketEncoder::Encode(std::span<const float> frame) {
  const size_t expected = static_cast<size_t>(frame_samples()) * channels_;
  if (frame.size() != expected) {
    throw AudioError("Opus encoder: a 20 ms frame at " + std::to_string(sample_rate_) + " Hz is " +
                     std::to_string(expected) + " samples, got " + std::to_string(frame.size()));
  }
  std::vector<uint8_t> packet(kMaxPacketBytes);
  const opus_int32 n = opus_encode_float(encoder_, frame.data(), frame_samples(), packet.data(),
                                         static_cast<opus_int32>(packet.size()));
  if (n < 0) throw AudioError(std::string("Opus encoder: ") + opus_strerror(n));
  packet.resize(static_cast<size_t>(n));
  return packet;
}

OpusPacketDecoder::OpusPacketDecoder(int sample_rate, int channels)
    : sample_rate_(sample_rate), channels_(channels) {
  CheckOpusRate(sample_rate, channels, "Opus decoder");
  int err = OPUS_OK;
  decoder_ = opus_decoder_create(sample_rate, channels, &err);
  if (err != OPUS_OK) throw AudioError(std::string("Opus decoder: ") + opus_strerror(err));
}

OpusPacketDecoder::~OpusPacketDecoder() {
  opus_decoder_destroy(decoder_);
}

std::vector<float> OpusPacketDecoder::Decode(std::span<const uint8_t> packet) {
  if (packet.empty()) {
    throw AudioError("Opus decoder: empty packet (use DecodeLost for a missing one)");
  }
  if (packet.size() > static_cast<size_t>(kMaxPacketBytes) * 4) {
    throw AudioError("Opus decoder: packet of " + std::to_string(packet.size()) +
                     " bytes is too large");
  }
  const int samples =
      opus_decoder_get_nb_samples(decoder_, packet.data(), static_cast<opus_int32>(packet.size()));
  if (samples < 0) {
    throw AudioError(std::string("Opus decoder: malformed packet: ") + opus_strerror(samples));
  }
  if (samples == 0 || samples > sample_rate_ * 120 / 1000) {
    throw AudioError("Opus decoder: malformed packet: it declares " + std::to_string(samples) +
                     " samples (a packet holds 2.5 to 120 ms)");
  }
  std::vector<float> pcm(static_cast<size_t>(samples) * channels_);
  const int n = opus_decode_float(decoder_, packet.data(), static_cast<opus_int32>(packet.size()),
                                  pcm.data(), samples, 0);
  if (n < 0) throw AudioError(std::string("Opus decoder: malformed packet: ") + opus_strerror(n));
  pcm.resize(static_cast<size_t>(n) * channels_);
  return pcm;
}

std::vector<float> OpusPacketDecoder::DecodeLost() {
  const int samples = sample_rate_ / 50;
  std::vector<float> pcm(static_cast<size_t>(samples) * channels_);
  const int n = opus_decode_float(decoder_, nullptr, 0, pcm.data(), samples, 0);
  if (n < 0) throw AudioError(std::string("Opus decoder: concealment: ") + opus_strerror(n));
  pcm.resize(static_cast<size_t>(n) * channels_);
  return pcm;
}

namespace {

int AppendBytes(void* user, const unsigned char* data, opus_int32 len) {
  static_cast<std::string*>(user)->append(reinterpret_cast<const char*>(data),
                                          static_cast<size_t>(len));
  return 0;
}
int CloseNothing(void*) {
  return 0;
}

struct EncoderDeleter {
  void operator()(OggOpusEnc* e) const { ope_encoder_destroy(e); }
};
struct CommentsDeleter {
  void operator()(OggOpusComments* c) const { ope_comments_destroy(c); }
};

}  // namespace

std::string EncodeOggOpus(const AudioBuffer& audio, int bitrate) {
  if (audio.channels < 1 || audio.channels > 8) {
    throw AudioError("Ogg Opus: 1 to 8 channels supported, not " + std::to_string(audio.channels));
  }
  if (audio.sample_rate < 100 || audio.sample_rate > 768000) {
    throw AudioError("Ogg Opus: unsupported sample rate " + std::to_string(audio.sample_rate));
  }
  std::string bytes;
  std::unique_ptr<OggOpusComments, CommentsDeleter> comments(ope_comments_create());
  if (!comments) throw AudioError("Ogg Opus: out of memory");
  ope_comments_add(comments.get(), "ENCODER", "eddy");
  const OpusEncCallbacks callbacks{&AppendBytes, &CloseNothing};
  int err = OPE_OK;
  std::unique_ptr<OggOpusEnc, EncoderDeleter> enc(
      ope_encoder_create_callbacks(&callbacks, &bytes, comments.get(), audio.sample_rate,
                                   audio.channels, audio.channels <= 2 ? 0 : 1, &err));
  if (!enc) throw AudioError(std::string("Ogg Opus: ") + ope_strerror(err));
  if (bitrate > 0) {
    err = ope_encoder_ctl(enc.get(), OPUS_SET_BITRATE(bitrate));
    if (err != OPE_OK) {
      throw AudioError("Ogg Opus: bitrate " + std::to_string(bitrate) + ": " + ope_strerror(err));
    }
  }
  err = ope_encoder_write_float(enc.get(), audio.samples.data(), static_cast<int>(audio.frames()));
  if (err == OPE_OK) err = ope_encoder_drain(enc.get());
  if (err != OPE_OK) throw AudioError(std::string("Ogg Opus: ") + ope_strerror(err));
  return bytes;
}

void WriteOggOpus(const std::filesystem::path& path, const AudioBuffer& audio, int bitrate) {
  WriteEncoded(path, [&] { return EncodeOggOpus(audio, bitrate); });
}

}  // namespace eddy
