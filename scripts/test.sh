#!/usr/bin/env bash
# Installs dependencies, builds (Release with assertions), and runs the whole test suite.
# This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --build-dir build --build-type Release

ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
