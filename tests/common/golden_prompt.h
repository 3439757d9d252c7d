// The prompt of a golden end-to-end case (f_e2e/<case>/prompt_*.npy) as the model takes it.
#pragma once

#include <filesystem>

#include "eddy/audio_model.h"
#include "npy.h"

namespace eddy::test {

inline PromptInputs LoadGoldenPrompt(const std::filesystem::path& dir) {
  PromptInputs p;
  const auto text = LoadNpy(dir / "prompt_text_ids.npy");
  p.text_ids.assign(text.i64.begin(), text.i64.end());
  const auto mel = LoadNpy(dir / "prompt_audio_in.npy");  // [features, sum(frames)]
  const auto lens = LoadNpy(dir / "prompt_audio_in_lens.npy");
  const int64_t features = mel.dim(0), total = mel.dim(1);
  int64_t start = 0;
  for (int64_t len : lens.i64) {
    MelClip clip;
    clip.frames = len;
    clip.features.resize(static_cast<size_t>(features * len));
    for (int64_t f = 0; f < features; ++f) {
      for (int64_t t = 0; t < len; ++t) {
        clip.features[f * len + t] = mel.f32[f * total + start + t];
      }
    }
    start += len;
    p.audio_in.push_back(std::move(clip));
  }
  const auto out = LoadNpy(dir / "prompt_audio_out.npy");  // [codebooks, frames]
  const int64_t codebooks = out.dim(0), frames = out.dim(1);
  for (int64_t j = 0; j < frames; ++j) {
    for (int64_t c = 0; c < codebooks; ++c)
      p.audio_out.push_back(static_cast<int>(out.i64[c * frames + j]));
  }
  for (int64_t m : LoadNpy(dir / "prompt_modality_flag.npy").i64) {
    p.modality.push_back(static_cast<Modality>(m));
  }
  return p;
}

}  // namespace eddy::test
