#include "eddy/engine.h"

#include <algorithm>
#include <stdexcept>

namespace eddy {

ModelBackend::ModelBackend(std::shared_ptr<const AudioModel> model, GenerationSampling sampling,
                           uint64_t seed)
    : model_(std::move(model)),
      sampling_(sampling),
      sampler_(seed),
      cache_(model_->backbone().NewCache()),
      head_state_(model_->audio_head().NewState()) {}

void ModelBackend::set_cancel_flag(const std::atomic<bool>* flag) {
  cancel_ = flag;
  cache_.set_cancel_flag(flag);
}

void ModelBackend::Begin(const PromptInputs& prompt, const Lfm2Cache* prefix) {
  std::vector<float> rows = model_->AssembleEmbeddings(prompt, cancel_);
  const size_t hidden = model_->hidden_size();
  if (prefix != nullptr) {
    const size_t skip = static_cast<size_t>(prefix->position());
    if (skip * hidden > rows.size()) {
      throw std::invalid_argument("cached prefix is longer than the prompt");
    }
    cache_.Restore(*prefix);
    rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(skip * hidden));
  } else {
    cache_ = model_->backbone().NewCache();
    cache_.set_cancel_flag(cancel_);
  }
  if (rows.empty()) throw std::invalid_argument("empty prompt: nothing to generate from");
  pending_ = std::move(rows);
}

void ModelBackend::Advance() {
  logits_are_last_ = false;
  const int hidden = model_->hidden_size();
  const int n = static_cast<int>(pending_.size() / hidden);
  if (n == 0) throw std::logic_error("Advance() without pending input");
  hidden_.resize(pending_.size());
  model_->backbone().Forward(pending_.data(), n, cache_, hidden_.data());
  last_.assign(hidden_.end() - hidden, hidden_.end());
  pending_.clear();
  if (trace_ != nullptr) trace_->last_hidden.push_back(last_);
}

bool ModelBackend::CanVerifyDrafts() const {
  if (trace_ != nullptr || !sampling_.text.greedy()) return false;
  return allow_inexact_drafts_ || model_->backbone().rows_independent_of_batch();
}

int ModelBackend::AdvanceWithDraft(const std::vector<int>& draft) {
  if (draft.empty() || !CanVerifyDrafts()) {
    Advance();
    return 0;
  }
  const Lfm2Model& backbone = model_->backbone();
  const int hidden = model_->hidden_size();
  const int pending_rows = static_cast<int>(pending_.size() / hidden);
  if (pending_rows == 0) throw std::logic_error("AdvanceWithDraft() without pending input");
  const int k = static_cast<int>(draft.size());
  pending_.resize(static_cast<size_t>(pending_rows + k) * hidden);
  backbone.EmbedText(draft, pending_.data() + static_cast<size_t>(pending_rows) * hidden);
  const int start = cache_.position();
  const int rows = pending_rows + k;
  hidden_.resize(pending_.size());
  cache_.set_rewindable(true);
  backbone.Forward(pending_.data(), rows, cache_, hidden_.data());
  pending_.clear();
  // Row pending_rows - 1 + i predicts the token after draft[0..i-1].
  const int vocab = backbone.vocab_size();
  logits_.resize(static_cast<size_t>(k + 1) * vocab);
  const float* first = hidden_.data() + static_cast<size_t>(pending_rows - 1) * hidden;
  backbone.TextLogits(first, k + 1, logits_.data());
  int kept = 0;
  while (kept < k && sampler_.Sample(logits_.data() + static_cast<size_t>(kept) * vocab, vocab,
                                     sampling_.text) == draft[static_cast<size_t>(kept)]) {
    ++kept;
  }
  draft_tokens_kept_ += kept;
  backbone.Rewind(cache_, start + pending_rows + kept);
  cache_.set_rewindable(false);
  const float* last = first + static_cast<size_t>(kept) * hidden;
  last_.assign(last, last + hidden);
  // Row `kept` already holds the logits SampleText() would compute from last_.
  std::copy_n(logits_.begin() + static_cast<ptrdiff_t>(kept) * vocab, vocab, logits_.begin());
  logits_.resize(static_cast<size_t>(vocab));
  logits_are_last_ = true;
  return kept;
}

int ModelBackend::SampleText() {
  if (!logits_are_last_) {
    logits_.resize(model_->backbone().vocab_size());
    model_->backbone().TextLogits(last_.data(), logits_.data());
  }
  logits_are_last_ = false;
  if (trace_ != nullptr) trace_->text_logits.push_back(logits_);
  return sampler_.Sample(logits_.data(), static_cast<int>(logits_.size()), sampling_.text);
}

std::vector<int> ModelBackend::SampleAudioFrame() {
  AudioFrame frame = model_->audio_head().SampleFrame(last_.data(), sampling_.audio, sampler_,
                                                      head_state_, trace_ != nullptr);
  if (trace_ != nullptr) trace_->audio_logits.push_back(std::move(frame.logits));
  return frame.codes;
}

void ModelBackend::FeedText(int id) {
  pending_.resize(model_->hidden_size());
  model_->backbone().EmbedText({id}, pending_.data());
}

void ModelBackend::FeedAudioFrame(const std::vector<int>& codes) {
  pending_.resize(model_->hidden_size());
  model_->audio_embedding().EmbedFrame(codes.data(), pending_.data());
}

}  // namespace eddy
