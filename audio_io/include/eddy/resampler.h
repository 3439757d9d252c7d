// Streaming sample-rate conversion (libsamplerate) that keeps its filter state between calls, so
// that converting a signal in chunks of any size gives the same result as converting it at once.
#pragma once

#include <span>
#include <string>
#include <vector>

struct SRC_STATE_tag;

namespace eddy {

enum class ResampleQuality { kSincBest, kSincMedium, kSincFastest, kLinear };

// "best", "medium", "fastest", "linear"; throws AudioError listing them otherwise.
ResampleQuality ParseResampleQuality(const std::string& name);

class StreamResampler {
 public:
  StreamResampler(int from_rate, int to_rate, int channels = 1,
                  ResampleQuality quality = ResampleQuality::kSincMedium);
  ~StreamResampler();
  StreamResampler(StreamResampler&& other) noexcept;
  StreamResampler& operator=(StreamResampler&& other) noexcept;
  StreamResampler(const StreamResampler&) = delete;
  StreamResampler& operator=(const StreamResampler&) = delete;

  // Converts interleaved frames and appends the output available so far to `out`.
  void Process(std::span<const float> in, std::vector<float>& out);
  std::vector<float> Process(std::span<const float> in);
  // End of input: appends what the filter still holds, then resets for a new signal.
  void Flush(std::vector<float>& out);
  // Forgets all history.
  void Reset();

  int from_rate() const { return from_rate_; }
  int to_rate() const { return to_rate_; }
  int channels() const { return channels_; }

 private:
  void Run(std::span<const float> in, bool end_of_input, std::vector<float>& out);

  int from_rate_, to_rate_, channels_;
  SRC_STATE_tag* state_ = nullptr;  // null when the rates are equal (a plain copy)
};

}  // namespace eddy
