#!/usr/bin/env bash
# Checks the compiler tuning and Eigen's blocking on the CPU at hand: our one-thread GEMM on
# medium's feed-forward product, (2048, 512) · (512, 1376) and its two backward products
# (bench/gemm_tune.cpp), built with several sets of flags and run with several blocking sizes,
# against OpenBLAS (numpy) on the same product, alternated over a few rounds.
#
#   scripts/tune_check.sh [--rounds N]        (default 3; about 1 minute per round)
#
# Prints the CPU, each variant's median GFLOP/s per round, and its best-round ratio to OpenBLAS.
# The project builds with `-march=native -mtune=generic` (CMakeLists.txt): this shows whether
# that still holds on this CPU (g++ 12 tunes `-march=native` alone for an older model on CPUs
# newer than it knows). The bar earlier work set: the GEMM at >= 0.9 of OpenBLAS at one thread.
# Needs g++, Eigen and python3-numpy on OpenBLAS (not the reference BLAS). Timings need a quiet
# machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "tune_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "tune_check.sh: --rounds $rounds: expected 1 to 99" >&2; exit 2; }
py=/usr/bin/python3
"$py" -c "import numpy" 2> /dev/null || { echo "tune_check.sh: $py cannot import numpy (apt-get install python3-numpy)" >&2; exit 1; }
# shellcheck source=bench/torch_blas_check.sh
source "$root/bench/torch_blas_check.sh"
require_fast_blas tune_check.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# name|flags: the project's choice first.
variants=(
  "generic|-march=native -mtune=generic"
  "native-only|-march=native"
  "native-tune|-march=native -mtune=native"
)
for v in "${variants[@]}"; do
  name=${v%%|*} flags=${v#*|}
  # shellcheck disable=SC2086
  g++ -std=c++17 -O3 -DNDEBUG $flags -isystem /usr/include/eigen3 "$root/bench/gemm_tune.cpp" -o "$work/$name"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
model=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_tile)$' | tr '\n' ' ')
echo "CPU: $cpu (family $family, model $model); $(nproc) cores; $isa"
echo "g++ $(g++ -dumpfullversion); -march=native means: $(g++ -march=native -Q --help=target 2> /dev/null | awk '$1 == "-march=" {print $2}')"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A best
runs=("openblas|")
for v in "${variants[@]}"; do runs+=("${v%%|*}|1"); done
runs+=("generic|0.5" "generic|2")  # Eigen's blocking from half and twice the L2 size it reads
for ((r = 1; r <= rounds; r++)); do
  echo "round $r:"
  for run in "${runs[@]}"; do
    name=${run%%|*} scale=${run#*|}
    if [[ $name == openblas ]]; then
      g=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 run_torch "$py" "$root/bench/numpy_sgemm.py" 1 15 |
        sed -E 's/.*"gflops": ([0-9.]+).*/\1/')
      label="OpenBLAS (numpy)"
      echo "    $label: $g GFLOP/s"
    else
      line=$(OMP_NUM_THREADS=1 "$work/$name" --l2-scale "$scale")
      g=$(sed -E 's/.*median ([0-9.]+) GFLOP.*/\1/' <<< "$line")
      label="$name, L2 x$scale"
      echo "    $label: $line"
    fi
    if [[ -z ${best[$label]:-} ]] || awk -v a="$g" -v b="${best[$label]}" 'BEGIN {exit !(a > b)}'; then best[$label]=$g; fi
  done
done
echo
echo "best round, median of the three products, GFLOP/s at 1 thread, and the ratio to OpenBLAS:"
ref=${best["OpenBLAS (numpy)"]}
for run in "${runs[@]}"; do
  name=${run%%|*} scale=${run#*|}
  [[ $name == openblas ]] && continue
  label="$name, L2 x$scale"
  awk -v n="$label" -v g="${best[$label]}" -v r="$ref" 'BEGIN {printf "  %-24s %7.1f   %.2f\n", n, g, g / r}'
done
echo "  OpenBLAS (numpy)         $(printf '%7.1f' "$ref")   1.00"
