#include "eddy/audio_model.h"

#include <cstring>
#include <stdexcept>

#include "ops.h"

namespace eddy {

void SetComputeThreads(int threads) {
  ops::SetNumThreads(threads);
}

int ComputeThreads() {
  return ops::NumThreads();
}

const char* QuantKernelName() {
  return quant::KernelName(quant::BestKernel());
}

double MeasureReadBandwidth(size_t bytes) {
  return ops::ReadBandwidth(bytes, 4);
}

std::shared_ptr<const AudioModel> AudioModel::Load(const std::filesystem::path& dir,
                                                   const AudioModelOptions& options) {
  auto model = std::shared_ptr<AudioModel>(new AudioModel());
  model->dir_ = dir;
  model->config_ = AudioModelConfig::Load(dir / "config.json");
  model->weights_ =
      std::make_shared<const SafeTensors>(SafeTensors::Open(dir / "model.safetensors"));
  Lfm2Options lfm_options;
  lfm_options.bf16_rope_inv_freq = options.bf16_rope_inv_freq;
  lfm_options.weight_format = options.weight_format;
  model->backbone_ = Lfm2Model::Load(model->weights_, model->config_.lfm, lfm_options);
  model->head_ = AudioHead::Load(model->weights_, model->config_, options.weight_format);
  model->audio_embedding_ = AudioEmbedding::Load(model->weights_, model->config_);
  const bool quantized = options.weight_format == "q8" || options.weight_format == "q4";
  model->encoder_ = std::make_unique<const ConformerEncoder>(ConformerEncoder::Load(
      *model->weights_, model->config_.encoder, model->config_.lfm.hidden_size,
      quantized ? EncoderWeightStorage::kQuantizedQ8 : EncoderWeightStorage::kOwnedF32));
  return model;
}

size_t AudioModel::weight_bytes() const {
  return backbone_->weight_bytes() + head_->weight_bytes() + audio_embedding_->weight_bytes() +
         encoder_->weight_bytes();
}

std::vector<float> AudioModel::AssembleEmbeddings(const PromptInputs& prompt,
                                                  const std::atomic<bool>* cancel) const {
  const int hidden = hidden_size();
  const int codebooks = config_.codebooks;
  size_t n_text = 0, n_audio_in = 0, n_audio_out = 0;
  for (Modality m : prompt.modality) {
    n_text += m == Modality::kText;
    n_audio_in += m == Modality::kAudioIn;
    n_audio_out += m == Modality::kAudioOut;
  }
  if (n_text != prompt.text_ids.size()) {
    throw std::invalid_argument("prompt has " + std::to_string(n_text) + " text positions but " +
                                std::to_string(prompt.text_ids.size()) + " text ids");
  }
  if (prompt.audio_out.size() != n_audio_out * codebooks) {
    throw std::invalid_argument("prompt has " + std::to_string(n_audio_out) +
                                " audio-out positions but " +
                                std::to_string(prompt.audio_out.size() / codebooks) + " frames");
  }
  // Every clip is encoded on its own; its rows fill the audio-in positions in order.
  std::vector<float> audio_rows;
  for (const MelClip& clip : prompt.audio_in) {
    if (clip.features.size() != static_cast<size_t>(clip.frames) * config_.encoder.feat_in) {
      throw std::invalid_argument("audio-in clip does not hold " +
                                  std::to_string(config_.encoder.feat_in) + " x frames values");
    }
    const auto rows = encoder_->Encode(clip.features.data(), static_cast<int>(clip.frames), cancel);
    audio_rows.insert(audio_rows.end(), rows.data(), rows.data() + rows.size());
  }
  if (audio_rows.size() != n_audio_in * hidden) {
    throw std::invalid_argument("prompt has " + std::to_string(n_audio_in) +
                                " audio-in positions but its clips encode to " +
                                std::to_string(audio_rows.size() / hidden));
  }
  std::vector<float> out(prompt.modality.size() * hidden);
  size_t text_i = 0, audio_in_i = 0, audio_out_i = 0;
  std::vector<int> one_id(1);
  for (size_t p = 0; p < prompt.modality.size(); ++p) {
    float* row = out.data() + p * hidden;
    switch (prompt.modality[p]) {
      case Modality::kText:
        one_id[0] = prompt.text_ids[text_i++];
        backbone_->EmbedText(one_id, row);
        break;
      case Modality::kAudioIn:
        std::memcpy(row, audio_rows.data() + audio_in_i++ * hidden, sizeof(float) * hidden);
        break;
      case Modality::kAudioOut:
        audio_embedding_->EmbedFrame(prompt.audio_out.data() + audio_out_i++ * codebooks, row);
        break;
      default:
        throw std::invalid_argument("unknown modality flag at position " + std::to_string(p));
    }
  }
  return out;
}

}  // namespace eddy
