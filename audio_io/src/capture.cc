#include "eddy/capture.h"

#include <portaudio.h>

#include <atomic>
#include <cmath>
#include <utility>

#include "eddy/audio_file.h"
#include "eddy/spsc_ring.h"

namespace eddy {

namespace {

constexpr size_t kCallbackTimeSlots = 4096;

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct CaptureStream::Impl {
  PortAudioSession session;
  AudioDevice device;
  int rate = 0;
  int channels = 0;
  PaStream* stream = nullptr;
  SpscRing<float> ring;
  SpscRing<int64_t> callback_times{kCallbackTimeSlots};
  // Written by the callback only.
  std::atomic<uint64_t> captured_frames{0}, overflows{0}, dropped_frames{0}, device_overflows{0};
  std::atomic<bool> finished{false};  // the callback returned paComplete or PortAudio finished

  // Consumer side.
  StreamResampler resampler;
  std::vector<float> interleaved, mono;
  std::vector<AudioEvent> events;
  uint64_t reported_dropped = 0;
  bool started = false, stop_requested = false, ended = false, flushed = false;

  Impl(const CaptureOptions& o, AudioDevice d, int ch)
      : device(std::move(d)),
        rate(static_cast<int>(std::lround(device.default_sample_rate))),
        channels(ch),
        ring(static_cast<size_t>(std::max(1.0, o.ring_seconds * rate)) * ch),
        resampler(rate, o.output_rate, 1, o.quality) {}

  // Real-time: copies and counts, nothing else.
  static int Callback(const void* input, void*, unsigned long frames,
                      const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags flags, void* user) {
    auto* self = static_cast<Impl*>(user);
    const int64_t now = SteadyNowNs();
    self->callback_times.Write(&now, 1);
    if (flags & paInputOverflow) self->device_overflows.fetch_add(1, std::memory_order_relaxed);
    if (input == nullptr) return paContinue;
    const size_t ch = static_cast<size_t>(self->channels);
    const size_t fit = std::min<size_t>(frames, self->ring.writable() / ch);
    self->ring.Write(static_cast<const float*>(input), fit * ch);
    self->captured_frames.fetch_add(fit, std::memory_order_relaxed);
    if (fit < frames) {
      self->overflows.fetch_add(1, std::memory_order_relaxed);
      self->dropped_frames.fetch_add(frames - fit, std::memory_order_relaxed);
    }
    return paContinue;
  }
  static void Finished(void* user) {
    static_cast<Impl*>(user)->finished.store(true, std::memory_order_release);
  }

  void ReportOverflows() {
    const uint64_t dropped = dropped_frames.load(std::memory_order_relaxed);
    if (dropped > reported_dropped) {
      events.push_back({AudioEventKind::kOverflow,
                        "capture ring full: " + std::to_string(dropped - reported_dropped) +
                            " frames from '" + device.name + "' dropped (consumer too slow)",
                        dropped - reported_dropped});
      reported_dropped = dropped;
    }
  }

  // Detects a stream that stopped without being asked to.
  void CheckDevice() {
    if (!started || stop_requested || ended) return;
    const PaError active = Pa_IsStreamActive(stream);
    if (active == 1 && !finished.load(std::memory_order_acquire)) return;
    std::string why = active < 0 ? Pa_GetErrorText(active) : "the stream stopped";
    events.push_back({AudioEventKind::kDeviceError,
                      "capture device '" + device.name + "' failed: " + why + " after " +
                          std::to_string(captured_frames.load()) +
                          " frames; the audio captured so far is kept",
                      0});
    ended = true;
  }

  void Convert(std::vector<float>& out) {
    const size_t samples = ring.readable();
    const size_t frames = samples / channels;
    interleaved.resize(frames * channels);
    ring.Read(interleaved.data(), interleaved.size());
    mono.resize(frames);
    for (size_t f = 0; f < frames; ++f) {
      float sum = 0;
      for (int c = 0; c < channels; ++c) sum += interleaved[f * channels + c];
      mono[f] = sum / channels;
    }
    resampler.Process(mono, out);
  }
};

CaptureStream::CaptureStream(const CaptureOptions& options) {
  if (options.output_rate <= 0) throw AudioError("capture: invalid output rate");
  PortAudioSession session;  // keeps the device list valid between FindDevice and the open
  const AudioDevice device = FindDevice(options.device, DeviceDirection::kInput);
  const int channels = StreamChannels(device, DeviceDirection::kInput, options.channels);
  impl_ = std::make_unique<Impl>(options, device, channels);
  PaStreamParameters in{};
  in.device = device.index;
  in.channelCount = channels;
  in.sampleFormat = paFloat32;
  in.suggestedLatency = options.latency_seconds > 0
                            ? options.latency_seconds
                            : Pa_GetDeviceInfo(device.index)->defaultHighInputLatency;
  const PaError err =
      Pa_OpenStream(&impl_->stream, &in, nullptr, impl_->rate, paFramesPerBufferUnspecified,
                    paNoFlag, &Impl::Callback, impl_.get());
  if (err != paNoError) {
    throw AudioError("cannot open capture device '" + device.name + "' at " +
                     std::to_string(impl_->rate) + " Hz, " + std::to_string(channels) +
                     " channels: " + Pa_GetErrorText(err));
  }
  Pa_SetStreamFinishedCallback(impl_->stream, &Impl::Finished);
}

CaptureStream::~CaptureStream() {
  if (impl_ && impl_->stream != nullptr) {
    Pa_AbortStream(impl_->stream);
    Pa_CloseStream(impl_->stream);
  }
}

void CaptureStream::Start() {
  if (impl_->started) throw AudioError("capture: stream already started");
  const PaError err = Pa_StartStream(impl_->stream);
  if (err != paNoError) {
    throw AudioError("cannot start capture on '" + impl_->device.name +
                     "': " + Pa_GetErrorText(err));
  }
  impl_->started = true;
}

void CaptureStream::Stop() {
  if (!impl_->started || impl_->stop_requested) return;
  impl_->stop_requested = true;
  Pa_StopStream(impl_->stream);
  impl_->ended = true;
}

bool CaptureStream::Read(std::vector<float>& out, std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  if (s.flushed) return false;
  if (!s.ended) {
    // Wait in slices so that a device that stops is noticed before the timeout ends.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (s.ring.readable() < static_cast<size_t>(s.channels)) {
      s.CheckDevice();
      if (s.ended) break;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      s.ring.WaitReadable(s.channels, std::min<std::chrono::nanoseconds>(
                                          std::chrono::milliseconds(20), deadline - now));
    }
  }
  s.ReportOverflows();
  s.Convert(out);
  if (s.ended && s.ring.readable() < static_cast<size_t>(s.channels)) {
    s.resampler.Flush(out);
    s.flushed = true;
  }
  return true;
}

CaptureStats CaptureStream::stats() const {
  CaptureStats st;
  st.captured_frames = impl_->captured_frames.load();
  st.overflows = impl_->overflows.load();
  st.dropped_frames = impl_->dropped_frames.load();
  st.device_overflows = impl_->device_overflows.load();
  return st;
}

std::vector<AudioEvent> CaptureStream::TakeEvents() {
  impl_->ReportOverflows();
  impl_->CheckDevice();
  return std::exchange(impl_->events, {});
}

void CaptureStream::TakeCallbackTimes(std::vector<int64_t>& out_ns) {
  const size_t n = impl_->callback_times.readable();
  const size_t old = out_ns.size();
  out_ns.resize(old + n);
  out_ns.resize(old + impl_->callback_times.Read(out_ns.data() + old, n));
}

const AudioDevice& CaptureStream::device() const {
  return impl_->device;
}
int CaptureStream::device_rate() const {
  return impl_->rate;
}
int CaptureStream::device_channels() const {
  return impl_->channels;
}

}  // namespace eddy
