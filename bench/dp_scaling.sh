#!/usr/bin/env bash
# Data parallelism on this machine: 1 rank x 2 threads against 2 ranks x 1 thread (and 1 x 1, the
# cost model's input), tokens/s of the small and medium configs, the all-reduce time per step,
# then the cost model (bench/dp_cost_model) fed with the 1 x 1 speed and checked against the
# 2-rank measurement. Every run uses grad_accum 2 (one micro-batch per rank per step on 2 ranks).
#
#   bench/dp_scaling.sh [BUILD_DIR] [STEPS]      (default build, 6 steps)
#
# Needs mpirun and a foundry built with MPI. Speeds come from metrics.jsonl (tokens over elapsed
# time between the first and the last step), so start-up and the first step are not counted.
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-6}
SRC=$(cd "$(dirname "$0")/.." && pwd)
F="$BUILD/foundry"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MPIRUN=(mpirun)
if mpirun --version 2>&1 | grep -q "Open MPI"; then
  MPIRUN+=(--oversubscribe --bind-to none)
  [[ $(id -u) == 0 ]] && MPIRUN+=(--allow-run-as-root)
  export OMPI_MCA_btl=self,vader
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

head -c 2000000 "$SRC/data/tinystories.txt" > "$WORK/corpus.txt"
"$F" tokenizer train --input "$WORK/corpus.txt" --vocab-size 4096 --special "<|endoftext|>" --out "$WORK/tok" --quiet > /dev/null
"$F" prepare --input "$WORK/corpus.txt" --tokenizer "$WORK/tok" --out "$WORK/data" --separator "<|endoftext|>" > /dev/null

# tokens/s between the second and the last step of a run's metrics.jsonl
speed() {
  python3 -c "
import json,sys
rows=[r for r in map(json.loads, open(sys.argv[1])) if r.get('kind')=='train']
a,b=rows[1],rows[-1]
print('%.0f' % ((b['tokens']-a['tokens'])/(b['elapsed_s']-a['elapsed_s'])))" "$1/metrics.jsonl"
}

for config in small medium; do
  S=(--config "$SRC/configs/$config.json" --data "$WORK/data" --set training.grad_accum=2
    --set training.max_steps="$STEPS" --set training.warmup_steps=1 --set training.eval_interval=100000 --set training.eval_batches=1
    --set training.checkpoint_interval=100000)
  "$F" train "${S[@]}" --quiet --threads 1 --out "$WORK/$config-1x1"
  "$F" train "${S[@]}" --quiet --threads 2 --out "$WORK/$config-1x2"
  OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$F" train "${S[@]}" --set training.log_interval=1 --threads 1 \
    --out "$WORK/$config-2x1" --timeline "$WORK/$config-timeline.json" 2>&1 | grep "data parallel:" || true
  s11=$(speed "$WORK/$config-1x1") s12=$(speed "$WORK/$config-1x2") s21=$(speed "$WORK/$config-2x1")
  echo "$config: 1x1 $s11 tok/s, 1x2 $s12 tok/s, 2x1 $s21 tok/s; 2x1 / 1x2 = $(python3 -c "print('%.2f' % ($s21/$s12))")"
  cp "$WORK/$config-timeline.json" "dp-timeline-$config.json"
  echo "  timeline: dp-timeline-$config.json (chrome://tracing or ui.perfetto.dev)"
  "$BUILD/bench/dp_cost_model" --config "$SRC/configs/$config.json" --tokens-per-s "$s11" --rounds 1 \
    --measured-2rank-tokens-per-s "$s21"
done
