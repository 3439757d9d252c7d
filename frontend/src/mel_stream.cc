#include <kiss_fftr.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "eddy/mel.h"

namespace eddy {

struct MelStream::FftPlan {
  explicit FftPlan(int n_fft)
      : config(kiss_fftr_alloc(n_fft, /*inverse_fft=*/0, nullptr, nullptr)),
        spectrum(static_cast<size_t>(n_fft / 2 + 1)) {
    if (config == nullptr) throw std::runtime_error("log-mel: cannot allocate a KissFFT plan");
  }
  ~FftPlan() { kiss_fftr_free(config); }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;

  kiss_fftr_cfg config;
  std::vector<kiss_fft_cpx> spectrum;
};

MelStream::MelStream(const MelFrontend& frontend)
    : frontend_(&frontend),
      fft_(std::make_unique<FftPlan>(frontend.n_fft())),
      // The reference multiplies float32 tensors by these Python floats: float32 arithmetic.
      preemph_(static_cast<float>(frontend.config().preemph)),
      log_guard_(static_cast<float>(frontend.config().log_zero_guard_value)),
      windowed_(static_cast<size_t>(frontend.n_fft()), 0.0f),
      power_(static_cast<size_t>(frontend.spectrum_bins())) {
  reset();
}

MelStream::~MelStream() = default;
MelStream::MelStream(MelStream&& other) noexcept = default;
MelStream& MelStream::operator=(MelStream&& other) noexcept = default;

void MelStream::reset() {
  // The centred STFT sees n_fft/2 zeros before the first sample.
  emphasized_.assign(static_cast<size_t>(frontend_->n_fft() / 2), 0.0f);
  buffer_origin_ = 0;
  previous_sample_ = 0.0f;
  samples_accepted_ = 0;
  next_frame_ = 0;
  finished_ = false;
  frames_.clear();
  first_frame_ = 0;
}

int64_t MelStream::AcceptSamples(const float* samples, size_t count) {
  if (finished_) throw std::logic_error("log-mel stream: samples given after InputFinished()");
  if (count == 0) return 0;
  if (samples == nullptr) throw std::invalid_argument("log-mel stream: null sample pointer");
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(samples[i])) {
      throw std::invalid_argument("log-mel stream: non-finite sample at index " +
                                  std::to_string(samples_accepted_ + static_cast<int64_t>(i)));
    }
  }
  emphasized_.reserve(emphasized_.size() + count);
  for (size_t i = 0; i < count; ++i) {
    const float x = samples[i];
    // y[0] = x[0]; y[n] = x[n] - preemph * x[n-1], product and difference each rounded to float.
    if (samples_accepted_ == 0 && i == 0) {
      emphasized_.push_back(x);
    } else {
      const float scaled_previous = preemph_ * previous_sample_;
      emphasized_.push_back(x - scaled_previous);
    }
    previous_sample_ = x;
  }
  samples_accepted_ += static_cast<int64_t>(count);
  return ComputeReadyFrames();
}

int64_t MelStream::InputFinished() {
  if (finished_) return 0;
  finished_ = true;
  // The centred STFT sees n_fft/2 zeros after the last sample; exactly L/hop + 1 frames then fit.
  emphasized_.resize(emphasized_.size() + static_cast<size_t>(frontend_->n_fft() / 2), 0.0f);
  return ComputeReadyFrames();
}

int64_t MelStream::ComputeReadyFrames() {
  const int64_t hop = frontend_->hop_length();
  const int64_t n_fft = frontend_->n_fft();
  const int64_t buffer_end = buffer_origin_ + static_cast<int64_t>(emphasized_.size());
  int64_t produced = 0;
  while (next_frame_ * hop + n_fft <= buffer_end) {
    ComputeFrame(&emphasized_[static_cast<size_t>(next_frame_ * hop - buffer_origin_)]);
    ++next_frame_;
    ++produced;
  }
  // Samples before the next frame's start are never needed again.
  const int64_t drop = next_frame_ * hop - buffer_origin_;
  if (drop > 0) {
    emphasized_.erase(emphasized_.begin(), emphasized_.begin() + drop);
    buffer_origin_ += drop;
  }
  return produced;
}

void MelStream::ComputeFrame(const float* padded_frame_start) {
  const MelFrontend& fe = *frontend_;
  // torch.stft centres the shorter window inside n_fft with zeros on both sides.
  const int window_offset = (fe.n_fft() - fe.win_length()) / 2;
  const std::vector<float>& window = fe.window();
  for (int k = 0; k < fe.win_length(); ++k) {
    windowed_[static_cast<size_t>(window_offset + k)] =
        padded_frame_start[window_offset + k] * window[static_cast<size_t>(k)];
  }
  kiss_fftr(fft_->config, windowed_.data(), fft_->spectrum.data());

  // Magnitude first, then squared: the reference rounds both steps in float32.
  for (size_t f = 0; f < power_.size(); ++f) {
    const float re_sq = fft_->spectrum[f].r * fft_->spectrum[f].r;
    const float im_sq = fft_->spectrum[f].i * fft_->spectrum[f].i;
    const float magnitude = std::sqrt(re_sq + im_sq);
    power_[f] = magnitude * magnitude;
  }

  const size_t offset = frames_.size();
  frames_.resize(offset + static_cast<size_t>(fe.features()));
  for (int m = 0; m < fe.features(); ++m) {
    const MelFrontend::SparseFilter& filter = fe.sparse_filters_[static_cast<size_t>(m)];
    float energy = 0.0f;
    for (size_t j = 0; j < filter.weights.size(); ++j) {
      energy += filter.weights[j] * power_[filter.first_bin + j];
    }
    frames_[offset + static_cast<size_t>(m)] = std::log(energy + log_guard_);
  }
}

int64_t MelStream::held_frames() const {
  return static_cast<int64_t>(frames_.size()) / frontend_->features();
}

std::span<const float> MelStream::Frames(int64_t begin, int64_t end) const {
  if (begin < first_frame_ || end > end_frame() || begin > end) {
    throw std::out_of_range("log-mel stream: frames [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") requested, held [" +
                            std::to_string(first_frame_) + ", " + std::to_string(end_frame()) +
                            ")");
  }
  const size_t features = static_cast<size_t>(frontend_->features());
  return std::span<const float>(frames_).subspan(
      static_cast<size_t>(begin - first_frame_) * features,
      static_cast<size_t>(end - begin) * features);
}

void MelStream::DiscardFramesBefore(int64_t t) {
  if (t <= first_frame_) return;
  if (t > end_frame()) {
    throw std::out_of_range("log-mel stream: cannot discard up to frame " + std::to_string(t) +
                            ", only " + std::to_string(end_frame()) + " frames exist");
  }
  const size_t features = static_cast<size_t>(frontend_->features());
  frames_.erase(frames_.begin(),
                frames_.begin() + static_cast<std::ptrdiff_t>((t - first_frame_) * features));
  first_frame_ = t;
}

}  // namespace eddy
