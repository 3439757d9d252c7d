#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "eddy/audio_file.h"
#include "eddy/resampler.h"

namespace eddy {
namespace {

// Exponential sweep from f0 to f1 Hz over `seconds`, amplitude 0.5.
std::vector<float> Sweep(double f0, double f1, double seconds, int rate) {
  const size_t n = static_cast<size_t>(seconds * rate);
  const double k = std::log(f1 / f0) / seconds;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    v[i] = static_cast<float>(0.5 * std::sin(2 * M_PI * f0 * (std::exp(k * t) - 1) / k));
  }
  return v;
}

double Rms(const std::vector<float>& v, size_t skip) {
  double s = 0;
  for (size_t i = skip; i + skip < v.size(); ++i) s += double(v[i]) * v[i];
  return std::sqrt(s / static_cast<double>(v.size() - 2 * skip));
}

std::vector<float> OneShot(StreamResampler& r, const std::vector<float>& in) {
  std::vector<float> out = r.Process(in);
  r.Flush(out);
  return out;
}

// 48 kHz -> 16 kHz: a sweep over everything above the new Nyquist frequency (8 kHz) must come
// out attenuated (no aliasing), a sweep inside the passband must come out at unity gain.
TEST(StreamResampler, Downsampling48kTo16kDoesNotAlias) {
  struct Case {
    ResampleQuality quality;
    double min_stopband_db;
  };
  // The sweeps start just past each filter's transition band: libsamplerate's sinc filters
  // pass 97% (best), 90% (medium) of the band.
  for (const Case c :
       {Case{ResampleQuality::kSincBest, 120.0}, Case{ResampleQuality::kSincMedium, 100.0}}) {
    StreamResampler pass_r(48000, 16000, 1, c.quality), stop_r(48000, 16000, 1, c.quality);
    const auto pass = OneShot(pass_r, Sweep(50, 6500, 4.0, 48000));
    const auto stop = OneShot(stop_r, Sweep(8200, 23500, 4.0, 48000));
    EXPECT_NEAR(static_cast<double>(pass.size()), 4.0 * 16000, 2.0);
    const double pass_db = 20 * std::log10(Rms(pass, 800) / (0.5 / std::sqrt(2.0)));
    const double stop_db = 20 * std::log10(Rms(stop, 800) / (0.5 / std::sqrt(2.0)));
    EXPECT_NEAR(pass_db, 0.0, 0.1) << static_cast<int>(c.quality);
    EXPECT_LT(stop_db, -c.min_stopband_db) << static_cast<int>(c.quality);
    std::printf("quality %d: passband %.3f dB, stopband %.1f dB\n", static_cast<int>(c.quality),
                pass_db, stop_db);
  }
}

TEST(StreamResampler, StreamingInOddChunksEqualsOneShot) {
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.2f);
  std::vector<float> signal = Sweep(40, 20000, 1.0, 48000);
  for (float& v : signal) v += noise(rng);
  for (const auto& [from, to] : {std::pair{48000, 16000}, std::pair{24000, 48000},
                                 std::pair{44100, 16000}, std::pair{16000, 24000}}) {
    StreamResampler whole(from, to);
    const auto expected = OneShot(whole, signal);
    StreamResampler chunked(from, to);
    std::vector<float> got;
    const size_t sizes[] = {1, 7, 333, 2, 1001, 64, 4095, 13};
    size_t at = 0;
    for (size_t k = 0; at < signal.size(); ++k) {
      const size_t n = std::min(sizes[k % std::size(sizes)], signal.size() - at);
      chunked.Process(std::span<const float>(signal).subspan(at, n), got);
      at += n;
    }
    chunked.Flush(got);
    ASSERT_EQ(got.size(), expected.size()) << from << "->" << to;
    double max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i)
      max_diff = std::max(max_diff, double(std::abs(got[i] - expected[i])));
    EXPECT_LT(max_diff, 1e-5) << from << "->" << to;
    EXPECT_NEAR(static_cast<double>(got.size()), signal.size() * double(to) / from, 2.0);
  }
}

// The streaming converter at best quality must agree with the one-shot Resample() (src_simple),
// an independent code path through libsamplerate.
TEST(StreamResampler, MatchesOneShotResample) {
  const auto signal = Sweep(100, 11000, 0.5, 24000);
  StreamResampler r(24000, 48000, 1, ResampleQuality::kSincBest);
  std::vector<float> got;
  for (size_t at = 0; at < signal.size(); at += 480) {
    r.Process(std::span<const float>(signal).subspan(at, std::min<size_t>(480, signal.size() - at)),
              got);
  }
  r.Flush(got);
  const auto expected = Resample(signal, 24000, 48000);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5) << i;
}

TEST(StreamResampler, MultiChannelFramesAndEqualRates) {
  StreamResampler same(16000, 16000, 2);
  const std::vector<float> in = {1, 2, 3, 4};
  EXPECT_EQ(same.Process(in), in);
  StreamResampler stereo(48000, 24000, 2);
  EXPECT_THROW(stereo.Process(std::vector<float>{1, 2, 3}), AudioError);  // not whole frames
  // Left and right stay separate: a tone on the left, silence on the right.
  std::vector<float> lr(2 * 4800);
  for (size_t i = 0; i < 4800; ++i)
    lr[2 * i] = static_cast<float>(std::sin(2 * M_PI * 440 * i / 48000.0));
  std::vector<float> out = stereo.Process(lr);
  stereo.Flush(out);
  ASSERT_EQ(out.size() % 2, 0u);
  double left = 0, right = 0;
  for (size_t i = 0; i < out.size(); i += 2)
    left += out[i] * out[i], right += out[i + 1] * out[i + 1];
  EXPECT_GT(left, 100.0);
  EXPECT_LT(right, 1e-8);
}

TEST(StreamResampler, BadArgumentsGetClearErrors) {
  EXPECT_THROW(StreamResampler(0, 16000), AudioError);
  EXPECT_THROW(StreamResampler(16000, 16000, 0), AudioError);
  EXPECT_THROW(StreamResampler(1, 1000000), AudioError);  // ratio past libsamplerate's 256
  EXPECT_EQ(ParseResampleQuality("best"), ResampleQuality::kSincBest);
  try {
    ParseResampleQuality("great");
    FAIL();
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("medium"), std::string::npos);
  }
}

}  // namespace
}  // namespace eddy
