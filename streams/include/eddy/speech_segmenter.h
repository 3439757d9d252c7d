// Voice activity detection and endpointing for live captions.
//
// Debian 12 packages no WebRTC VAD (libfvad), so the detector is our own: per 10 ms frame, the
// energy (dBFS) must stand clear of an adaptive noise floor and the spectrum must be peaky (low
// spectral flatness), which keeps stationary noise out however loud it is and lets the floor
// climb to it. Speech often ends in a quiet or noise-like sound (a final fricative, a fading
// vowel) that fails those tests; for a short hold after a voiced frame the detector therefore
// accepts any frame standing a smaller margin over the floor as the speech's tail, so that the
// segment's end follows the real end of speech and the post-padding can stay short. Unvoiced
// consonants between vowels are covered by the tail, the trailing-silence hangover and the
// padding. Every decision is made on
// fixed frames counted from the start of the stream, so the segment boundaries do not depend on
// how the caller chunks its audio.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eddy {

inline constexpr int kCaptionSampleRate = 16000;

struct SegmenterConfig {
  int frame_ms = 10;              // analysis frame; every duration below is rounded up to it
  int trailing_silence_ms = 600;  // silence after speech that ends a segment
  int max_segment_ms = 15000;     // a segment reaching this length is cut ...
  int cut_search_ms = 3000;       // ... at the quietest frame in this window before the limit
  int min_speech_ms = 250;        // voiced frames a segment needs to reach the decoder
  int pre_padding_ms = 200;       // audio kept before the first voiced frame
  int post_padding_ms = 100;      // audio kept after the last voiced frame
  double speech_margin_db = 9.0;  // frame energy above the noise floor to count as voiced
  double max_flatness = 0.35;     // spectral flatness (0 tonal .. 1 white) of voiced frames
  // The tail of speech: within tail_hold_ms after a voiced frame, a frame this far above the
  // floor counts as voiced whatever its flatness (0 hold: no tail). Tail frames extend a
  // segment but never open one, and do not count towards min_speech_ms.
  int tail_hold_ms = 200;
  double tail_margin_db = 4.0;
  double min_speech_dbfs = -50.0;  // frames quieter than this are never voiced
  double initial_noise_floor_dbfs = -60.0;
  double noise_floor_fall = 0.3;           // per-frame step towards a quieter frame
  double noise_floor_rise = 0.02;          // per-frame step towards a louder unvoiced frame
  double noise_floor_rise_voiced = 0.001;  // lets a steady loud noise be absorbed eventually

  // Throws std::invalid_argument naming the first bad field.
  void Validate() const;
};

// One frame's analysis; exposed for tests and for --stats style diagnostics.
struct FrameDecision {
  double energy_dbfs = 0.0;
  double flatness = 0.0;
  double noise_floor_dbfs = 0.0;
  bool voiced = false;
  bool tail = false;  // voiced only as the tail of earlier speech (see tail_hold_ms)
};

// Classifies frames of frame_ms; keeps only the adaptive noise floor and a DFT table.
class VoiceActivityDetector {
 public:
  explicit VoiceActivityDetector(const SegmenterConfig& config);
  size_t frame_samples() const { return frame_samples_; }
  // `frame` holds frame_samples() samples.
  FrameDecision Classify(const float* frame);
  void reset();

 private:
  SegmenterConfig config_;
  size_t frame_samples_;
  int64_t tail_hold_frames_;
  double noise_floor_dbfs_;
  int64_t frames_since_speech_;  // since the last voiced frame that was not a tail
  std::vector<double> window_;
  std::vector<double> cos_table_, sin_table_;  // [bin * frame_samples + n]
};

// What the segmenter reports after each frame.
enum class SegmentEventKind {
  kGrew,       // the open, confirmed segment received more audio
  kCompleted,  // a segment ended (endpoint, max-length cut or end of input)
  kDropped,    // an unconfirmed candidate ended with too little speech
};

struct SegmentEvent {
  SegmentEventKind kind = SegmentEventKind::kGrew;
  int64_t start_sample = 0;            // inclusive, in input stream samples
  int64_t end_sample = 0;              // exclusive
  bool cut = false;                    // kCompleted by the max-length rule
  int64_t last_voiced_end_sample = 0;  // end of the last voiced frame in [start, end)
  int64_t decided_at_sample = 0;       // input samples seen when the event was decided
};

// Turns frames into segments. Feed() takes any number of samples; decisions happen per frame.
class SpeechSegmenter {
 public:
  explicit SpeechSegmenter(const SegmenterConfig& config);

  // Appends samples; returns the events of every frame completed by them, in order.
  std::vector<SegmentEvent> Feed(const float* samples, size_t n);
  // Classifies the zero-padded partial frame and closes any open segment.
  std::vector<SegmentEvent> Finish();
  void reset();

  // Samples [begin, end) of the input; they must lie within the retained history.
  std::vector<float> Audio(int64_t begin, int64_t end) const;
  int64_t samples_seen() const { return total_samples_; }
  bool segment_open() const { return open_; }
  bool segment_confirmed() const;
  int64_t open_start_sample() const { return start_sample_; }
  const std::vector<FrameDecision>& frame_log() const { return frame_log_; }
  void set_keep_frame_log(bool keep) { keep_frame_log_ = keep; }
  const SegmenterConfig& config() const { return config_; }

 private:
  void ProcessFrame(int64_t frame_start, const float* frame, std::vector<SegmentEvent>& events);
  void CloseSegment(int64_t end_sample, bool cut, bool confirmed,
                    std::vector<SegmentEvent>& events);
  void CutAtQuietestFrame(std::vector<SegmentEvent>& events);
  void TrimHistory();
  int64_t FramesOf(int ms) const;

  SegmenterConfig config_;
  VoiceActivityDetector vad_;
  int64_t frame_samples_;
  int64_t total_samples_ = 0;
  int64_t frames_done_ = 0;     // whole frames classified
  std::vector<float> history_;  // samples [history_start_, total_samples_)
  int64_t history_start_ = 0;
  int64_t previous_end_ = 0;     // segments never overlap
  int64_t decision_sample_ = 0;  // input samples seen when the current frame was decided

  bool open_ = false;
  int64_t start_sample_ = 0;
  int64_t first_frame_ = 0;            // frame index of the open segment's energy_db_[0]
  std::vector<double> energy_db_;      // per frame since first_frame_
  std::vector<uint8_t> voiced_flags_;  // per frame since first_frame_: silent, tail or speech
  int64_t voiced_frames_ = 0;          // speech frames (not tails) in the open segment
  int64_t last_voiced_frame_ = -1;     // absolute frame index
  bool keep_frame_log_ = false;
  std::vector<FrameDecision> frame_log_;
};

}  // namespace eddy
