#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang with AddressSanitizer and UBSan) and runs each for
# SECONDS (default 30) on a copy of its seed corpus. Fails on any crash, leak, sanitizer report,
# timeout (one input over -timeout seconds) or out-of-memory (RSS over -rss_limit_mb, or a single
# allocation over it: a size read from a file and used before it was checked).
#
#   scripts/fuzz.sh [SECONDS]        FUZZ_ONLY="safetensors encode" runs only those harnesses
#                                    FUZZ_NICE=0 runs them at normal priority (default 10)
#                                    FUZZ_CPU=1: SECONDS is CPU time, not wall-clock time
#                                    FUZZ_BUILD=DIR builds and runs the harnesses in DIR (default
#                                    build-fuzz; configured here if it has no CMakeCache.txt, else
#                                    it must have been configured with -DFOUNDRY_FUZZ=ON, as
#                                    scripts/test.sh's build-sanitize is)
#
# libFuzzer's -max_total_time counts wall-clock time, so on a busy machine, or while the process
# is paused, a harness gets less CPU than SECONDS. With FUZZ_CPU=1 each harness runs in rounds on
# the same corpus (it keeps what earlier rounds found) until its CPU time reaches SECONDS; the
# table then sums executions and CPU over the rounds and shows the last round's coverage, which
# started by replaying the whole corpus.
#
# The normal build's `foundry` program makes the seed corpus (fuzz/make_corpus.sh); it is built
# if missing. Findings (the crashing inputs) are kept in $SCRATCH/<harness>/ and the script
# prints the command that reproduces each. Nothing in the checkout is modified.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_EACH=${1:-30}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
BUILD=${BUILD:-build}
SCRATCH=${SCRATCH:-$FUZZ_BUILD/runs}
RSS_MB=${RSS_MB:-2048}
FUZZ_NICE=${FUZZ_NICE:-10}
FUZZ_CPU=${FUZZ_CPU:-0}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
slot=()
command -v xbuild > /dev/null && slot=(xbuild)

# The harnesses and what each may read: -max_len in bytes, and the dictionaries (fuzz/dict/).
declare -A MAX_LEN=([safetensors]=65536 [model_dir]=131072 [train_config]=8192 [checkpoint]=196608
  [tokenizer_json]=65536 [gpt2_files]=65536 [llama2c_tokenizer]=16384 [llama2c_checkpoint]=16384
  [token_file]=8192 [pretokenize]=16384 [encode]=16384 [decode]=4096 [gguf]=65536 [instruct_jsonl]=16384
  [serve_request]=8192 [lora_adapter]=65536 [sft_checkpoint]=16384)
declare -A DICTS=([safetensors]="json safetensors" [model_dir]="json safetensors config tokenizer_json llama2c"
  [train_config]="json config" [checkpoint]="json safetensors config train_state"
  [tokenizer_json]="json tokenizer_json text" [gpt2_files]="json tokenizer_json" [llama2c_tokenizer]="llama2c"
  [llama2c_checkpoint]="llama2c" [token_file]="token_file" [pretokenize]="text" [encode]="text" [decode]="" [gguf]="gguf"
  [instruct_jsonl]="json" [serve_request]="json serve_request" [lora_adapter]="json safetensors lora"
  [sft_checkpoint]="json safetensors sft_state")
HARNESSES=(safetensors model_dir train_config checkpoint tokenizer_json gpt2_files llama2c_tokenizer
  llama2c_checkpoint token_file pretokenize encode decode gguf instruct_jsonl serve_request lora_adapter sft_checkpoint)
[[ -n "${FUZZ_ONLY:-}" ]] && read -r -a HARNESSES <<< "$FUZZ_ONLY"

echo "== build the fuzz configuration ($FUZZ_BUILD, clang-14, ASan + UBSan + libFuzzer)"
if [[ ! -f "$FUZZ_BUILD/CMakeCache.txt" ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$FUZZ_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOUNDRY_FUZZ=ON \
    -DFOUNDRY_OPENMP=OFF "${launcher[@]}" > /dev/null
fi
"${slot[@]}" cmake --build "$FUZZ_BUILD" -j2 --target fuzz_all
if [[ ! -x "$BUILD/foundry" ]]; then
  echo "== build the foundry program for the seed corpus ($BUILD)"
  [[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" > /dev/null
  "${slot[@]}" cmake --build "$BUILD" -j2 --target foundry
fi
echo "== seed corpus"
FOUNDRY=$BUILD/foundry fuzz/make_corpus.sh "$FUZZ_BUILD/corpus" > /dev/null

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
declare -A RESULT EXECS COVERAGE CPU
failed=0
for h in "${HARNESSES[@]}"; do
  [[ -n "${MAX_LEN[$h]:-}" ]] || { echo "scripts/fuzz.sh: unknown harness '$h'" >&2; exit 2; }
  dir=$SCRATCH/$h
  mkdir -p "$dir/corpus" "$dir/findings"
  cp -r "$FUZZ_BUILD/corpus/$h/." "$dir/corpus/" 2> /dev/null || true
  dict=()
  if [[ -n "${DICTS[$h]}" ]]; then
    for d in ${DICTS[$h]}; do cat "fuzz/dict/$d.dict"; done > "$dir/dict"
    dict=(-dict="$dir/dict")
  fi
  echo "== fuzz_$h for ${SECONDS_EACH}s$([[ $FUZZ_CPU == 1 ]] && echo ' of CPU time')"
  execs=0 cpu=0 rounds=0
  while :; do
    rounds=$((rounds + 1))
    budget=$SECONDS_EACH
    [[ $FUZZ_CPU == 1 ]] && budget=$(awk -v t="$SECONDS_EACH" -v c="$cpu" 'BEGIN { b = t - c; printf "%d", b < 5 ? 5 : b + 0.999 }')
    set +e
    # -error_exitcode/-timeout_exitcode: any finding is a non-zero exit; -artifact_prefix keeps
    # the input that caused it. Leak detection is on (ASan's default with libFuzzer).
    # The CPU time (user + system) is what the harness really got: on a busy machine it is less
    # than SECONDS.
    /usr/bin/time -o "$dir/cpu.txt" -f '%U %S' nice -n "$FUZZ_NICE" "$FUZZ_BUILD/fuzz/fuzz_$h" "$dir/corpus" "${dict[@]}" -max_total_time="$budget" -timeout=5 \
      -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -max_len="${MAX_LEN[$h]}" -print_final_stats=1 \
      -artifact_prefix="$dir/findings/" > "$dir/log.txt" 2>&1
    rc=$?
    set -e
    cat "$dir/log.txt" >> "$dir/log-all.txt"
    # slow-unit-* files are libFuzzer's notes of inputs over -report_slow_units (10 s), longer than
    # -timeout: only a paused harness writes them, and no input fails by them.
    if compgen -G "$dir/findings/slow-unit-*" > /dev/null; then
      mkdir -p "$dir/not-reproduced"
      mv "$dir"/findings/slow-unit-* "$dir/not-reproduced/"
    fi
    # libFuzzer's -timeout counts wall-clock time, so a harness that was stopped for a while
    # (SIGSTOP, a suspended machine) reports a timeout on whatever input it was running. A
    # timeout input that runs within the limit when replayed was not the cause: it is set aside
    # (in $dir/not-reproduced/) and the round counts as clean. Any other finding stands.
    if [[ $rc -ne 0 ]] && compgen -G "$dir/findings/timeout-*" > /dev/null &&
      ! compgen -G "$dir/findings/[!t]*" > /dev/null; then
      reproduced=0
      for f in "$dir"/findings/timeout-*; do
        "$FUZZ_BUILD/fuzz/fuzz_$h" -timeout=5 -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" "$f" \
          > "$dir/replay.txt" 2>&1 || reproduced=1
      done
      if [[ $reproduced -eq 0 ]]; then
        mkdir -p "$dir/not-reproduced"
        echo "   a timeout that does not reproduce (the harness was paused?): $(ls "$dir/findings") set aside"
        mv "$dir"/findings/timeout-* "$dir/not-reproduced/"
        rc=0
      fi
    fi
    round_execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt" | tail -n 1)
    execs=$((execs + ${round_execs:-0}))
    # time(1) writes "Command exited with non-zero status N" before the figures when the harness fails.
    cpu=$(tail -n 1 "$dir/cpu.txt" 2> /dev/null | awk -v c="$cpu" '{printf "%.1f", c + $1 + $2}' || echo "$cpu")
    # Another round only in CPU mode, after a clean round, while the CPU time is short.
    [[ $FUZZ_CPU == 1 && $rc -eq 0 ]] || break
    compgen -G "$dir/findings/*" > /dev/null && break
    awk -v t="$SECONDS_EACH" -v c="$cpu" 'BEGIN { exit !(c < t - 1) }' || break
    echo "   round $rounds: ${cpu} s of CPU so far, another round"
  done
  EXECS[$h]=$execs
  CPU[$h]=$(awk -v c="$cpu" 'BEGIN { printf "%.0f s", c }')
  COVERAGE[$h]=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$dir/log.txt" | tail -n 1 | sed 's/cov: //; s/ ft: / \/ /')
  findings=$(ls "$dir/findings" | wc -l)
  if [[ $rc -eq 0 && $findings -eq 0 ]]; then
    RESULT[$h]=ok
  else
    failed=1
    kind=$(grep -Eo 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error|fuzz property violated|out-of-memory|timeout' "$dir/log.txt" | head -n 1 || true)
    RESULT[$h]="FAIL (${kind:-exit $rc})"
    echo "   log: $dir/log.txt"
    for f in "$dir"/findings/*; do
      [[ -e "$f" ]] && echo "   reproduce: $FUZZ_BUILD/fuzz/fuzz_$h $f"
    done
  fi
done

echo
printf '%-20s %14s %18s %9s  %s\n' harness executions "coverage / features" "CPU time" result
for h in "${HARNESSES[@]}"; do
  printf '%-20s %14s %18s %9s  %s\n' "$h" "${EXECS[$h]:-?}" "${COVERAGE[$h]:-?}" "${CPU[$h]:-?}" "${RESULT[$h]}"
done
exit $failed
