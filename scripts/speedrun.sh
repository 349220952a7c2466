#!/usr/bin/env bash
# The speedrun: wall time for `foundry train` to reach a validation loss of 1.88 on Tiny Shakespeare
# read as bytes (vocabulary 256), from the start of the `foundry train` process to the end of the
# evaluation that crosses it, evaluations included. Optionally nanoGPT's CPU recipe for the same
# data (bench/nanogpt_shakespeare_char.py, PyTorch), run right after on the same machine.
#
#   scripts/speedrun.sh [--build DIR] [--threads N] [--reference] [--config FILE] [--set FIELD=VALUE ...]
#
# Steps: a byte-level tokenizer (256 ids, no merges) and `foundry prepare` with the last 10% of the
# bytes held out for validation (the split nanoGPT uses: first 90% train, last 10% val); then
# `foundry train --config configs/shakespeare_speedrun.json` (training.target_loss = 1.88 stops it at
# the crossing evaluation); the time is measured around the whole train process. Everything goes to
# runs/speedrun/. --reference also runs the PyTorch recipe (Debian's python3-torch) with
# its best measured environment (bench/torch_blas_check.sh's run_torch), and prints the ratio.
# Timings need a quiet machine; the load average is printed with the result.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
threads=""
reference=0
config="$root/configs/shakespeare_speedrun.json"
sets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --reference) reference=1; shift ;;
    --config) config="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "speedrun.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ((reference)); then
  # shellcheck source=bench/torch_blas_check.sh
  source "$root/bench/torch_blas_check.sh"
  require_fast_blas speedrun.sh  # before our run, so nobody waits for a refusal
fi
foundry="$build/foundry"
if [[ ! -x "$foundry" ]]; then
  echo "speedrun.sh: $foundry not found; build it: cmake --build $build --target foundry" >&2
  exit 1
fi
corpus="$root/data/tinyshakespeare.txt"
run="$root/runs/speedrun"
mkdir -p "$run"

# Byte level: a BPE tokenizer with no merges has exactly the 256 byte ids.
"$foundry" tokenizer train --input "$corpus" --vocab-size 256 --out "$run/tokenizer.json" > "$run/tokenizer.log" 2>&1
"$foundry" prepare --input "$corpus" --tokenizer "$run/tokenizer.json" --out "$run/data" --val-fraction 0.1 \
  > "$run/prepare.log" 2>&1

thread_args=()
[[ -n "$threads" ]] && thread_args=(--threads "$threads")
echo "speedrun: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
start=$(date +%s.%N)
cpu_before=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)  # this shell's children's CPU ticks
"$foundry" train --config "$config" --data "$run/data" --out "$run/train" --overwrite "${thread_args[@]}" \
  "${sets[@]}" > "$run/train.log"
end=$(date +%s.%N)
grep -E "^eval step|^target reached|^done" "$run/train.log"
ours=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
cpu=$(awk -v before="$cpu_before" -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15 + $16 + $17 - before) / hz }' /proc/$$/stat)
if grep -q "^target reached" "$run/train.log"; then
  echo "LLM Foundry: val loss <= 1.88 after $ours s (whole foundry train process; CPU time $cpu s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
else
  echo "LLM Foundry: the target was NOT reached ($ours s); see $run/train.log"
fi

if ((reference)); then
  py=/usr/bin/python3
  torch_threads=()
  [[ -n "$threads" ]] && torch_threads=(--threads "$threads")
  echo "nanoGPT's CPU recipe (PyTorch), same machine:"
  run_torch "$py" "$root/bench/nanogpt_shakespeare_char.py" --data "$corpus" \
    "${torch_threads[@]}" | tee "$run/nanogpt.log"
  read -r theirs theirs_cpu < <(tail -1 "$run/nanogpt.log" | "$py" -c 'import json,sys; r=json.load(sys.stdin); print(r["crossed_at_s"] or "", r["crossed_at_cpu_s"] or "")')
  if [[ -n "$theirs" ]]; then
    awk -v a="$ours" -v b="$theirs" -v ac="$cpu" -v bc="$theirs_cpu" 'BEGIN {
      printf "nanoGPT recipe: %.1f s (CPU %.1f s); ours %.1f s (CPU %.1f s): %.2fx faster in wall time, %.2fx in CPU time (goal >= 3x)\n",
             b, bc, a, ac, b / a, bc / ac }'
  else
    echo "nanoGPT recipe: did not reach the target in its 2000 iterations (see $run/nanogpt.log)"
  fi
fi
