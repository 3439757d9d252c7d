#include "npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace eddy::test {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

NpyArray LoadNpy(const std::filesystem::path& path) {
  const std::string bytes = ReadAll(path);
  const auto fail = [&](const std::string& why) {
    return std::runtime_error(path.string() + ": not a supported .npy file: " + why);
  };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw fail("bad magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw fail("truncated header");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  } else {
    throw fail("unknown version");
  }
  if (offset + header_len > bytes.size()) throw fail("truncated header");
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  NpyArray a;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw fail("no descr");
  a.dtype = m[1];
  if (header.find("'fortran_order': False") == std::string::npos) throw fail("not C order");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw fail("no shape");
  std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator();
       ++it) {
    a.shape.push_back(std::stoll(it->str()));
  }
  const size_t data_offset = offset + header_len;
  const size_t n = static_cast<size_t>(a.numel());
  if (a.dtype == "<f4") {
    if (bytes.size() - data_offset < n * 4) throw fail("truncated data");
    a.f32.resize(n);
    std::memcpy(a.f32.data(), bytes.data() + data_offset, n * 4);
  } else if (a.dtype == "<i8") {
    if (bytes.size() - data_offset < n * 8) throw fail("truncated data");
    a.i64.resize(n);
    std::memcpy(a.i64.data(), bytes.data() + data_offset, n * 8);
  } else {
    throw fail("unsupported dtype " + a.dtype);
  }
  return a;
}

std::vector<float> LoadRawF32(const std::filesystem::path& path) {
  const std::string bytes = ReadAll(path);
  if (bytes.size() % 4 != 0) throw std::runtime_error(path.string() + ": size not a multiple of 4");
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace eddy::test
