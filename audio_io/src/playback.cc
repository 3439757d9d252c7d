#include "eddy/playback.h"

#include <portaudio.h>

#include <array>
#include <atomic>
#include <cmath>
#include <thread>
#include <utility>

#include "eddy/audio_file.h"
#include "eddy/spsc_ring.h"

namespace eddy {

struct PlaybackStream::Impl {
  PortAudioSession session;
  AudioDevice device;
  int rate = 0;
  int channels = 0;
  PaStream* stream = nullptr;
  SpscRing<float> ring;             // mono at the device rate
  std::array<float, 1024> chunk{};  // callback scratch, preallocated
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> played_frames{0}, underflows{0}, underflow_frames{0}, device_underflows{0};
  std::atomic<bool> finished{false};

  // Producer side.
  StreamResampler resampler;
  std::vector<float> converted;
  std::vector<AudioEvent> events;
  uint64_t reported_underflow_frames = 0;
  size_t prefill_frames = 0;
  std::chrono::milliseconds write_timeout;
  bool started = false, failed = false, drained = false;

  Impl(const PlaybackOptions& o, AudioDevice d, int ch)
      : device(std::move(d)),
        rate(static_cast<int>(std::lround(device.default_sample_rate))),
        channels(ch),
        ring(static_cast<size_t>(std::max(1.0, o.ring_seconds * rate))),
        resampler(o.input_rate, rate, 1, o.quality),
        prefill_frames(static_cast<size_t>(std::max(0.0, o.prefill_seconds) * rate)),
        write_timeout(o.write_timeout) {
    prefill_frames = std::min(prefill_frames, ring.capacity() / 2);
  }

  // Real-time: copies the mono ring into every channel, fills silence when short.
  static int Callback(const void*, void* output, unsigned long frames,
                      const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags flags, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (flags & paOutputUnderflow) self->device_underflows.fetch_add(1, std::memory_order_relaxed);
    float* out = static_cast<float*>(output);
    const int ch = self->channels;
    unsigned long done = 0;
    while (done < frames) {
      const size_t want = std::min<size_t>(frames - done, self->chunk.size());
      const size_t got = self->ring.Read(self->chunk.data(), want);
      for (size_t f = 0; f < got; ++f) {
        for (int c = 0; c < ch; ++c) out[(done + f) * ch + c] = self->chunk[f];
      }
      done += got;
      if (got < want) break;
    }
    self->played_frames.fetch_add(done, std::memory_order_relaxed);
    if (done < frames) {
      std::fill(out + done * ch, out + frames * ch, 0.0f);
      if (!self->draining.load(std::memory_order_acquire)) {
        self->underflows.fetch_add(1, std::memory_order_relaxed);
        self->underflow_frames.fetch_add(frames - done, std::memory_order_relaxed);
      }
    }
    return paContinue;
  }
  static void Finished(void* user) {
    static_cast<Impl*>(user)->finished.store(true, std::memory_order_release);
  }

  void ReportUnderflows() {
    const uint64_t n = underflow_frames.load(std::memory_order_relaxed);
    if (n > reported_underflow_frames) {
      events.push_back({AudioEventKind::kUnderflow,
                        "playback ran short: " + std::to_string(n - reported_underflow_frames) +
                            " frames of silence played on '" + device.name + "'",
                        n - reported_underflow_frames});
      reported_underflow_frames = n;
    }
  }

  [[noreturn]] void Fail(const std::string& why) {
    failed = true;
    events.push_back({AudioEventKind::kDeviceError, why, 0});
    throw AudioError(why);
  }

  void CheckDevice() {
    if (!started) return;
    const PaError active = Pa_IsStreamActive(stream);
    if (active == 1 && !finished.load(std::memory_order_acquire)) return;
    Fail("playback device '" + device.name +
         "' failed: " + (active < 0 ? Pa_GetErrorText(active) : "the stream stopped") + " after " +
         std::to_string(played_frames.load()) + " frames");
  }

  void StartDevice() {
    const PaError err = Pa_StartStream(stream);
    if (err != paNoError) {
      Fail("cannot start playback on '" + device.name + "': " + Pa_GetErrorText(err));
    }
    started = true;
  }

  // Queues `converted`, starting the device once the prefill is there.
  void Queue() {
    size_t done = 0;
    auto last_progress = std::chrono::steady_clock::now();
    while (done < converted.size()) {
      const size_t n = ring.Write(converted.data() + done, converted.size() - done);
      done += n;
      if (!started && ring.readable() >= prefill_frames) StartDevice();
      if (done == converted.size()) break;
      if (n > 0) last_progress = std::chrono::steady_clock::now();
      if (!started) StartDevice();  // ring full before the prefill: start regardless
      CheckDevice();
      if (std::chrono::steady_clock::now() - last_progress > write_timeout) {
        Fail("playback device '" + device.name + "' took no audio for " +
             std::to_string(write_timeout.count()) + " ms");
      }
      ring.WaitWritable(std::min<size_t>(converted.size() - done, ring.capacity() / 4),
                        std::chrono::milliseconds(20));
    }
    converted.clear();
  }
};

PlaybackStream::PlaybackStream(const PlaybackOptions& options) {
  if (options.input_rate <= 0) throw AudioError("playback: invalid input rate");
  PortAudioSession session;
  const AudioDevice device = FindDevice(options.device, DeviceDirection::kOutput);
  const int channels = StreamChannels(device, DeviceDirection::kOutput, options.channels);
  impl_ = std::make_unique<Impl>(options, device, channels);
  PaStreamParameters out{};
  out.device = device.index;
  out.channelCount = channels;
  out.sampleFormat = paFloat32;
  out.suggestedLatency = options.latency_seconds > 0
                             ? options.latency_seconds
                             : Pa_GetDeviceInfo(device.index)->defaultHighOutputLatency;
  const PaError err =
      Pa_OpenStream(&impl_->stream, nullptr, &out, impl_->rate, paFramesPerBufferUnspecified,
                    paNoFlag, &Impl::Callback, impl_.get());
  if (err != paNoError) {
    throw AudioError("cannot open playback device '" + device.name + "' at " +
                     std::to_string(impl_->rate) + " Hz, " + std::to_string(channels) +
                     " channels: " + Pa_GetErrorText(err));
  }
  Pa_SetStreamFinishedCallback(impl_->stream, &Impl::Finished);
}

PlaybackStream::~PlaybackStream() {
  if (impl_ && impl_->stream != nullptr) {
    Pa_AbortStream(impl_->stream);
    Pa_CloseStream(impl_->stream);
  }
}

void PlaybackStream::Write(std::span<const float> mono) {
  Impl& s = *impl_;
  if (s.failed) throw AudioError("playback device '" + s.device.name + "' has failed");
  if (s.drained) throw AudioError("playback: Write after Drain");
  s.resampler.Process(mono, s.converted);
  s.Queue();
  s.ReportUnderflows();
}

void PlaybackStream::Drain() {
  Impl& s = *impl_;
  if (s.failed || s.drained) return;
  s.resampler.Flush(s.converted);
  s.Queue();
  s.draining.store(true, std::memory_order_release);
  if (!s.started && s.ring.readable() > 0) s.StartDevice();
  if (s.started) {
    // Wait for the ring to empty at the pace the device takes it.
    const double seconds = static_cast<double>(s.ring.readable()) / s.rate;
    const auto limit = std::chrono::duration<double>(seconds) + s.write_timeout;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (s.ring.readable() > 0) {
      s.CheckDevice();
      if (std::chrono::steady_clock::now() > deadline) {
        s.Fail("playback device '" + s.device.name + "' stopped taking audio while draining");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Pa_StopStream returns after the buffers already handed to the host have played.
    Pa_StopStream(s.stream);
  }
  s.drained = true;
  s.ReportUnderflows();
}

PlaybackStats PlaybackStream::stats() const {
  PlaybackStats st;
  st.played_frames = impl_->played_frames.load();
  st.underflows = impl_->underflows.load();
  st.underflow_frames = impl_->underflow_frames.load();
  st.device_underflows = impl_->device_underflows.load();
  return st;
}

std::vector<AudioEvent> PlaybackStream::TakeEvents() {
  impl_->ReportUnderflows();
  return std::exchange(impl_->events, {});
}

const AudioDevice& PlaybackStream::device() const {
  return impl_->device;
}
int PlaybackStream::device_rate() const {
  return impl_->rate;
}
int PlaybackStream::device_channels() const {
  return impl_->channels;
}

}  // namespace eddy
