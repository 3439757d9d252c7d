// Live captions by segmentation and re-decoding: the LFM2-Audio encoder is not causal, so the open
// segment is re-transcribed from its start at a steady interval (partials) and once more at its
// endpoint (the final). This file holds everything that does not depend on the model; the engine
// plugs in through SegmentTranscriber. Event schema: docs/caption-events.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eddy/speech_segmenter.h"

namespace eddy {

// The decoder seen by a caption stream. Each call is independent: `samples_16k` is the whole
// segment so far (16 kHz mono, from the segment start); is_final marks the last call for it.
// Calls never overlap, but partials and speculative finals may run on another thread than the
// stream's (see CaptionConfig::background_partials); `cancel`, when given, may be set while it
// runs, and the call should then return soon (its result is thrown away).
class SegmentTranscriber {
 public:
  virtual ~SegmentTranscriber() = default;
  virtual std::string Transcribe(std::span<const float> samples_16k, bool is_final,
                                 const std::atomic<bool>* cancel) = 0;
  // A new segment begins: calls until the next one re-transcribe growing audio of the same
  // speech, so a transcriber may use its previous result as a draft.
  virtual void StartSegment() {}
};

enum class CaptionEventType { kPartial, kFinal };

struct CaptionEvent {
  CaptionEventType type = CaptionEventType::kPartial;
  int64_t id = 0;      // segment number, from 0; partials share their segment's final id
  double start = 0.0;  // seconds of input audio: segment start sample / 16000
  double end = 0.0;    // seconds: end of the audio given to the transcriber
  std::string text;
  std::string stable;  // prefix of text agreed by the last hypotheses; == text for a final

  // One line of JSON: {"type","id","start","end","text","stable"}.
  std::string ToJson() const;
};

struct CaptionConfig {
  SegmenterConfig segmenter;
  int partial_interval_ms = 500;  // new audio between partial re-transcriptions; 0 disables
  int stability_hypotheses = 2;   // consecutive hypotheses that must agree on a stable prefix
  // Once the post-padding after the last voiced frame is in, the final's audio is known unless
  // speech resumes: transcribe it then, during the rest of the trailing silence, and reuse the
  // text if the endpoint confirms that range. Finals are the same either way; they only arrive
  // sooner, at the cost of a wasted decode when a pause turns out to be shorter than the
  // endpoint silence.
  bool speculative_final = true;
  // Live sources: the largest share of wall time partial decodes may take (0 = no limit). After a
  // partial that took t seconds, the next one waits until t * (1 - budget) / budget seconds have
  // passed, so that re-decoding never makes the stream fall behind its source. This makes the
  // partials depend on timing; leave it 0 for reproducible runs.
  double partial_compute_budget = 0.0;
  // Live sources: partials and speculative finals run on a worker thread while audio keeps
  // flowing through the segmenter, so that an endpoint is seen on time; a final (or its
  // speculation) cancels a partial still running, and speech that resumes cancels a speculation.
  // Partials then depend on timing; leave it off for reproducible runs.
  bool background_partials = false;

  // Throws std::invalid_argument naming the first bad field.
  void Validate() const;
};

struct CaptionStats {
  double audio_seconds = 0.0;       // input accepted
  double transcribe_seconds = 0.0;  // wall time inside SegmentTranscriber
  int64_t partials = 0;
  int64_t finals = 0;
  // Partial interval: input-audio seconds seen between consecutive partials of one segment (the
  // wall time between them on a live source).
  double partial_interval_mean_s = 0.0;
  double partial_interval_max_s = 0.0;
  // Endpoint-to-final: from the last voiced sample to the final, counting input audio (on a live
  // source, wall time) until its transcription started plus the wall time it took, including
  // waiting for a cancelled partial to stop.
  double final_latency_mean_s = 0.0;
  double final_latency_max_s = 0.0;
  double final_decode_mean_s = 0.0;  // the wall-time part alone
  int64_t dropped_samples = 0;       // reported by the caller (ring overruns and the like)
  double dropped_seconds() const {
    return static_cast<double>(dropped_samples) / kCaptionSampleRate;
  }
  // Wall time spent transcribing per second of input; < 1 keeps up with a live source.
  double real_time_factor() const {
    return audio_seconds > 0.0 ? transcribe_seconds / audio_seconds : 0.0;
  }
};

// All per-stream caption state. One thread at a time. Audio must be 16 kHz mono float: the caller
// resamples (audio_io has libsamplerate); other rates are rejected. An exception from the
// transcriber propagates out of AcceptWaveform/InputFinished; call reset() before reusing the
// stream after one.
class CaptionStream {
 public:
  // `transcriber` must outlive the stream.
  CaptionStream(const CaptionConfig& config, SegmentTranscriber& transcriber);
  ~CaptionStream();
  CaptionStream(const CaptionStream&) = delete;
  CaptionStream& operator=(const CaptionStream&) = delete;

  // Throws std::invalid_argument for a rate other than 16000 and std::logic_error after
  // InputFinished() without reset().
  void AcceptWaveform(const float* samples, size_t n, int sample_rate);
  // Ends the input: closes the open segment (its final is emitted if it holds enough speech).
  void InputFinished();
  // Samples the caller lost before they reached AcceptWaveform; they only enter the stats, the
  // stream clock counts delivered samples (feed zeros instead to keep the clock on wall time).
  void ReportDroppedSamples(int64_t n);
  void reset();

  // Events produced since the last call, in order (including a background partial that has
  // finished since).
  std::vector<CaptionEvent> TakeEvents();
  bool HasEvents();
  const CaptionStats& stats() const { return stats_; }
  const CaptionConfig& config() const { return config_; }
  bool input_finished() const { return finished_; }

 private:
  void Handle(const std::vector<SegmentEvent>& events);
  void EmitPartial(const SegmentEvent& e);
  void StartBackgroundJob(const SegmentEvent& e, bool is_final);
  void CollectBackgroundJob();  // takes its results if it has finished
  void FinishBackgroundJob();   // a partial is emitted, a speculated final kept
  // Both return the seconds spent waiting for the job to end.
  double WaitForBackgroundJob();
  double CancelBackgroundJob();
  bool SpeculationRunning() const;  // a speculated final is decoding on the worker
  void RecordPartial(const SegmentEvent& e, std::string text, double seconds);
  void EmitFinal(const SegmentEvent& e, double waited_for_partial);
  std::string TimedTranscribe(int64_t begin, int64_t end, bool is_final, double& seconds);
  void BeginSegmentIfNew(int64_t start_sample);

  CaptionConfig config_;
  SegmentTranscriber& transcriber_;
  SpeechSegmenter segmenter_;
  std::deque<CaptionEvent> events_;
  CaptionStats stats_;
  bool finished_ = false;

  int64_t next_id_ = 0;
  bool segment_active_ = false;  // the open segment has an id
  int64_t segment_start_ = -1;
  int64_t last_partial_end_ = 0;  // sample where the previous partial's audio ended
  int64_t last_partial_voiced_end_ = 0;
  int64_t last_partial_shown_ = 0;       // stream clock (samples seen) when the last partial came
  std::vector<std::string> hypotheses_;  // of the open segment, oldest first
  double partial_interval_sum_ = 0.0;
  int64_t partial_interval_count_ = 0;
  double latency_sum_ = 0.0;
  double decode_sum_ = 0.0;

  void SpeculateFinal(const SegmentEvent& e);
  bool PartialBudgetAllows() const;
  std::chrono::steady_clock::time_point last_partial_done_{};
  double last_partial_seconds_ = 0.0;
  struct Speculation {
    int64_t start = -1, end = -1;  // the final range transcribed ahead of the endpoint
    int64_t voiced_end = -1;       // its last voiced sample: voice after it makes it stale
    std::string text;
    double seconds = 0.0;  // its decode wall time
  };
  Speculation speculation_;
  struct BackgroundWorker;
  std::unique_ptr<BackgroundWorker> worker_;  // made at the first background job
  bool job_running_ = false;                  // submitted to the worker and not yet collected
};

// The longest prefix that all hypotheses share and that ends on a word boundary in every one of
// them, without trailing whitespace.
std::string StablePrefix(const std::vector<std::string>& hypotheses);

}  // namespace eddy
