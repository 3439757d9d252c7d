// Read-only, zero-copy access to a .safetensors file through mmap. Every malformed input raises
// ModelError with the file name and the reason; nothing is read outside the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "eddy/model_error.h"

namespace eddy {

enum class DType { kF32, kF16, kBF16, kI64 };

size_t DTypeSize(DType t);
const char* DTypeName(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // points into the mapping; valid while the file is open
  size_t nbytes = 0;

  int64_t numel() const;
  std::string ShapeString() const;  // "[2048, 64]"
};

std::string ShapeString(const std::vector<int64_t>& shape);

class SafeTensors {
 public:
  // Maps and validates the whole header. Throws ModelError.
  static SafeTensors Open(const std::filesystem::path& path);

  SafeTensors(SafeTensors&& other) noexcept;
  SafeTensors& operator=(SafeTensors&& other) noexcept;
  SafeTensors(const SafeTensors&) = delete;
  SafeTensors& operator=(const SafeTensors&) = delete;
  ~SafeTensors();

  const std::filesystem::path& path() const { return path_; }
  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  std::vector<std::string> Names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Throws ModelError naming the tensor when it is missing.
  const TensorView& Get(const std::string& name) const;
  // Also checks the shape; the message names the tensor, the expected and the actual shape.
  const TensorView& Get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Tells the kernel that a tensor's bytes in the mapping will not be read again (it was copied,
  // converted or quantized), so its pages leave this process's resident memory. Reading it later
  // still works: the pages come back from the page cache.
  void ReleasePages(const TensorView& t) const;

 private:
  SafeTensors() = default;
  void Unmap();

  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, std::vector<uint64_t>> realigned_;  // copies of misaligned tensors
};

// Converts any floating-point tensor to float32 (copy). Throws ModelError for integer tensors.
std::vector<float> ToFloat32(const TensorView& t);
void ToFloat32(const TensorView& t, float* out);

inline float Bf16ToFloat(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
float HalfToFloat(uint16_t h);
// Round-to-nearest-even float -> bf16, as torch does.
uint16_t FloatToBf16(float f);

}  // namespace eddy
