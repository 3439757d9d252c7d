// LFM2.5-Audio detokenizer (spec_audio.md §6). Tensor names follow the reference module's
// attributes: emb.emb, lfm.* (an LFM2 backbone), lin, istft.window.
#include "eddy/lfm25_detokenizer.h"

#include <cmath>
#include <string>

#include "eddy/istft.h"
#include "eddy/lfm2.h"
#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "ops.h"

namespace eddy {

namespace fs = std::filesystem;

namespace {

// The stored window may be rounded to bf16; anything further from a periodic Hann is a different
// model.
constexpr float kWindowTolerance = 1e-2f;

void CheckCode(int code, int codebook, int64_t frame) {
  if (code < 0 || code >= Lfm25Detokenizer::kCodesPerCodebook) {
    const std::string where = frame >= 0 ? " (frame " + std::to_string(frame) + ")" : "";
    throw ModelError("LFM2.5 detokenizer: code " + std::to_string(code) + " of codebook " +
                     std::to_string(codebook) + where + " is outside [0, " +
                     std::to_string(Lfm25Detokenizer::kCodesPerCodebook) + ")");
  }
}

std::vector<float> LoadWindow(const SafeTensors& st) {
  const char* name = "istft.window";
  if (!st.Has(name)) return PeriodicHann(Lfm25Detokenizer::kNFft);
  std::vector<float> window = ToFloat32(st.Get(name, {Lfm25Detokenizer::kNFft}));
  const std::vector<float> hann = PeriodicHann(Lfm25Detokenizer::kNFft);
  for (size_t i = 0; i < window.size(); ++i) {
    if (!(std::fabs(window[i] - hann[i]) <= kWindowTolerance)) {
      throw ModelError(st.path().string() + ": istft.window[" + std::to_string(i) +
                       "] = " + std::to_string(window[i]) + " is not a periodic Hann window of " +
                       std::to_string(Lfm25Detokenizer::kNFft) + " samples");
    }
  }
  return window;
}

}  // namespace

struct Lfm25Detokenizer::Weights {
  ops::WeightMatrix embedding;  // emb.emb.weight [codebooks * 2048, hidden]
  ops::Linear lin;              // [2 * bins, hidden] + bias
};

Lfm25Detokenizer::Lfm25Detokenizer() = default;
Lfm25Detokenizer::~Lfm25Detokenizer() = default;

int Lfm25Detokenizer::hidden_size() const {
  return config_.lfm.hidden_size;
}

std::shared_ptr<const Lfm25Detokenizer> Lfm25Detokenizer::LoadFromModelDir(const fs::path& dir) {
  const fs::path sub = dir / kDirName;
  if (!fs::exists(sub)) return nullptr;
  if (!fs::is_directory(sub)) {
    throw ModelError(sub.string() + ": expected a directory with the LFM2.5 audio detokenizer");
  }
  return Load(sub);
}

std::shared_ptr<const Lfm25Detokenizer> Lfm25Detokenizer::Load(const fs::path& detokenizer_dir) {
  const fs::path config_path = detokenizer_dir / "config.json";
  const fs::path weights_path = detokenizer_dir / "model.safetensors";
  for (const fs::path& p : {config_path, weights_path}) {
    if (!fs::is_regular_file(p)) {
      throw ModelError(p.string() +
                       ": missing (an LFM2.5 audio detokenizer needs config.json and "
                       "model.safetensors)");
    }
  }
  std::shared_ptr<Lfm25Detokenizer> d(new Lfm25Detokenizer());
  d->config_ = StandaloneLfmConfig::Load(config_path);
  d->sliding_window_ = d->config_.sliding_window.value_or(kDefaultSlidingWindow);
  d->st_ = std::make_shared<const SafeTensors>(SafeTensors::Open(weights_path));
  Lfm2Options options;
  options.sliding_window = d->sliding_window_;
  // At most window - 1 cached positions: an f16 cache would save nothing and cost exactness.
  options.kv_cache = "f32";
  d->lfm_ = Lfm2Model::Load(d->st_, d->config_.lfm, options);
  const int hidden = d->config_.lfm.hidden_size;
  auto w = std::make_unique<Weights>();
  w->embedding =
      ops::WeightMatrix::Load(*d->st_, "emb.emb.weight", {kCodebooks * kCodesPerCodebook, hidden});
  w->lin = ops::Linear::Load(*d->st_, "lin", 2 * kBins, hidden, /*has_bias=*/true);
  d->w_ = std::move(w);
  d->window_ = LoadWindow(*d->st_);
  return d;
}

void Lfm25Detokenizer::EmbedFrame(const int* codes, float* out) const {
  for (int k = 0; k < kCodebooks; ++k) CheckCode(codes[k], k, -1);
  const int hidden = hidden_size();
  std::fill(out, out + hidden, 0.0f);
  for (int k = 0; k < kCodebooks; ++k) w_->embedding.AddRow(codes[k] + kCodesPerCodebook * k, out);
  for (int i = 0; i < hidden; ++i) out[i] /= static_cast<float>(kCodebooks);
}

void Lfm25Detokenizer::Project(const float* hidden, int n, float* spectrum) const {
  w_->lin.Forward(hidden, n, spectrum);
}

void Lfm25SpectrumToComplex(const float* spectrum, int n, float* real, float* imag) {
  constexpr int bins = Lfm25Detokenizer::kBins;
  for (int t = 0; t < n; ++t) {
    const float* log_magnitude = spectrum + static_cast<size_t>(t) * 2 * bins;
    const float* phase = log_magnitude + bins;
    for (int k = 0; k < bins; ++k) {
      const float magnitude = std::exp(log_magnitude[k]);
      real[static_cast<size_t>(t) * bins + k] = magnitude * std::cos(phase[k]);
      imag[static_cast<size_t>(t) * bins + k] = magnitude * std::sin(phase[k]);
    }
  }
}

std::vector<float> Lfm25Detokenizer::Decode(const std::vector<int>& codes, int num_frames,
                                            Lfm25Intermediates* intermediates) const {
  if (num_frames < 0 || codes.size() != static_cast<size_t>(kCodebooks) * num_frames) {
    throw ModelError("LFM2.5 detokenizer: expected " + std::to_string(kCodebooks) + " x " +
                     std::to_string(num_frames) + " codes, got " + std::to_string(codes.size()));
  }
  for (int k = 0; k < kCodebooks; ++k) {
    for (int t = 0; t < num_frames; ++t) {
      CheckCode(codes[static_cast<size_t>(k) * num_frames + t], k, t);
    }
  }
  if (num_frames == 0) return {};
  const int hidden = hidden_size(), positions = kUpsample * num_frames;
  std::vector<float> embeddings(static_cast<size_t>(positions) * hidden);
  std::vector<int> frame_codes(kCodebooks);
  for (int t = 0; t < num_frames; ++t) {
    for (int k = 0; k < kCodebooks; ++k) {
      frame_codes[k] = codes[static_cast<size_t>(k) * num_frames + t];
    }
    float* first = embeddings.data() + static_cast<size_t>(t) * kUpsample * hidden;
    EmbedFrame(frame_codes.data(), first);
    // Nearest-exact interpolation by an integer factor repeats each frame.
    for (int r = 1; r < kUpsample; ++r) std::copy(first, first + hidden, first + r * hidden);
  }
  Lfm2Cache cache = lfm_->NewCache();
  std::vector<float> states(embeddings.size());
  lfm_->Forward(embeddings.data(), positions, cache, states.data());
  std::vector<float> spectrum(static_cast<size_t>(positions) * 2 * kBins);
  Project(states.data(), positions, spectrum.data());
  std::vector<float> real(static_cast<size_t>(positions) * kBins), imag(real.size());
  Lfm25SpectrumToComplex(spectrum.data(), positions, real.data(), imag.data());
  IstftStream istft(window_, kHop);
  std::vector<float> samples;
  samples.reserve(static_cast<size_t>(positions) * kHop);
  for (int p = 0; p < positions; ++p) {
    istft.Step(real.data() + static_cast<size_t>(p) * kBins,
               imag.data() + static_cast<size_t>(p) * kBins, samples);
  }
  istft.Flush(samples);
  if (intermediates) {
    intermediates->embeddings = std::move(embeddings);
    intermediates->hidden = std::move(states);
    intermediates->spectrum = std::move(spectrum);
  }
  return samples;
}

struct Lfm25DetokenizerStream::State {
  Lfm2Cache cache;
  IstftStream istft;
  std::vector<float> embeddings, states, spectrum, real, imag;
  int64_t frames = 0;

  explicit State(const Lfm25Detokenizer& d)
      : cache(d.backbone().NewCache()), istft(d.window(), Lfm25Detokenizer::kHop) {
    const size_t rows = Lfm25Detokenizer::kUpsample;
    embeddings.resize(rows * d.hidden_size());
    states.resize(embeddings.size());
    spectrum.resize(rows * 2 * Lfm25Detokenizer::kBins);
    real.resize(rows * Lfm25Detokenizer::kBins);
    imag.resize(real.size());
  }
};

Lfm25DetokenizerStream::Lfm25DetokenizerStream(std::shared_ptr<const Lfm25Detokenizer> detokenizer)
    : detokenizer_(std::move(detokenizer)) {
  if (!detokenizer_) throw ModelError("Lfm25DetokenizerStream: no detokenizer");
  state_ = std::make_unique<State>(*detokenizer_);
}

Lfm25DetokenizerStream::~Lfm25DetokenizerStream() = default;
Lfm25DetokenizerStream::Lfm25DetokenizerStream(Lfm25DetokenizerStream&&) noexcept = default;
Lfm25DetokenizerStream& Lfm25DetokenizerStream::operator=(Lfm25DetokenizerStream&&) noexcept =
    default;

int64_t Lfm25DetokenizerStream::frames_decoded() const {
  return state_->frames;
}

void Lfm25DetokenizerStream::Step(const int* codes, std::vector<float>& out) {
  const Lfm25Detokenizer& d = *detokenizer_;
  State& s = *state_;
  constexpr int rows = Lfm25Detokenizer::kUpsample, bins = Lfm25Detokenizer::kBins;
  const int hidden = d.hidden_size();
  d.EmbedFrame(codes, s.embeddings.data());  // throws before any state changes
  for (int r = 1; r < rows; ++r) {
    std::copy(s.embeddings.begin(), s.embeddings.begin() + hidden,
              s.embeddings.begin() + static_cast<std::ptrdiff_t>(r) * hidden);
  }
  d.backbone().Forward(s.embeddings.data(), rows, s.cache, s.states.data());
  d.Project(s.states.data(), rows, s.spectrum.data());
  Lfm25SpectrumToComplex(s.spectrum.data(), rows, s.real.data(), s.imag.data());
  for (int r = 0; r < rows; ++r) {
    s.istft.Step(s.real.data() + r * bins, s.imag.data() + r * bins, out);
  }
  ++s.frames;
}

std::vector<float> Lfm25DetokenizerStream::Step(const std::vector<int>& codes) {
  if (codes.size() != static_cast<size_t>(num_codebooks())) {
    throw ModelError("LFM2.5 detokenizer: a frame has " + std::to_string(num_codebooks()) +
                     " codes, got " + std::to_string(codes.size()));
  }
  std::vector<float> out;
  Step(codes.data(), out);
  return out;
}

void Lfm25DetokenizerStream::Flush(std::vector<float>& out) {
  state_->istft.Flush(out);
  Reset();
}

std::vector<float> Lfm25DetokenizerStream::Flush() {
  std::vector<float> out;
  Flush(out);
  return out;
}

void Lfm25DetokenizerStream::Reset() {
  state_->cache.Reset();
  state_->istft.Reset();
  state_->frames = 0;
}

}  // namespace eddy
