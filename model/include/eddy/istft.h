// Inverse STFT with the "same" padding of the LFM2.5 audio detokenizer (spec_audio.md §6.2 step 5,
// §6.3): per frame an inverse real FFT (1/N), a periodic Hann window, overlap-add at the hop,
// division by the overlap-added squared window, and (n_fft - hop) / 2 samples trimmed at each end.
// T frames give T * hop samples.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace eddy {

// Streaming form: samples are emitted as soon as no later frame can change them; Flush() emits the
// tail once the last frame is in. Step()s then Flush() equal IstftInverse() exactly.
class IstftStream {
 public:
  // n_fft even, 0 < hop <= n_fft, n_fft - hop even. Throws std::invalid_argument.
  IstftStream(int n_fft, int hop);
  // Same with a given synthesis window of n_fft = window.size() samples instead of the periodic
  // Hann (a checkpoint's stored window buffer). The envelope is its overlap-added square.
  IstftStream(std::vector<float> window, int hop);
  ~IstftStream();
  IstftStream(IstftStream&&) noexcept;
  IstftStream& operator=(IstftStream&&) noexcept;

  int n_fft() const;
  int hop() const;
  int bins() const { return n_fft() / 2 + 1; }

  // One spectrum frame: bins() real and imaginary parts (the imaginary parts of the DC and Nyquist
  // bins are ignored, as an inverse real FFT does). Appends the samples that became final.
  void Step(const float* real, const float* imag, std::vector<float>& out);
  // Appends the remaining samples (total frames * hop) and ends the utterance.
  void Flush(std::vector<float>& out);
  void Reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Batch inverse of `frames` spectra stored as real[frames * bins], imag[frames * bins].
std::vector<float> IstftInverse(const float* real, const float* imag, int frames, int n_fft,
                                int hop);

// torch.hann_window(n, periodic=True)
std::vector<float> PeriodicHann(int n);

}  // namespace eddy
