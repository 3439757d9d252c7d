#include "eddy/istft.h"

#include <kiss_fftr.h>

#include <cmath>
#include <deque>
#include <stdexcept>
#include <string>
#include <utility>

namespace eddy {

namespace {
// The reference asserts the overlap-added squared window stays above this everywhere it divides.
constexpr float kMinEnvelope = 1e-11f;
}  // namespace

std::vector<float> PeriodicHann(int n) {
  std::vector<float> w(n);
  for (int i = 0; i < n; ++i) {
    w[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * i / n));
  }
  return w;
}

struct IstftStream::Impl {
  int n_fft = 0, hop = 0, pad = 0;
  kiss_fftr_cfg plan = nullptr;
  std::vector<float> window, window_squared;
  std::vector<kiss_fft_cpx> spectrum;
  std::vector<float> frame;
  // Overlap-add of signal and squared window from absolute sample `base` on.
  std::deque<float> signal, envelope;
  int64_t base = 0;
  int64_t frames = 0;
  int64_t emitted = 0;  // output samples (after the left trim) handed out

  ~Impl() {
    if (plan) kiss_fftr_free(plan);
  }

  // Emits output samples whose padded index lies below `end` (absolute).
  void EmitUntil(int64_t end, std::vector<float>& out) {
    while (pad + emitted < end) {
      const int64_t p = pad + emitted;
      const size_t i = static_cast<size_t>(p - base);
      if (!(envelope[i] > kMinEnvelope)) {
        throw std::runtime_error("ISTFT: window envelope " + std::to_string(envelope[i]) +
                                 " at sample " + std::to_string(p) + " is not above 1e-11");
      }
      out.push_back(signal[i] / envelope[i]);
      ++emitted;
    }
    // Samples before the next frame's start that have been emitted are no longer needed.
    const int64_t keep_from = std::min<int64_t>(pad + emitted, frames * hop);
    while (base < keep_from) {
      signal.pop_front();
      envelope.pop_front();
      ++base;
    }
  }
};

IstftStream::IstftStream(int n_fft, int hop)
    : IstftStream(n_fft > 0 ? PeriodicHann(n_fft) : std::vector<float>(), hop) {}

IstftStream::IstftStream(std::vector<float> window, int hop) : impl_(std::make_unique<Impl>()) {
  const int n_fft = static_cast<int>(window.size());
  if (n_fft <= 0 || n_fft % 2 != 0) throw std::invalid_argument("ISTFT: n_fft must be even");
  if (hop <= 0 || hop > n_fft || (n_fft - hop) % 2 != 0) {
    throw std::invalid_argument("ISTFT: hop must be in (0, n_fft] with n_fft - hop even");
  }
  Impl& s = *impl_;
  s.n_fft = n_fft;
  s.hop = hop;
  s.pad = (n_fft - hop) / 2;
  s.plan = kiss_fftr_alloc(n_fft, /*inverse_fft=*/1, nullptr, nullptr);
  if (!s.plan)
    throw std::invalid_argument("ISTFT: cannot plan an FFT of size " + std::to_string(n_fft));
  s.window = std::move(window);
  for (float w : s.window) s.window_squared.push_back(w * w);
  s.spectrum.resize(n_fft / 2 + 1);
  s.frame.resize(n_fft);
}

IstftStream::~IstftStream() = default;
IstftStream::IstftStream(IstftStream&&) noexcept = default;
IstftStream& IstftStream::operator=(IstftStream&&) noexcept = default;

int IstftStream::n_fft() const {
  return impl_->n_fft;
}

int IstftStream::hop() const {
  return impl_->hop;
}

void IstftStream::Step(const float* real, const float* imag, std::vector<float>& out) {
  Impl& s = *impl_;
  for (int k = 0; k <= s.n_fft / 2; ++k) s.spectrum[k] = kiss_fft_cpx{real[k], imag[k]};
  kiss_fftri(s.plan, s.spectrum.data(), s.frame.data());
  const int64_t start = s.frames * s.hop;
  const int64_t needed = start + s.n_fft - s.base;
  while (static_cast<int64_t>(s.signal.size()) < needed) {
    s.signal.push_back(0.0f);
    s.envelope.push_back(0.0f);
  }
  const float scale = 1.0f / static_cast<float>(s.n_fft);
  for (int i = 0; i < s.n_fft; ++i) {
    const size_t j = static_cast<size_t>(start - s.base + i);
    s.signal[j] += s.frame[i] * scale * s.window[i];
    s.envelope[j] += s.window_squared[i];
  }
  ++s.frames;
  // Later frames start at frames * hop: everything before is final.
  s.EmitUntil(s.frames * s.hop, out);
}

void IstftStream::Flush(std::vector<float>& out) {
  Impl& s = *impl_;
  s.EmitUntil(s.pad + s.frames * s.hop, out);
}

void IstftStream::Reset() {
  Impl& s = *impl_;
  s.signal.clear();
  s.envelope.clear();
  s.base = 0;
  s.frames = 0;
  s.emitted = 0;
}

std::vector<float> IstftInverse(const float* real, const float* imag, int frames, int n_fft,
                                int hop) {
  IstftStream stream(n_fft, hop);
  const int bins = stream.bins();
  std::vector<float> out;
  out.reserve(static_cast<size_t>(frames) * hop);
  for (int t = 0; t < frames; ++t) {
    stream.Step(real + static_cast<size_t>(t) * bins, imag + static_cast<size_t>(t) * bins, out);
  }
  stream.Flush(out);
  return out;
}

}  // namespace eddy
