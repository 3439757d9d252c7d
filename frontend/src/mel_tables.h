// The two constant tables of the front end, built with the reference's own float32/float64
// rounding so that they match it value for value.
#pragma once

#include <vector>

namespace eddy::mel_detail {

// torch.hann_window(length, periodic=False) as torch computes it in float32.
std::vector<float> SymmetricHannWindow(int length);

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney") as float32,
// row-major [n_mels, n_fft/2 + 1].
std::vector<float> SlaneyMelFilterbank(int sample_rate, int n_fft, int n_mels, double fmin,
                                       double fmax);

}  // namespace eddy::mel_detail
