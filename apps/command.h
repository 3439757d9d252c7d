// Sub-command registry of the `eddy` executable. Each apps/cmd_*.cc file registers its commands
// with a static EDDY_COMMAND(...) so that adding a command touches only its own file.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eddy/audio_model.h"
#include "eddy/tokenizer.h"

namespace eddy::app {

// Adds the command's options to `cmd` and returns what runs it (its exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& cmd)>;

struct CommandSpec {
  std::string name;
  std::string description;
  CommandSetup setup;
};

std::vector<CommandSpec>& Commands();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string description, CommandSetup setup) {
    Commands().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

// Options shared by the commands that load a model.
struct ModelOptions {
  std::string model = "LiquidAI/LFM2-Audio-1.5B";
  int threads = 0;               // 0 = one per physical core
  std::string quant = "native";  // weight format: native | f32 | bf16 | q8 | q4
};
void AddModelOptions(CLI::App& cmd, ModelOptions& opts);
// The model directory for --model; a repo id missing from the local cache is downloaded first
// (unless HF_HUB_OFFLINE=1). Throws with a message saying where it looked or why it could not.
std::filesystem::path ResolveOrPullModel(const ModelOptions& opts);

// What the speech commands start from: the compute threads set, the model directory resolved
// (or pulled) and the model loaded in the --quant format, with its tokenizer.
struct LoadedModel {
  std::filesystem::path dir;
  std::shared_ptr<const AudioModel> model;
  Tokenizer tokenizer;
};
LoadedModel LoadModel(const ModelOptions& opts);

}  // namespace eddy::app

#define EDDY_CONCAT_INNER(a, b) a##b
#define EDDY_CONCAT(a, b) EDDY_CONCAT_INNER(a, b)
// The setup lambda is variadic so that commas inside it need no extra parentheses.
#define EDDY_COMMAND(name, description, ...)                                                   \
  static ::eddy::app::CommandRegistrar EDDY_CONCAT(eddy_command_, __LINE__)(name, description, \
                                                                            __VA_ARGS__)
