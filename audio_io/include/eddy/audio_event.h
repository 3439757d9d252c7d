// Events that live audio streams surface instead of failing silently.
#pragma once

#include <cstdint>
#include <string>

namespace eddy {

enum class AudioEventKind {
  kOverflow,     // capture: frames were dropped because the consumer fell behind
  kUnderflow,    // playback: the device needed audio before it was queued (silence was played)
  kDeviceError,  // the stream stopped on its own (device gone, server died); the stream has ended
};

struct AudioEvent {
  AudioEventKind kind;
  std::string message;
  uint64_t frames = 0;  // frames dropped / filled with silence; 0 for device errors
};

const char* AudioEventName(AudioEventKind kind);

}  // namespace eddy
