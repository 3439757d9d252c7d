#!/usr/bin/env bash
# eddy against llama.cpp on the same CPU, in the same minutes: rounds that alternate `eddy bench`
# and llama.cpp's llama-bench on the same LFM2 backbone shapes (a full-size random checkpoint and a
# GGUF of its shapes written by bench/lfm2_gguf.py), q8 against Q8_0 and q4 against Q4_0, with
# the memory read bandwidth measured in each round. Shared hosts change speed from minute to
# minute, so only numbers from the same round compare. Measures; never fails on time.
#
# Usage: bench/vs_llamacpp.sh --llama-bin DIR [--model DIR] [--rounds N] [--build DIR] [--work DIR]
#   --llama-bin  a llama.cpp build's bin/ directory holding llama-bench and llama-quantize
#   --model      an eddy model directory (default: a random full-size one written to --work)
#   --work       where the checkpoint and GGUF files go (default: $TMPDIR/eddy_vs_llamacpp; kept)
set -euo pipefail

llama_bin=""
model=""
rounds=3
build=build
work="${TMPDIR:-/tmp}/eddy_vs_llamacpp"
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-bin) llama_bin="$2"; shift ;;
    --model) model="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --build) build="$2"; shift ;;
    --work) work="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "vs_llamacpp.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
eddy="$build/apps/eddy"
[ -x "$eddy" ] || { echo "vs_llamacpp.sh: $eddy not built (scripts/setup.sh builds it)" >&2; exit 1; }
for tool in llama-bench llama-quantize; do
  [ -x "$llama_bin/$tool" ] || { echo "vs_llamacpp.sh: no $tool in --llama-bin '$llama_bin'" >&2; exit 1; }
done
mkdir -p "$work"
if [ -z "$model" ]; then
  model="$work/model"
  [ -f "$model/config.json" ] || "$eddy" make-random-model --out "$model"
fi
if [ ! -f "$work/lfm2-q4_0.gguf" ]; then
  python3 bench/lfm2_gguf.py "$model/config.json" "$work/lfm2-f16.gguf"
  for q in Q8_0 Q4_0; do
    "$llama_bin/llama-quantize" "$work/lfm2-f16.gguf" "$work/lfm2-${q,,}.gguf" "$q" >/dev/null 2>&1 ||
      { echo "vs_llamacpp.sh: llama-quantize $q failed" >&2; exit 1; }
  done
  rm -f "$work/lfm2-f16.gguf"
fi

threads=$(lscpu -p=core | grep -v '^#' | sort -u | wc -l)  # physical cores, as eddy uses
echo "model $model, $threads threads, llama.cpp from $llama_bin"
printf '%-6s %-5s %-9s %10s %10s %10s %10s\n' round quant engine prefill64 prefill256 decode read_GB/s
for round in $(seq 1 "$rounds"); do
  for quant in q8 q4; do
    eddy_json=$("$eddy" bench --json -m "$model" --quant "$quant" --threads "$threads" 2>/dev/null)
    python3 - "$round" "$quant" "$eddy_json" <<'EOF'
import json, sys
r = json.loads(sys.argv[3])
print("%-6s %-5s %-9s %10.1f %10.1f %10.1f %10.1f" % (sys.argv[1], sys.argv[2], "eddy",
      r["prefill64_tok_s"], r["prefill256_tok_s"], r["decode_tok_s"], r["read_gb_s"]))
EOF
    "$llama_bin/llama-bench" -m "$work/lfm2-${quant}_0.gguf" -t "$threads" -p 64,256 -n 64 -r 2 \
      -o json 2>/dev/null | python3 -c '
import json, sys
runs = {(t["n_prompt"], t["n_gen"]): t["avg_ts"] for t in json.load(sys.stdin)}
print("%-6s %-5s %-9s %10.1f %10.1f %10.1f" % (sys.argv[1], sys.argv[2], "llama.cpp",
      runs[(64, 0)], runs[(256, 0)], runs[(0, 64)]))' "$round" "${quant^^}_0"
  done
done
