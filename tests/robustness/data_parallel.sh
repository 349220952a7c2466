#!/usr/bin/env bash
# Data-parallel training under mpirun, against one process:
#   1. `mpirun -np 2 foundry train` ends on the same bytes (model.safetensors and the whole last
#      checkpoint) as one process with the same config (grad_accum 4, clipping active), with and
#      without --shard-optimizer, and with 4 ranks;
#   2. a run split across process counts (1 process, then 2 sharded ranks) ends on the same bytes;
#      a process count that does not divide grad_accum is refused with a clear message;
#   3. a killed rank (SIGKILL) stops the whole job, and a stopped one (SIGSTOP: alive but silent)
#      stops it through the --mpi-timeout watchdog; both leave a checkpoint that loads and resumes.
#
#   tests/robustness/data_parallel.sh FOUNDRY SCRATCH_DIR
#
# Exits 77 (CTest's skip code) when mpirun is not installed or foundry was built without MPI.
set -uo pipefail

FOUNDRY=${1:?usage: data_parallel.sh FOUNDRY SCRATCH_DIR}
SCRATCH=${2:?usage: data_parallel.sh FOUNDRY SCRATCH_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export OMP_NUM_THREADS=1

# FOUNDRY_MPIRUN picks the launcher of another MPI (mpirun.mpich for a build against MPICH).
MPIRUN_CMD=${FOUNDRY_MPIRUN:-mpirun}
if ! command -v "$MPIRUN_CMD" > /dev/null; then
  echo "skipped: $MPIRUN_CMD is not installed (scripts/setup.sh --extras installs Open MPI)"
  exit 77
fi
if ! "$FOUNDRY" train --help | grep -q -- --shard-optimizer; then
  echo "skipped: $FOUNDRY was built without MPI (configure with -DFOUNDRY_MPI=ON)"
  exit 77
fi
MPIRUN=("$MPIRUN_CMD")
if "$MPIRUN_CMD" --version 2>&1 | grep -q "Open MPI"; then
  # Two ranks on a machine of fewer cores, as root in a container, over shared memory only.
  MPIRUN+=(--oversubscribe)
  [[ $(id -u) == 0 ]] && MPIRUN+=(--allow-run-as-root)
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm_rsh_agent=false
  export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_orte_base_help_aggregate=0
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
head -c 200000 "$SRC/data/tinystories.txt" > "$SCRATCH/corpus.txt"
"$FOUNDRY" tokenizer train --input "$SCRATCH/corpus.txt" --vocab-size 320 --special "<|endoftext|>" \
  --out "$SCRATCH/tok" > "$SCRATCH/tok.log" 2>&1 || { cat "$SCRATCH/tok.log"; exit 1; }
"$FOUNDRY" prepare --input "$SCRATCH/corpus.txt" --tokenizer "$SCRATCH/tok" --out "$SCRATCH/data" \
  --separator "<|endoftext|>" > "$SCRATCH/prepare.log" 2>&1 || { cat "$SCRATCH/prepare.log"; exit 1; }
head -c 2000 "$SCRATCH/corpus.txt" > "$SCRATCH/probe.txt"

# grad_accum 4 (2 micro-batches per rank on 2 ranks), a clip low enough to act on every step,
# evaluation split across ranks, a checkpoint mid-run. Small buckets: several per micro-batch.
SETTINGS=(--config "$SRC/configs/tiny.json" --data "$SCRATCH/data" --threads 1 --quiet
  --set model.dim=32 --set model.n_layers=2 --set model.n_heads=2 --set model.n_kv_heads=1
  --set model.hidden_dim=96 --set model.vocab_size=320 --set model.max_seq_len=32
  --set training.seq_len=32 --set training.batch_size=4 --set training.grad_accum=4
  --set training.max_steps=6 --set training.warmup_steps=2 --set training.grad_clip=0.05
  --set training.eval_interval=3 --set training.eval_batches=3 --set training.checkpoint_interval=3
  --set training.log_interval=1)

# The same bytes in model/ and in every file of the last checkpoint (weights, AdamW moments,
# data position).
same_run() {
  local a=$1 b=$2 what=$3 f ok=0
  for f in model/model.safetensors ckpt-00000006/model.safetensors ckpt-00000006/optimizer.safetensors \
    ckpt-00000006/train_state.json; do
    cmp -s "$a/$f" "$b/$f" || { echo "  $f differs"; ok=1; }
  done
  if [[ $ok == 0 ]]; then pass "$what: the same bytes as one process"; else fail "$what"; fi
}

"$FOUNDRY" train "${SETTINGS[@]}" --out "$SCRATCH/one" || fail "the single-process run"
"${MPIRUN[@]}" -np 2 "$FOUNDRY" train "${SETTINGS[@]}" --out "$SCRATCH/two" --bucket-mb 0.02 \
  --timeline "$SCRATCH/timeline.json" || fail "the 2-rank run"
same_run "$SCRATCH/one" "$SCRATCH/two" "2 ranks"
if python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['traceEvents']; \
  n={e['name'].split()[0] for e in t if e.get('ph')=='X'}; sys.exit(0 if {'backward','exchange','sum','gather'} <= n \
  and {e['pid'] for e in t} == {0, 1} else 1)" "$SCRATCH/timeline.json"; then
  pass "the timeline holds both ranks' backward, exchanges, sums and gathers"
else
  fail "the timeline $SCRATCH/timeline.json"
fi
"${MPIRUN[@]}" -np 2 "$FOUNDRY" train "${SETTINGS[@]}" --out "$SCRATCH/two_sharded" --bucket-mb 0.02 \
  --shard-optimizer || fail "the 2-rank sharded run"
same_run "$SCRATCH/one" "$SCRATCH/two_sharded" "2 ranks, --shard-optimizer"
"${MPIRUN[@]}" -np 4 "$FOUNDRY" train "${SETTINGS[@]}" --out "$SCRATCH/four" --shard-optimizer || fail "the 4-rank run"
same_run "$SCRATCH/one" "$SCRATCH/four" "4 ranks, --shard-optimizer"

# ---- resume on another number of ranks ----
"$FOUNDRY" train "${SETTINGS[@]}" --out "$SCRATCH/split" --stop-at 3 || fail "the first half"
"${MPIRUN[@]}" -np 2 "$FOUNDRY" train --resume "$SCRATCH/split" --threads 1 --quiet --shard-optimizer ||
  fail "the second half on 2 ranks"
same_run "$SCRATCH/one" "$SCRATCH/split" "1 process, then resumed on 2 sharded ranks"
"${MPIRUN[@]}" -np 3 "$FOUNDRY" train --resume "$SCRATCH/split/ckpt-00000003" --out "$SCRATCH/three" \
  --threads 1 --quiet > "$SCRATCH/three.log" 2>&1
rc=$?
if [[ $rc != 0 ]] && grep -q "grad_accum = 4 is not a multiple of the 3 ranks" "$SCRATCH/three.log"; then
  pass "3 ranks for grad_accum 4 are refused: $(grep -m1 -o 'resume it on [^;]*' "$SCRATCH/three.log")"
else
  fail "3 ranks for grad_accum 4 (exit $rc):"; cat "$SCRATCH/three.log"
fi

# ---- a rank that dies, and a rank that stops answering ----
# The rank whose environment says OMPI_COMM_WORLD_RANK (or PMI_RANK) is $2, among mpirun's descendants.
rank_pid() {
  local pid
  for pid in $(pgrep -f "foundry train .*--out $1( |$)"); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qE "^(OMPI_COMM_WORLD_RANK|PMI_RANK)=$2$"; then
      echo "$pid"; return
    fi
  done
}
for signal in KILL STOP; do
  run="$SCRATCH/victim_$signal"
  "${MPIRUN[@]}" -np 2 "$FOUNDRY" train "${SETTINGS[@]}" --set training.max_steps=100000 \
    --set training.eval_interval=1000 --set training.checkpoint_interval=5 --mpi-timeout 5 --out "$run" \
    > "$run.log" 2>&1 &
  launcher=$!
  for _ in $(seq 600); do  # up to 60 s for the first checkpoint
    compgen -G "$run/ckpt-*[0-9]" > /dev/null && break
    sleep 0.1
  done
  sleep 0.3
  victim=$(rank_pid "$run" 1)
  if [[ -z $victim ]]; then
    fail "SIG$signal: rank 1 of the run was not found"; kill "$launcher"; wait "$launcher"; continue
  fi
  kill -s "$signal" "$victim"
  start=$SECONDS
  for _ in $(seq 300); do kill -0 "$launcher" 2> /dev/null || break; sleep 0.1; done  # up to 30 s
  if kill -0 "$launcher" 2> /dev/null; then
    fail "SIG$signal of rank 1: the job still runs after 30 s"
    kill -9 "$victim" 2> /dev/null; pkill -9 -P "$launcher"; kill -9 "$launcher"
  fi
  wait "$launcher"
  rc=$?
  kill -9 "$victim" 2> /dev/null  # a stopped rank that the launcher left behind
  last=$(compgen -G "$run/ckpt-*[0-9]" | sort | tail -1)
  if [[ $rc != 0 ]] && "$FOUNDRY" eval --model "$last" --text "$SCRATCH/probe.txt" > "$run.eval" 2>&1 &&
    "$FOUNDRY" train --resume "$run" --threads 1 --quiet --stop-at $(($(basename "$last" | sed 's/ckpt-0*//') + 1)) \
      > "$run.resume" 2>&1; then
    pass "SIG$signal of rank 1: the job stopped (exit $rc) after $((SECONDS - start)) s, $(basename "$last") loads and resumes"
  else
    fail "SIG$signal of rank 1 (exit $rc, last checkpoint '$last')"; tail -5 "$run.log" "$run.eval" "$run.resume"
  fi
  if [[ $signal == STOP ]]; then
    grep -q "no answer from the other ranks" "$run.log" && pass "the watchdog named the cause: $(grep -m1 -o 'no answer[^:]*' "$run.log")" ||
      { fail "the watchdog's message is missing"; tail -20 "$run.log"; }
  fi
done

if [[ $failures != 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all data-parallel checks passed"
