#include "eddy/mel.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "mel_tables.h"

namespace eddy {

namespace {

MelStream StreamWholeClip(const MelFrontend& frontend, std::span<const float> samples) {
  if (static_cast<int64_t>(samples.size()) < frontend.MinSamples()) {
    throw std::invalid_argument("log-mel: clip too short: " + std::to_string(samples.size()) +
                                " samples, need at least " + std::to_string(frontend.MinSamples()) +
                                " (two hops of " + std::to_string(frontend.hop_length()) + ")");
  }
  MelStream stream(frontend);
  stream.AcceptSamples(samples.data(), samples.size());
  stream.InputFinished();
  return stream;
}

}  // namespace

MelFrontend::MelFrontend(const MelConfig& config) : config_(config) {
  config_.Validate();
  win_length_ = config_.win_length();
  hop_length_ = config_.hop_length();
  window_ = mel_detail::SymmetricHannWindow(win_length_);
  const double highfreq = config_.highfreq > 0 ? config_.highfreq : config_.sample_rate / 2.0;
  filterbank_ = mel_detail::SlaneyMelFilterbank(config_.sample_rate, config_.n_fft,
                                                config_.features, config_.lowfreq, highfreq);

  // The triangles are narrow: keeping only each one's non-zero span makes the projection cheap.
  const int bins = spectrum_bins();
  sparse_filters_.resize(static_cast<size_t>(config_.features));
  for (int m = 0; m < config_.features; ++m) {
    const float* row = &filterbank_[static_cast<size_t>(m) * bins];
    int first = 0;
    while (first < bins && row[first] == 0.0f) ++first;
    int last = bins;
    while (last > first && row[last - 1] == 0.0f) --last;
    sparse_filters_[m].first_bin = first;
    sparse_filters_[m].weights.assign(row + first, row + last);
  }
}

LogMelFeatures MelFrontend::ComputeRawLogMel(std::span<const float> samples) const {
  const MelStream stream = StreamWholeClip(*this, samples);
  return ToFeatureMajor(stream.Frames(0, stream.end_frame()));
}

LogMelFeatures MelFrontend::ComputeLogMel(std::span<const float> samples) const {
  const MelStream stream = StreamWholeClip(*this, samples);
  return Normalize(stream.Frames(0, stream.end_frame()), ValidFrames(samples.size()));
}

int64_t MelFrontend::CheckedFrameCount(std::span<const float> raw_frames) const {
  if (raw_frames.size() % static_cast<size_t>(config_.features) != 0) {
    throw std::invalid_argument("log-mel: " + std::to_string(raw_frames.size()) +
                                " raw values are not whole frames of " +
                                std::to_string(config_.features) + " features");
  }
  return static_cast<int64_t>(raw_frames.size() / static_cast<size_t>(config_.features));
}

LogMelFeatures MelFrontend::ToFeatureMajor(std::span<const float> raw_frames) const {
  LogMelFeatures out;
  out.features = config_.features;
  out.frames = CheckedFrameCount(raw_frames);
  out.data.resize(raw_frames.size());
  for (int64_t t = 0; t < out.frames; ++t) {
    for (int m = 0; m < out.features; ++m) {
      out.data[static_cast<size_t>(m * out.frames + t)] = raw_frames[t * out.features + m];
    }
  }
  return out;
}

LogMelFeatures MelFrontend::Normalize(std::span<const float> raw_frames,
                                      int64_t valid_frames) const {
  LogMelFeatures out = ToFeatureMajor(raw_frames);
  if (valid_frames < 2 || valid_frames > out.frames) {
    throw std::invalid_argument("log-mel: per-feature normalisation needs 2 to " +
                                std::to_string(out.frames) + " valid frames, got " +
                                std::to_string(valid_frames));
  }
  const float pad_value = static_cast<float>(config_.pad_value);
  // The reference adds this to the std (not inside the sqrt) so that constant bins stay finite.
  constexpr float kStdEpsilon = 1e-5f;
  for (int m = 0; m < out.features; ++m) {
    float* row = &out.data[static_cast<size_t>(m * out.frames)];
    // Sums in double: the reference's float32 reductions are close to exact, a float loop is not.
    double sum = 0.0;
    for (int64_t t = 0; t < valid_frames; ++t) sum += row[t];
    const float mean = static_cast<float>(sum / static_cast<double>(valid_frames));
    double squares = 0.0;
    for (int64_t t = 0; t < valid_frames; ++t) {
      const double deviation = row[t] - mean;
      squares += deviation * deviation;
    }
    const float std_dev =
        static_cast<float>(std::sqrt(squares / static_cast<double>(valid_frames - 1))) +
        kStdEpsilon;
    for (int64_t t = 0; t < valid_frames; ++t) row[t] = (row[t] - mean) / std_dev;
    for (int64_t t = valid_frames; t < out.frames; ++t) row[t] = pad_value;
  }
  return out;
}

}  // namespace eddy
