// `eddy devices`: the audio devices PortAudio sees, for --device of record/play and the live
// commands.
#include <cstdio>

#include "command.h"
#include "eddy/devices.h"

namespace eddy::app {
namespace {

int RunDevices() {
  const auto devices = ListDevices();
  if (devices.empty()) {
    std::fprintf(stderr, "eddy: no audio devices found\n");
    return 1;
  }
  std::printf("%5s  %-40s %-12s %4s %4s %9s\n", "index", "name", "host API", "in", "out", "rate");
  for (const auto& d : devices) {
    std::string mark;
    if (d.is_default_input) mark += " [default input]";
    if (d.is_default_output) mark += " [default output]";
    std::printf("%5d  %-40s %-12s %4d %4d %9.0f%s\n", d.index, d.name.c_str(), d.host_api.c_str(),
                d.max_input_channels, d.max_output_channels, d.default_sample_rate, mark.c_str());
  }
  return 0;
}

EDDY_COMMAND("devices", "List audio devices (index, name, host API, channels, default rate)",
             [](CLI::App&) -> std::function<int()> { return [] { return RunDevices(); }; });

}  // namespace
}  // namespace eddy::app
