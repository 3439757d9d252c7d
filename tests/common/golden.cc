#include "golden.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace eddy::test {

std::filesystem::path GoldenDir() {
  const char* env = std::getenv("EDDY_GOLDEN_DIR");
  if (env != nullptr && *env != '\0') return std::filesystem::path(env);
  return std::filesystem::path(EDDY_DEFAULT_GOLDEN_DIR);
}

std::filesystem::path GoldenFile(const std::string& relative) {
  auto path = GoldenDir() / relative;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "golden file missing: " << path.string()
                  << " (set EDDY_GOLDEN_DIR to a complete reference set)";
  }
  return path;
}

std::filesystem::path GoldenModelDir() {
  return GoldenDir() / "model" / "checkpoint";
}

Diff Compare(const float* actual, const float* expected, std::size_t n) {
  Diff d;
  d.count = n;
  for (std::size_t i = 0; i < n; ++i) {
    const double diff = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    // A NaN anywhere must never compare as "close".
    if (std::isnan(diff) || diff > d.max_abs) {
      d.max_abs = std::isnan(diff) ? INFINITY : diff;
      d.worst = i;
    }
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(expected[i])));
  }
  return d;
}

bool WithinTolerance(const Diff& d, double rel, double abs) {
  return d.max_abs <= rel * d.max_ref + abs;
}

std::string Describe(const Diff& d) {
  std::ostringstream s;
  s << "max|diff|=" << d.max_abs << " at flat index " << d.worst << ", max|ref|=" << d.max_ref
    << ", relative=" << (d.max_ref > 0 ? d.max_abs / d.max_ref : d.max_abs) << " over " << d.count
    << " values";
  return s.str();
}

}  // namespace eddy::test
