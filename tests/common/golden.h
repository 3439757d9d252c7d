// Where golden reference vectors live, and comparisons against them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "npy.h"

namespace eddy::test {

// EDDY_GOLDEN_DIR if set, else the copy in tests/data/golden. Never empty.
std::filesystem::path GoldenDir();

// GoldenDir()/relative; fails the current test (ADD_FAILURE) when the file is missing, because a
// golden test whose data is absent must fail, not skip.
std::filesystem::path GoldenFile(const std::string& relative);

// The model checkpoint directory of the golden set.
std::filesystem::path GoldenModelDir();

struct Diff {
  double max_abs = 0.0;   // max |a - b|
  double max_ref = 0.0;   // max |b|
  std::size_t worst = 0;  // flat index of the largest difference
  std::size_t count = 0;
};
Diff Compare(const float* actual, const float* expected, std::size_t n);

// Relative tolerance check used by golden tests: max|diff| <= rel * max|ref| + abs.
bool WithinTolerance(const Diff& d, double rel, double abs = 0.0);
std::string Describe(const Diff& d);

}  // namespace eddy::test
