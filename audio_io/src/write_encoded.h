// Writing an encoded audio file: the encoder's errors and the file's are both named by path.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "eddy/audio_file.h"

namespace eddy {

// Runs `encode` (returns the file's bytes, throws AudioError) and writes the result to `path`.
template <typename Encode>
void WriteEncoded(const std::filesystem::path& path, Encode encode) {
  std::string bytes;
  try {
    bytes = encode();
  } catch (const AudioError& e) {
    throw AudioError(path.string() + ": " + e.what());
  }
  std::ofstream out(path, std::ios::binary);
  if (!out) throw AudioError(path.string() + ": cannot open for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw AudioError(path.string() + ": write failed");
}

}  // namespace eddy
