#include "eddy/resampler.h"

#include <samplerate.h>

#include <cmath>
#include <utility>

#include "eddy/audio_file.h"

namespace eddy {

namespace {

int ConverterType(ResampleQuality quality) {
  switch (quality) {
    case ResampleQuality::kSincBest:
      return SRC_SINC_BEST_QUALITY;
    case ResampleQuality::kSincMedium:
      return SRC_SINC_MEDIUM_QUALITY;
    case ResampleQuality::kSincFastest:
      return SRC_SINC_FASTEST;
    case ResampleQuality::kLinear:
      return SRC_LINEAR;
  }
  return SRC_SINC_MEDIUM_QUALITY;
}

}  // namespace

ResampleQuality ParseResampleQuality(const std::string& name) {
  if (name == "best") return ResampleQuality::kSincBest;
  if (name == "medium") return ResampleQuality::kSincMedium;
  if (name == "fastest") return ResampleQuality::kSincFastest;
  if (name == "linear") return ResampleQuality::kLinear;
  throw AudioError("unknown resampler quality '" + name +
                   "' (choose best, medium, fastest or linear)");
}

StreamResampler::StreamResampler(int from_rate, int to_rate, int channels, ResampleQuality quality)
    : from_rate_(from_rate), to_rate_(to_rate), channels_(channels) {
  if (from_rate <= 0 || to_rate <= 0 || channels <= 0) {
    throw AudioError("resampler: invalid rates " + std::to_string(from_rate) + " -> " +
                     std::to_string(to_rate) + " or channels " + std::to_string(channels));
  }
  const double ratio = static_cast<double>(to_rate) / from_rate;
  if (src_is_valid_ratio(ratio) == 0) {
    throw AudioError("resampler: ratio " + std::to_string(from_rate) + " -> " +
                     std::to_string(to_rate) + " is outside libsamplerate's range");
  }
  if (from_rate == to_rate) return;
  int err = 0;
  state_ = src_new(ConverterType(quality), channels, &err);
  if (state_ == nullptr) throw AudioError(std::string("resampler: ") + src_strerror(err));
}

StreamResampler::~StreamResampler() {
  if (state_ != nullptr) src_delete(state_);
}

StreamResampler::StreamResampler(StreamResampler&& other) noexcept
    : from_rate_(other.from_rate_),
      to_rate_(other.to_rate_),
      channels_(other.channels_),
      state_(std::exchange(other.state_, nullptr)) {}

StreamResampler& StreamResampler::operator=(StreamResampler&& other) noexcept {
  if (this != &other) {
    if (state_ != nullptr) src_delete(state_);
    from_rate_ = other.from_rate_;
    to_rate_ = other.to_rate_;
    channels_ = other.channels_;
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

void StreamResampler::Run(std::span<const float> in, bool end_of_input, std::vector<float>& out) {
  if (in.size() % channels_ != 0) {
    throw AudioError("resampler: " + std::to_string(in.size()) +
                     " samples are not whole frames of " + std::to_string(channels_) + " channels");
  }
  if (state_ == nullptr) {
    out.insert(out.end(), in.begin(), in.end());
    return;
  }
  const double ratio = static_cast<double>(to_rate_) / from_rate_;
  long frames_left = static_cast<long>(in.size() / channels_);
  // libsamplerate ignores a null input pointer, end_of_input included, so a flush needs a real one.
  static const float kNoInput[1] = {0.0f};
  const float* next = in.empty() ? kNoInput : in.data();
  // Output room for this input plus the filter's delay line; the loop continues if it was short.
  const long room = static_cast<long>(std::ceil(frames_left * ratio)) + 256;
  for (;;) {
    const size_t old = out.size();
    out.resize(old + static_cast<size_t>(room) * channels_);
    SRC_DATA data{};
    data.data_in = next;
    data.input_frames = frames_left;
    data.data_out = out.data() + old;
    data.output_frames = room;
    data.src_ratio = ratio;
    data.end_of_input = end_of_input ? 1 : 0;
    const int err = src_process(state_, &data);
    if (err != 0) {
      out.resize(old);
      throw AudioError(std::string("resampler: ") + src_strerror(err));
    }
    out.resize(old + static_cast<size_t>(data.output_frames_gen) * channels_);
    next += data.input_frames_used * channels_;
    frames_left -= data.input_frames_used;
    const bool filled = data.output_frames_gen == room;
    if (frames_left == 0 && !filled && (!end_of_input || data.output_frames_gen == 0)) break;
  }
}

void StreamResampler::Process(std::span<const float> in, std::vector<float>& out) {
  Run(in, false, out);
}

std::vector<float> StreamResampler::Process(std::span<const float> in) {
  std::vector<float> out;
  Run(in, false, out);
  return out;
}

void StreamResampler::Flush(std::vector<float>& out) {
  Run({}, true, out);
  Reset();
}

void StreamResampler::Reset() {
  if (state_ != nullptr) src_reset(state_);
}

}  // namespace eddy
