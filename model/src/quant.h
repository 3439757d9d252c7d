// Block-quantized weight matrices (32 weights per block along the input dimension, one f16 scale
// per block) and their products with float activations, which are quantized to int8 per block on
// the fly. Q8: int8 weights (stored offset-binary). Q4: 4-bit weights in [-8, 7] (stored + 8).
//
// Weights are packed in panels of 16 rows so that one 512-bit register holds 4 consecutive
// weights of each of the 16 rows: a VNNI dot product against 4 broadcast activation bytes then
// advances 16 output rows at once, and the per-block float work (convert, scale, accumulate) is
// done once per 16 rows instead of once per row. Rows and columns are zero-padded to whole panels
// and blocks. A panel is one contiguous run of memory in which every group of 4 blocks is followed
// by their 16-row scales: a decode product then reads each thread's share of the matrix as a
// single sequential stream (a separate scale array is a second stream per thread, which cost a
// quarter of the bandwidth). Kernels: AVX-512 VNNI (register tiles of 4 activation rows by 2
// panels), AVX2 and a portable one, chosen at run time; all three accumulate in the same order with
// the same fused multiply-adds, so they agree bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

namespace eddy::quant {

constexpr int kBlock = 32;
constexpr int kPanelRows = 16;
// Q8 weights are stored offset-binary (q + 128) so that VNNI's unsigned x signed product needs no
// per-block sign fix-up; the offset is removed with the activation block sums.
constexpr int kQ8Offset = 128;
constexpr int kQ4Offset = 8;

enum class Format { kQ8, kQ4 };

// Panel layout. Blocks whose scales are stored together, after their weights (one or two 64-byte
// lines), and the offsets of block b's weights and scales from the start of its panel.
constexpr int kScaleGroupBlocks = 4;
constexpr size_t PanelBlockBytes(Format f) {
  return f == Format::kQ8 ? kPanelRows * kBlock : kPanelRows * kBlock / 2;
}
constexpr size_t kPanelScaleBytes = kPanelRows * sizeof(uint16_t);
constexpr size_t ScaleGroupBytes(Format f) {
  return kScaleGroupBlocks * (PanelBlockBytes(f) + kPanelScaleBytes);
}
constexpr size_t GroupOffset(Format f, int b) {
  return static_cast<unsigned>(b) / kScaleGroupBlocks * ScaleGroupBytes(f);
}
constexpr size_t BlockOffset(Format f, int b) {
  return GroupOffset(f, b) + static_cast<unsigned>(b) % kScaleGroupBlocks * PanelBlockBytes(f);
}
constexpr size_t ScaleOffset(Format f, int b) {
  return GroupOffset(f, b) + kScaleGroupBlocks * PanelBlockBytes(f) +
         static_cast<unsigned>(b) % kScaleGroupBlocks * kPanelScaleBytes;
}

enum class Kernel { kPortable, kAvx2, kAvx512Vnni };

const char* KernelName(Kernel k);
// The kernel products use by default: the fastest this CPU runs, unless the environment variable
// EDDY_KERNEL (portable, avx2, avx512-vnni) or ForceKernel() says otherwise.
Kernel BestKernel();
bool Supported(Kernel k);
// Overrides the default kernel for the whole process (tests compare kernels with it). Throws
// std::runtime_error when this CPU cannot run `k`.
void ForceKernel(Kernel k);

// Activations quantized to int8 per 32-block, with what the kernels need per block.
struct QuantizedActivations {
  int blocks = 0;
  std::vector<int8_t> q;     // [n, blocks * 32]
  std::vector<float> scale;  // [n, blocks]
  std::vector<int32_t> sum;  // [n, blocks]: sum of q in the block (the weight offset correction)
  static QuantizedActivations From(const float* x, int n, int cols);
  // Refills this object, reusing its storage.
  void Assign(const float* x, int n, int cols);
};

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
  int panels() const { return panels_; }
  size_t bytes() const { return data_size_; }

  // y[n, rows] = x[n, cols] * W^T with the given kernel (default: the best one).
  void MatMulT(const float* x, int n, float* y) const;
  void MatMulT(const float* x, int n, float* y, Kernel kernel) const;
  // Several matrices with the same input width applied to the same x: the activations are
  // quantized once and all panels share one parallel loop. ys[i] is [n, matrices[i]->rows()].
  static void MatMulTMany(std::span<const QuantizedMatrix* const> matrices, const float* x, int n,
                          std::span<float* const> ys, Kernel kernel);
  // Dequantized row r (cols values).
  void DequantizeRow(int r, float* out) const;

  // Start of panel p; packed weights of its block b and their 16 f16 scales.
  const uint8_t* panel(int p) const { return data_.get() + static_cast<size_t>(p) * panel_bytes_; }
  const uint8_t* panel_block(int p, int b) const { return panel(p) + BlockOffset(format_, b); }
  const uint16_t* panel_scales(int p, int b) const {
    return reinterpret_cast<const uint16_t*>(panel(p) + ScaleOffset(format_, b));
  }

 private:
  template <typename LoadRow>
  static QuantizedMatrix QuantizeWith(int rows, int cols, Format format, LoadRow load_row);
  void StoreBlock(int r, int b, const int8_t* q, uint16_t scale);
  uint8_t* mutable_panel_block(int p, int b) { return const_cast<uint8_t*>(panel_block(p, b)); }
  uint16_t* mutable_panel_scales(int p, int b) { return const_cast<uint16_t*>(panel_scales(p, b)); }

  struct AlignedFree {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };

  Format format_ = Format::kQ8;
  int rows_ = 0, cols_ = 0, blocks_ = 0, panels_ = 0;
  size_t panel_bytes_ = 0;  // whole scale groups (the last one's unused blocks are zero)
  // Cache-line aligned, so that no 64-byte weight line straddles two. Left uninitialised on
  // allocation: quantizing writes every byte, and the pages are then first touched by the threads
  // that fill them instead of by one zeroing pass.
  std::unique_ptr<uint8_t[], AlignedFree> data_;  // [panels, groups, group bytes]
  size_t data_size_ = 0;
};

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

// One block of 32 weights to its integer values and f16 scale, as QuantizedMatrix stores it. Every
// kernel gives the same result (the AVX-512 one only speeds up loading); exposed for that test.
void QuantizeBlock(const float* v, Format format, int8_t* q, uint16_t* scale, Kernel kernel);
// One block of `count` <= 32 activations (the rest of the 32 bytes are zeroed) to int8 with its
// scale and the sum of its integers, as QuantizedActivations holds them. Every kernel gives the
// same result; exposed for that test.
void QuantizeActivationBlock(const float* v, int count, int8_t* q, float* scale, int32_t* sum,
                             Kernel kernel);

}  // namespace eddy::quant
