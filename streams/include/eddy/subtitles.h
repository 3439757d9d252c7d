// SRT and WebVTT files from final caption events, and parsers for both (tests read the files back).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eddy/caption_stream.h"

namespace eddy {

struct SubtitleCue {
  int index = 0;       // 1-based SRT number (the VTT cue identifier when it is a number, else 0)
  double start = 0.0;  // seconds
  double end = 0.0;
  std::string text;  // lines joined with '\n'
};

struct SubtitleOptions {
  size_t max_line_chars = 42;  // code points; a single longer word stays whole on its own line
};

// Wraps at spaces so that no line exceeds max_chars code points unless one word does. Newlines in
// `text` count as spaces; UTF-8 sequences are never split.
std::vector<std::string> WrapCaptionLines(std::string_view text, size_t max_chars);

// HH:MM:SS,mmm (SRT) and HH:MM:SS.mmm (VTT); milliseconds rounded to nearest.
std::string FormatSrtTime(double seconds);
std::string FormatVttTime(double seconds);

// Cues from the final events, in order; partials and empty finals are skipped and numbering
// stays contiguous from 1.
std::vector<SubtitleCue> CuesFromFinals(const std::vector<CaptionEvent>& events,
                                        const SubtitleOptions& options = {});
std::string WriteSrt(const std::vector<SubtitleCue>& cues);
std::string WriteVtt(const std::vector<SubtitleCue>& cues);

// Throw std::runtime_error naming the line at fault.
std::vector<SubtitleCue> ParseSrt(std::string_view content);
std::vector<SubtitleCue> ParseVtt(std::string_view content);

}  // namespace eddy
