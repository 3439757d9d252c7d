#include "eddy/safetensors_writer.h"

#include <nlohmann/json.hpp>

namespace eddy {

SafeTensorsWriter::SafeTensorsWriter(std::filesystem::path path) : path_(std::move(path)) {}

SafeTensorsWriter::~SafeTensorsWriter() = default;

void SafeTensorsWriter::Declare(const std::string& name, DType dtype,
                                const std::vector<int64_t>& shape) {
  if (begun_) throw ModelError(path_.string() + ": tensor '" + name + "' declared after Begin");
  for (const Entry& e : entries_) {
    if (e.name == name) throw ModelError(path_.string() + ": tensor '" + name + "' declared twice");
  }
  size_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) throw ModelError(path_.string() + ": tensor '" + name + "' has a negative dim");
    n *= static_cast<size_t>(s);
  }
  entries_.push_back({name, dtype, shape, n * DTypeSize(dtype)});
  total_ += n * DTypeSize(dtype);
}

void SafeTensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafeTensorsWriter::Begin() {
  nlohmann::ordered_json header;
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  size_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", DTypeName(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes}}};
    offset += e.bytes;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');  // keeps tensor data 8-byte aligned
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw ModelError(path_.string() + ": cannot open for writing");
  const uint64_t len = text.size();
  out_.write(reinterpret_cast<const char*>(&len), 8);
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  begun_ = true;
}

void SafeTensorsWriter::Append(const void* data, size_t bytes) {
  if (!begun_ || finished_) throw ModelError(path_.string() + ": Append outside Begin/Finish");
  if (written_ + bytes > total_) {
    throw ModelError(path_.string() + ": more data than the declared tensors hold");
  }
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out_) throw ModelError(path_.string() + ": write failed");
  written_ += bytes;
}

void SafeTensorsWriter::Finish() {
  if (!begun_) Begin();
  if (written_ != total_) {
    size_t offset = 0;
    std::string missing;
    for (const Entry& e : entries_) {
      if (offset + e.bytes > written_) {
        missing = e.name;
        break;
      }
      offset += e.bytes;
    }
    throw ModelError(path_.string() + ": tensor '" + missing + "' incomplete (" +
                     std::to_string(written_) + " of " + std::to_string(total_) + " bytes)");
  }
  out_.close();
  if (!out_) throw ModelError(path_.string() + ": close failed");
  finished_ = true;
}

void ConvertSafeTensors(const SafeTensors& src, const std::filesystem::path& dst, DType dtype) {
  SafeTensorsWriter w(dst);
  const std::vector<std::string> names = src.Names();
  auto target = [&](const TensorView& t) { return t.dtype == DType::kI64 ? t.dtype : dtype; };
  for (const std::string& n : names) {
    const TensorView& t = src.Get(n);
    w.Declare(n, target(t), t.shape);
  }
  w.Begin();
  for (const std::string& n : names) {
    const TensorView& t = src.Get(n);
    if (target(t) == t.dtype) {
      w.Append(t.data, t.nbytes);
      continue;
    }
    const std::vector<float> f32 = ToFloat32(t);
    if (dtype == DType::kF32) {
      w.Append(f32.data(), f32.size() * 4);
    } else if (dtype == DType::kBF16) {
      std::vector<uint16_t> b(f32.size());
      for (size_t i = 0; i < f32.size(); ++i) b[i] = FloatToBf16(f32[i]);
      w.Append(b.data(), b.size() * 2);
    } else {
      throw ModelError("ConvertSafeTensors: unsupported target dtype " +
                       std::string(DTypeName(dtype)));
    }
  }
  w.Finish();
}

void WriteSafeTensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    throw ModelError(path.string() + ": only F32 and BF16 tensors can be written");
  }
  SafeTensorsWriter writer(path);
  writer.SetMetadata("format", "pt");
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (n != static_cast<int64_t>(t.values.size())) {
      throw ModelError(path.string() + ": tensor '" + t.name + "' has " +
                       std::to_string(t.values.size()) + " values for shape " +
                       ShapeString(t.shape));
    }
    writer.Declare(t.name, dtype, t.shape);
  }
  writer.Begin();
  for (const auto& t : tensors) {
    if (dtype == DType::kF32) {
      writer.Append(t.values.data(), t.values.size() * sizeof(float));
    } else {
      std::vector<uint16_t> bf(t.values.size());
      for (size_t i = 0; i < bf.size(); ++i) bf[i] = FloatToBf16(t.values[i]);
      writer.Append(bf.data(), bf.size() * sizeof(uint16_t));
    }
  }
  writer.Finish();
}

}  // namespace eddy
