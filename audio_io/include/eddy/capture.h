// Live capture: a PortAudio input stream at the device's native rate and channel count whose
// callback only copies into a lock-free ring; the consumer side downmixes and resamples (by
// default to the 16 kHz mono the front end wants).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eddy/audio_event.h"
#include "eddy/devices.h"
#include "eddy/resampler.h"

namespace eddy {

struct CaptureOptions {
  std::string device;       // see FindDevice; empty = default input
  int output_rate = 16000;  // rate of what Read delivers (mono)
  int channels = 0;         // 0 = the device's count, capped at 2
  ResampleQuality quality = ResampleQuality::kSincMedium;
  // Latency asked of the host API; 0 = the device's default high latency. ALSA's pulse plugin
  // underruns with its 35 ms default, hence 100 ms.
  double latency_seconds = 0.1;
  double ring_seconds = 4.0;  // how far the consumer may fall behind before frames are dropped
};

struct CaptureStats {
  uint64_t captured_frames = 0;   // device frames that entered the ring
  uint64_t overflows = 0;         // callbacks that found the ring full
  uint64_t dropped_frames = 0;    // device frames lost to those overflows
  uint64_t device_overflows = 0;  // callbacks the host API flagged as having lost input
};

class CaptureStream {
 public:
  // Opens the device (throws AudioError naming the device on failure); call Start() to run it.
  explicit CaptureStream(const CaptureOptions& options);
  ~CaptureStream();
  CaptureStream(const CaptureStream&) = delete;
  CaptureStream& operator=(const CaptureStream&) = delete;

  void Start();
  // Stops the device; audio already captured stays readable.
  void Stop();

  // Waits up to `timeout` for audio, converts everything captured so far and appends it (mono,
  // output_rate) to `out`. Returns false once the stream has ended (Stop() or a device error)
  // and everything it captured has been delivered (the resampler tail included).
  bool Read(std::vector<float>& out, std::chrono::milliseconds timeout);

  CaptureStats stats() const;
  // Overflow and device-error events since the last call.
  std::vector<AudioEvent> TakeEvents();
  // Steady-clock times (ns) of the callbacks since the last call, for jitter measurements; only
  // the latest ~4096 are kept between calls.
  void TakeCallbackTimes(std::vector<int64_t>& out_ns);

  const AudioDevice& device() const;
  int device_rate() const;
  int device_channels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy
