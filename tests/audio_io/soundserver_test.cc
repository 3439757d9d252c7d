// Capture and playback proven through a real sound server: run under
// scripts/with-sound-server.sh (CTest does), which provides a PulseAudio daemon whose default
// input `mic` carries what is played into the sink `micsrc` and whose default output `spk` can be
// recorded from `spk.monitor`. Speech comes from espeak-ng. Missing tools or a missing daemon
// make these tests fail, never skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "eddy/audio_file.h"
#include "eddy/capture.h"
#include "eddy/devices.h"
#include "eddy/playback.h"
#include "npy.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A child process started with fork/exec, so that it can be stopped by its own pid.
class Child {
 public:
  Child(std::vector<std::string> argv, const fs::path& stdout_path = {}) {
    pid_ = fork();
    if (pid_ == 0) {
      if (!stdout_path.empty()) {
        const int fd = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) _exit(126);
        close(fd);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~Child() {
    if (pid_ > 0) Stop(SIGKILL);
  }
  // Returns the exit status (128 + signal for a signalled child).
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  int Stop(int signal) {
    kill(pid_, signal);
    return Wait();
  }

 private:
  pid_t pid_ = -1;
};

int RunCommand(std::vector<std::string> argv) {
  return Child(std::move(argv)).Wait();
}

class SoundServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("XDG_RUNTIME_DIR"), nullptr)
        << "run under scripts/with-sound-server.sh (ctest does)";
    ASSERT_EQ(std::system("pactl info >/dev/null"), 0) << "no PulseAudio daemon answers; run under "
                                                          "scripts/with-sound-server.sh";
    dir_ = fs::temp_directory_path() / ("eddy_soundserver_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // espeak-ng speech as mono float at its own rate (22050 Hz).
  AudioBuffer Speech() {
    const fs::path wav = dir_ / "speech.wav";
    const int rc = RunCommand({"espeak-ng", "-w", wav.string(),
                               "The quick brown fox jumps over the lazy dog near the river bank."});
    EXPECT_EQ(rc, 0) << "espeak-ng failed (scripts/setup.sh installs it)";
    AudioBuffer speech = ReadWav(wav);
    speech.samples = Downmix(speech);
    speech.channels = 1;
    return speech;
  }

  fs::path dir_;
};

// Polls `done` until it holds or `limit` passes. A stream's first audio can take ~2 s to arrive
// from the idle null sink, so the tests wait for events rather than sleeping fixed times.
template <typename Done>
bool WaitFor(Done done, std::chrono::seconds limit = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

struct Alignment {
  size_t lag = 0;
  double peak = 0;  // normalized cross-correlation at the lag
};

double NormalizedDot(const std::vector<float>& ref, const std::vector<float>& got, size_t lag) {
  double dot = 0, rr = 0, gg = 0;
  for (size_t i = 0; i < ref.size() && i + lag < got.size(); ++i) {
    dot += double(ref[i]) * got[i + lag];
    rr += double(ref[i]) * ref[i];
    gg += double(got[i + lag]) * got[i + lag];
  }
  return rr > 0 && gg > 0 ? dot / std::sqrt(rr * gg) : 0;
}

// Where `ref` sits inside `got`: a search over every lag on a 4x decimated copy, then refined at
// full rate around the coarse peak.
Alignment Align(const std::vector<float>& ref, const std::vector<float>& got) {
  const auto decimate = [](const std::vector<float>& v) {
    std::vector<float> d(v.size() / 4);
    for (size_t i = 0; i < d.size(); ++i)
      d[i] = v[4 * i] + v[4 * i + 1] + v[4 * i + 2] + v[4 * i + 3];
    return d;
  };
  const auto ref4 = decimate(ref), got4 = decimate(got);
  Alignment coarse;
  for (size_t lag = 0; lag + ref4.size() <= got4.size(); ++lag) {
    const double p = NormalizedDot(ref4, got4, lag);
    if (p > coarse.peak) coarse = {lag, p};
  }
  Alignment best;
  const size_t center = coarse.lag * 4;
  for (size_t lag = center >= 16 ? center - 16 : 0; lag <= center + 16; ++lag) {
    if (lag + ref.size() > got.size()) break;
    const double p = NormalizedDot(ref, got, lag);
    if (p > best.peak) best = {lag, p};
  }
  return best;
}

TEST_F(SoundServer, ListsThePulseDevicesAndNamesCandidatesOnBadNames) {
  const auto devices = ListDevices();
  bool pulse = false;
  for (const auto& d : devices) pulse |= d.name == "pulse" && d.max_input_channels > 0;
  EXPECT_TRUE(pulse) << "PortAudio does not see the ALSA 'pulse' device";
  EXPECT_EQ(FindDevice("pulse", DeviceDirection::kInput).name, "pulse");
  EXPECT_GT(FindDevice("", DeviceDirection::kOutput).max_output_channels, 0);
  try {
    FindDevice("no-such-device", DeviceDirection::kInput);
    FAIL();
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("pulse"), std::string::npos) << e.what();
  }
  EXPECT_THROW(FindDevice("99999", DeviceDirection::kOutput), AudioError);
}

// Speech played into the virtual microphone is captured at the device rate, resampled to 16 kHz
// and must match the source: normalized cross-correlation peak >= 0.95, nothing dropped.
TEST_F(SoundServer, CapturedSpeechMatchesTheSource) {
  const AudioBuffer speech = Speech();
  const fs::path wav = dir_ / "speech16.wav";
  WriteWav(wav, speech, WavEncoding::kPcm16);
  const auto reference = Resample(speech.samples, speech.sample_rate, 16000);

  CaptureOptions options;  // default input (the virtual microphone), 16 kHz mono out
  CaptureStream capture(options);
  std::printf("capturing from '%s' at %d Hz, %d channels\n", capture.device().name.c_str(),
              capture.device_rate(), capture.device_channels());
  std::vector<float> captured;
  capture.Start();
  const auto read_for = [&](milliseconds span) {
    const auto end = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < end) capture.Read(captured, milliseconds(50));
  };
  // The speech starts once the stream delivers (its first audio can take ~2 s to arrive).
  ASSERT_TRUE(WaitFor([&] {
    capture.Read(captured, milliseconds(10));
    return captured.size() > 4800u;
  })) << "no audio arrived";
  std::thread player([&] { EXPECT_EQ(RunCommand({"paplay", "-d", "micsrc", wav.string()}), 0); });
  const auto speech_ms = milliseconds(1000 * speech.frames() / speech.sample_rate);
  read_for(speech_ms + milliseconds(300));
  player.join();
  read_for(milliseconds(700));
  capture.Stop();
  while (capture.Read(captured, milliseconds(0))) {
  }

  const CaptureStats stats = capture.stats();
  EXPECT_EQ(stats.overflows, 0u);
  EXPECT_EQ(stats.dropped_frames, 0u);
  for (const auto& e : capture.TakeEvents())
    ADD_FAILURE() << AudioEventName(e.kind) << ": " << e.message;
  // Every device frame captured came out, resampled.
  EXPECT_NEAR(static_cast<double>(captured.size()),
              stats.captured_frames * 16000.0 / capture.device_rate(), 4.0);
  ASSERT_GT(captured.size(), reference.size());
  const Alignment a = Align(reference, captured);
  std::printf("captured %.2f s, speech at %.3f s, correlation peak %.4f\n",
              captured.size() / 16000.0, a.lag / 16000.0, a.peak);
  EXPECT_GE(a.peak, 0.95);
}

// Speech played by PlaybackStream (24 kHz in) on the default output is recorded back from the
// sink monitor and must match likewise, with no underflow while it played.
TEST_F(SoundServer, PlayedSpeechMatchesWhatTheSinkReceived) {
  const AudioBuffer speech = Speech();
  const auto speech24 = Resample(speech.samples, speech.sample_rate, 24000);
  const fs::path raw = dir_ / "monitor.f32";
  Child recorder(
      {"parec", "-d", "spk.monitor", "--raw", "--format=float32le", "--rate=24000", "--channels=1"},
      raw);
  std::this_thread::sleep_for(milliseconds(500));  // let parec connect before audio starts
  {
    PlaybackOptions options;  // default output, 24 kHz mono in
    PlaybackStream playback(options);
    std::printf("playing on '%s' at %d Hz, %d channels\n", playback.device().name.c_str(),
                playback.device_rate(), playback.device_channels());
    // The null sink's monitor loses the first ~0.2 s after the sink wakes from idle (paplay's
    // audio too), so the stream runs on silence for a second before the speech.
    playback.Write(std::vector<float>(24000, 0.0f));
    for (size_t at = 0; at < speech24.size(); at += 480) {  // 20 ms blocks, as a model emits them
      playback.Write(std::span<const float>(speech24).subspan(
          at, std::min<size_t>(480, speech24.size() - at)));
    }
    playback.Drain();
    const PlaybackStats stats = playback.stats();
    EXPECT_EQ(stats.underflows, 0u);
    EXPECT_GE(stats.played_frames, speech24.size() * playback.device_rate() / 24000 - 2);
    for (const auto& e : playback.TakeEvents())
      ADD_FAILURE() << AudioEventName(e.kind) << ": " << e.message;
  }
  std::this_thread::sleep_for(milliseconds(500));
  recorder.Stop(SIGINT);
  const auto recorded = test::LoadRawF32(raw);
  ASSERT_GT(recorded.size(), speech24.size()) << "parec recorded " << recorded.size() << " samples";
  const Alignment a = Align(speech24, recorded);
  std::printf("recorded %.2f s, speech at %.3f s, correlation peak %.4f\n",
              recorded.size() / 24000.0, a.lag / 24000.0, a.peak);
  EXPECT_GE(a.peak, 0.95);
}

// A consumer that stops reading must be told: overflows are counted and raised as an event,
// and what was written before the ring filled is intact.
TEST_F(SoundServer, CaptureOverflowIsCountedAndRaised) {
  CaptureOptions options;
  options.ring_seconds = 0.05;
  CaptureStream capture(options);
  capture.Start();
  // Nobody reads: once the ring's 50 ms are full, everything else is dropped.
  EXPECT_TRUE(WaitFor([&] { return capture.stats().dropped_frames > capture.device_rate() / 2u; }))
      << "no overflow counted";
  capture.Stop();
  const CaptureStats stats = capture.stats();
  EXPECT_GT(stats.overflows, 0u);
  EXPECT_LE(stats.captured_frames, static_cast<uint64_t>(0.1 * capture.device_rate()));
  const auto events = capture.TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AudioEventKind::kOverflow);
  EXPECT_EQ(events[0].frames, stats.dropped_frames);
  EXPECT_NE(events[0].message.find("dropped"), std::string::npos);
  // What did fit is delivered.
  std::vector<float> captured;
  while (capture.Read(captured, milliseconds(0))) {
  }
  EXPECT_NEAR(static_cast<double>(captured.size()),
              stats.captured_frames * 16000.0 / capture.device_rate(), 4.0);
}

// A producer that pauses mid-stream makes the device play silence: counted and raised.
TEST_F(SoundServer, PlaybackUnderflowIsCountedAndRaised) {
  PlaybackOptions options;
  PlaybackStream playback(options);
  const std::vector<float> tone(24000 / 2, 0.1f);
  playback.Write(tone);
  // The 0.5 s queued runs out and the device keeps asking.
  EXPECT_TRUE(WaitFor([&] {
    return playback.stats().underflow_frames > playback.device_rate() / 2u;
  })) << "no underflow counted";
  playback.Write(tone);
  playback.Drain();
  const PlaybackStats stats = playback.stats();
  EXPECT_GT(stats.underflows, 0u);
  EXPECT_GT(stats.underflow_frames, static_cast<uint64_t>(0.5 * playback.device_rate()));
  const auto events = playback.TakeEvents();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].kind, AudioEventKind::kUnderflow);
}

// The sound server dies mid-capture: the stream ends with a device-error event and the audio
// captured before is still delivered.
TEST_F(SoundServer, LosingTheServerEndsCaptureAndKeepsTheAudio) {
  CaptureStream capture(CaptureOptions{});
  capture.Start();
  std::vector<float> captured;
  ASSERT_TRUE(WaitFor([&] {
    capture.Read(captured, milliseconds(10));
    return captured.size() > 8000u;
  })) << "no audio arrived";
  ASSERT_EQ(RunCommand({"pactl", "exit"}), 0);
  bool device_error = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (capture.Read(captured, milliseconds(50)) && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : capture.TakeEvents()) {
      if (e.kind == AudioEventKind::kDeviceError) {
        device_error = true;
        std::printf("event: %s\n", e.message.c_str());
      }
    }
  }
  for (const auto& e : capture.TakeEvents()) device_error |= e.kind == AudioEventKind::kDeviceError;
  EXPECT_TRUE(device_error) << "no device-error event within 10 s of the server exiting";
  EXPECT_FALSE(capture.Read(captured, milliseconds(0))) << "the stream did not end";
  EXPECT_GT(captured.size(), 8000u);  // what arrived before the loss is still there
}

}  // namespace
}  // namespace eddy
