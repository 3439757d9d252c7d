// Parsing a configuration file's text into a JSON object, with errors that name the file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "eddy/model_error.h"

namespace eddy {

// Throws ModelError "<origin>: invalid JSON: ..." or "<origin>: top level is not a JSON object".
inline nlohmann::json ParseJsonObject(const std::string& text, const std::string& origin) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(origin + ": invalid JSON: " + e.what());
  }
  if (!root.is_object()) throw ModelError(origin + ": top level is not a JSON object");
  return root;
}

}  // namespace eddy
