#!/usr/bin/env bash
# Training and generation speed with a busy neighbour: does a second thread still help when
# another program wants one of the cores?
#
#   bench/under_load.sh [--bin build] [--rounds N] [--configs tiny,small,medium] [--what train,generate]
#                       [--loads idle,loaded] [--policies foundry,static,libgomp]
#
# For each configuration (bench/reference_configs.h sizes, random weights and tokens) and each
# of train / generate it measures tokens/s at 1 and 2 threads, twice: on the machine as it is
# ("idle") and with a neighbour, a pure spin loop pinned by taskset to the last core ("loaded").
# Each measurement runs with each of three set-ups, back to back, so all see the same machine:
# "foundry", the programs as they are (engine/parallel.h: spin about 100 µs, then sleep; products
# cut into a few blocks per thread, taken on demand; helper threads pinned to their own cores);
# "static", the same wait policy with one fixed block per thread and no pinning
# (FOUNDRY_SPLIT=static FOUNDRY_PIN_THREADS=0: the programs before they split on demand); "libgomp",
# that and libgomp's default wait (GOMP_SPINCOUNT=300000, before the programs chose their own). The neighbour is
# started before the loaded runs and killed after them (and on exit, however the script ends).
# Every run is bounded by a timeout (a timed-out run prints as "t/o").
#
# Ratios: "2t/1t" is the loaded 2-thread speed over the loaded 1-thread speed (the goal: at least
# 1); "idle 2t vs static" is the idle 2-thread speed over the "static" set-up's (the goal: at
# least 0.95, no idle cost for the dynamic split). Medians over --rounds (default 1; use 3 to see the spread,
# which is printed as min-max). Run it on a quiet machine: check /proc/loadavg first.
set -euo pipefail

bin=build
rounds=1
configs=tiny,small,medium
what=train,generate
loads=idle,loaded
policies=foundry,static,libgomp
while (($#)); do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --what) what=$2; shift 2 ;;
    --loads) loads=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "under_load.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
suite="$bin/bench/bench_suite"
[[ -x "$suite" ]] || { echo "under_load.sh: $suite not found; build the bench_suite target first" >&2; exit 2; }
command -v taskset > /dev/null || { echo "under_load.sh: taskset (util-linux) is needed to pin the neighbour" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "under_load.sh: --rounds must be a positive integer" >&2; exit 2; }
cores=$(nproc)
((cores >= 2)) || { echo "under_load.sh: needs at least 2 cores (this machine has $cores)" >&2; exit 2; }
last=$((cores - 1))

neighbour=""
stop_neighbour() {
  if [[ -n "$neighbour" ]]; then
    kill "$neighbour" 2> /dev/null || true
    wait "$neighbour" 2> /dev/null || true
    neighbour=""
  fi
}
trap stop_neighbour EXIT INT TERM
start_neighbour() {
  taskset -c "$last" bash -c 'while :; do :; done' &
  neighbour=$!
  sleep 0.3  # let the scheduler see it
}

# Few steps and one generation pass each: the ratios need only a few seconds per run.
steps_of() { case $1 in tiny) echo 12 ;; small) echo 3 ;; *) echo 2 ;; esac; }

# One measurement: prints tokens/s, or t/o.
measure() {  # config what threads policy
  local config=$1 w=$2 threads=$3 policy=$4 env_args=() out
  case $policy in
    libgomp) env_args=(GOMP_SPINCOUNT=300000 FOUNDRY_SPLIT=static FOUNDRY_PIN_THREADS=0) ;;
    static) env_args=(FOUNDRY_SPLIT=static FOUNDRY_PIN_THREADS=0) ;;
    foundry) env_args=(FOUNDRY_SPLIT=dynamic) ;;
    *) echo "under_load.sh: unknown policy '$policy' (foundry, static, libgomp)" >&2; exit 2 ;;
  esac
  out=$(env "${env_args[@]}" timeout 90 "$suite" --child --config "$config" --what "$w" --threads "$threads" \
    --steps "$(steps_of "$config")" --repeats 1 2> /dev/null || true)
  local tps
  tps=$(sed -n 's/.*"tokens_per_s": \([0-9.]*\).*/\1/p' <<< "$out")
  echo "${tps:-t/o}"
}

results=$(mktemp)
trap 'stop_neighbour; rm -f "$results"' EXIT
echo "under_load.sh: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores;" \
  "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for load in ${loads//,/ }; do
    [[ $load == loaded ]] && start_neighbour
    for config in ${configs//,/ }; do
      for w in ${what//,/ }; do
        for threads in 1 2; do
          for policy in ${policies//,/ }; do
            tps=$(measure "$config" "$w" "$threads" "$policy")
            echo "$config $w $policy $load $threads $tps" >> "$results"
            printf '  round %d %-6s %-6s %-8s %-7s %d thread(s): %s tokens/s\n' "$r" "$load" "$config" "$w" "$policy" \
              "$threads" "$tps" >&2
          done
        done
      done
    done
    stop_neighbour
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# The table: medians (and min-max over the rounds when there are several).
awk -v rounds="$rounds" '
  function median(key,   n, i, j, t, v) {
    n = split(vals[key], v, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    if (n == 0) return ""
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function spread(key,   n, i, lo, hi, v) {
    n = split(vals[key], v, " ")
    if (n < 2) return ""
    lo = hi = v[1] + 0
    for (i = 2; i <= n; i++) { if (v[i] + 0 < lo) lo = v[i] + 0; if (v[i] + 0 > hi) hi = v[i] + 0 }
    return sprintf(" (%.0f-%.0f)", lo, hi)
  }
  function cell(key,   m) { m = median(key); return m != "" ? sprintf("%.0f%s", m, spread(key)) : (key in ran ? "t/o" : "-") }
  function ratio(a, b,   x, y) { x = median(a); y = median(b); return (x == "" || y == "" || y == 0) ? "-" : sprintf("%.2f", x / y) }
  { key = $1 " " $2 " " $3 " " $4 " " $5; ran[key] = 1; if ($6 != "t/o") vals[key] = vals[key] " " $6; seen[$1 " " $2] = 1; order[++n] = $1 " " $2 }
  END {
    printf "| config | what | set-up | idle 1t | idle 2t | loaded 1t | loaded 2t | loaded 2t/1t | idle 2t vs static |\n"
    printf "|---|---|---|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= n; i++) {
      cw = order[i]; if (done[cw]++) continue
      split(cw, p, " ")
      for (k = 1; k <= 3; k++) {
        pol = k == 1 ? "foundry" : k == 2 ? "static" : "libgomp"
        name = k == 1 ? "spin ~100 us; blocks on demand, pinned" : k == 2 ? "spin ~100 us; a block per thread" : "libgomp default; a block per thread"
        b = cw " " pol
        if (!((b " idle 1") in ran) && !((b " loaded 1") in ran) && !((b " idle 2") in ran) && !((b " loaded 2") in ran)) continue
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2], name,
          cell(b " idle 1"), cell(b " idle 2"), cell(b " loaded 1"), cell(b " loaded 2"),
          ratio(b " loaded 2", b " loaded 1"), k == 2 ? "1" : ratio(b " idle 2", cw " static idle 2")
      }
    }
  }' "$results"
