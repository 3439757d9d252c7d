#include "eddy/mel_config.h"

#include <cmath>
#include <stdexcept>

namespace eddy {

namespace {
[[noreturn]] void Bad(const std::string& field, const std::string& why) {
  throw std::invalid_argument("preprocessor." + field + ": " + why);
}
}  // namespace

void MelConfig::Validate() const {
  if (sample_rate != 16000)
    Bad("sample_rate", "expected 16000, got " + std::to_string(sample_rate));
  // Checked before win_length()/hop_length() convert them to int.
  if (!(window_size > 0.0 && window_size <= 1.0)) Bad("window_size", "must be in (0, 1] seconds");
  if (!(window_stride > 0.0 && window_stride <= 1.0)) {
    Bad("window_stride", "must be in (0, 1] seconds");
  }
  if (win_length() <= 0) Bad("window_size", "must give a positive window length");
  if (hop_length() <= 0) Bad("window_stride", "must give a positive hop length");
  if (hop_length() > win_length()) {
    Bad("window_stride", "hop length " + std::to_string(hop_length()) +
                             " exceeds the window length " + std::to_string(win_length()));
  }
  if (n_fft < win_length()) Bad("n_fft", "must be at least the window length");
  if ((n_fft & (n_fft - 1)) != 0) Bad("n_fft", "must be a power of two");
  if (window != "hann") Bad("window", "only 'hann' is supported, got '" + window + "'");
  if (features <= 0) Bad("features", "must be positive");
  if (!log) Bad("log", "only log-mel features (log: true) are supported");
  if (normalize != "per_feature") {
    Bad("normalize", "only 'per_feature' is supported, got '" + normalize + "'");
  }
  if (frame_splicing != 1) Bad("frame_splicing", "only 1 is supported");
  if (pad_to != 0) Bad("pad_to", "only 0 is supported");
  if (!std::isfinite(pad_value)) Bad("pad_value", "must be finite");
  if (!(preemph >= 0.0 && preemph < 1.0)) Bad("preemph", "must be in [0, 1)");
  if (!(log_zero_guard_value > 0.0) || !std::isfinite(log_zero_guard_value)) {
    Bad("log_zero_guard_value", "must be positive and finite");
  }
  const double nyquist = sample_rate / 2.0;
  if (!(lowfreq >= 0.0 && lowfreq < nyquist)) Bad("lowfreq", "must be in [0, sample_rate/2)");
  const double top = highfreq > 0.0 ? highfreq : nyquist;
  if (!(top > lowfreq && top <= nyquist)) {
    Bad("highfreq", "must be above lowfreq and at most sample_rate/2 (0 = sample_rate/2)");
  }
}

}  // namespace eddy
