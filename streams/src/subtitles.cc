#include "eddy/subtitles.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace eddy {
namespace {

bool IsContinuationByte(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += IsContinuationByte(c) ? 0 : 1;
  return n;
}

std::string FormatTime(double seconds, char millis_separator) {
  if (!std::isfinite(seconds) || seconds < 0.0) seconds = 0.0;
  const long long ms = std::llround(seconds * 1000.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60,
                ms / 1000 % 60, millis_separator, ms % 1000);
  return buf;
}

std::vector<std::string_view> SplitLines(std::string_view content) {
  if (content.substr(0, 3) == "\xEF\xBB\xBF") content.remove_prefix(3);
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string_view::npos) nl = content.size();
    std::string_view line = content.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

[[noreturn]] void Fail(const char* format, size_t line, const std::string& why) {
  throw std::runtime_error(std::string(format) + " line " + std::to_string(line + 1) + ": " + why);
}

bool ParseDigits(std::string_view s, long long& value) {
  if (s.empty() || s.size() > 12) return false;
  value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return true;
}

// [hh:]mm:ss<sep>mmm; hours optional only where allowed.
bool ParseTimestamp(std::string_view s, char millis_separator, bool hours_optional,
                    double& seconds) {
  const size_t sep = s.rfind(millis_separator);
  if (sep == std::string_view::npos || s.size() - sep - 1 != 3) return false;
  long long ms = 0, part = 0;
  if (!ParseDigits(s.substr(sep + 1), ms)) return false;
  std::vector<long long> fields;
  std::string_view hms = s.substr(0, sep);
  size_t pos = 0;
  while (true) {
    const size_t colon = hms.find(':', pos);
    const std::string_view field =
        hms.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos);
    if (!ParseDigits(field, part)) return false;
    fields.push_back(part);
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  if (fields.size() == 2 && hours_optional) fields.insert(fields.begin(), 0);
  if (fields.size() != 3 || fields[1] > 59 || fields[2] > 59) return false;
  seconds = static_cast<double>(fields[0] * 3600 + fields[1] * 60 + fields[2]) +
            static_cast<double>(ms) / 1000.0;
  return true;
}

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

void ParseTiming(const char* format, size_t line_no, std::string_view line, char separator,
                 bool hours_optional, SubtitleCue& cue) {
  const size_t arrow = line.find("-->");
  if (arrow == std::string_view::npos) Fail(format, line_no, "expected 'start --> end'");
  const std::string_view start = Trim(line.substr(0, arrow));
  std::string_view end = Trim(line.substr(arrow + 3));
  end = end.substr(0, end.find_first_of(" \t"));  // VTT cue settings follow the end time
  if (!ParseTimestamp(start, separator, hours_optional, cue.start)) {
    Fail(format, line_no, "bad start time '" + std::string(start) + "'");
  }
  if (!ParseTimestamp(end, separator, hours_optional, cue.end)) {
    Fail(format, line_no, "bad end time '" + std::string(end) + "'");
  }
  if (cue.end < cue.start) Fail(format, line_no, "end time before start time");
}

std::string EscapeVtt(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string UnescapeVtt(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '&') {
      const std::string_view rest = text.substr(i);
      if (rest.starts_with("&amp;")) {
        out += '&';
        i += 4;
        continue;
      }
      if (rest.starts_with("&lt;")) {
        out += '<';
        i += 3;
        continue;
      }
      if (rest.starts_with("&gt;")) {
        out += '>';
        i += 3;
        continue;
      }
      if (rest.starts_with("&nbsp;")) {
        out += "\xC2\xA0";
        i += 5;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Reads text lines from `i` up to the next blank line.
std::string ReadCueText(const std::vector<std::string_view>& lines, size_t& i) {
  std::string text;
  for (; i < lines.size() && !IsBlank(lines[i]); ++i) {
    if (!text.empty()) text += '\n';
    text += lines[i];
  }
  return text;
}

std::string WriteCues(const std::vector<SubtitleCue>& cues, bool vtt) {
  std::string out = vtt ? "WEBVTT\n\n" : "";
  int number = 1;
  for (const SubtitleCue& cue : cues) {
    out += std::to_string(number++) + "\n";
    out += vtt ? FormatVttTime(cue.start) + " --> " + FormatVttTime(cue.end)
               : FormatSrtTime(cue.start) + " --> " + FormatSrtTime(cue.end);
    out += "\n";
    // A blank line would end the cue early, so only non-blank lines are written.
    for (const std::string_view line : SplitLines(cue.text)) {
      if (IsBlank(line)) continue;
      out += vtt ? EscapeVtt(line) : std::string(line);
      out += "\n";
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::vector<std::string> WrapCaptionLines(std::string_view text, size_t max_chars) {
  std::vector<std::string> lines;
  std::string current;
  size_t current_chars = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t begin = text.find_first_not_of(" \t\r\n", pos);
    if (begin == std::string_view::npos) break;
    size_t end = text.find_first_of(" \t\r\n", begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(begin, end - begin);
    const size_t word_chars = CodePoints(word);
    if (!current.empty() && current_chars + 1 + word_chars > max_chars) {
      lines.push_back(std::move(current));
      current.clear();
      current_chars = 0;
    }
    if (!current.empty()) {
      current += ' ';
      ++current_chars;
    }
    current += word;
    current_chars += word_chars;
    pos = end;
  }
  if (!current.empty()) lines.push_back(std::move(current));
  return lines;
}

std::string FormatSrtTime(double seconds) {
  return FormatTime(seconds, ',');
}
std::string FormatVttTime(double seconds) {
  return FormatTime(seconds, '.');
}

std::vector<SubtitleCue> CuesFromFinals(const std::vector<CaptionEvent>& events,
                                        const SubtitleOptions& options) {
  std::vector<SubtitleCue> cues;
  for (const CaptionEvent& e : events) {
    if (e.type != CaptionEventType::kFinal) continue;
    const std::vector<std::string> lines = WrapCaptionLines(e.text, options.max_line_chars);
    if (lines.empty()) continue;
    SubtitleCue cue;
    cue.index = static_cast<int>(cues.size()) + 1;
    cue.start = e.start;
    cue.end = e.end;
    for (const std::string& line : lines) {
      if (!cue.text.empty()) cue.text += '\n';
      cue.text += line;
    }
    cues.push_back(std::move(cue));
  }
  return cues;
}

std::string WriteSrt(const std::vector<SubtitleCue>& cues) {
  return WriteCues(cues, false);
}
std::string WriteVtt(const std::vector<SubtitleCue>& cues) {
  return WriteCues(cues, true);
}

std::vector<SubtitleCue> ParseSrt(std::string_view content) {
  const std::vector<std::string_view> lines = SplitLines(content);
  std::vector<SubtitleCue> cues;
  size_t i = 0;
  while (true) {
    while (i < lines.size() && IsBlank(lines[i])) ++i;
    if (i >= lines.size()) break;
    SubtitleCue cue;
    long long index = 0;
    if (!ParseDigits(Trim(lines[i]), index)) Fail("SRT", i, "expected a cue number");
    cue.index = static_cast<int>(index);
    if (++i >= lines.size() || IsBlank(lines[i])) Fail("SRT", i, "cue without a timing line");
    ParseTiming("SRT", i, lines[i], ',', false, cue);
    ++i;
    cue.text = ReadCueText(lines, i);
    cues.push_back(std::move(cue));
  }
  return cues;
}

std::vector<SubtitleCue> ParseVtt(std::string_view content) {
  const std::vector<std::string_view> lines = SplitLines(content);
  if (lines.empty() || !lines[0].starts_with("WEBVTT") ||
      (lines[0].size() > 6 && lines[0][6] != ' ' && lines[0][6] != '\t')) {
    Fail("WebVTT", 0, "missing 'WEBVTT' header");
  }
  size_t i = 1;
  while (i < lines.size() && !IsBlank(lines[i])) ++i;  // header metadata
  std::vector<SubtitleCue> cues;
  while (true) {
    while (i < lines.size() && IsBlank(lines[i])) ++i;
    if (i >= lines.size()) break;
    const std::string_view first = lines[i];
    if (first.starts_with("NOTE") || first.starts_with("STYLE") || first.starts_with("REGION")) {
      while (i < lines.size() && !IsBlank(lines[i])) ++i;
      continue;
    }
    SubtitleCue cue;
    if (first.find("-->") == std::string_view::npos) {
      long long index = 0;
      if (ParseDigits(Trim(first), index)) cue.index = static_cast<int>(index);
      if (++i >= lines.size()) Fail("WebVTT", i, "cue identifier without a timing line");
    }
    ParseTiming("WebVTT", i, lines[i], '.', true, cue);
    ++i;
    cue.text = UnescapeVtt(ReadCueText(lines, i));
    cues.push_back(std::move(cue));
  }
  return cues;
}

}  // namespace eddy
