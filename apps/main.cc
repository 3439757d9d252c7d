#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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
  cmd.add_option("--quant", opts.quant,
                 "weight format: native (as stored), f32, bf16, q8 or q4 (quantized at load)")
      ->check(CLI::IsMember({"native", "f32", "bf16", "q8", "q4"}))
      ->capture_default_str();
}

namespace {

// OpenMP's worker threads read their idle policy from the environment once, when the runtime
// loads, before main. Its default spins for a long time between parallel regions, which wastes
// whole time slices as soon as another process wants the same cores: decode speed then collapses
// by 10x. A short spin (about the gap between consecutive layers) followed by sleeping keeps the
// fast path fast and degrades gracefully under load. Set once, by re-executing this binary; an
// explicit choice in the environment is respected.
void EnsureThreadIdlePolicy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "20000", 1);
  execv("/proc/self/exe", argv);
  // execv failed (no /proc): run on with the default policy.
}

// Decode buffers come and go with every segment and token, and some are large (the encoder's
// activations for a 15 s segment are tens of MB). glibc hands big blocks straight back to the
// kernel, so the next decode faults them in again, page by page: about 12 us per 4 KiB page on
// a VM, tens of milliseconds per caption. Keeping freed memory in the process makes those
// buffers warm after their first use; peak memory is unchanged.
void KeepFreedMemory() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace

}  // namespace eddy::app

int main(int argc, char** argv) {
  eddy::app::EnsureThreadIdlePolicy(argv);
  eddy::app::KeepFreedMemory();
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
