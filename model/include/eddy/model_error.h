#pragma once

#include <atomic>
#include <stdexcept>
#include <string>

namespace eddy {

// Raised for anything wrong with a model directory or its files; the message names the file,
// tensor or config field at fault.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raised by a long computation (encoder, backbone forward pass) when the cancel flag its caller
// gave it was set while it ran; whatever it was computing is lost.
class Cancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Cancelled("<where>: cancelled") when `flag` is given and set.
inline void ThrowIfCancelled(const std::atomic<bool>* flag, const char* where) {
  if (flag != nullptr && flag->load(std::memory_order_relaxed)) {
    throw Cancelled(std::string(where) + ": cancelled");
  }
}

}  // namespace eddy
