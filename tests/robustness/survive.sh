#!/usr/bin/env bash
# Runs that survive: `foundry train` is killed with SIGKILL at random moments, runs out of disk
# space, and is pointed at a read-only directory. After each, the run directory must hold a
# checkpoint that loads, nothing half-written may sit under a real name, and `--resume` must end
# on exactly the bits of a run that was never interrupted.
#
#   tests/robustness/survive.sh FOUNDRY SCRATCH_DIR [kills|disk|readonly|all]
#
# The full-disk and read-only parts mount a small tmpfs, which needs root; without it they say
# they are skipped and pass. Everything runs at one thread, where a run is reproducible bit for bit.
# KILLS (default 20) and SURVIVE_SEED (default 1) choose how many kills and where they land.
set -uo pipefail

FOUNDRY=${1:?usage: survive.sh FOUNDRY SCRATCH_DIR [kills|disk|readonly|all]}
SCRATCH=${2:?usage: survive.sh FOUNDRY SCRATCH_DIR [kills|disk|readonly|all]}
WHAT=${3:-all}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
KILLS=${KILLS:-20}
RANDOM=${SURVIVE_SEED:-1}
export OMP_NUM_THREADS=1

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

# ---- a tiny model on a small tokenizer, so that a step and a checkpoint take milliseconds -------
head -c 400000 "$SRC/data/tinystories.txt" > "$SCRATCH/corpus.txt"
"$FOUNDRY" tokenizer train --input "$SCRATCH/corpus.txt" --vocab-size 320 --special "<|endoftext|>" \
  --out "$SCRATCH/tok" > "$SCRATCH/tok.log" 2>&1 || { cat "$SCRATCH/tok.log"; exit 1; }
"$FOUNDRY" prepare --input "$SCRATCH/corpus.txt" --tokenizer "$SCRATCH/tok" --out "$SCRATCH/data" \
  --separator "<|endoftext|>" > "$SCRATCH/prepare.log" 2>&1 || { cat "$SCRATCH/prepare.log"; exit 1; }

SETTINGS=(--config "$SRC/configs/tiny.json" --data "$SCRATCH/data" --threads 1 --quiet
  --set model.dim=32 --set model.n_layers=2 --set model.n_heads=2 --set model.n_kv_heads=1
  --set model.hidden_dim=96 --set model.vocab_size=320 --set model.max_seq_len=32
  --set training.seq_len=32 --set training.batch_size=4 --set training.grad_accum=2
  --set training.max_steps=400 --set training.warmup_steps=5 --set training.eval_interval=6
  --set training.eval_batches=2 --set training.checkpoint_interval=4 --set training.keep_checkpoints=2
  --set training.log_interval=1)

# A fresh run takes the settings; a resumed run takes them from its checkpoint.
train() {
  if [[ $1 == --resume ]]; then "$FOUNDRY" train --threads 1 --quiet "$@"; else "$FOUNDRY" train "${SETTINGS[@]}" "$@"; fi
}

# Every model directory under RUN (checkpoints, best/, model/) must load: `foundry eval` reads the
# config, the weights and the tokenizer and refuses anything damaged.
all_models_load() {
  local run=$1 ok=0 dir
  for dir in "$run"/ckpt-* "$run"/best "$run"/model; do
    [[ -d $dir ]] || continue
    case $dir in *.tmp | *.old) continue ;; esac  # leftovers of an interruption, never loaded
    if ! "$FOUNDRY" eval --model "$dir" --text "$SCRATCH/probe.txt" > "$SCRATCH/eval.log" 2>&1; then
      echo "  $dir does not load:"; sed 's/^/    /' "$SCRATCH/eval.log"; ok=1
    fi
  done
  return $ok
}
head -c 3000 "$SRC/data/tinystories.txt" > "$SCRATCH/probe.txt"

# ---- the reference: one uninterrupted run -------------------------------------------------------
train --out "$SCRATCH/ref" > "$SCRATCH/ref.log" 2>&1 || { cat "$SCRATCH/ref.log"; exit 1; }
REF=$(sha256sum < "$SCRATCH/ref/model/model.safetensors")

# ---- kills at random moments ------------------------------------------------------------------
if [[ $WHAT == all || $WHAT == kills ]]; then
  run="$SCRATCH/killed"
  # How long an uninterrupted run takes where the test runs, so the kills spread over a whole run.
  start=$(date +%s%N)
  train --out "$SCRATCH/timing" > /dev/null 2>&1
  run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "an uninterrupted run takes ${run_ms} ms; killing $KILLS times (seed ${SURVIVE_SEED:-1})"
  kills=0 attempts=0 finished=0
  while (( attempts < KILLS * 4 )); do
    attempts=$((attempts + 1))
    # The foundry process itself is started in the background (not through a shell function,
    # whose subshell would take the SIGKILL and leave foundry running).
    if compgen -G "$run/ckpt-*[0-9]" > /dev/null; then
      "$FOUNDRY" train --threads 1 --quiet --resume "$run" > "$SCRATCH/killed.log" 2>&1 &
    else
      rm -rf "$run"  # killed before its first checkpoint: nothing to resume, start again
      "$FOUNDRY" train "${SETTINGS[@]}" --out "$run" > "$SCRATCH/killed.log" 2>&1 &
    fi
    pid=$!
    if (( kills >= KILLS )); then  # enough: let it finish
      wait $pid; status=$?
      (( status == 0 )) || { fail "the final resumed run failed ($status)"; cat "$SCRATCH/killed.log"; }
      finished=1
      break
    fi
    # A moment anywhere in the run, skewed early so that start-up and first saves are hit too.
    delay_ms=$(( RANDOM % (run_ms / 10 + 50) + 10 ))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    if kill -KILL $pid 2> /dev/null; then
      wait $pid 2> /dev/null
      kills=$((kills + 1))
      if compgen -G "$run/ckpt-*[0-9]" > /dev/null; then
        all_models_load "$run" || fail "after kill $kills (at ${delay_ms} ms) a model directory does not load"
      fi
    else
      wait $pid; status=$?
      if (( status == 0 )); then finished=1; break; fi
      fail "run exited with $status before it could be killed"; cat "$SCRATCH/killed.log"; break
    fi
  done
  if (( finished )); then
    got=$(sha256sum < "$run/model/model.safetensors")
    if [[ $got == "$REF" ]]; then
      pass "$kills kills, then --resume: the final weights equal the uninterrupted run's bit for bit"
    else
      fail "after $kills kills the final weights differ from the uninterrupted run's"
    fi
    all_models_load "$run" || fail "after the killed run finished a model directory does not load"
  else
    fail "the killed run never finished"
  fi
fi

can_mount() { [[ $(id -u) -eq 0 ]] && mkdir -p "$1" && mount -t tmpfs -o size=64k tmpfs "$1" 2> /dev/null && umount "$1"; }

# ---- a full disk during a checkpoint ------------------------------------------------------------
if [[ $WHAT == all || $WHAT == disk ]]; then
  mnt="$SCRATCH/small_disk"
  if ! can_mount "$mnt"; then
    echo "skipped: the full-disk check needs root to mount a small tmpfs"
  else
    # Room for the run directory's first checkpoints but not for the whole run.
    ckpt_bytes=$(du -sb "$SCRATCH/ref/ckpt-"* | sort -n | tail -1 | cut -f1)
    size_kb=$(( ckpt_bytes * 5 / 2 / 1024 ))
    mount -t tmpfs -o size=${size_kb}k tmpfs "$mnt"
    train --out "$mnt/run" > "$SCRATCH/disk.log" 2>&1
    status=$?
    if (( status == 0 )); then
      fail "a run on a ${size_kb} KiB disk did not fail"
    elif grep -qi "no space left\|disk full" "$SCRATCH/disk.log" && grep -q "$mnt/run" "$SCRATCH/disk.log"; then
      pass "full disk: exit $status with: $(grep -i 'no space left\|disk full' "$SCRATCH/disk.log" | head -1)"
    else
      fail "full disk: the error does not say 'no space left' and name the file:"; tail -5 "$SCRATCH/disk.log"
    fi
    if grep -qi "segmentation\|core dumped\|terminate called" "$SCRATCH/disk.log"; then fail "full disk: crashed"; fi
    if compgen -G "$mnt/run/ckpt-*[0-9]" > /dev/null; then
      all_models_load "$mnt/run" && pass "full disk: every checkpoint and model directory left behind loads" ||
        fail "full disk: a model directory left behind does not load"
    else
      fail "full disk: no checkpoint survived"
    fi
    # The run can be resumed elsewhere from what survived: copy it to a roomy disk and finish.
    cp -r "$mnt/run" "$SCRATCH/disk_resumed"
    umount "$mnt"
    rm -rf "$SCRATCH/disk_resumed"/*.tmp "$SCRATCH/disk_resumed"/.*.tmp 2> /dev/null
    if train --resume "$SCRATCH/disk_resumed" > "$SCRATCH/disk_resume.log" 2>&1; then
      got=$(sha256sum < "$SCRATCH/disk_resumed/model/model.safetensors")
      [[ $got == "$REF" ]] && pass "full disk: resumed on another disk, final weights equal the uninterrupted run's" ||
        fail "full disk: the resumed run's final weights differ"
    else
      fail "full disk: resuming what survived failed"; tail -5 "$SCRATCH/disk_resume.log"
    fi
  fi
fi

# ---- a read-only output directory -----------------------------------------------------------------
if [[ $WHAT == all || $WHAT == readonly ]]; then
  mnt="$SCRATCH/readonly"
  if ! can_mount "$mnt"; then
    echo "skipped: the read-only check needs root to mount a read-only tmpfs"
  else
    mount -t tmpfs -o size=1m,ro tmpfs "$mnt"
    train --out "$mnt/run" > "$SCRATCH/ro.log" 2>&1
    status=$?
    umount "$mnt"
    if (( status == 1 || status == 2 )) && grep -qi "read-only\|permission" "$SCRATCH/ro.log"; then
      pass "read-only directory: exit $status with: $(grep -i 'read-only\|permission' "$SCRATCH/ro.log" | head -1)"
    else
      fail "read-only directory: expected exit 1 or 2 and a message naming the problem, got $status:"
      tail -5 "$SCRATCH/ro.log"
    fi
  fi
fi

if (( failures )); then
  echo "survive: $failures check(s) failed"
  exit 1
fi
echo "survive: all checks passed"
