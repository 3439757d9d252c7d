// Streaming .safetensors writer: declare every tensor (name, dtype, shape), then append each
// tensor's bytes in declaration order. Nothing but the header is held in memory, so multi-GB
// files can be written piecewise. Errors raise ModelError naming the file and tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "eddy/safetensors.h"

namespace eddy {

class SafeTensorsWriter {
 public:
  explicit SafeTensorsWriter(std::filesystem::path path);
  ~SafeTensorsWriter();

  void Declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
  void SetMetadata(const std::string& key, const std::string& value);
  // Writes the header; after this only Append/Finish are allowed.
  void Begin();
  // Appends bytes to the current tensor (the first declared one not yet complete).
  void Append(const void* data, size_t bytes);
  // Checks that every declared byte was written and closes the file.
  void Finish();

  size_t total_bytes() const { return total_; }
  size_t written_bytes() const { return written_; }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    size_t bytes;
  };
  std::filesystem::path path_;
  std::ofstream out_;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
  bool begun_ = false, finished_ = false;
  size_t total_ = 0, written_ = 0;
};

// Convenience for small in-memory checkpoints (tests, benchmarks): every tensor given as float
// values, written as dtype kF32 or kBF16 (rounded to nearest even).
struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // numel(shape) values, row-major
};
void WriteSafeTensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      DType dtype = DType::kF32);

// Convenience for small files: every tensor of `src` converted to `dtype` when it is floating
// point (integer tensors are copied as they are).
void ConvertSafeTensors(const SafeTensors& src, const std::filesystem::path& dst, DType dtype);

}  // namespace eddy
