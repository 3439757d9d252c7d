#!/usr/bin/env bash
# `eddy devices`, `eddy record` and `eddy play` against the daemon of scripts/with-sound-server.sh:
# speech played into the virtual microphone is recorded to a file of the asked length and rate,
# the file plays back without underflow, and bad devices/files exit non-zero with clear errors.
# Usage (CTest does this): scripts/with-sound-server.sh tests/audio_io/cli_soundserver.sh EDDY
set -euo pipefail
eddy="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$eddy" devices >"$work/devices.txt"
grep -q "pulse" "$work/devices.txt" || fail "eddy devices does not list pulse: $(cat "$work/devices.txt")"
grep -q "\[default input\]" "$work/devices.txt" || fail "no default input marked"

espeak-ng -w "$work/speech.wav" "Recording a short sentence through the sound server."
# Play the speech once the recorder has had time to start (its first audio can take ~2 s).
(sleep 2.5 && paplay -d micsrc "$work/speech.wav") &
player=$!
"$eddy" record -o "$work/rec.wav" --seconds 6 --rate 22050 2>"$work/record.err" ||
  fail "eddy record: $(cat "$work/record.err")"
wait "$player"
grep -q "0 overflows" "$work/record.err" || fail "record overflowed: $(cat "$work/record.err")"
# 6 s at 22050 Hz mono float32: 44-byte header + 6 * 22050 * 4 bytes, and audible speech in it.
python3 - "$work/rec.wav" <<'PY' || fail "recorded file is wrong"
import struct, sys, math
b = open(sys.argv[1], 'rb').read()
rate, = struct.unpack_from('<I', b, 24)
channels, = struct.unpack_from('<H', b, 22)
samples = struct.unpack_from('<%df' % ((len(b) - 44) // 4), b, 44)
rms = math.sqrt(sum(v * v for v in samples) / len(samples))
print('rate', rate, 'channels', channels, 'seconds', len(samples) / rate, 'rms', round(rms, 4))
sys.exit(0 if rate == 22050 and channels == 1 and len(samples) == 6 * 22050 and rms > 0.01 else 1)
PY

"$eddy" record -o "$work/rec.opus" --seconds 1 >/dev/null 2>&1 || fail "eddy record to .opus"
head -c 4 "$work/rec.opus" | grep -q OggS || fail "rec.opus is not Ogg"
"$eddy" play "$work/rec.wav" 2>"$work/play.err" || fail "eddy play: $(cat "$work/play.err")"
if grep -q "underflow" "$work/play.err"; then fail "play underflowed: $(cat "$work/play.err")"; fi
"$eddy" play "$work/rec.opus" --device pulse 2>/dev/null || fail "eddy play .opus on pulse"

expect_error() {  # expect_error TEXT CMD...: non-zero exit and TEXT in stderr
  local text="$1"
  shift
  if "$@" 2>"$work/err.txt"; then fail "'$*' succeeded"; fi
  grep -q -- "$text" "$work/err.txt" || fail "'$*' said: $(cat "$work/err.txt")"
}
expect_error "output devices:" "$eddy" play "$work/rec.wav" --device no-such-device
expect_error "no audio device with index 99" "$eddy" record -o "$work/x.wav" --seconds 1 --device 99
expect_error "cannot open audio file" "$eddy" play "$work/missing.wav"
printf 'not audio' >"$work/bad.wav"
expect_error "unknown audio format" "$eddy" play "$work/bad.wav"
expect_error "seconds" "$eddy" record -o "$work/x.wav" --seconds 0
echo "cli_soundserver: all checks passed"
