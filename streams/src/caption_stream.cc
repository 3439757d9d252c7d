#include "eddy/caption_stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace eddy {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsWordBoundary(const std::string& text, size_t pos) {
  return pos == 0 || pos >= text.size() || IsSpace(text[pos]) || IsSpace(text[pos - 1]);
}

double Seconds(int64_t samples) {
  return static_cast<double>(samples) / static_cast<double>(kCaptionSampleRate);
}

}  // namespace

std::string StablePrefix(const std::vector<std::string>& hypotheses) {
  if (hypotheses.empty()) return {};
  size_t common = hypotheses.front().size();
  for (const std::string& h : hypotheses) {
    size_t i = 0;
    const std::string& first = hypotheses.front();
    while (i < common && i < h.size() && h[i] == first[i]) ++i;
    common = i;
  }
  auto boundary_everywhere = [&](size_t pos) {
    return std::all_of(hypotheses.begin(), hypotheses.end(),
                       [&](const std::string& h) { return IsWordBoundary(h, pos); });
  };
  while (common > 0 && !boundary_everywhere(common)) --common;
  std::string prefix = hypotheses.front().substr(0, common);
  while (!prefix.empty() && IsSpace(prefix.back())) prefix.pop_back();
  return prefix;
}

std::string CaptionEvent::ToJson() const {
  nlohmann::ordered_json j;
  j["type"] = type == CaptionEventType::kFinal ? "final" : "partial";
  j["id"] = id;
  j["start"] = start;
  j["end"] = end;
  j["text"] = text;
  j["stable"] = stable;
  // A transcriber may cut a multi-byte character; replace rather than fail the whole line.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void CaptionConfig::Validate() const {
  segmenter.Validate();
  if (partial_interval_ms < 0) {
    throw std::invalid_argument("CaptionConfig.partial_interval_ms: must not be negative");
  }
  if (partial_interval_ms > 0 && partial_interval_ms < segmenter.frame_ms) {
    throw std::invalid_argument(
        "CaptionConfig.partial_interval_ms: must be 0 (off) or at least segmenter.frame_ms");
  }
  if (!(partial_compute_budget >= 0.0 && partial_compute_budget < 1.0)) {
    throw std::invalid_argument("CaptionConfig.partial_compute_budget: must be in [0, 1)");
  }
  if (stability_hypotheses < 1) {
    throw std::invalid_argument("CaptionConfig.stability_hypotheses: must be at least 1");
  }
}

CaptionStream::CaptionStream(const CaptionConfig& config, SegmentTranscriber& transcriber)
    : config_(config),
      transcriber_(transcriber),
      segmenter_((config.Validate(), config.segmenter)) {}

void CaptionStream::AcceptWaveform(const float* samples, size_t n, int sample_rate) {
  if (finished_) {
    throw std::logic_error("CaptionStream::AcceptWaveform: input already finished; call reset()");
  }
  if (sample_rate != kCaptionSampleRate) {
    throw std::invalid_argument("CaptionStream::AcceptWaveform: sample rate " +
                                std::to_string(sample_rate) +
                                " Hz; captions need 16000 Hz mono (resample before calling)");
  }
  if (n == 0) return;
  if (samples == nullptr) {
    throw std::invalid_argument("CaptionStream::AcceptWaveform: null samples with n > 0");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(samples[i])) {
      throw std::invalid_argument("CaptionStream::AcceptWaveform: sample " +
                                  std::to_string(segmenter_.samples_seen() + int64_t(i)) +
                                  " is not finite");
    }
  }
  stats_.audio_seconds += Seconds(static_cast<int64_t>(n));
  Handle(segmenter_.Feed(samples, n));
}

void CaptionStream::InputFinished() {
  if (finished_) return;
  finished_ = true;
  Handle(segmenter_.Finish());
}

void CaptionStream::ReportDroppedSamples(int64_t n) {
  if (n < 0) throw std::invalid_argument("CaptionStream::ReportDroppedSamples: negative count");
  stats_.dropped_samples += n;
}

void CaptionStream::reset() {
  segmenter_.reset();
  events_.clear();
  stats_ = CaptionStats{};
  finished_ = false;
  next_id_ = 0;
  segment_active_ = false;
  segment_start_ = -1;
  last_partial_end_ = 0;
  last_partial_voiced_end_ = 0;
  hypotheses_.clear();
  partial_interval_sum_ = 0.0;
  partial_interval_count_ = 0;
  latency_sum_ = 0.0;
  decode_sum_ = 0.0;
  speculation_ = Speculation{};
  last_partial_seconds_ = 0.0;
}

std::vector<CaptionEvent> CaptionStream::TakeEvents() {
  std::vector<CaptionEvent> out(std::make_move_iterator(events_.begin()),
                                std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

void CaptionStream::BeginSegmentIfNew(int64_t start_sample) {
  if (segment_active_) return;
  segment_active_ = true;
  segment_start_ = start_sample;
  last_partial_end_ = start_sample;
  last_partial_voiced_end_ = start_sample;
  hypotheses_.clear();
}

void CaptionStream::Handle(const std::vector<SegmentEvent>& events) {
  const int64_t interval =
      static_cast<int64_t>(config_.partial_interval_ms) * kCaptionSampleRate / 1000;
  for (const SegmentEvent& e : events) {
    switch (e.kind) {
      case SegmentEventKind::kGrew:
        BeginSegmentIfNew(e.start_sample);
        // Partials only while speech continues: trailing silence adds nothing to re-decode.
        if (interval > 0 && e.end_sample - last_partial_end_ >= interval &&
            e.last_voiced_end_sample > last_partial_voiced_end_ && PartialBudgetAllows()) {
          EmitPartial(e);
        }
        if (config_.speculative_final) SpeculateFinal(e);
        break;
      case SegmentEventKind::kCompleted:
        BeginSegmentIfNew(e.start_sample);
        EmitFinal(e);
        break;
      case SegmentEventKind::kDropped:
        break;  // too little speech: never reaches the transcriber
    }
  }
}

std::string CaptionStream::TimedTranscribe(int64_t begin, int64_t end, bool is_final,
                                           double& seconds) {
  const std::vector<float> audio = segmenter_.Audio(begin, end);
  const auto t0 = std::chrono::steady_clock::now();
  std::string text = transcriber_.Transcribe(std::span<const float>(audio), is_final);
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.transcribe_seconds += seconds;
  return text;
}

bool CaptionStream::PartialBudgetAllows() const {
  const double budget = config_.partial_compute_budget;
  if (budget <= 0.0 || last_partial_seconds_ <= 0.0) return true;
  const double rest =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - last_partial_done_).count();
  return rest >= last_partial_seconds_ * (1.0 - budget) / budget;
}

void CaptionStream::EmitPartial(const SegmentEvent& e) {
  double seconds = 0.0;
  CaptionEvent ev;
  ev.type = CaptionEventType::kPartial;
  ev.id = next_id_;
  ev.start = Seconds(e.start_sample);
  ev.end = Seconds(e.end_sample);
  ev.text = TimedTranscribe(e.start_sample, e.end_sample, false, seconds);
  last_partial_seconds_ = seconds;
  last_partial_done_ = std::chrono::steady_clock::now();
  hypotheses_.push_back(ev.text);
  const size_t k = static_cast<size_t>(config_.stability_hypotheses);
  if (hypotheses_.size() > k) hypotheses_.erase(hypotheses_.begin());
  if (hypotheses_.size() == k) ev.stable = StablePrefix(hypotheses_);

  if (last_partial_end_ > segment_start_) {  // a previous partial of this segment
    const double gap = Seconds(e.end_sample - last_partial_end_);
    partial_interval_sum_ += gap;
    ++partial_interval_count_;
    stats_.partial_interval_max_s = std::max(stats_.partial_interval_max_s, gap);
    stats_.partial_interval_mean_s = partial_interval_sum_ / double(partial_interval_count_);
  }
  ++stats_.partials;
  last_partial_end_ = e.end_sample;
  last_partial_voiced_end_ = e.last_voiced_end_sample;
  events_.push_back(std::move(ev));
}

void CaptionStream::SpeculateFinal(const SegmentEvent& e) {
  const int64_t frame =
      static_cast<int64_t>(config_.segmenter.frame_ms) * kCaptionSampleRate / 1000;
  const int64_t padding = (config_.segmenter.post_padding_ms + config_.segmenter.frame_ms - 1) /
                          config_.segmenter.frame_ms * frame;
  const int64_t final_end = e.last_voiced_end_sample + padding;
  if (e.end_sample != final_end) return;  // speech still going, or already speculated
  speculation_.start = e.start_sample;
  speculation_.end = final_end;
  speculation_.text = TimedTranscribe(e.start_sample, final_end, true, speculation_.seconds);
}

void CaptionStream::EmitFinal(const SegmentEvent& e) {
  double seconds = 0.0;
  CaptionEvent ev;
  ev.type = CaptionEventType::kFinal;
  ev.id = next_id_++;
  ev.start = Seconds(e.start_sample);
  ev.end = Seconds(e.end_sample);
  const double waited =
      Seconds(std::max<int64_t>(0, e.decided_at_sample - e.last_voiced_end_sample));
  double latency = 0.0;
  if (speculation_.start == e.start_sample && speculation_.end == e.end_sample) {
    // Decoded when the padding was in; ready then plus its decode time, shown at the endpoint.
    ev.text = speculation_.text;
    seconds = speculation_.seconds;
    latency = std::max(waited, Seconds(e.end_sample - e.last_voiced_end_sample) + seconds);
  } else {
    ev.text = TimedTranscribe(e.start_sample, e.end_sample, true, seconds);
    latency = waited + seconds;
  }
  speculation_ = Speculation{};
  ev.stable = ev.text;
  ++stats_.finals;
  latency_sum_ += latency;
  decode_sum_ += seconds;
  stats_.final_latency_max_s = std::max(stats_.final_latency_max_s, latency);
  stats_.final_latency_mean_s = latency_sum_ / double(stats_.finals);
  stats_.final_decode_mean_s = decode_sum_ / double(stats_.finals);
  segment_active_ = false;
  hypotheses_.clear();
  events_.push_back(std::move(ev));
}

}  // namespace eddy
