#pragma once

#include <stdexcept>

namespace eddy {

// Raised for anything wrong with a model directory or its files; the message names the file,
// tensor or config field at fault.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace eddy
