#!/usr/bin/env bash
# Live-caption latency on a full-size model: three spoken sentences of about 5 s each (espeak-ng),
# separated by 2 s of silence, paced in real time through `eddy caption --realtime`, with the
# output capped at 20 tokens per segment (random weights never stop by themselves). Prints, per
# run, where each sentence's sound ends in the file, then eddy's --stats lines (real-time factor,
# endpoint-to-final latency and the final's decode time, partial interval). Measures; never fails
# on time.
# Usage: bench/caption_latency.sh [--model DIR] [--quant q4|q8|...] [--runs N] [--build DIR]
# Without --model a full-size random checkpoint is written to $TMPDIR (eddy make-random-model).
set -euo pipefail

model=""
quant=q4
runs=3
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift ;;
    --quant) quant="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --build) build="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "caption_latency.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
eddy="$build/apps/eddy"
[ -x "$eddy" ] || { echo "caption_latency.sh: $eddy not built (scripts/setup.sh builds it)" >&2; exit 1; }
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "caption_latency.sh: $tool not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$model" ]; then
  model="$work/model"
  echo "== writing a full-size random model to $model"
  "$eddy" make-random-model --out "$model" --seed 3 >/dev/null
fi

sentences=(
  "The quick brown fox jumps over the lazy dog near the river bank this morning."
  "Please remember to bring your notebook and a pencil to the meeting tomorrow at ten."
  "Streaming speech recognition must stay fast and accurate for many hours on end."
)
parts=()
sox -n -r 22050 -c 1 -b 16 "$work/gap.wav" trim 0 2
parts+=("$work/gap.wav")
for i in "${!sentences[@]}"; do
  espeak-ng -s 140 -w "$work/s$i.raw.wav" "${sentences[$i]}"
  sox "$work/s$i.raw.wav" -b 16 "$work/s$i.wav"
  parts+=("$work/s$i.wav" "$work/gap.wav")
done
sox "${parts[@]}" "$work/speech.wav"

# Where each sentence's sound ends: the last 10 ms frame above -50 dBFS before 300 ms of quiet.
python3 - "$work/speech.wav" <<'EOF'
import struct, sys, wave
w = wave.open(sys.argv[1])
rate, n = w.getframerate(), w.getnframes()
samples = struct.unpack("<%dh" % n, w.readframes(n))
frame = rate // 100
loud = [max(abs(s) for s in samples[i:i + frame]) > 104 for i in range(0, n - frame, frame)]
spans, start = [], None
for i, on in enumerate(loud):
    if on and start is None:
        start = i
    if not on and start is not None and not any(loud[i:i + 30]):
        spans.append((start / 100, i / 100))
        start = None
print("sentences (start-end of sound, s): " +
      ", ".join("%.2f-%.2f (%.2f s)" % (a, b, b - a) for a, b in spans))
EOF

for run in $(seq "$runs"); do
  echo "== run $run: eddy caption --quant $quant --max-tokens 20 --realtime"
  "$eddy" caption --model "$model" --quant "$quant" --max-tokens 20 --input "$work/speech.wav" \
    --realtime --stats 2>&1 >/dev/null | grep -E '^(audio|decoding)'
done
