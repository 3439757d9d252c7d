#include "eddy/caption_stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

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

// One long-lived thread for the stream's background decodes (partials and speculative finals), so
// that the transcriber's per-thread scratch and the thread's OpenMP team are made once, not once
// per decode. At most one job at a time; the stream reads a job's results only once it is done.
struct CaptionStream::BackgroundWorker {
  std::mutex mu;
  std::condition_variable cv;
  bool has_job = false;  // submitted, not yet finished
  bool quit = false;
  SegmentEvent event;
  std::vector<float> audio;
  bool is_final = false;  // a speculative final rather than a partial
  std::atomic<bool> cancel{false};
  std::atomic<bool> done{false};
  std::string text;
  double seconds = 0.0;
  std::thread thread;

  explicit BackgroundWorker(SegmentTranscriber& transcriber)
      : thread([this, &transcriber] { Run(transcriber); }) {}
  ~BackgroundWorker() {
    {
      std::lock_guard<std::mutex> lock(mu);
      quit = true;
    }
    cv.notify_all();
    thread.join();
  }

  void Run(SegmentTranscriber& transcriber) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return quit || has_job; });
      if (quit) return;
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      std::string result;
      try {
        result = transcriber.Transcribe(std::span<const float>(audio), is_final, &cancel);
      } catch (...) {
        // Background results are expendable: a failed speculation is decoded again at the
        // endpoint on the stream's thread, where a broken transcriber's exception reaches the
        // caller.
        cancel = true;
      }
      lock.lock();
      text = std::move(result);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      has_job = false;
      done = true;
      cv.notify_all();
    }
  }

  void Submit(const SegmentEvent& e, std::vector<float> samples, bool final_decode) {
    {
      std::lock_guard<std::mutex> lock(mu);
      event = e;
      audio = std::move(samples);
      is_final = final_decode;
      cancel = false;
      done = false;
      has_job = true;
    }
    cv.notify_all();
  }

  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return !has_job; });
  }
};

CaptionStream::CaptionStream(const CaptionConfig& config, SegmentTranscriber& transcriber)
    : config_(config),
      transcriber_(transcriber),
      segmenter_((config.Validate(), config.segmenter)) {}

CaptionStream::~CaptionStream() {
  CancelBackgroundJob();  // then the worker's destructor ends its thread
}

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
  CollectBackgroundJob();
  Handle(segmenter_.Finish());
}

void CaptionStream::ReportDroppedSamples(int64_t n) {
  if (n < 0) throw std::invalid_argument("CaptionStream::ReportDroppedSamples: negative count");
  stats_.dropped_samples += n;
}

void CaptionStream::reset() {
  CancelBackgroundJob();
  segmenter_.reset();
  events_.clear();
  stats_ = CaptionStats{};
  finished_ = false;
  next_id_ = 0;
  segment_active_ = false;
  segment_start_ = -1;
  last_partial_end_ = 0;
  last_partial_voiced_end_ = 0;
  last_partial_shown_ = 0;
  hypotheses_.clear();
  partial_interval_sum_ = 0.0;
  partial_interval_count_ = 0;
  latency_sum_ = 0.0;
  decode_sum_ = 0.0;
  speculation_ = Speculation{};
  last_partial_seconds_ = 0.0;
}

bool CaptionStream::HasEvents() {
  CollectBackgroundJob();
  return !events_.empty();
}

std::vector<CaptionEvent> CaptionStream::TakeEvents() {
  CollectBackgroundJob();
  std::vector<CaptionEvent> out(std::make_move_iterator(events_.begin()),
                                std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

void CaptionStream::BeginSegmentIfNew(int64_t start_sample) {
  if (segment_active_) return;
  CancelBackgroundJob();  // of the previous segment; none should be left
  segment_active_ = true;
  segment_start_ = start_sample;
  last_partial_end_ = start_sample;
  last_partial_voiced_end_ = start_sample;
  last_partial_shown_ = start_sample;
  hypotheses_.clear();
  transcriber_.StartSegment();
}

void CaptionStream::Handle(const std::vector<SegmentEvent>& events) {
  const int64_t interval =
      static_cast<int64_t>(config_.partial_interval_ms) * kCaptionSampleRate / 1000;
  for (const SegmentEvent& e : events) {
    CollectBackgroundJob();
    switch (e.kind) {
      case SegmentEventKind::kGrew:
        BeginSegmentIfNew(e.start_sample);
        // Speech resumed after a speculated final: that decode is stale, and stopping it frees
        // the cores for the partials.
        if (SpeculationRunning() && e.last_voiced_end_sample > speculation_.voiced_end) {
          CancelBackgroundJob();
        }
        // Partials only while someone speaks (the newest frame is voiced): trailing silence adds
        // nothing to re-decode, and a partial begun in a pause would compete with the final's
        // decode if the pause turns out to be the end.
        if (interval > 0 && !job_running_ && e.end_sample - last_partial_end_ >= interval &&
            e.last_voiced_end_sample == e.end_sample &&
            e.last_voiced_end_sample > last_partial_voiced_end_ && PartialBudgetAllows()) {
          if (config_.background_partials) {
            StartBackgroundJob(e, /*is_final=*/false);
          } else {
            EmitPartial(e);
          }
        }
        if (config_.speculative_final) SpeculateFinal(e);
        break;
      case SegmentEventKind::kCompleted: {
        BeginSegmentIfNew(e.start_sample);
        // The speculated final of exactly this range is waited for, anything else is cancelled.
        const bool speculated = SpeculationRunning() && speculation_.start == e.start_sample &&
                                speculation_.end == e.end_sample;
        EmitFinal(e, speculated ? WaitForBackgroundJob() : CancelBackgroundJob());
        break;
      }
      case SegmentEventKind::kDropped:
        break;  // too little speech: never reaches the transcriber
    }
  }
}

std::string CaptionStream::TimedTranscribe(int64_t begin, int64_t end, bool is_final,
                                           double& seconds) {
  const std::vector<float> audio = segmenter_.Audio(begin, end);
  const auto t0 = std::chrono::steady_clock::now();
  std::string text = transcriber_.Transcribe(std::span<const float>(audio), is_final, nullptr);
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
  std::string text = TimedTranscribe(e.start_sample, e.end_sample, false, seconds);
  RecordPartial(e, std::move(text), seconds);
}

bool CaptionStream::SpeculationRunning() const {
  return job_running_ && worker_->is_final;  // is_final changes only between jobs
}

void CaptionStream::StartBackgroundJob(const SegmentEvent& e, bool is_final) {
  if (!worker_) worker_ = std::make_unique<BackgroundWorker>(transcriber_);
  worker_->Submit(e, segmenter_.Audio(e.start_sample, e.end_sample), is_final);
  job_running_ = true;
}

void CaptionStream::CollectBackgroundJob() {
  if (!job_running_ || !worker_->done) return;
  worker_->WaitDone();  // done is set under the lock right after the results; this syncs them
  FinishBackgroundJob();
}

void CaptionStream::FinishBackgroundJob() {
  job_running_ = false;
  stats_.transcribe_seconds += worker_->seconds;
  if (worker_->is_final) {
    if (worker_->cancel) {
      speculation_ = Speculation{};
    } else {
      speculation_.text = std::move(worker_->text);
      speculation_.seconds += worker_->seconds;
    }
  } else if (!worker_->cancel) {
    RecordPartial(worker_->event, std::move(worker_->text), worker_->seconds);
  }
}

double CaptionStream::WaitForBackgroundJob() {
  if (!job_running_) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  worker_->WaitDone();
  FinishBackgroundJob();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double CaptionStream::CancelBackgroundJob() {
  if (!job_running_) return 0.0;
  worker_->cancel = true;
  return WaitForBackgroundJob();
}

void CaptionStream::RecordPartial(const SegmentEvent& e, std::string text, double seconds) {
  CaptionEvent ev;
  ev.type = CaptionEventType::kPartial;
  ev.id = next_id_;
  ev.start = Seconds(e.start_sample);
  ev.end = Seconds(e.end_sample);
  ev.text = std::move(text);
  last_partial_seconds_ = seconds;
  last_partial_done_ = std::chrono::steady_clock::now();
  hypotheses_.push_back(ev.text);
  const size_t k = static_cast<size_t>(config_.stability_hypotheses);
  if (hypotheses_.size() > k) hypotheses_.erase(hypotheses_.begin());
  if (hypotheses_.size() == k) ev.stable = StablePrefix(hypotheses_);

  // Where the partial became visible on the stream clock: at its audio's end when decoded in
  // line, later when it ran beside the audio.
  const int64_t shown = config_.background_partials ? segmenter_.samples_seen() : e.end_sample;
  if (last_partial_end_ > segment_start_) {  // a previous partial of this segment
    const double gap = Seconds(shown - last_partial_shown_);
    partial_interval_sum_ += gap;
    ++partial_interval_count_;
    stats_.partial_interval_max_s = std::max(stats_.partial_interval_max_s, gap);
    stats_.partial_interval_mean_s = partial_interval_sum_ / double(partial_interval_count_);
  }
  ++stats_.partials;
  last_partial_shown_ = shown;
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
  const double waited = CancelBackgroundJob();
  speculation_ = Speculation{};
  speculation_.start = e.start_sample;
  speculation_.end = final_end;
  speculation_.voiced_end = e.last_voiced_end_sample;
  speculation_.seconds = waited;
  if (config_.background_partials) {
    StartBackgroundJob(e, /*is_final=*/true);
    return;
  }
  double seconds = 0.0;
  speculation_.text = TimedTranscribe(e.start_sample, final_end, true, seconds);
  speculation_.seconds += seconds;
}

void CaptionStream::EmitFinal(const SegmentEvent& e, double waited_for_partial) {
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
    seconds += waited_for_partial;
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
