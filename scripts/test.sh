#!/usr/bin/env bash
# Installs dependencies, builds (Release with assertions), and runs the whole test suite, then
# rebuilds the tests that parse untrusted input under AddressSanitizer+UBSan and runs them again.
# This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/setup.sh --build-dir build --build-type Release

# Tests labelled "asan" parse untrusted bytes (model files, audio files); they also run sanitized.
asan_targets=(test_model_files test_tokenizer test_audio_files test_audio_fuzz)

status=0
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 || status=$?

echo "== sanitizer build (address+undefined) of: ${asan_targets[*]}"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DEDDY_SANITIZE=address \
  -DEDDY_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs" --target "${asan_targets[@]}"
ctest --test-dir build-asan -L asan --output-on-failure -j "$jobs" --timeout 600 || status=$?

exit "$status"
