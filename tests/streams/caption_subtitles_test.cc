#include <gtest/gtest.h>

#include <stdexcept>

#include "caption_synth.h"
#include "eddy/caption_stream.h"
#include "eddy/subtitles.h"

namespace eddy {
namespace {

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80         ? 1
                       : (c >> 5) == 6  ? 2
                       : (c >> 4) == 14 ? 3
                       : (c >> 3) == 30 ? 4
                                        : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

std::vector<CaptionEvent> SampleEvents() {
  std::vector<CaptionEvent> events;
  auto add = [&](CaptionEventType type, double start, double end, std::string text) {
    CaptionEvent e;
    e.type = type;
    e.id = static_cast<int64_t>(events.size());
    e.start = start;
    e.end = end;
    e.text = text;
    e.stable = text;
    events.push_back(e);
  };
  add(CaptionEventType::kPartial, 0.3, 0.8, "partial text is skipped");
  add(CaptionEventType::kFinal, 0.3, 2.05, "hello world");
  add(CaptionEventType::kFinal, 2.5, 2.9, "   ");  // empty finals make no cue
  std::string long_text;
  for (int i = 0; i < 12; ++i)
    long_text += "\xC3\xBCn\xC3\xAF\x63\xC3\xB6\x64\xC3\xA9 w\xC3\xB6rds ";
  add(CaptionEventType::kFinal, 3.25, 9.999, long_text);
  add(CaptionEventType::kFinal, 3725.0005, 3727.5, "tags <b> & arrows --> stay text");
  add(CaptionEventType::kFinal, 3728.0, 3729.0,
      "averyveryverylongwordthatcannotbewrappedanywhereatallreally ok");
  return events;
}

TEST(Subtitles, TimestampFormats) {
  EXPECT_EQ(FormatSrtTime(0.0), "00:00:00,000");
  EXPECT_EQ(FormatSrtTime(3661.5), "01:01:01,500");
  EXPECT_EQ(FormatVttTime(3661.5), "01:01:01.500");
  EXPECT_EQ(FormatSrtTime(59.9996), "00:01:00,000");  // rounding carries into the minutes
  EXPECT_EQ(FormatVttTime(360000.25), "100:00:00.250");
  EXPECT_EQ(FormatSrtTime(-1.0), "00:00:00,000");
}

TEST(Subtitles, WrapsAtFortyTwoCodePointsWithoutSplittingUtf8) {
  const std::vector<CaptionEvent> events = SampleEvents();
  const std::string& text = events[3].text;
  const std::vector<std::string> lines = WrapCaptionLines(text, 42);
  ASSERT_GT(lines.size(), 2u);
  std::string joined;
  for (const std::string& line : lines) {
    EXPECT_LE(CodePoints(line), 42u) << line;
    EXPECT_TRUE(ValidUtf8(line));
    EXPECT_NE(line.front(), ' ');
    EXPECT_NE(line.back(), ' ');
    if (!joined.empty()) joined += ' ';
    joined += line;
  }
  EXPECT_EQ(joined + " ", text);
  // Greedy: the next word would not have fitted on the previous line.
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string next_word = lines[i + 1].substr(0, lines[i + 1].find(' '));
    EXPECT_GT(CodePoints(lines[i]) + 1 + CodePoints(next_word), 42u);
  }
  const std::vector<std::string> long_word = WrapCaptionLines(events[5].text, 42);
  ASSERT_EQ(long_word.size(), 2u);
  EXPECT_EQ(long_word[1], "ok");
}

void ExpectSameCues(const std::vector<SubtitleCue>& parsed, const std::vector<SubtitleCue>& cues) {
  ASSERT_EQ(parsed.size(), cues.size());
  for (size_t i = 0; i < cues.size(); ++i) {
    EXPECT_EQ(parsed[i].index, static_cast<int>(i) + 1);
    EXPECT_NEAR(parsed[i].start, cues[i].start, 0.0005 + 1e-9);
    EXPECT_NEAR(parsed[i].end, cues[i].end, 0.0005 + 1e-9);
    EXPECT_EQ(parsed[i].text, cues[i].text);
  }
}

TEST(Subtitles, SrtRoundTrip) {
  const std::vector<SubtitleCue> cues = CuesFromFinals(SampleEvents());
  ASSERT_EQ(cues.size(), 4u);  // the partial and the blank final are left out
  const std::string srt = WriteSrt(cues);
  EXPECT_EQ(srt.substr(0, 46), "1\n00:00:00,300 --> 00:00:02,050\nhello world\n\n2");
  EXPECT_TRUE(ValidUtf8(srt));
  ExpectSameCues(ParseSrt(srt), cues);
  std::string crlf;
  for (char c : srt) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  ExpectSameCues(ParseSrt("\xEF\xBB\xBF" + crlf), cues);
}

TEST(Subtitles, VttRoundTripEscapesMarkup) {
  const std::vector<SubtitleCue> cues = CuesFromFinals(SampleEvents());
  const std::string vtt = WriteVtt(cues);
  EXPECT_EQ(vtt.rfind("WEBVTT\n\n1\n00:00:00.300 --> 00:00:02.050\nhello world\n\n", 0), 0u);
  EXPECT_NE(vtt.find("&lt;b&gt; &amp; arrows --&gt;"), std::string::npos);
  ExpectSameCues(ParseVtt(vtt), cues);
}

TEST(Subtitles, VttParserAcceptsShortTimesNotesAndSettings) {
  const std::vector<SubtitleCue> cues = ParseVtt(
      "WEBVTT - title\nKind: captions\n\nNOTE a comment\nspanning lines\n\n"
      "01:02.500 --> 01:04.000 align:start line:0\nfirst\nsecond\n\nid-x\n"
      "00:01:05.000 --> 00:01:06.250\nthird &amp; last\n");
  ASSERT_EQ(cues.size(), 2u);
  EXPECT_DOUBLE_EQ(cues[0].start, 62.5);
  EXPECT_DOUBLE_EQ(cues[0].end, 64.0);
  EXPECT_EQ(cues[0].text, "first\nsecond");
  EXPECT_EQ(cues[1].index, 0);
  EXPECT_DOUBLE_EQ(cues[1].end, 66.25);
  EXPECT_EQ(cues[1].text, "third & last");
}

TEST(Subtitles, ParsersNameTheBadLine) {
  auto message = [](auto parse, const std::string& text) {
    try {
      parse(text);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto srt = [](const std::string& t) { return ParseSrt(t); };
  auto vtt = [](const std::string& t) { return ParseVtt(t); };
  EXPECT_NE(message(srt, "1\n00:00:01,000 -> 00:00:02,000\nx\n").find("line 2"), std::string::npos);
  EXPECT_NE(message(srt, "x\n00:00:01,000 --> 00:00:02,000\n").find("line 1"), std::string::npos);
  EXPECT_NE(message(srt, "\n\n1\n00:00:01.000 --> 00:00:02,000\n").find("line 4"),
            std::string::npos);
  EXPECT_NE(message(srt, "1\n00:00:03,000 --> 00:00:02,000\n").find("before"), std::string::npos);
  EXPECT_NE(message(srt, "1\n00:61:03,000 --> 00:62:02,000\n").find("line 2"), std::string::npos);
  EXPECT_NE(message(srt, "1\n").find("timing"), std::string::npos);
  EXPECT_NE(message(vtt, "WEBVTTX\n\n").find("WEBVTT"), std::string::npos);
  EXPECT_NE(message(vtt, "WEBVTT\n\n00:01.000 --> 00:0x.000\n").find("line 3"), std::string::npos);
}

TEST(Subtitles, CaptionStreamOutputParsesBack) {
  using caption_test::kRate;
  caption_test::Synth s;
  s.Gap(0.5).Speech(1.2).Gap(1.0).Speech(0.8).Gap(1.0);
  caption_test::FakeTranscriber transcriber;
  CaptionStream stream(CaptionConfig{}, transcriber);
  stream.AcceptWaveform(s.signal().data(), s.signal().size(), kRate);
  stream.InputFinished();
  const std::vector<SubtitleCue> cues = CuesFromFinals(stream.TakeEvents());
  ASSERT_EQ(cues.size(), 2u);
  ExpectSameCues(ParseSrt(WriteSrt(cues)), cues);
  ExpectSameCues(ParseVtt(WriteVtt(cues)), cues);
}

}  // namespace
}  // namespace eddy
