// The audio encoder of LFM2-Audio: NeMo FastConformer (dw_striding 8x subsampling, rel-pos
// attention, macaron FFNs, conv module) followed by the MLP adapter into the backbone's width
// (spec_audio.md §3, spec_backbone.md §2.3). Offline: every call encodes one whole clip.
#pragma once

#include <Eigen/Core>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eddy/config.h"
#include "eddy/safetensors.h"

namespace eddy {

// Row-major [time, features] float32; the same type as the model code's ops::Mat.
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// How the big weight matrices are held. kOwnedF32 copies them into process memory as float32
// (2x the memory of a bf16 checkpoint): on the development VM, reading weights through the file
// mapping every call cost more than the matrix products' packing, and bf16 needs a conversion per
// call. kMapped keeps f32/bf16 matrices in the mapping (least memory).
// kOwnedF32: float32 copies (the exact path). kMapped: matrices viewed in the file mapping.
// kQuantizedQ8: matrices block-quantized to int8 (the fast path that goes with --quant q8/q4;
// the encoder stays at 8 bits because ASR quality depends on it most).
enum class EncoderWeightStorage { kOwnedF32, kMapped, kQuantizedQ8 };

// Weights of the encoder and adapter; immutable after load, shared by every caller.
struct ConformerWeights;

// Intermediate results named after the reference's module paths, for tensor-by-tensor parity.
struct ConformerTrace {
  RowMatrix pre_encode;           // conformer.pre_encode output [T', d_model]
  std::vector<RowMatrix> layers;  // conformer.layers.{i} outputs [T', d_model]
  RowMatrix conformer_out;        // conformer output [T', d_model]
  RowMatrix adapter_out;          // audio_adapter output [T', backbone_hidden]
};

class ConformerEncoder {
 public:
  // Reads `conformer.*` and `audio_adapter.model.*` (f32 or bf16). With kMapped, big matrices
  // stay in the mapping, so `st` must outlive the encoder. Throws ModelError naming the tensor at
  // fault.
  static ConformerEncoder Load(const SafeTensors& st, const EncoderConfig& config,
                               int backbone_hidden,
                               EncoderWeightStorage storage = EncoderWeightStorage::kOwnedF32);

  // Every tensor Load reads, with its shape, in checkpoint order (BatchNorm's
  // num_batches_tracked is not read and not listed).
  static std::vector<std::pair<std::string, std::vector<int64_t>>> TensorShapes(
      const EncoderConfig& config, int backbone_hidden);

  // Number of embeddings for n_frames mel frames: the reference's three stride-2 convolutions,
  // i.e. ceil(n_frames / 8).
  static int OutputFrames(int n_frames);

  // mel is feature-major [feat_in, n_frames] (as the front end and the reference produce it).
  // Returns the adapter outputs [OutputFrames(n_frames), backbone_hidden]. Thread-safe. Throws
  // Cancelled when `cancel` is set between two layers.
  RowMatrix Encode(const float* mel_feature_major, int n_frames,
                   const std::atomic<bool>* cancel = nullptr) const;
  // Same computation, keeping every intermediate.
  ConformerTrace EncodeWithTrace(const float* mel_feature_major, int n_frames) const;

  const EncoderConfig& config() const;
  int backbone_hidden() const;
  size_t weight_bytes() const;

 private:
  ConformerTrace Run(const float* mel, int n_frames, bool keep_intermediates,
                     const std::atomic<bool>* cancel) const;
  std::shared_ptr<const ConformerWeights> weights_;
};

}  // namespace eddy
