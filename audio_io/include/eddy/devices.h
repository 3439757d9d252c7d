// Audio devices through PortAudio: listing, and choosing one by index or name substring.
#pragma once

#include <string>
#include <vector>

namespace eddy {

struct AudioDevice {
  int index = -1;
  std::string name;
  std::string host_api;
  int max_input_channels = 0;
  int max_output_channels = 0;
  double default_sample_rate = 0;
  bool is_default_input = false;
  bool is_default_output = false;
};

enum class DeviceDirection { kInput, kOutput };

// Keeps PortAudio initialized while alive (PortAudio counts nested initializations). The noise
// ALSA prints while probing devices is kept off stderr.
class PortAudioSession {
 public:
  PortAudioSession();
  ~PortAudioSession();
  PortAudioSession(const PortAudioSession&) = delete;
  PortAudioSession& operator=(const PortAudioSession&) = delete;
};

std::vector<AudioDevice> ListDevices();

// `spec`: empty for the default device of that direction, a number for an index, otherwise a
// case-insensitive name substring (an exact name wins over substrings). Throws AudioError that
// lists the candidates when nothing, or more than one device, matches.
AudioDevice FindDevice(const std::string& spec, DeviceDirection direction);

// Channels a stream opens: the device's count, capped at `cap` (ALSA plugin devices such as
// "pulse" report 32 virtual channels).
int StreamChannels(const AudioDevice& device, DeviceDirection direction, int requested,
                   int cap = 2);

}  // namespace eddy
