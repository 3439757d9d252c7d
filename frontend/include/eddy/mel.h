// NeMo-style log-mel front end of LFM2-Audio (spec_audio.md §2): pre-emphasis, centred STFT with a
// symmetric Hann window, power spectrum, Slaney mel filterbank, ln(x + guard), per-feature
// normalisation over the valid frames, masked terminal frame.
//
// MelFrontend holds what is shared and immutable (window, filterbank); MelStream is the per-stream
// state that turns samples into raw (un-normalised) log-mel frames as soon as each frame's audio
// has arrived, so a live stream never transforms the same audio twice. The one-shot functions run
// exactly the same code, so streamed and one-shot results are bitwise identical.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "eddy/mel_config.h"

namespace eddy {

// Features in the reference's layout [features, frames]: value of bin m at frame t is
// data[m * frames + t].
struct LogMelFeatures {
  int features = 0;
  int64_t frames = 0;
  std::vector<float> data;

  float at(int bin, int64_t frame) const { return data[static_cast<size_t>(bin * frames + frame)]; }
};

class MelFrontend {
 public:
  // Validates the config (std::invalid_argument naming the field) and builds window and filterbank.
  explicit MelFrontend(const MelConfig& config);

  const MelConfig& config() const { return config_; }
  int features() const { return config_.features; }
  int hop_length() const { return hop_length_; }
  int win_length() const { return win_length_; }
  int n_fft() const { return config_.n_fft; }
  int spectrum_bins() const { return config_.n_fft / 2 + 1; }

  // torch.hann_window(win_length, periodic=False) in float32, win_length values.
  const std::vector<float>& window() const { return window_; }
  // librosa.filters.mel (Slaney scale and norm) as float32, row-major [features, spectrum_bins].
  const std::vector<float>& filterbank() const { return filterbank_; }

  // Frames the reference normalises (seq_len) and frames it outputs (seq_len + 1, the last masked).
  int64_t ValidFrames(int64_t num_samples) const { return num_samples / hop_length_; }
  int64_t OutputFrames(int64_t num_samples) const { return num_samples / hop_length_ + 1; }
  // Per-feature statistics need two valid frames (the unbiased std of one frame is undefined and
  // the reference raises on CUDA), so a clip needs at least two hops of samples.
  int64_t MinSamples() const { return 2 * static_cast<int64_t>(hop_length_); }

  // The reference's features for a whole 16 kHz clip: [features, L/hop + 1], normalised over the
  // first L/hop frames, frames from L/hop on set to pad_value. Throws std::invalid_argument for
  // clips shorter than MinSamples() or holding non-finite samples.
  LogMelFeatures ComputeLogMel(std::span<const float> samples) const;

  // ln(mel + guard) before normalisation for all L/hop + 1 frames, nothing masked.
  LogMelFeatures ComputeRawLogMel(std::span<const float> samples) const;

  // Per-feature normalisation of raw frames given time-major (frame t at raw[t * features()]):
  // mean and unbiased std (+1e-5 on the std) over the first valid_frames frames, applied to all of
  // them; frames from valid_frames on become pad_value. On a finished stream's frames [0, N) with
  // valid_frames = N - 1 this is exactly ComputeLogMel of the stream's audio. On a sub-span it is
  // the same normalisation of that span (its edge frames saw the real neighbouring audio, not the
  // zero padding a separate clip would get).
  LogMelFeatures Normalize(std::span<const float> raw_frames, int64_t valid_frames) const;

  // Time-major raw frames to the [features, frames] layout, unchanged values.
  LogMelFeatures ToFeatureMajor(std::span<const float> raw_frames) const;

 private:
  friend class MelStream;

  // One mel filter's non-zero weights, which start at spectrum bin first_bin.
  struct SparseFilter {
    int first_bin = 0;
    std::vector<float> weights;
  };

  int64_t CheckedFrameCount(std::span<const float> raw_frames) const;

  MelConfig config_;
  int win_length_ = 0;
  int hop_length_ = 0;
  std::vector<float> window_;
  std::vector<float> filterbank_;
  std::vector<SparseFilter> sparse_filters_;
};

// Per-stream state: accepts samples in chunks of any size and produces raw log-mel frames (time
// major, features() floats each) as soon as their audio is complete. Frame t covers samples
// [t*hop - n_fft/2, t*hop + n_fft/2) of the stream; the frames that reach past the end of the
// audio are produced by InputFinished(), after which the stream holds L/hop + 1 frames like the
// reference. The MelFrontend must outlive the stream.
class MelStream {
 public:
  explicit MelStream(const MelFrontend& frontend);
  ~MelStream();
  MelStream(MelStream&& other) noexcept;
  MelStream& operator=(MelStream&& other) noexcept;
  MelStream(const MelStream&) = delete;
  MelStream& operator=(const MelStream&) = delete;

  // Appends count samples; returns how many new frames became complete. Throws
  // std::invalid_argument on non-finite samples (nothing is consumed then) and std::logic_error
  // after InputFinished().
  int64_t AcceptSamples(const float* samples, size_t count);
  // Ends the audio: produces the frames that need the right-hand zero padding and returns how many.
  int64_t InputFinished();
  // Back to an empty stream (keeps the allocated FFT plan).
  void reset();

  bool finished() const { return finished_; }
  int64_t samples_accepted() const { return samples_accepted_; }
  // Frames [first_frame(), end_frame()) are held; indices count from the start of the stream.
  int64_t first_frame() const { return first_frame_; }
  int64_t end_frame() const { return first_frame_ + held_frames(); }
  // Frame t's features() raw log-mel values.
  std::span<const float> Frame(int64_t t) const { return Frames(t, t + 1); }
  // Frames [begin, end) contiguous, time-major. Throws std::out_of_range outside the held frames.
  std::span<const float> Frames(int64_t begin, int64_t end) const;
  // Drops the frames before t (a long live stream keeps only what it still needs).
  void DiscardFramesBefore(int64_t t);

 private:
  int64_t held_frames() const;
  int64_t ComputeReadyFrames();
  void ComputeFrame(const float* padded_frame_start);

  const MelFrontend* frontend_;
  struct FftPlan;
  std::unique_ptr<FftPlan> fft_;
  float preemph_ = 0.0f;
  float log_guard_ = 0.0f;

  // Pre-emphasised samples of the zero-padded signal, from padded index buffer_origin_ on
  // (padded index = sample index + n_fft/2).
  std::vector<float> emphasized_;
  int64_t buffer_origin_ = 0;
  float previous_sample_ = 0.0f;
  int64_t samples_accepted_ = 0;
  int64_t next_frame_ = 0;
  bool finished_ = false;

  std::vector<float> frames_;  // time-major, frames from first_frame_ on
  int64_t first_frame_ = 0;

  // Scratch for one frame, reused.
  std::vector<float> windowed_;
  std::vector<float> power_;
};

}  // namespace eddy
