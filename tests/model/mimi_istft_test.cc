// ISTFT of the LFM2.5 detokenizer against a direct O(N^2) inverse DFT with the same padding rule.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "eddy/istft.h"
#include "golden.h"

namespace eddy {
namespace {

// Independent double-precision computation: Hermitian inverse DFT (imaginary parts of DC and
// Nyquist ignored), periodic Hann, overlap-add, division by the summed squared window, and
// (n_fft - hop) / 2 samples trimmed at each end.
std::vector<float> NaiveIstft(const std::vector<float>& re, const std::vector<float>& im,
                              int frames, int n_fft, int hop) {
  const int bins = n_fft / 2 + 1;
  const int length = (frames - 1) * hop + n_fft;
  std::vector<double> signal(length, 0.0), envelope(length, 0.0);
  for (int t = 0; t < frames; ++t) {
    for (int n = 0; n < n_fft; ++n) {
      double x = re[t * bins] + re[t * bins + n_fft / 2] * ((n % 2 == 0) ? 1.0 : -1.0);
      for (int k = 1; k < n_fft / 2; ++k) {
        const double angle =
            2.0 * M_PI * static_cast<double>((static_cast<int64_t>(k) * n) % n_fft) / n_fft;
        x += 2.0 * (re[t * bins + k] * std::cos(angle) - im[t * bins + k] * std::sin(angle));
      }
      x /= n_fft;
      const double w = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / n_fft);
      signal[t * hop + n] += x * w;
      envelope[t * hop + n] += w * w;
    }
  }
  const int pad = (n_fft - hop) / 2;
  std::vector<float> out;
  for (int i = pad; i < length - pad; ++i)
    out.push_back(static_cast<float>(signal[i] / envelope[i]));
  return out;
}

void RandomSpectrum(int frames, int bins, uint32_t seed, std::vector<float>& re,
                    std::vector<float>& im) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  re.resize(static_cast<size_t>(frames) * bins);
  im.resize(re.size());
  for (float& v : re) v = dist(rng);
  for (float& v : im) v = dist(rng);
}

void ExpectMatchesNaive(int n_fft, int hop, int frames) {
  const int bins = n_fft / 2 + 1;
  std::vector<float> re, im;
  RandomSpectrum(frames, bins, 42 + n_fft, re, im);
  const std::vector<float> actual = IstftInverse(re.data(), im.data(), frames, n_fft, hop);
  const std::vector<float> expected = NaiveIstft(re, im, frames, n_fft, hop);
  ASSERT_EQ(actual.size(), static_cast<size_t>(frames) * hop);
  ASSERT_EQ(actual.size(), expected.size());
  const test::Diff d = test::Compare(actual.data(), expected.data(), actual.size());
  EXPECT_TRUE(test::WithinTolerance(d, 1e-5)) << test::Describe(d);
}

TEST(Istft, DetokenizerSizeMatchesDirectInverseDft) {
  ExpectMatchesNaive(1280, 320, 12);
}

TEST(Istft, SmallSizesMatchDirectInverseDft) {
  ExpectMatchesNaive(16, 4, 9);
  ExpectMatchesNaive(8, 4, 5);
  ExpectMatchesNaive(12, 2, 11);
}

// Samples come out as soon as they are final: one 12.5 Hz code frame is 6 spectra, giving
// 6 * 320 - 480 samples first and 1920 afterwards; Flush() adds the last 480.
TEST(Istft, StreamingEmitsFinalSamplesAndEqualsBatch) {
  const int n_fft = 1280, hop = 320, frames = 18;
  const int bins = n_fft / 2 + 1;
  std::vector<float> re, im;
  RandomSpectrum(frames, bins, 3, re, im);
  IstftStream stream(n_fft, hop);
  std::vector<float> out;
  std::vector<size_t> sizes;
  for (int t = 0; t < frames; ++t) {
    stream.Step(re.data() + t * bins, im.data() + t * bins, out);
    if ((t + 1) % 6 == 0) sizes.push_back(out.size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{1440, 3360, 5280}));
  stream.Flush(out);
  EXPECT_EQ(out.size(), static_cast<size_t>(frames) * hop);
  const std::vector<float> batch = IstftInverse(re.data(), im.data(), frames, n_fft, hop);
  EXPECT_EQ(out, batch);
  stream.Reset();
  std::vector<float> again;
  for (int t = 0; t < frames; ++t) stream.Step(re.data() + t * bins, im.data() + t * bins, again);
  stream.Flush(again);
  EXPECT_EQ(again, batch);
}

TEST(Istft, BadSizesAreRejected) {
  EXPECT_THROW(IstftStream(15, 5), std::invalid_argument);
  EXPECT_THROW(IstftStream(16, 0), std::invalid_argument);
  EXPECT_THROW(IstftStream(16, 3), std::invalid_argument);
  EXPECT_THROW(IstftStream(16, 32), std::invalid_argument);
  // hop = n_fft leaves no padding, so the first sample's envelope is window[0]^2 = 0: the
  // reference's envelope assertion fails there too.
  const std::vector<float> re(5 * 5, 1.0f), im(5 * 5, 0.0f);
  EXPECT_THROW(IstftInverse(re.data(), im.data(), 5, 8, 8), std::runtime_error);
}

}  // namespace
}  // namespace eddy
