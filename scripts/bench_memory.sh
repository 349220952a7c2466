#!/usr/bin/env bash
# Training peak memory and speed, side by side in one run: LLM Foundry with the unblocked loss (as
# before the blocked loss), with the blocked loss (the default), and with the blocked loss plus
# activation recomputation (training.recompute), against PyTorch on the same reference configs.
#
#   scripts/bench_memory.sh [--build DIR] [--reps N] [--configs tiny,small,medium] [--threads 1]
#
# Each measurement is a fresh process (bench_suite --child, bench/torch_reference.py); the variants
# are interleaved within each repetition so they see the same machine; medians are printed.
# Peak memory (getrusage ru_maxrss) does not depend on the machine's load; tokens/s does, so the
# speed ratios are only meaningful between the variants of one run. PyTorch runs
# in its best measured environment (bench/torch_blas_check.sh's run_torch). Raw lines: bench_memory.jsonl.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
reps=1
configs="tiny,small,medium"
threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench_memory.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
suite="$build/bench/bench_suite"
[[ -x "$suite" ]] || { echo "bench_memory.sh: $suite not found (cmake --build $build --target bench_suite)" >&2; exit 1; }
py=/usr/bin/python3
# shellcheck source=bench/torch_blas_check.sh
source "$root/bench/torch_blas_check.sh"
require_fast_blas bench_memory.sh
out="bench_memory.jsonl"
: > "$out"
IFS=, read -r -a config_list <<< "$configs"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" >&2
tag() { sed "s/}\$/, \"variant\": \"$1\", \"rep\": $2}/"; }
for ((rep = 1; rep <= reps; rep++)); do
  for c in "${config_list[@]}"; do
    "$suite" --child --config "$c" --what train --threads "$threads" --loss-rows 100000000 | tag unblocked "$rep" >> "$out"
    "$suite" --child --config "$c" --what train --threads "$threads" | tag blocked "$rep" >> "$out"
    "$suite" --child --config "$c" --what train --threads "$threads" --recompute | tag recompute "$rep" >> "$out"
    run_torch "$py" "$root/bench/torch_reference.py" --config "$c" \
      --threads "$threads" --what train | tag pytorch "$rep" >> "$out"
    echo "  rep $rep $c done (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
done
"$py" - "$out" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(config, variant, key):
    xs = [r[key] for r in rows if r["config"] == config and r["variant"] == variant]
    return statistics.median(xs) if xs else None
print(f"\n{'config':7} {'variant':10} {'peak MiB':>9} {'/ PyTorch':>9} {'tok/s':>8} {'/ unblocked':>11}")
for c in dict.fromkeys(r["config"] for r in rows):
    torch_peak, base = med(c, "pytorch", "peak_rss_mib"), med(c, "unblocked", "tokens_per_s")
    for v in ("unblocked", "blocked", "recompute", "pytorch"):
        peak, tps = med(c, v, "peak_rss_mib"), med(c, v, "tokens_per_s")
        if peak is None:
            continue
        print(f"{c:7} {v:10} {peak:9.0f} {peak / torch_peak:9.2f} {tps:8.0f} {tps / base:11.2f}")
PYEOF
