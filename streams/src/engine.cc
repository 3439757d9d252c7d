#include "eddy/engine.h"

#include <stdexcept>

namespace eddy {

ModelBackend::ModelBackend(std::shared_ptr<const AudioModel> model, GenerationSampling sampling,
                           uint64_t seed)
    : model_(std::move(model)),
      sampling_(sampling),
      sampler_(seed),
      cache_(model_->backbone().NewCache()),
      head_state_(model_->audio_head().NewState()) {}

void ModelBackend::Begin(const PromptInputs& prompt, const Lfm2Cache* prefix) {
  std::vector<float> rows = model_->AssembleEmbeddings(prompt);
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
  }
  if (rows.empty()) throw std::invalid_argument("empty prompt: nothing to generate from");
  pending_ = std::move(rows);
}

void ModelBackend::Advance() {
  const int hidden = model_->hidden_size();
  const int n = static_cast<int>(pending_.size() / hidden);
  if (n == 0) throw std::logic_error("Advance() without pending input");
  hidden_.resize(pending_.size());
  model_->backbone().Forward(pending_.data(), n, cache_, hidden_.data());
  last_.assign(hidden_.end() - hidden, hidden_.end());
  pending_.clear();
  if (trace_ != nullptr) trace_->last_hidden.push_back(last_);
}

int ModelBackend::SampleText() {
  logits_.resize(model_->backbone().vocab_size());
  model_->backbone().TextLogits(last_.data(), logits_.data());
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
