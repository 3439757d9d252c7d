// Writes .safetensors files (float32 or bf16 tensors): for tests, benchmarks and tools that need a
// checkpoint built in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eddy/safetensors.h"

namespace eddy {

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // numel(shape) values, row-major
};

// dtype must be kF32 or kBF16 (values are rounded to nearest even). Throws ModelError on a
// size mismatch or an unwritable path.
void WriteSafeTensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      DType dtype = DType::kF32);

}  // namespace eddy
