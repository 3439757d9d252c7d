#!/usr/bin/env bash
# Installs eddy's build and test dependencies from Debian 12 packages, then configures and builds.
# Idempotent: packages already present are skipped by apt, the build directory is reused.
# Usage: scripts/setup.sh [--no-build] [--build-dir DIR] [--build-type TYPE]
set -euo pipefail

build=1
build_dir=build
build_type=Release
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --build-dir) build_dir="$2"; shift ;;
    --build-type) build_type="$2"; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

packages=(
  build-essential cmake pkg-config git clang-format
  libeigen3-dev libkissfft-dev libsamplerate0-dev portaudio19-dev
  libopus-dev libopusfile-dev libopusenc-dev libogg-dev libpcre2-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  # real-device tests: a user-mode sound server, the ALSA bridge PortAudio uses, speech and sox
  pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup.sh: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$build" -eq 1 ]; then
  cd "$(dirname "$0")/.."
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
  cmake --build "$build_dir" -j "$(nproc)"
fi
