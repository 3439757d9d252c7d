// LFM2.5-Audio detokenizer (spec_audio.md §6): 8 codes per 12.5 Hz frame -> mean code embedding,
// each frame repeated 6 times, an LFM2 stack with a causal sliding attention window, a Linear to
// log-magnitude and phase of 641 bins, and an inverse STFT (1280 / 320, "same" padding) -> 1920
// samples per frame at 24 kHz. It replaces Mimi when a model directory has audio_detokenizer/.
// Lfm25Detokenizer holds the weights (immutable, shared by any number of streams);
// Lfm25DetokenizerStream holds one stream's state and decodes frame by frame.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "eddy/config.h"

namespace eddy {

class Lfm2Model;
class SafeTensors;

// Intermediate results of a batch decode, row-major [positions, features] with 6 positions per
// code frame.
struct Lfm25Intermediates {
  std::vector<float> embeddings;  // [6T, hidden]: mean code embedding, repeated
  std::vector<float> hidden;      // [6T, hidden]: LFM2 output after embedding_norm
  std::vector<float> spectrum;    // [6T, 1282]: `lin` output (641 log-magnitudes, 641 phases)
};

class Lfm25Detokenizer {
 public:
  // Fixed by the reference module (liquid_audio/detokenizer.py), not by the config file.
  static constexpr int kCodebooks = 8;
  static constexpr int kCodesPerCodebook = 2048;
  static constexpr int kUpsample = 6;  // backbone positions per code frame
  static constexpr int kNFft = 1280;
  static constexpr int kHop = 320;
  static constexpr int kBins = kNFft / 2 + 1;
  static constexpr int kSampleRate = 24000;
  static constexpr int kSamplesPerFrame = kUpsample * kHop;  // 1920
  // The reference's default when config.json has no sliding_window.
  static constexpr int kDefaultSlidingWindow = 30;

  // Name of the detokenizer's folder in a model directory.
  static constexpr const char* kDirName = "audio_detokenizer";

  // dir/audio_detokenizer/{config.json, model.safetensors}; nullptr when that folder is absent.
  // Throws ModelError naming the file, field or tensor when it is present but unusable.
  static std::shared_ptr<const Lfm25Detokenizer> LoadFromModelDir(const std::filesystem::path& dir);
  // A detokenizer folder itself (config.json, model.safetensors). Throws ModelError.
  static std::shared_ptr<const Lfm25Detokenizer> Load(const std::filesystem::path& detokenizer_dir);

  ~Lfm25Detokenizer();

  const StandaloneLfmConfig& config() const { return config_; }
  int hidden_size() const;
  int sliding_window() const { return sliding_window_; }
  const Lfm2Model& backbone() const { return *lfm_; }

  // codes: [kCodebooks, num_frames] row-major (codebook-major, like Mimi's input). Returns
  // num_frames * 1920 samples. A code outside [0, 2048) throws ModelError naming the codebook,
  // frame and value.
  std::vector<float> Decode(const std::vector<int>& codes, int num_frames,
                            Lfm25Intermediates* intermediates = nullptr) const;

  // The pieces of Decode, exposed for the streaming state and for tests.
  // out[hidden] = mean over codebooks k of emb.emb.weight[codes[k] + 2048 k]. Throws on bad codes.
  void EmbedFrame(const int* codes, float* out) const;
  // spectrum[n, 1282] = hidden[n, hidden] lin^T + bias.
  void Project(const float* hidden, int n, float* spectrum) const;
  // Synthesis window of the inverse STFT (the checkpoint's istft.window when stored).
  const std::vector<float>& window() const { return window_; }

 private:
  struct Weights;
  Lfm25Detokenizer();

  StandaloneLfmConfig config_;
  int sliding_window_ = kDefaultSlidingWindow;
  std::shared_ptr<const SafeTensors> st_;
  std::shared_ptr<const Lfm2Model> lfm_;
  std::unique_ptr<const Weights> w_;
  std::vector<float> window_;
};

// Splits `lin` outputs into the complex spectrum exp(log|S|) e^{i phase}: real and imag get
// kBins values per row.
void Lfm25SpectrumToComplex(const float* spectrum, int n, float* real, float* imag);

// One stream's state (spec_audio.md §6.3): the LFM2 cache (conv tails, the last window - 1 keys
// and values, the position counter) and the inverse STFT's overlap-add buffers. Every step's
// output is final: the first frame yields 1440 samples, each later one 1920, and Flush() the last
// 480, so that Steps + Flush == Lfm25Detokenizer::Decode.
class Lfm25DetokenizerStream {
 public:
  explicit Lfm25DetokenizerStream(std::shared_ptr<const Lfm25Detokenizer> detokenizer);
  ~Lfm25DetokenizerStream();
  Lfm25DetokenizerStream(Lfm25DetokenizerStream&&) noexcept;
  Lfm25DetokenizerStream& operator=(Lfm25DetokenizerStream&&) noexcept;

  int sample_rate() const { return Lfm25Detokenizer::kSampleRate; }
  int num_codebooks() const { return Lfm25Detokenizer::kCodebooks; }
  int64_t frames_decoded() const;

  // codes: num_codebooks() values (codebook 0 first). Appends the samples that became final.
  // A code outside [0, 2048) throws ModelError and leaves the state untouched.
  void Step(const int* codes, std::vector<float>& out);
  std::vector<float> Step(const std::vector<int>& codes);
  // Appends the samples still held back (480 once a frame was decoded) and ends the utterance;
  // the next Step starts a new one.
  void Flush(std::vector<float>& out);
  std::vector<float> Flush();
  // Back to the state of a fresh stream, dropping anything not yet flushed.
  void Reset();

 private:
  struct State;
  std::shared_ptr<const Lfm25Detokenizer> detokenizer_;
  std::unique_ptr<State> state_;
};

}  // namespace eddy
