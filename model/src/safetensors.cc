#include "eddy/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace eddy {

using nlohmann::json;

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI64:
      return 8;
  }
  return 0;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI64:
      return "I64";
  }
  return "?";
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const {
  return eddy::ShapeString(shape);
}

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit

bool ParseDType(const std::string& s, DType& out) {
  if (s == "F32")
    out = DType::kF32;
  else if (s == "F16")
    out = DType::kF16;
  else if (s == "BF16")
    out = DType::kBF16;
  else if (s == "I64")
    out = DType::kI64;
  else
    return false;
  return true;
}

}  // namespace

SafeTensors SafeTensors::Open(const std::filesystem::path& path) {
  SafeTensors st;
  st.path_ = path;
  const std::string where = path.string();
  const auto fail = [&](const std::string& why) { return ModelError(where + ": " + why); };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    throw fail("not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(sb.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw fail("truncated: " + std::to_string(file_size) + " bytes, too short for a header");
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw fail(std::string("mmap failed: ") + std::strerror(errno));
  st.map_ = map;
  st.map_size_ = file_size;

  const auto* bytes = static_cast<const unsigned char*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > file_size - 8) {
    throw fail("header length " + std::to_string(header_len) + " is larger than the file (" +
               std::to_string(file_size) + " bytes): truncated or not a safetensors file");
  }
  if (header_len > kMaxHeaderBytes) throw fail("header length exceeds 100 MB");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8),
                         reinterpret_cast<const char*>(bytes + data_start));
  } catch (const json::exception& e) {  // parse errors and number overflows alike
    throw fail(std::string("invalid JSON header: ") + e.what());
  }
  if (!header.is_object()) throw fail("invalid header: not a JSON object");

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (m.value().is_string()) st.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const auto bad = [&](const std::string& why) { return fail("tensor '" + name + "': " + why); };
    if (!entry.is_object()) throw bad("header entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw bad("dtype missing");
    TensorView t;
    t.name = name;
    const std::string dtype = entry["dtype"].get<std::string>();
    if (!ParseDType(dtype, t.dtype)) {
      throw bad("unsupported dtype '" + dtype + "' (supported: F32, F16, BF16, I64)");
    }
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw bad("shape missing");
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("invalid shape entry");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim / 8) {
        throw bad("shape is absurdly large");
      }
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      throw bad("data_offsets missing or not two non-negative integers");
    }
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      throw bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") out of range (data section is " + std::to_string(data_size) +
                " bytes): file truncated or corrupt");
    }
    if (end - begin != numel * DTypeSize(t.dtype)) {
      throw bad("data_offsets span " + std::to_string(end - begin) + " bytes but shape " +
                t.ShapeString() + " of " + dtype + " needs " +
                std::to_string(numel * DTypeSize(t.dtype)));
    }
    t.data = bytes + data_start + begin;
    t.nbytes = end - begin;
    if (reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype) != 0) {
      // Writers normally pad the header so that tensors are aligned; when one is not, it is
      // copied once so that typed access never reads through a misaligned pointer.
      auto& copy = st.realigned_[name];
      copy.resize((t.nbytes + 7) / 8);
      std::memcpy(copy.data(), t.data, t.nbytes);
      t.data = copy.data();
    }
    auto [pos, inserted] = st.tensors_.emplace(name, std::move(t));
    (void)inserted;
    ranges.push_back({begin, end, &pos->first});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      throw fail("tensors '" + *ranges[i - 1].name + "' and '" + *ranges[i].name +
                 "' overlap in the data section");
    }
  }
  return st;
}

SafeTensors::SafeTensors(SafeTensors&& o) noexcept {
  *this = std::move(o);
}

SafeTensors& SafeTensors::operator=(SafeTensors&& o) noexcept {
  if (this != &o) {
    Unmap();
    path_ = std::move(o.path_);
    map_ = o.map_;
    map_size_ = o.map_size_;
    tensors_ = std::move(o.tensors_);
    metadata_ = std::move(o.metadata_);
    realigned_ = std::move(o.realigned_);
    o.map_ = nullptr;
    o.map_size_ = 0;
  }
  return *this;
}

SafeTensors::~SafeTensors() {
  Unmap();
}

void SafeTensors::Unmap() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
}

std::vector<std::string> SafeTensors::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, t] : tensors_) names.push_back(name);
  return names;
}

const TensorView& SafeTensors::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw ModelError(path_.string() + ": tensor '" + name + "' is missing");
  }
  return it->second;
}

const TensorView& SafeTensors::Get(const std::string& name,
                                   const std::vector<int64_t>& shape) const {
  const TensorView& t = Get(name);
  if (t.shape != shape) {
    throw ModelError(path_.string() + ": tensor '" + name + "' has shape " + t.ShapeString() +
                     ", expected " + ShapeString(shape));
  }
  return t;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  const uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

void ToFloat32(const TensorView& t, float* out) {
  const size_t n = static_cast<size_t>(t.numel());
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out, t.data, n * 4);
      return;
    case DType::kBF16: {
      const auto* src = static_cast<const uint16_t*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = Bf16ToFloat(src[i]);
      return;
    }
    case DType::kF16: {
      const auto* src = static_cast<const uint16_t*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(src[i]);
      return;
    }
    case DType::kI64:
      break;
  }
  throw ModelError("tensor '" + t.name + "' is " + DTypeName(t.dtype) +
                   ", expected a floating-point dtype");
}

void SafeTensors::ReleasePages(const TensorView& t) const {
  const auto begin = reinterpret_cast<uintptr_t>(t.data);
  const auto map_begin = reinterpret_cast<uintptr_t>(map_);
  if (begin < map_begin || begin + t.nbytes > map_begin + map_size_) return;  // a realigned copy
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the tensor: neighbours may still be in use.
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + t.nbytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::vector<float> ToFloat32(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ToFloat32(t, out.data());
  return out;
}

}  // namespace eddy
