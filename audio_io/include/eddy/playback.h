// Live playback: mono audio (by default the model's 24 kHz) resampled on the caller's thread to
// the device's native rate, queued in a lock-free ring that the PortAudio callback copies from.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eddy/audio_event.h"
#include "eddy/devices.h"
#include "eddy/resampler.h"

namespace eddy {

struct PlaybackOptions {
  std::string device;      // see FindDevice; empty = default output
  int input_rate = 24000;  // rate of what Write takes (mono)
  int channels = 0;        // 0 = the device's count, capped at 2 (mono is copied to each)
  ResampleQuality quality = ResampleQuality::kSincMedium;
  // Latency asked of the host API; 0 = the device's default high latency. ALSA's pulse plugin
  // underruns with its 35 ms default, hence 100 ms.
  double latency_seconds = 0.1;
  double ring_seconds = 2.0;
  double prefill_seconds = 0.1;  // queued before the device starts, so it does not start starved
  std::chrono::milliseconds write_timeout{5000};  // Write gives up when the device stops taking
};

struct PlaybackStats {
  uint64_t played_frames = 0;      // device frames taken from the ring
  uint64_t underflows = 0;         // callbacks that found the ring short before Drain()
  uint64_t underflow_frames = 0;   // device frames of silence those callbacks played
  uint64_t device_underflows = 0;  // callbacks the host API flagged as having played silence
};

class PlaybackStream {
 public:
  explicit PlaybackStream(const PlaybackOptions& options);
  ~PlaybackStream();
  PlaybackStream(const PlaybackStream&) = delete;
  PlaybackStream& operator=(const PlaybackStream&) = delete;

  // Resamples and queues `mono`, blocking while the ring is full. Throws AudioError if the
  // device stopped (a kDeviceError event is recorded too) or takes nothing for write_timeout.
  void Write(std::span<const float> mono);
  // Plays out everything written (the resampler tail included), then stops the device.
  void Drain();

  PlaybackStats stats() const;
  std::vector<AudioEvent> TakeEvents();

  const AudioDevice& device() const;
  int device_rate() const;
  int device_channels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy
