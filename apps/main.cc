#include <cstdio>
#include <exception>

#include "command.h"

namespace eddy::app {

std::vector<CommandSpec>& Commands() {
  static std::vector<CommandSpec> commands;
  return commands;
}

void AddModelOptions(CLI::App& cmd, ModelOptions& opts) {
  cmd.add_option("-m,--model", opts.model,
                 "model directory, or a Hugging Face repo id found in the local hub cache")
      ->capture_default_str();
  cmd.add_option("-t,--threads", opts.threads, "compute threads (0 = one per physical core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace eddy::app

int main(int argc, char** argv) {
  CLI::App app{"eddy: real-time streaming speech engine for LFM2-Audio on CPUs", "eddy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "eddy 0.1.0");
  std::function<int()> run;
  for (auto& spec : eddy::app::Commands()) {
    CLI::App* cmd = app.add_subcommand(spec.name, spec.description);
    auto runner = spec.setup(*cmd);
    cmd->callback([&run, runner]() { run = runner; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eddy: error: %s\n", e.what());
    return 1;
  }
}
