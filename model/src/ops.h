// Shared numeric building blocks of the model code: weight containers that can view the
// checkpoint in place (f32 or bf16) and the few fused loops every network here needs.
// Activations are row-major [time, features] float32 matrices.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "eddy/safetensors.h"

namespace eddy::ops {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;

// Small parameters (norm weights, biases, conv kernels) are copied to float32.
std::vector<float> LoadF32(const SafeTensors& st, const std::string& name,
                           const std::vector<int64_t>& shape);

// A [rows, cols] weight matrix stored as f32 or bf16. Views the mapping when the on-disk dtype is
// usable as is; copies only when a conversion is needed (f16 -> f32).
class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Reads tensor `name`, checking that it holds rows*cols values (any shape with that product,
  // given explicitly so that e.g. [out, in, 1] conv weights can be used as matrices).
  static WeightMatrix Load(const SafeTensors& st, const std::string& name,
                           const std::vector<int64_t>& shape);
  // An owned float32 matrix (for weights computed at load time).
  static WeightMatrix FromOwned(std::vector<float> data, int rows, int cols);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  DType dtype() const { return dtype_; }
  size_t bytes() const { return static_cast<size_t>(rows_) * cols_ * DTypeSize(dtype_); }

  // y[n, rows] = x[n, cols] * W^T. x and y row-major, y is overwritten.
  void MatMulT(const float* x, int n, float* y) const;
  // out[cols] = row r (embedding lookup).
  void Row(int r, float* out) const;
  // out += row r.
  void AddRow(int r, float* out) const;

 private:
  int rows_ = 0, cols_ = 0;
  DType dtype_ = DType::kF32;
  const void* data_ = nullptr;
  std::vector<float> owned_;
};

// y = x W^T + b, the nn.Linear of the reference.
struct Linear {
  WeightMatrix weight;      // [out, in]
  std::vector<float> bias;  // empty = no bias

  static Linear Load(const SafeTensors& st, const std::string& prefix, int out, int in,
                     bool has_bias);
  int in() const { return weight.cols(); }
  int out() const { return weight.rows(); }
  Mat Forward(const Mat& x) const;
  void Forward(const float* x, int n, float* y) const;
};

// In-place per-row normalisations.
void RmsNormRows(Mat& x, const std::vector<float>& weight, float eps);
void RmsNorm(const float* x, const float* weight, int n, float eps, float* y);
void LayerNormRows(Mat& x, const std::vector<float>& weight, const std::vector<float>& bias,
                   float eps);

float Silu(float x);
float GeluErf(float x);

// Number of worker threads used by heavy ops (OpenMP). 0 = physical cores.
void SetNumThreads(int n);
int NumThreads();

}  // namespace eddy::ops
