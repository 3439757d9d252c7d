// Resolves what a user passes as --model: a directory, or a Hugging Face repo id looked up in the
// local Hugging Face cache layout.
#pragma once

#include <filesystem>
#include <string>

namespace eddy {

// The hub cache root: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub.
std::filesystem::path HuggingFaceHubCache();

// "ORG/NAME" -> <cache>/models--ORG--NAME
std::filesystem::path RepoCacheDir(const std::string& repo_id);

// True for strings of the form ORG/NAME with hub-legal characters.
bool LooksLikeRepoId(const std::string& spec);

// Returns a directory that contains config.json. `spec` is a path, or a repo id resolved through
// refs/main (else the newest snapshot). Throws ModelError saying every place it looked.
std::filesystem::path ResolveModelDir(const std::string& spec);

}  // namespace eddy
