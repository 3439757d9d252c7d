// Synthetic audio and a deterministic fake transcriber for the caption tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "eddy/caption_stream.h"

namespace eddy::caption_test {

inline constexpr int kRate = 16000;

inline int64_t Samples(double seconds) {
  return std::llround(seconds * kRate);
}

// Builds a signal piece by piece; every piece is also recorded so tests know the truth.
class Synth {
 public:
  struct Burst {
    int64_t begin, end;
  };

  // Harmonic "voiced" sound: f0 with 8 harmonics, amplitude-modulated at 4 Hz (never to zero).
  Synth& Speech(double seconds, double amplitude = 0.2, double f0 = 150.0) {
    const int64_t n = Samples(seconds);
    const int64_t begin = static_cast<int64_t>(signal_.size());
    for (int64_t i = 0; i < n; ++i) {
      const double t = static_cast<double>(i) / kRate;
      double v = 0.0;
      for (int k = 1; k <= 8; ++k) v += std::sin(2.0 * std::numbers::pi * f0 * k * t) / k;
      const double envelope = 0.7 + 0.3 * std::sin(2.0 * std::numbers::pi * 4.0 * t);
      signal_.push_back(static_cast<float>(amplitude * 0.5 * envelope * v) + NextNoise());
    }
    bursts_.push_back({begin, begin + n});
    return *this;
  }
  // A fricative-like hiss: white noise of `amplitude` over the background (not a burst: it is
  // the kind of sound that ends a word, not speech by itself).
  Synth& Hiss(double seconds, double amplitude) {
    const int64_t n = Samples(seconds);
    const double background = noise_amplitude_;
    noise_amplitude_ = amplitude;
    for (int64_t i = 0; i < n; ++i) signal_.push_back(NextNoise());
    noise_amplitude_ = background;
    return *this;
  }
  // Background only (noise_amplitude may be 0 for digital silence).
  Synth& Gap(double seconds) {
    const int64_t n = Samples(seconds);
    for (int64_t i = 0; i < n; ++i) signal_.push_back(NextNoise());
    return *this;
  }
  // A short loud click: broadband, 2 ms.
  Synth& Click() {
    for (int i = 0; i < 32; ++i) signal_.push_back(i % 2 ? 0.8f : -0.8f);
    return *this;
  }
  Synth& Scale(int64_t begin, int64_t end, float factor) {
    for (int64_t i = begin; i < end; ++i) signal_[static_cast<size_t>(i)] *= factor;
    return *this;
  }
  Synth& SetNoise(double amplitude) {
    noise_amplitude_ = amplitude;
    return *this;
  }

  const std::vector<float>& signal() const { return signal_; }
  const std::vector<Burst>& bursts() const { return bursts_; }
  int64_t size() const { return static_cast<int64_t>(signal_.size()); }

 private:
  float NextNoise() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(state_ >> 11) / static_cast<double>(1ULL << 53);
    return static_cast<float>(noise_amplitude_ * (2.0 * u - 1.0));
  }

  std::vector<float> signal_;
  std::vector<Burst> bursts_;
  double noise_amplitude_ = 0.005;  // about -51 dBFS
  uint64_t state_ = 12345;
};

// Returns "w1 w2 ... wN", one word per 100 ms given, so that longer audio extends the previous
// hypothesis; records every call so tests can check what reached the "decoder".
class FakeTranscriber : public SegmentTranscriber {
 public:
  struct Call {
    size_t samples;
    bool is_final;
    float peak;
    uint64_t hash;
  };

  std::string Transcribe(std::span<const float> audio, bool is_final,
                         const std::atomic<bool>* /*cancel*/) override {
    Call call{audio.size(), is_final, 0.0f, 1469598103934665603ULL};
    for (float v : audio) {
      call.peak = std::max(call.peak, std::fabs(v));
      uint32_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      call.hash = (call.hash ^ bits) * 1099511628211ULL;
    }
    calls.push_back(call);
    std::string text;
    for (size_t w = 1; w <= audio.size() / 1600; ++w) {
      if (!text.empty()) text += ' ';
      text += 'w';
      text += std::to_string(w);
    }
    return text;
  }

  std::vector<Call> calls;
};

}  // namespace eddy::caption_test
