#include "eddy/mel_config.h"

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
  if (win_length() <= 0) Bad("window_size", "must give a positive window length");
  if (hop_length() <= 0) Bad("window_stride", "must give a positive hop length");
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
}

}  // namespace eddy
