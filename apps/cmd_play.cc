// `eddy play`: play a WAV or Ogg Opus file through the same playback path (resampler, ring) the
// live commands use.
#include <cstdio>

#include "command.h"
#include "eddy/audio_file.h"
#include "eddy/playback.h"

namespace eddy::app {
namespace {

struct PlayOptions {
  std::string input;
  std::string device;
  std::string quality = "medium";
};

int RunPlay(const PlayOptions& opts) {
  const AudioBuffer audio = ReadAudioFile(opts.input);
  const std::vector<float> mono = Downmix(audio);
  PlaybackOptions popts;
  popts.device = opts.device;
  popts.input_rate = audio.sample_rate;
  popts.quality = ParseResampleQuality(opts.quality);
  PlaybackStream playback(popts);
  std::fprintf(stderr, "playing %.2f s of %s on '%s' (%d Hz, %d channels)\n",
               static_cast<double>(mono.size()) / audio.sample_rate, opts.input.c_str(),
               playback.device().name.c_str(), playback.device_rate(), playback.device_channels());
  const size_t chunk = static_cast<size_t>(audio.sample_rate) / 10;
  for (size_t at = 0; at < mono.size(); at += chunk) {
    playback.Write(std::span<const float>(mono).subspan(at, std::min(chunk, mono.size() - at)));
  }
  playback.Drain();
  for (const auto& e : playback.TakeEvents()) {
    std::fprintf(stderr, "eddy: %s: %s\n", AudioEventName(e.kind), e.message.c_str());
  }
  return 0;
}

EDDY_COMMAND("play", "Play a WAV or Ogg Opus file on an audio device",
             [](CLI::App& cmd) -> std::function<int()> {
               auto opts = std::make_shared<PlayOptions>();
               cmd.add_option("file", opts->input, "audio file (WAV or Ogg Opus)")->required();
               cmd.add_option("-d,--device", opts->device,
                              "output device: index or name substring (default: the default "
                              "output; see `eddy devices`)");
               cmd.add_option("--quality", opts->quality,
                              "resampler: best, medium, fastest or linear")
                   ->capture_default_str();
               return [opts] { return RunPlay(*opts); };
             });

}  // namespace
}  // namespace eddy::app
