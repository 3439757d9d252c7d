// Runs a shell command line (the tests of the `eddy` program) and captures its standard output.
#pragma once

#include <array>
#include <cstdio>
#include <string>

namespace eddy::test {

// `status` receives pclose()'s wait status: 0 when the command exited with 0.
inline std::string RunCommand(const std::string& command_line, int* status) {
  std::string out;
  FILE* pipe = popen(command_line.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  *status = pclose(pipe);
  return out;
}

}  // namespace eddy::test
