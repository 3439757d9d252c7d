// Shared numeric building blocks of the model code: weight containers that can view the
// checkpoint in place (f32 or bf16) and the few fused loops every network here needs.
// Activations are row-major [time, features] float32 matrices.
#pragma once

#include <Eigen/Core>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eddy/safetensors.h"
#include "quant.h"

namespace eddy::ops {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;

// Small parameters (norm weights, biases, conv kernels) are copied to float32.
std::vector<float> LoadF32(const SafeTensors& st, const std::string& name,
                           const std::vector<int64_t>& shape);

// How big weight matrices are held in memory. kNative keeps the checkpoint's dtype (f32 or bf16,
// viewed in the mapping); kF32 converts; kQ8 / kQ4 quantize at load (quant.h).
enum class WeightFormat { kNative, kF32, kBF16, kQ8, kQ4 };
const char* WeightFormatName(WeightFormat f);
// "native", "f32", "bf16", "q8", "q4"; throws std::invalid_argument otherwise.
WeightFormat ParseWeightFormat(const std::string& name);

// A [rows, cols] weight matrix stored as f32, bf16 or block-quantized. Views the mapping when the
// on-disk dtype is what was asked for; converts or quantizes otherwise.
class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Reads tensor `name`, checking that it holds rows*cols values (any shape with that product,
  // given explicitly so that e.g. [out, in, 1] conv weights can be used as matrices).
  static WeightMatrix Load(const SafeTensors& st, const std::string& name,
                           const std::vector<int64_t>& shape,
                           WeightFormat format = WeightFormat::kNative);
  // An owned float32 matrix (for weights computed at load time).
  static WeightMatrix FromOwned(std::vector<float> data, int rows, int cols);
  // This matrix held in another format (bf16 rounding or block quantization of its values).
  WeightMatrix Converted(WeightFormat format) const;

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  WeightFormat format() const;
  size_t bytes() const;

  // y[n, rows] = x[n, cols] * W^T. x and y row-major, y is overwritten.
  void MatMulT(const float* x, int n, float* y) const;
  // ys[i] = x * matrices[i]^T for matrices of the same width: quantized ones share one
  // quantization of x and one parallel loop (fused q/k/v and gate/up projections).
  static void MatMulTMany(std::span<const WeightMatrix* const> matrices, const float* x, int n,
                          std::span<float* const> ys);
  // out[cols] = row r (embedding lookup).
  void Row(int r, float* out) const;
  // out += row r.
  void AddRow(int r, float* out) const;

 private:
  static WeightMatrix LoadView(const SafeTensors& st, const std::string& name,
                               const std::vector<int64_t>& shape, WeightFormat format);

  int rows_ = 0, cols_ = 0;
  DType dtype_ = DType::kF32;  // of data_ when not quantized
  const void* data_ = nullptr;
  std::vector<float> owned_;
  std::vector<uint16_t> owned_bf16_;
  std::shared_ptr<const quant::QuantizedMatrix> quantized_;
};

// y = x W^T + b, the nn.Linear of the reference.
struct Linear {
  WeightMatrix weight;      // [out, in]
  std::vector<float> bias;  // empty = no bias

  static Linear Load(const SafeTensors& st, const std::string& prefix, int out, int in,
                     bool has_bias, WeightFormat format = WeightFormat::kNative);
  int in() const { return weight.cols(); }
  int out() const { return weight.rows(); }
  Mat Forward(const Mat& x) const;
  void Forward(const float* x, int n, float* y) const;
  size_t bytes() const { return weight.bytes() + bias.size() * sizeof(float); }
};

inline size_t Bytes(const std::vector<float>& v) {
  return v.size() * sizeof(float);
}

// In-place per-row normalisations.
void RmsNormRows(Mat& x, const std::vector<float>& weight, float eps);
void RmsNorm(const float* x, const float* weight, int n, float eps, float* y);
void LayerNormRows(Mat& x, const std::vector<float>& weight, const std::vector<float>& bias,
                   float eps);

float GeluErf(float x);
// gate[r, i] = silu(gate[r, i]) * up[r, i] for n rows of `width`, vectorised. Every element's
// result is the same wherever it sits, so a row does not depend on how many rows come with it
// (draft verification needs a chunk's rows to equal single steps).
void SiluGateRows(float* gate, const float* up, int n, int width);

// Number of worker threads used by heavy ops (OpenMP). 0 = physical cores.
void SetNumThreads(int n);
int NumThreads();
// Bytes per second that a plain read of a `bytes` buffer reaches on the worker threads (best of
// `passes`): the memory bandwidth that bounds a decode step, which reads every weight once.
double ReadBandwidth(size_t bytes, int passes);

}  // namespace eddy::ops
