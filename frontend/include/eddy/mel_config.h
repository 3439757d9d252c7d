// Parameters of the NeMo-style log-mel front end, as found in the checkpoint's `preprocessor`
// section of config.json (spec_audio.md §2.1). Fields the checkpoint does not carry are the
// reference class defaults.
#pragma once

#include <string>

namespace eddy {

struct MelConfig {
  int sample_rate = 16000;
  double window_size = 0.025;   // seconds
  double window_stride = 0.01;  // seconds
  std::string window = "hann";
  int features = 128;  // number of mel bins
  int n_fft = 512;
  bool log = true;
  std::string normalize = "per_feature";
  int frame_splicing = 1;
  double dither = 1e-5;  // training only; never applied at inference
  int pad_to = 0;
  double pad_value = 0.0;
  // Not in config.json: reference constructor defaults.
  double preemph = 0.97;
  double log_zero_guard_value = 5.960464477539063e-08;  // 2^-24
  double lowfreq = 0.0;
  double highfreq = 0.0;  // 0 = sample_rate / 2

  int win_length() const { return static_cast<int>(window_size * sample_rate); }
  int hop_length() const { return static_cast<int>(window_stride * sample_rate); }

  // Throws std::invalid_argument naming the offending field ("preprocessor.<field>: ...").
  void Validate() const;
};

}  // namespace eddy
