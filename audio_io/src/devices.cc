#include "eddy/devices.h"

#include <fcntl.h>
#include <portaudio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "eddy/audio_event.h"
#include "eddy/audio_file.h"

namespace eddy {

namespace {

// ALSA prints a page of "Unknown PCM" lines while PortAudio probes devices; they say nothing
// about the devices eddy can use, so stderr is pointed at /dev/null for the probe.
class QuietStderr {
 public:
  QuietStderr() {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) dup2(null, STDERR_FILENO);
    if (null >= 0) close(null);
  }
  ~QuietStderr() {
    if (saved_ >= 0) {
      dup2(saved_, STDERR_FILENO);
      close(saved_);
    }
  }

 private:
  int saved_ = -1;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool Fits(const AudioDevice& d, DeviceDirection direction) {
  return direction == DeviceDirection::kInput ? d.max_input_channels > 0
                                              : d.max_output_channels > 0;
}

std::string DescribeCandidates(const std::vector<AudioDevice>& devices, DeviceDirection direction) {
  std::string s;
  for (const auto& d : devices) {
    if (!Fits(d, direction)) continue;
    s += "\n  " + std::to_string(d.index) + ": " + d.name + " (" + d.host_api + ")";
  }
  return s.empty() ? " (none)" : s;
}

}  // namespace

const char* AudioEventName(AudioEventKind kind) {
  switch (kind) {
    case AudioEventKind::kOverflow:
      return "overflow";
    case AudioEventKind::kUnderflow:
      return "underflow";
    case AudioEventKind::kDeviceError:
      return "device-error";
  }
  return "unknown";
}

PortAudioSession::PortAudioSession() {
  PaError err;
  {
    QuietStderr quiet;
    err = Pa_Initialize();
  }
  if (err != paNoError) {
    throw AudioError(std::string("cannot initialize PortAudio: ") + Pa_GetErrorText(err));
  }
}

PortAudioSession::~PortAudioSession() {
  Pa_Terminate();
}

std::vector<AudioDevice> ListDevices() {
  PortAudioSession session;
  const int count = Pa_GetDeviceCount();
  if (count < 0) {
    throw AudioError(std::string("cannot list audio devices: ") + Pa_GetErrorText(count));
  }
  std::vector<AudioDevice> devices;
  for (int i = 0; i < count; ++i) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
    if (info == nullptr) continue;
    AudioDevice d;
    d.index = i;
    d.name = info->name != nullptr ? info->name : "";
    const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
    d.host_api = api != nullptr && api->name != nullptr ? api->name : "?";
    d.max_input_channels = info->maxInputChannels;
    d.max_output_channels = info->maxOutputChannels;
    d.default_sample_rate = info->defaultSampleRate;
    d.is_default_input = i == Pa_GetDefaultInputDevice();
    d.is_default_output = i == Pa_GetDefaultOutputDevice();
    devices.push_back(std::move(d));
  }
  return devices;
}

AudioDevice FindDevice(const std::string& spec, DeviceDirection direction) {
  const auto devices = ListDevices();
  const char* what = direction == DeviceDirection::kInput ? "input" : "output";
  if (spec.empty()) {
    for (const auto& d : devices) {
      if (direction == DeviceDirection::kInput ? d.is_default_input : d.is_default_output) {
        return d;
      }
    }
    throw AudioError(std::string("no default audio ") + what + " device; " + what +
                     " devices:" + DescribeCandidates(devices, direction));
  }
  if (std::all_of(spec.begin(), spec.end(), [](unsigned char c) { return std::isdigit(c); })) {
    const int index = std::stoi(spec);
    for (const auto& d : devices) {
      if (d.index == index) {
        if (Fits(d, direction)) return d;
        throw AudioError("audio device " + spec + " (" + d.name + ") has no " + what +
                         " channels; " + what +
                         " devices:" + DescribeCandidates(devices, direction));
      }
    }
    throw AudioError("no audio device with index " + spec + "; " + what +
                     " devices:" + DescribeCandidates(devices, direction));
  }
  std::vector<AudioDevice> matches;
  const std::string needle = Lower(spec);
  for (const auto& d : devices) {
    if (!Fits(d, direction)) continue;
    if (Lower(d.name) == needle) return d;
    if (Lower(d.name).find(needle) != std::string::npos) matches.push_back(d);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.empty()) {
    throw AudioError("no audio " + std::string(what) + " device matches '" + spec + "'; " + what +
                     " devices:" + DescribeCandidates(devices, direction));
  }
  throw AudioError(
      "'" + spec + "' matches several " + what +
      " devices; give an index or a longer name:" + DescribeCandidates(matches, direction));
}

int StreamChannels(const AudioDevice& device, DeviceDirection direction, int requested, int cap) {
  const int available =
      direction == DeviceDirection::kInput ? device.max_input_channels : device.max_output_channels;
  if (requested > available) {
    throw AudioError("audio device '" + device.name + "' has " + std::to_string(available) +
                     " channels, " + std::to_string(requested) + " requested");
  }
  if (requested > 0) return requested;
  return std::min(available, cap);
}

}  // namespace eddy
