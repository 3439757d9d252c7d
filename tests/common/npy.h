// Minimal reader for NumPy .npy files (format 1.0/2.0, little-endian, C order), enough for the
// golden vectors: float32 and int64 arrays.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace eddy::test {

struct NpyArray {
  std::string dtype;  // "<f4" or "<i8"
  std::vector<int64_t> shape;
  std::vector<float> f32;    // filled when dtype is <f4
  std::vector<int64_t> i64;  // filled when dtype is <i8
  int64_t numel() const;
  int64_t dim(size_t i) const { return shape.at(i); }
};

// Throws std::runtime_error naming the file on any malformed input.
NpyArray LoadNpy(const std::filesystem::path& path);

// Reads a headerless little-endian float32 file.
std::vector<float> LoadRawF32(const std::filesystem::path& path);

}  // namespace eddy::test
