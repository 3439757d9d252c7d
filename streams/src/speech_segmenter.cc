#include "eddy/speech_segmenter.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace eddy {
namespace {

void Require(bool ok, const std::string& field, const std::string& why) {
  if (!ok) throw std::invalid_argument("SegmenterConfig." + field + ": " + why);
}

constexpr double kFloorDbfs = -120.0;  // digital silence

// SpeechSegmenter::voiced_flags_ values.
constexpr uint8_t kSilentFrame = 0;
constexpr uint8_t kTailFrame = 1;
constexpr uint8_t kSpeechFrame = 2;

}  // namespace

void SegmenterConfig::Validate() const {
  Require(frame_ms > 0 && frame_ms <= 100, "frame_ms", "must be in 1..100");
  Require(trailing_silence_ms >= frame_ms, "trailing_silence_ms", "must be at least frame_ms");
  Require(min_speech_ms > 0, "min_speech_ms", "must be positive");
  Require(pre_padding_ms >= 0, "pre_padding_ms", "must not be negative");
  Require(post_padding_ms >= 0, "post_padding_ms", "must not be negative");
  Require(post_padding_ms <= trailing_silence_ms, "post_padding_ms",
          "must not exceed trailing_silence_ms (the padding must have arrived at the endpoint)");
  Require(cut_search_ms >= frame_ms, "cut_search_ms", "must be at least frame_ms");
  Require(max_segment_ms >= cut_search_ms + min_speech_ms + pre_padding_ms, "max_segment_ms",
          "must be at least cut_search_ms + min_speech_ms + pre_padding_ms");
  Require(speech_margin_db > 0.0, "speech_margin_db", "must be positive");
  Require(max_flatness > 0.0 && max_flatness <= 1.0, "max_flatness", "must be in (0, 1]");
  Require(tail_hold_ms >= 0, "tail_hold_ms", "must not be negative");
  Require(tail_margin_db > 0.0 && tail_margin_db <= speech_margin_db, "tail_margin_db",
          "must be in (0, speech_margin_db]");
  Require(min_speech_dbfs <= 0.0 && min_speech_dbfs > kFloorDbfs, "min_speech_dbfs",
          "must be in (-120, 0]");
  Require(initial_noise_floor_dbfs <= 0.0 && initial_noise_floor_dbfs >= kFloorDbfs,
          "initial_noise_floor_dbfs", "must be in [-120, 0]");
  Require(noise_floor_fall > 0.0 && noise_floor_fall <= 1.0, "noise_floor_fall",
          "must be in (0, 1]");
  Require(noise_floor_rise > 0.0 && noise_floor_rise <= 1.0, "noise_floor_rise",
          "must be in (0, 1]");
  Require(noise_floor_rise_voiced >= 0.0 && noise_floor_rise_voiced <= noise_floor_rise,
          "noise_floor_rise_voiced", "must be in [0, noise_floor_rise]");
}

VoiceActivityDetector::VoiceActivityDetector(const SegmenterConfig& config)
    : config_(config),
      frame_samples_(static_cast<size_t>(kCaptionSampleRate * config.frame_ms / 1000)),
      tail_hold_frames_((config.tail_hold_ms + config.frame_ms - 1) / config.frame_ms),
      noise_floor_dbfs_(config.initial_noise_floor_dbfs),
      frames_since_speech_(tail_hold_frames_ + 1) {
  config_.Validate();
  const size_t n = frame_samples_;
  window_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    window_[i] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) /
                                      static_cast<double>(n));
  }
  const size_t bins = n / 2;
  cos_table_.resize(bins * n);
  sin_table_.resize(bins * n);
  for (size_t k = 0; k < bins; ++k) {
    for (size_t i = 0; i < n; ++i) {
      // (k * i) % n keeps the phase argument small, so the tables are exact to rounding.
      const double phase =
          2.0 * std::numbers::pi * static_cast<double>((k * i) % n) / static_cast<double>(n);
      cos_table_[k * n + i] = std::cos(phase);
      sin_table_[k * n + i] = std::sin(phase);
    }
  }
}

void VoiceActivityDetector::reset() {
  noise_floor_dbfs_ = config_.initial_noise_floor_dbfs;
  frames_since_speech_ = tail_hold_frames_ + 1;
}

FrameDecision VoiceActivityDetector::Classify(const float* frame) {
  const size_t n = frame_samples_;
  double sum_sq = 0.0;
  for (size_t i = 0; i < n; ++i) sum_sq += static_cast<double>(frame[i]) * frame[i];
  const double mean_sq = sum_sq / static_cast<double>(n);
  FrameDecision d;
  d.energy_dbfs = std::max(kFloorDbfs, 10.0 * std::log10(mean_sq + 1e-30));

  // Spectral flatness over bins 1..n/2-1 (DC and Nyquist carry no speech).
  const size_t bins = n / 2;
  double log_sum = 0.0, lin_sum = 0.0;
  for (size_t k = 1; k < bins; ++k) {
    double re = 0.0, im = 0.0;
    const double* c = &cos_table_[k * n];
    const double* s = &sin_table_[k * n];
    for (size_t i = 0; i < n; ++i) {
      const double x = frame[i] * window_[i];
      re += x * c[i];
      im -= x * s[i];
    }
    const double power = re * re + im * im + 1e-20;
    log_sum += std::log(power);
    lin_sum += power;
  }
  const double count = static_cast<double>(bins - 1);
  d.flatness = std::exp(log_sum / count) / (lin_sum / count);

  const double above = d.energy_dbfs - noise_floor_dbfs_;
  const bool loud_enough = d.energy_dbfs >= config_.min_speech_dbfs;
  const bool speech =
      loud_enough && above >= config_.speech_margin_db && d.flatness <= config_.max_flatness;
  ++frames_since_speech_;
  if (speech) frames_since_speech_ = 0;
  d.tail = !speech && frames_since_speech_ <= tail_hold_frames_ && loud_enough &&
           above >= config_.tail_margin_db;
  d.voiced = speech || d.tail;

  double step = config_.noise_floor_fall;
  if (d.energy_dbfs >= noise_floor_dbfs_) {
    step = d.voiced ? config_.noise_floor_rise_voiced : config_.noise_floor_rise;
  }
  noise_floor_dbfs_ += step * (d.energy_dbfs - noise_floor_dbfs_);
  d.noise_floor_dbfs = noise_floor_dbfs_;
  return d;
}

SpeechSegmenter::SpeechSegmenter(const SegmenterConfig& config)
    : config_(config), vad_(config), frame_samples_(static_cast<int64_t>(vad_.frame_samples())) {}

int64_t SpeechSegmenter::FramesOf(int ms) const {
  return (ms + config_.frame_ms - 1) / config_.frame_ms;
}

bool SpeechSegmenter::segment_confirmed() const {
  return open_ && voiced_frames_ >= FramesOf(config_.min_speech_ms);
}

void SpeechSegmenter::reset() {
  vad_.reset();
  total_samples_ = 0;
  frames_done_ = 0;
  history_.clear();
  history_start_ = 0;
  previous_end_ = 0;
  decision_sample_ = 0;
  open_ = false;
  start_sample_ = 0;
  first_frame_ = 0;
  energy_db_.clear();
  voiced_flags_.clear();
  voiced_frames_ = 0;
  last_voiced_frame_ = -1;
  frame_log_.clear();
}

std::vector<float> SpeechSegmenter::Audio(int64_t begin, int64_t end) const {
  if (begin < history_start_ || end > total_samples_ || begin > end) {
    throw std::out_of_range("SpeechSegmenter::Audio: samples [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") outside the retained history [" +
                            std::to_string(history_start_) + ", " + std::to_string(total_samples_) +
                            ")");
  }
  return std::vector<float>(history_.begin() + (begin - history_start_),
                            history_.begin() + (end - history_start_));
}

std::vector<SegmentEvent> SpeechSegmenter::Feed(const float* samples, size_t n) {
  // Trimming before appending: the caller has read the audio of the previous call's events.
  TrimHistory();
  std::vector<SegmentEvent> events;
  history_.insert(history_.end(), samples, samples + n);
  total_samples_ += static_cast<int64_t>(n);
  while ((frames_done_ + 1) * frame_samples_ <= total_samples_) {
    const int64_t frame_start = frames_done_ * frame_samples_;
    ProcessFrame(frame_start, &history_[frame_start - history_start_], events);
    ++frames_done_;
  }
  return events;
}

std::vector<SegmentEvent> SpeechSegmenter::Finish() {
  std::vector<SegmentEvent> events;
  const int64_t frame_start = frames_done_ * frame_samples_;
  if (frame_start < total_samples_) {
    std::vector<float> padded(static_cast<size_t>(frame_samples_), 0.0f);
    std::copy(history_.begin() + (frame_start - history_start_), history_.end(), padded.begin());
    ProcessFrame(frame_start, padded.data(), events);
    ++frames_done_;
  }
  if (open_) {
    const int64_t end = (last_voiced_frame_ + 1) * frame_samples_ +
                        FramesOf(config_.post_padding_ms) * frame_samples_;
    decision_sample_ = total_samples_;
    CloseSegment(end, false, segment_confirmed(), events);
  }
  return events;
}

void SpeechSegmenter::ProcessFrame(int64_t frame_start, const float* frame,
                                   std::vector<SegmentEvent>& events) {
  const FrameDecision d = vad_.Classify(frame);
  if (keep_frame_log_) frame_log_.push_back(d);
  const int64_t f = frame_start / frame_samples_;

  if (!open_) {
    if (!d.voiced || d.tail) return;
    open_ = true;
    const int64_t pre = FramesOf(config_.pre_padding_ms) * frame_samples_;
    start_sample_ = std::max({previous_end_, frame_start - pre, history_start_});
    first_frame_ = f;
    energy_db_.clear();
    voiced_flags_.clear();
    voiced_frames_ = 0;
  }
  energy_db_.push_back(d.energy_dbfs);
  voiced_flags_.push_back(d.tail ? kTailFrame : d.voiced ? kSpeechFrame : kSilentFrame);
  if (d.voiced) {
    if (!d.tail) ++voiced_frames_;
    last_voiced_frame_ = f;
  }

  const int64_t frame_end = std::min(frame_start + frame_samples_, total_samples_);
  decision_sample_ = frame_end;
  if (f - last_voiced_frame_ >= FramesOf(config_.trailing_silence_ms)) {
    const int64_t end = (last_voiced_frame_ + 1) * frame_samples_ +
                        FramesOf(config_.post_padding_ms) * frame_samples_;
    CloseSegment(end, false, segment_confirmed(), events);
  } else if (frame_end - start_sample_ >= FramesOf(config_.max_segment_ms) * frame_samples_) {
    CutAtQuietestFrame(events);
  } else if (segment_confirmed()) {
    SegmentEvent e;
    e.kind = SegmentEventKind::kGrew;
    e.start_sample = start_sample_;
    e.end_sample = frame_end;
    e.last_voiced_end_sample = std::min((last_voiced_frame_ + 1) * frame_samples_, frame_end);
    events.push_back(e);
  }
}

void SpeechSegmenter::CloseSegment(int64_t end_sample, bool cut, bool confirmed,
                                   std::vector<SegmentEvent>& events) {
  SegmentEvent e;
  e.kind = confirmed ? SegmentEventKind::kCompleted : SegmentEventKind::kDropped;
  e.decided_at_sample = decision_sample_;
  e.start_sample = start_sample_;
  e.end_sample = std::min(end_sample, total_samples_);
  e.cut = cut;
  e.last_voiced_end_sample = std::min((last_voiced_frame_ + 1) * frame_samples_, e.end_sample);
  events.push_back(e);
  if (e.kind == SegmentEventKind::kCompleted) previous_end_ = e.end_sample;
  open_ = false;
  energy_db_.clear();
  voiced_flags_.clear();
  voiced_frames_ = 0;
}

void SpeechSegmenter::CutAtQuietestFrame(std::vector<SegmentEvent>& events) {
  // energy_db_[i] is frame first_frame_ + i; the window is the last cut_search frames.
  const int64_t count = static_cast<int64_t>(energy_db_.size());
  const int64_t window = std::min(FramesOf(config_.cut_search_ms), count - 1);
  int64_t quietest = count - 1;
  for (int64_t i = count - 1; i >= count - window; --i) {
    if (energy_db_[i] < energy_db_[quietest]) quietest = i;  // ties keep the later frame
  }
  const int64_t cut_frame = first_frame_ + quietest;
  const int64_t cut_sample = cut_frame * frame_samples_;

  // Voiced frames after the cut belong to the segment that continues.
  std::vector<double> rest(energy_db_.begin() + quietest, energy_db_.end());
  std::vector<uint8_t> rest_voiced(voiced_flags_.begin() + quietest, voiced_flags_.end());
  int64_t voiced_after = 0;  // speech frames, as counted in voiced_frames_
  bool rest_has_voice = false;
  for (int64_t i = quietest; i < count; ++i) {
    const uint8_t flag = voiced_flags_[static_cast<size_t>(i)];
    if (flag == kSpeechFrame) ++voiced_after;
    if (flag != kSilentFrame) rest_has_voice = true;
  }
  // A segment that already produced partials must end in a final, whatever the cut leaves it.
  const bool was_confirmed = segment_confirmed();
  voiced_frames_ -= voiced_after;
  const int64_t last_voiced = last_voiced_frame_;
  CloseSegment(cut_sample, true, was_confirmed, events);

  open_ = true;
  start_sample_ = cut_sample;
  first_frame_ = cut_frame;
  energy_db_ = std::move(rest);
  voiced_flags_ = std::move(rest_voiced);
  voiced_frames_ = voiced_after;
  last_voiced_frame_ = rest_has_voice ? last_voiced : cut_frame - 1;
}

void SpeechSegmenter::TrimHistory() {
  int64_t keep_from =
      open_ ? start_sample_ : (frames_done_ - FramesOf(config_.pre_padding_ms)) * frame_samples_;
  keep_from = std::max<int64_t>(keep_from, 0);
  // Erase in large steps so that trimming stays linear in the input length.
  if (keep_from - history_start_ < 16 * frame_samples_ * 100) return;
  history_.erase(history_.begin(), history_.begin() + (keep_from - history_start_));
  history_start_ = keep_from;
}

}  // namespace eddy
