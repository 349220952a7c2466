#!/usr/bin/env bash
# LLM Foundry against PyTorch on the same CPU: training tokens/s, peak memory and
# greedy generation tokens/s for the reference configs, side by side, interleaved, medians.
#
#   scripts/bench_vs_pytorch.sh [--build DIR] [--reps N] [--configs tiny,small,medium] [--threads 1,2]
#
# Needs a Release build of bench_suite (cmake --build DIR --target bench_suite) and Debian's
# python3-torch (/usr/bin/python3). For every repetition, config, thread count and measurement
# it runs ours (bench/bench_suite --json) and then PyTorch (bench/torch_reference.py), each in a
# fresh process, so the two see the same machine state; then it prints the median of each
# figure and the ratio ours / PyTorch, plus:
#   - model-FLOPs utilization of medium at 2 threads: (6 · matmul parameters + causal attention)
#     FLOPs per token × tokens/s, against the machine's 2-thread sgemm GFLOP/s (OpenBLAS through
#     numpy on the same transformer shape, and our own matmul; the higher is the reference);
#   - the 1 → 2 thread speed-up of medium training;
#   - the peak memory ratio.
# The raw JSON lines go to bench_vs_pytorch.jsonl in the current directory.
#
# Fairness: PyTorch and numpy run in their best measured environment (bench/torch_blas_check.sh's
# run_torch: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, a passive OpenMP wait), with OpenBLAS's
# own thread pool sized to the run's thread count (bench/blas_threads.py); tcmalloc is preloaded for Python when installed (apt-get install libgoogle-perftools4), as PyTorch recommends.
# Timings need a quiet machine: two busy threads on two shared cores measure the neighbours.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
reps=3
configs="tiny,small,medium"
threads="1,2"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench_vs_pytorch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

suite="$build/bench/bench_suite"
if [[ ! -x "$suite" ]]; then
  echo "bench_vs_pytorch.sh: $suite not found; build it: cmake --build $build --target bench_suite" >&2
  exit 1
fi
py=/usr/bin/python3
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "bench_vs_pytorch.sh: $py cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi
# shellcheck source=bench/torch_blas_check.sh
source "$root/bench/torch_blas_check.sh"
require_fast_blas bench_vs_pytorch.sh
preload=""
for lib in /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4; do
  if [[ -e "$lib" ]]; then preload="$lib"; break; fi
done

# PyTorch and numpy in their best environment (bench/torch_blas_check.sh).
torch_run() { LD_PRELOAD="$preload" run_torch "$py" "$@"; }

out="bench_vs_pytorch.jsonl"
: > "$out"
IFS=, read -r -a config_list <<< "$configs"
IFS=, read -r -a thread_list <<< "$threads"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); tcmalloc for PyTorch: ${preload:-none}" >&2

for ((rep = 1; rep <= reps; rep++)); do
  echo "repetition $rep of $reps" >&2
  for t in "${thread_list[@]}"; do
    "$suite" --json --what matmul --threads "$t" --repeats 20 | sed "s/}\$/, \"rep\": $rep}/" >> "$out"
    # The sgemm reference: numpy (OpenBLAS) on the same product (bench/numpy_sgemm.py).
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t torch_run "$root/bench/numpy_sgemm.py" "$t" | sed "s/}\$/, \"rep\": $rep}/" >> "$out"
  done
  for c in "${config_list[@]}"; do
    for what in train generate; do
      for t in "${thread_list[@]}"; do
        "$suite" --json --configs "$c" --what "$what" --threads "$t" | sed "s/}\$/, \"rep\": $rep}/" >> "$out"
        torch_run "$root/bench/torch_reference.py" --config "$c" --threads "$t" --what "$what" \
          | sed "s/}\$/, \"rep\": $rep}/" >> "$out"
        echo "  $c $what ${t}t: $(tail -2 "$out" | grep -o '"tokens_per_s": [0-9.]*' | tr '\n' ' ')" >&2
      done
    done
  done
done

"$py" - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]

def med(impl, what, key, config=None, threads=None):
    xs = [r[key] for r in rows if r["impl"] == impl and r["what"] == what and r.get(key) is not None
          and (config is None or r.get("config") == config) and (threads is None or r.get("threads") == threads)]
    return statistics.median(xs) if xs else None

reps = max(r["rep"] for r in rows)
configs = sorted({r["config"] for r in rows if "config" in r}, key=["tiny", "small", "medium"].index)
threads = sorted({r["threads"] for r in rows if r["what"] == "train"})
print(f"\nLLM Foundry / PyTorch, medians of {reps} interleaved repetitions (ratio > 1: ours is better)\n")
print(f"{'config':7} {'what':9} {'thr':>3} {'ours':>10} {'pytorch':>10} {'ratio':>7}")
for c in configs:
    for what, key, unit in (("train", "tokens_per_s", "tok/s"), ("generate", "tokens_per_s", "tok/s")):
        for t in threads:
            a, b = med("foundry", what, key, c, t), med("pytorch", what, key, c, t)
            if a and b:
                print(f"{c:7} {what:9} {t:>3} {a:>10.0f} {b:>10.0f} {a / b:>6.2f}x")
    for t in threads:
        a, b = med("foundry", "train", "peak_rss_mib", c, t), med("pytorch", "train", "peak_rss_mib", c, t)
        if a and b:
            print(f"{c:7} {'peak MiB':9} {t:>3} {a:>10.0f} {b:>10.0f} {a / b:>6.2f}  (ours / pytorch; goal <= 0.50)")

print()
for t in threads:
    ours, blas = med("foundry", "matmul", "gflops", threads=t), med("openblas", "matmul", "gflops", threads=t)
    print(f"sgemm 2048x512x1376, {t} thread(s): ours {ours} GFLOP/s, OpenBLAS (numpy) {blas} GFLOP/s")
if "medium" in configs and 2 in threads:
    g = med("foundry", "train", "gflops", "medium", 2)
    ref = max(x for x in (med("foundry", "matmul", "gflops", threads=2), med("openblas", "matmul", "gflops", threads=2)) if x)
    print(f"medium at 2 threads: {g:.1f} model GFLOP/s = {100 * g / ref:.0f}% of the 2-thread sgemm ({ref:.1f}); goal >= 65%")
    one, two = med("foundry", "train", "tokens_per_s", "medium", 1), med("foundry", "train", "tokens_per_s", "medium", 2)
    if one and two:
        p1, p2 = med("pytorch", "train", "tokens_per_s", "medium", 1), med("pytorch", "train", "tokens_per_s", "medium", 2)
        print(f"medium training 1 -> 2 threads: ours {two / one:.2f}x (goal >= 1.7x), PyTorch {p2 / p1:.2f}x")
goals = {"tiny": 2.0, "small": 1.5, "medium": 1.2}
print("\ngoals (2 threads):")
for c in configs:
    a, b = med("foundry", "train", "tokens_per_s", c, 2), med("pytorch", "train", "tokens_per_s", c, 2)
    if a and b:
        print(f"  train {c}: {a / b:.2f}x, goal {goals[c]}x: {'met' if a / b >= goals[c] else 'NOT met'}")
    a, b = med("foundry", "generate", "tokens_per_s", c, 2), med("pytorch", "generate", "tokens_per_s", c, 2)
    if a and b:
        print(f"  generate {c}: {a / b:.2f}x, goal 3x: {'met' if a / b >= 3 else 'NOT met'}")
    a, b = med("foundry", "train", "peak_rss_mib", c, 2), med("pytorch", "train", "peak_rss_mib", c, 2)
    if a and b:
        print(f"  peak memory {c}: {a / b:.2f} of PyTorch's, goal <= 0.5: {'met' if a / b <= 0.5 else 'NOT met'}")
EOF
