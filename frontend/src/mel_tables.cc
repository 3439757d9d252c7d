#include "mel_tables.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace eddy::mel_detail {

std::vector<float> SymmetricHannWindow(int length) {
  if (length == 1) return {1.0f};
  // torch: arange(N) * (2*pi/(N-1)) -> cos -> * -0.5 -> + 0.5, every step rounded to float32
  // (the double scalar is converted to float before the multiply). torch's vectorised cosf is
  // within 1 ulp; the correctly rounded cosine of the float phase matches it for all but a few
  // values (which then differ by 1 ulp).
  const float step = static_cast<float>(2.0 * std::numbers::pi / static_cast<double>(length - 1));
  std::vector<float> window(static_cast<size_t>(length));
  for (int k = 0; k < length; ++k) {
    const float phase = static_cast<float>(k) * step;
    const float cosine = static_cast<float>(std::cos(static_cast<double>(phase)));
    const float scaled = cosine * -0.5f;
    window[static_cast<size_t>(k)] = scaled + 0.5f;
  }
  return window;
}

namespace {

// librosa's Slaney mel scale: linear below 1 kHz, logarithmic above, in float64.
constexpr double kSlaneyMinHz = 0.0;
constexpr double kSlaneyHzPerMel = 200.0 / 3.0;
constexpr double kSlaneyMinLogHz = 1000.0;

double SlaneyMinLogMel() {
  return (kSlaneyMinLogHz - kSlaneyMinHz) / kSlaneyHzPerMel;
}
double SlaneyLogStep() {
  return std::log(6.4) / 27.0;
}

double HzToSlaneyMel(double hz) {
  if (hz >= kSlaneyMinLogHz) {
    return SlaneyMinLogMel() + std::log(hz / kSlaneyMinLogHz) / SlaneyLogStep();
  }
  return (hz - kSlaneyMinHz) / kSlaneyHzPerMel;
}

double SlaneyMelToHz(double mel) {
  if (mel >= SlaneyMinLogMel()) {
    return kSlaneyMinLogHz * std::exp(SlaneyLogStep() * (mel - SlaneyMinLogMel()));
  }
  return kSlaneyMinHz + kSlaneyHzPerMel * mel;
}

// numpy.linspace(start, stop, count) with endpoint: i * step + start, the last value exactly stop.
std::vector<double> Linspace(double start, double stop, int count) {
  std::vector<double> values(static_cast<size_t>(count));
  const double step = (stop - start) / static_cast<double>(count - 1);
  for (int i = 0; i < count; ++i)
    values[static_cast<size_t>(i)] = static_cast<double>(i) * step + start;
  values.back() = stop;
  return values;
}

}  // namespace

std::vector<float> SlaneyMelFilterbank(int sample_rate, int n_fft, int n_mels, double fmin,
                                       double fmax) {
  const int bins = n_fft / 2 + 1;
  // numpy.fft.rfftfreq(n_fft, d=1/sr): k * (1 / (n_fft * d)).
  const double bin_hz =
      1.0 / (static_cast<double>(n_fft) * (1.0 / static_cast<double>(sample_rate)));
  std::vector<double> mel_hz = Linspace(HzToSlaneyMel(fmin), HzToSlaneyMel(fmax), n_mels + 2);
  for (double& m : mel_hz) m = SlaneyMelToHz(m);

  std::vector<float> weights(static_cast<size_t>(n_mels) * bins);
  for (int m = 0; m < n_mels; ++m) {
    const double lower_width = mel_hz[m + 1] - mel_hz[m];
    const double upper_width = mel_hz[m + 2] - mel_hz[m + 1];
    // Slaney normalisation: each triangle has unit area in Hz.
    const double area_norm = 2.0 / (mel_hz[m + 2] - mel_hz[m]);
    for (int k = 0; k < bins; ++k) {
      const double hz = static_cast<double>(k) * bin_hz;
      const double rising = -(mel_hz[m] - hz) / lower_width;
      const double falling = (mel_hz[m + 2] - hz) / upper_width;
      // librosa stores the triangle into a float32 array first, then scales it in float64 and
      // rounds again: both roundings are kept.
      const float triangle = static_cast<float>(std::max(0.0, std::min(rising, falling)));
      weights[static_cast<size_t>(m) * bins + k] =
          static_cast<float>(static_cast<double>(triangle) * area_norm);
    }
  }
  return weights;
}

}  // namespace eddy::mel_detail
