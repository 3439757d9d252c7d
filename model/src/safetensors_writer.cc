#include "eddy/safetensors_writer.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace eddy {

void WriteSafeTensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    throw ModelError(path.string() + ": only F32 and BF16 tensors can be written");
  }
  const size_t elem = DTypeSize(dtype);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (n != static_cast<int64_t>(t.values.size())) {
      throw ModelError(path.string() + ": tensor '" + t.name + "' has " +
                       std::to_string(t.values.size()) + " values for shape " +
                       ShapeString(t.shape));
    }
    const size_t bytes = static_cast<size_t>(n) * elem;
    header[t.name] = {{"dtype", DTypeName(dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) throw ModelError(path.string() + ": cannot open for writing");
  const uint64_t header_size = text.size();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors) {
    if (dtype == DType::kF32) {
      out.write(reinterpret_cast<const char*>(t.values.data()),
                static_cast<std::streamsize>(t.values.size() * 4));
    } else {
      std::vector<uint16_t> bf(t.values.size());
      for (size_t i = 0; i < bf.size(); ++i) bf[i] = FloatToBf16(t.values[i]);
      out.write(reinterpret_cast<const char*>(bf.data()),
                static_cast<std::streamsize>(bf.size() * 2));
    }
  }
  if (!out) throw ModelError(path.string() + ": write failed");
}

}  // namespace eddy
