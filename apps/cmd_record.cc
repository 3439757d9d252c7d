// `eddy record`: capture from a device for a fixed time into a WAV or Ogg Opus file, through the
// same capture path (ring, downmix, resampler) the live commands use.
#include <cstdio>

#include "command.h"
#include "eddy/audio_file.h"
#include "eddy/capture.h"
#include "eddy/opus_codec.h"

namespace eddy::app {
namespace {

struct RecordOptions {
  std::string output;
  double seconds = 0;
  std::string device;
  int rate = 16000;
  std::string quality = "medium";
};

bool IsOpusPath(const std::filesystem::path& p) {
  return p.extension() == ".opus" || p.extension() == ".ogg";
}

int RunRecord(const RecordOptions& opts) {
  if (opts.rate < 1000 || opts.rate > 384000) {
    throw AudioError("--rate " + std::to_string(opts.rate) + " is outside 1000..384000");
  }
  CaptureOptions copts;
  copts.device = opts.device;
  copts.output_rate = opts.rate;
  copts.quality = ParseResampleQuality(opts.quality);
  CaptureStream capture(copts);
  std::fprintf(stderr, "recording %.1f s from '%s' (%d Hz, %d channels) -> %s at %d Hz\n",
               opts.seconds, capture.device().name.c_str(), capture.device_rate(),
               capture.device_channels(), opts.output.c_str(), opts.rate);
  const uint64_t wanted_frames = static_cast<uint64_t>(opts.seconds * capture.device_rate());
  AudioBuffer audio{opts.rate, 1, {}};
  capture.Start();
  bool device_failed = false;
  while (capture.stats().captured_frames + capture.stats().dropped_frames < wanted_frames) {
    capture.Read(audio.samples, std::chrono::milliseconds(100));
    for (const auto& e : capture.TakeEvents()) {
      std::fprintf(stderr, "eddy: %s: %s\n", AudioEventName(e.kind), e.message.c_str());
      device_failed |= e.kind == AudioEventKind::kDeviceError;
    }
    if (device_failed) break;
  }
  capture.Stop();
  while (capture.Read(audio.samples, std::chrono::milliseconds(0))) {
  }
  audio.samples.resize(
      std::min(audio.samples.size(), static_cast<size_t>(opts.seconds * opts.rate + 0.5)));
  if (IsOpusPath(opts.output)) {
    WriteOggOpus(opts.output, audio);
  } else {
    WriteWav(opts.output, audio);
  }
  const auto st = capture.stats();
  std::fprintf(stderr, "wrote %.2f s; %llu overflows (%llu frames dropped)\n",
               static_cast<double>(audio.frames()) / opts.rate,
               static_cast<unsigned long long>(st.overflows),
               static_cast<unsigned long long>(st.dropped_frames));
  return device_failed ? 1 : 0;
}

EDDY_COMMAND(
    "record", "Record from an audio device into a WAV or Ogg Opus (.opus/.ogg) file",
    [](CLI::App& cmd) -> std::function<int()> {
      auto opts = std::make_shared<RecordOptions>();
      cmd.add_option("-o,--output", opts->output, "output file (.wav, .opus or .ogg)")->required();
      cmd.add_option("-s,--seconds", opts->seconds, "how long to record")
          ->required()
          ->check(CLI::PositiveNumber);
      cmd.add_option("-d,--device", opts->device,
                     "input device: index or name substring (default: the default "
                     "input; see `eddy devices`)");
      cmd.add_option("-r,--rate", opts->rate, "sample rate of the file (mono)")
          ->capture_default_str();
      cmd.add_option("--quality", opts->quality, "resampler: best, medium, fastest or linear")
          ->capture_default_str();
      return [opts] { return RunRecord(*opts); };
    });

}  // namespace
}  // namespace eddy::app
