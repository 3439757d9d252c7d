// Block-quantized weight matrices (32 weights per block along the input dimension, one f16 scale
// per block) and their products with float activations, which are quantized to int8 per block on
// the fly. Q8: int8 weights (stored offset-binary). Q4: 4-bit weights in [-8, 7], two per byte
// (element i in the low nibble, element i + 16 in the high nibble of byte i). Rows whose length is
// not a multiple of 32 are zero-padded. Kernels: AVX-512 VNNI, AVX2 and a portable one, chosen at
// run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eddy::quant {

constexpr int kBlock = 32;
// Q8 weights are stored offset-binary (q + 128) so that VNNI's unsigned x signed product needs no
// per-block sign fix-up; the offset is removed with the activation block sums.
constexpr int kQ8Offset = 128;

enum class Format { kQ8, kQ4 };
enum class Kernel { kPortable, kAvx2, kAvx512Vnni };

const char* KernelName(Kernel k);
// The fastest kernel this CPU runs.
Kernel BestKernel();
bool Supported(Kernel k);

class QuantizedMatrix {
 public:
  // Quantizes a row-major float matrix [rows, cols].
  static QuantizedMatrix Quantize(const float* weights, int rows, int cols, Format format);
  // Quantizes from bf16 (the checkpoint's dtype) without materialising a float copy.
  static QuantizedMatrix QuantizeBf16(const uint16_t* weights, int rows, int cols, Format format);

  Format format() const { return format_; }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int blocks_per_row() const { return blocks_; }
  size_t bytes() const { return data_.size() + scales_.size() * sizeof(uint16_t); }

  // y[n, rows] = x[n, cols] * W^T with the given kernel (default: the best one).
  void MatMulT(const float* x, int n, float* y) const;
  void MatMulT(const float* x, int n, float* y, Kernel kernel) const;
  // Dequantized row r (cols values).
  void DequantizeRow(int r, float* out) const;

  const uint8_t* row_data(int r) const {
    return data_.data() + static_cast<size_t>(r) * row_bytes_;
  }
  const uint16_t* row_scales(int r) const {
    return scales_.data() + static_cast<size_t>(r) * blocks_;
  }

 private:
  static QuantizedMatrix Empty(int rows, int cols, Format format);  // storage sized, zeroed

  Format format_ = Format::kQ8;
  int rows_ = 0, cols_ = 0, blocks_ = 0;
  size_t row_bytes_ = 0;
  std::vector<uint8_t> data_;
  std::vector<uint16_t> scales_;  // f16, [rows, blocks]
};

// Activations quantized to int8 per 32-block, with what the kernels need per block.
struct QuantizedActivations {
  int blocks = 0;
  std::vector<int8_t> q;     // [n, blocks * 32]
  std::vector<float> scale;  // [n, blocks]
  std::vector<int32_t> sum;  // [n, blocks]: sum of q in the block (Q4's offset correction)
  static QuantizedActivations From(const float* x, int n, int cols);
};

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

}  // namespace eddy::quant
