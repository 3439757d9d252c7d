// `eddy caption` as a user runs it on the golden model: a file with several utterances, as fast as
// possible and paced like a live source, must give the same finals, each equal to what `eddy
// transcribe` prints for that segment's audio; the SRT and VTT files must parse back to them.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../streams/caption_synth.h"
#include "eddy/audio_file.h"
#include "eddy/subtitles.h"
#include "golden.h"
#include "run_command.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Collapse(std::string_view s) {
  std::string out;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

class CaptionCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("eddy_caption_cli_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    caption_test::Synth s;
    s.Gap(0.3).Speech(1.1, 0.2, 160.0).Gap(1.1).Speech(1.6, 0.2, 110.0).Gap(1.0);
    audio_ = s.signal();
    wav_ = dir_ / "two_utterances.wav";
    WriteWav(wav_, {16000, 1, audio_});
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Eddy(const std::string& args, int* status) const {
    return test::RunCommand(
        std::string(EDDY_BINARY) + " " + args + " 2>" + (dir_ / "stderr").string(), status);
  }
  std::string Model() const { return " -m " + test::GoldenModelDir().string() + " "; }

  std::vector<nlohmann::json> Finals(const std::string& json_lines) const {
    std::vector<nlohmann::json> finals;
    std::istringstream in(json_lines);
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      for (const char* key : {"type", "id", "start", "end", "text", "stable"}) {
        EXPECT_TRUE(j.contains(key)) << line;
      }
      if (j.at("type") == "final") finals.push_back(j);
    }
    return finals;
  }

  // Each final's text is what `eddy transcribe` prints for the audio [start, end) it covers.
  void ExpectFinalsEqualTranscribeOfTheirAudio(const std::vector<nlohmann::json>& finals,
                                               const std::vector<float>& audio) const {
    for (const auto& f : finals) {
      const auto begin = static_cast<size_t>(std::llround(f.at("start").get<double>() * 16000));
      const auto stop = static_cast<size_t>(std::llround(f.at("end").get<double>() * 16000));
      ASSERT_LT(begin, stop);
      ASSERT_LE(stop, audio.size());
      const fs::path segment = dir_ / ("segment" + f.at("id").dump() + ".wav");
      WriteWav(segment, {16000, 1, {audio.begin() + begin, audio.begin() + stop}});
      int status = 0;
      const std::string t =
          Eddy("transcribe --json --max-tokens 6" + Model() + segment.string(), &status);
      ASSERT_EQ(status, 0) << t;
      EXPECT_EQ(f.at("text"), nlohmann::json::parse(t).at("text")) << "segment " << f.at("id");
    }
  }

  fs::path dir_, wav_;
  std::vector<float> audio_;
};

TEST_F(CaptionCli, FinalsMatchTranscribeOfEachSegmentAndSubtitlesParseBack) {
  int status = 0;
  const fs::path srt = dir_ / "out.srt", vtt = dir_ / "out.vtt";
  const std::string out =
      Eddy("caption" + Model() + "--max-tokens 6 --json --input " + wav_.string() + " --srt " +
               srt.string() + " --vtt " + vtt.string(),
           &status);
  ASSERT_EQ(status, 0) << out << ReadAll(dir_ / "stderr");
  const auto finals = Finals(out);
  ASSERT_EQ(finals.size(), 2u) << out;

  ExpectFinalsEqualTranscribeOfTheirAudio(finals, audio_);
  std::vector<CaptionEvent> final_events;
  for (const auto& f : finals) {
    const double start = f.at("start"), end = f.at("end");
    CaptionEvent e;
    e.type = CaptionEventType::kFinal;
    e.start = start;
    e.end = end;
    e.text = f.at("text");
    final_events.push_back(e);
  }

  const auto expected = CuesFromFinals(final_events);
  for (const auto& cues : {ParseSrt(ReadAll(srt)), ParseVtt(ReadAll(vtt))}) {
    ASSERT_EQ(cues.size(), expected.size());
    for (size_t i = 0; i < cues.size(); ++i) {
      EXPECT_NEAR(cues[i].start, expected[i].start, 0.0005);
      EXPECT_NEAR(cues[i].end, expected[i].end, 0.0005);
      EXPECT_EQ(Collapse(cues[i].text), Collapse(final_events[i].text));
    }
  }

  // Paced like a live source (about 6 s of wall time): the same finals.
  const std::string paced = Eddy(
      "caption" + Model() + "--max-tokens 6 --json --realtime --input " + wav_.string(), &status);
  ASSERT_EQ(status, 0) << paced;
  EXPECT_EQ(Finals(paced), finals);
}

// Run by ctest under scripts/with-sound-server.sh: the same file played into the virtual
// microphone and captioned live (captured at the device's 44.1 kHz, resampled to 16 kHz) gives
// the same finals as the file itself: same count, same segment lengths and spacing (the capture
// starts at an arbitrary offset), and text that is the transcription of what was captured.
TEST_F(CaptionCli, LiveMicrophoneGivesTheFinalsOfTheFile) {
  int status = 0;
  const std::string args = "caption" + Model() + "--max-tokens 6 --json";
  const auto from_file = Finals(Eddy(args + " --input " + wav_.string(), &status));
  ASSERT_EQ(status, 0) << ReadAll(dir_ / "stderr");
  ASSERT_EQ(from_file.size(), 2u);

  const double seconds = 4.0 + static_cast<double>(audio_.size()) / 16000;
  const fs::path live_json = dir_ / "live.json", live_err = dir_ / "live.err";
  // Start capturing, wait until the stream is open plus the daemon's start-up delay, then play.
  const std::string script =
      "set -e; " + std::string(EDDY_BINARY) + " " + args + " --seconds " + std::to_string(seconds) +
      " --save-audio " + (dir_ / "captured.wav").string() + " > " + live_json.string() + " 2> " +
      live_err.string() + " & pid=$!; for i in $(seq 100); do " + "grep -q listening " +
      live_err.string() + " && break; sleep 0.1; done; sleep 1.5; " + "paplay -d micsrc " +
      wav_.string() + "; wait $pid";
  const std::string out = test::RunCommand("bash -c '" + script + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << out << ReadAll(live_err);
  const auto live = Finals(ReadAll(live_json));
  ASSERT_EQ(live.size(), from_file.size()) << ReadAll(live_json) << ReadAll(live_err);
  const double offset = live[0].at("start").get<double>() - from_file[0].at("start").get<double>();
  for (size_t i = 0; i < live.size(); ++i) {
    const double start = live[i].at("start"), end = live[i].at("end");
    const double file_start = from_file[i].at("start"), file_end = from_file[i].at("end");
    EXPECT_NEAR(end - start, file_end - file_start, 0.03) << "segment " << i;
    EXPECT_NEAR(start - offset, file_start, 0.03) << "segment " << i;
  }
  // The text of a random-weight model changes with the smallest difference in the audio (the
  // capture went through two resamplers), so the live text is checked against the audio that
  // was really captured.
  const AudioBuffer captured = ReadWav(dir_ / "captured.wav");
  ASSERT_EQ(captured.sample_rate, 16000);
  ExpectFinalsEqualTranscribeOfTheirAudio(live, captured.samples);
}

TEST_F(CaptionCli, BadInputsFailClearly) {
  int status = 0;
  Eddy("caption" + Model() + "--input " + std::string(EDDY_BINARY), &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(ReadAll(dir_ / "stderr").find("unknown audio format"), std::string::npos)
      << ReadAll(dir_ / "stderr");
  Eddy("caption" + Model() + "--input " + wav_.string() + " --srt /nonexistent/dir/x.srt", &status);
  EXPECT_NE(status, 0);
  const std::string help = Eddy("caption --help", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(help.find("--realtime"), std::string::npos) << help;
}

}  // namespace
}  // namespace eddy
