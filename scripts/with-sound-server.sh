#!/usr/bin/env bash
# Runs CMD... against a private user-mode PulseAudio daemon with a speaker sink `spk` (record it
# back from spk.monitor) and a virtual microphone `mic` (whatever is played into the sink `micsrc`
# is what an application reads from the default input). See docs/sound-server-testing.md.
# The daemon gets its own XDG_RUNTIME_DIR, so parallel runs never share one, and it is always
# stopped on exit. If it cannot start, this fails (exit 1): sound-server tests never skip.
# Usage: scripts/with-sound-server.sh CMD [ARGS...]
set -euo pipefail
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,7p' "$0"
  [ $# -eq 0 ] && exit 2 || exit 0
fi
for tool in pulseaudio pactl; do
  command -v "$tool" >/dev/null || { echo "with-sound-server.sh: $tool not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done

runtime_dir=$(mktemp -d)
export XDG_RUNTIME_DIR="$runtime_dir"
# Keep the daemon away from any user configuration and from a session bus.
export PULSE_RUNTIME_PATH="$runtime_dir/pulse"
unset PULSE_SERVER DBUS_SESSION_BUS_ADDRESS || true

stop_daemon() {
  pactl exit >/dev/null 2>&1 || pulseaudio --kill >/dev/null 2>&1 || true
  # Wait for the daemon to go so that its runtime directory can be removed.
  for _ in $(seq 50); do
    pulseaudio --check >/dev/null 2>&1 || break
    sleep 0.1
  done
  rm -rf "$runtime_dir"
}
trap stop_daemon EXIT

# The daemon warns when started as root (a CI container); -n skips the default configuration.
if ! pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
  --load=module-native-protocol-unix \
  --load="module-null-sink sink_name=spk" \
  --load="module-null-sink sink_name=micsrc" \
  --load="module-remap-source source_name=mic master=micsrc.monitor" \
  --log-target=file:"$runtime_dir/pulseaudio.log" 2>"$runtime_dir/start.err"; then
  echo "with-sound-server.sh: FAILED to start pulseaudio:" >&2
  cat "$runtime_dir/start.err" "$runtime_dir/pulseaudio.log" >&2 2>/dev/null || true
  exit 1
fi
ready=0
for _ in $(seq 100); do
  if pactl info >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.05
done
if [ "$ready" -ne 1 ]; then
  echo "with-sound-server.sh: FAILED: pulseaudio started but does not answer pactl" >&2
  cat "$runtime_dir/pulseaudio.log" >&2 2>/dev/null || true
  exit 1
fi
pactl set-default-source mic
pactl set-default-sink spk

status=0
"$@" || status=$?
exit "$status"
