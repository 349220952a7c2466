#!/usr/bin/env bash
# From the quickstart's story model to an assistant you can talk to, in one command:
#
#   1. the pretrained model runs/quickstart/train/best (scripts/quickstart.sh trains it if missing)
#   2. the instruction set, made from the stories (foundry make-instruct)
#   3. fine-tuning: full (foundry sft), and LoRA too when `foundry sft --help` offers --lora
#   4. evaluation on held-out instructions (foundry eval-instruct), the base model given the same
#      words as plain text
#   5. the report: one page with the curves, the evaluation table and sample answers (foundry report)
#   6. two sample conversations (foundry chat --message)
#
#   scripts/chat_quickstart.sh            10 minutes on 2 quiet cores with the quickstart model and foundry built (measured)
#   scripts/chat_quickstart.sh --quick    a few steps of everything (the test `chat_quickstart`)
#
# Everything goes to runs/chat/ (CHAT_RUN=dir), the pretrained model is BASE_RUN (runs/quickstart).
# SFT_STEPS (default 5600) and SFT_SECONDS (default 300) bound each fine-tuning run;
# FOUNDRY=path/to/foundry skips the build.
# LORA_ARGS (default "--lora --merge": adapters, folded into OUT/model for the evaluation) are
# the extra options of the LoRA run.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "chat_quickstart.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

CORPUS=${CORPUS:-data/tinystories.txt}
BUILD_DIR=${BUILD_DIR:-build}
if [[ -n "$QUICK" ]]; then
  CHAT_RUN=${CHAT_RUN:-runs/chat-quick}
  BASE_RUN=${BASE_RUN:-$CHAT_RUN/quickstart}
else
  CHAT_RUN=${CHAT_RUN:-runs/chat}
  BASE_RUN=${BASE_RUN:-runs/quickstart}
fi
SFT_SECONDS=${SFT_SECONDS:-300}
LORA_ARGS=${LORA_ARGS:---lora --merge}
start=$(date +%s)
step() { printf '\n== %s (%ds so far)\n' "$1" $(($(date +%s) - start)); }

if [[ -z "${FOUNDRY:-}" ]]; then
  step "build the foundry program"
  mkdir -p "$BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > "$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log"; exit 1; }
  cmake --build "$BUILD_DIR" --target foundry -j"$(nproc 2>/dev/null || echo 2)"
  FOUNDRY=$BUILD_DIR/foundry
fi

BASE=$BASE_RUN/train/best
if [[ ! -f "$BASE/model.safetensors" ]]; then
  step "1/6 no pretrained model at $BASE: the quickstart trains one"
  RUN=$BASE_RUN FOUNDRY=$FOUNDRY QUICK=$QUICK scripts/quickstart.sh
else
  step "1/6 the pretrained model: $BASE"
fi

# The full recipe, or a few steps of it (--quick). The words instructions need the most practice:
# see lessons/23-fine-tuning.md for the measured rates and what the recipe was tuned on.
if [[ -n "$QUICK" ]]; then
  sft_args=(--max-steps 4 --warmup-steps 1 --batch-size 4 --eval-interval 2 --log-interval 1 --group-by-length
            --word-weight 20)
  eval_args=(--per-kind 2 --max-new-tokens 8 --val-windows 2)
  chat_tokens=8
else
  # The cosine schedule is sized for about five quiet minutes on 2 cores; --max-seconds stops a
  # slower machine at the budget anyway (with a checkpoint to --resume from). Batches of one
  # length (--group-by-length) make a step about 1.5x cheaper, and batches of 8 twice as many
  # updates as 16 from the same examples; the tokens that spell a requested word weigh 20 times
  # the others (--word-weight), in both runs, so that they compare. Lesson 23 has the measurements.
  sft_args=(--max-steps "${SFT_STEPS:-5600}" --max-seconds "$SFT_SECONDS" --checkpoint-interval 1000
            --batch-size 8 --group-by-length --word-weight 20)
  # Every held-out instruction of the file the runs trained on (231 of the words kind), and the
  # held-out stories' loss from the corpus.
  eval_args=(--per-kind 1000)
  chat_tokens=160
fi

rm -rf "$CHAT_RUN/sft" "$CHAT_RUN/sft-lora"
mkdir -p "$CHAT_RUN"
step "2/6 the instruction set"
# Words answers from every window of two sentences of a training story (--words-windows 2): about
# 29,000 distinct short answers, so five minutes of fine-tuning see each about once and learn to copy
# the requested words instead of memorising answers (lesson 23 has the measured rates).
"$FOUNDRY" make-instruct --input "$CORPUS" --out "$CHAT_RUN/instruct.jsonl" --words-opening 2 --words-windows 2

runs=("$CHAT_RUN/sft")
step "3/6 full fine-tuning"
"$FOUNDRY" sft --base "$BASE" --data "$CHAT_RUN/instruct.jsonl" --out "$CHAT_RUN/sft" "${sft_args[@]}"
if "$FOUNDRY" sft --help | grep -- '--lora' > /dev/null; then  # not -q: grep leaving early would SIGPIPE foundry (pipefail)
  step "3/6 LoRA fine-tuning"
  # shellcheck disable=SC2086 # LORA_ARGS holds several options
  "$FOUNDRY" sft --base "$BASE" --data "$CHAT_RUN/instruct.jsonl" --out "$CHAT_RUN/sft-lora" "${sft_args[@]}" $LORA_ARGS
  runs+=("$CHAT_RUN/sft-lora")
else
  step "3/6 LoRA: this foundry has no \`sft --lora\` yet, skipped"
fi

for run in "${runs[@]}"; do
  step "4/6 evaluation of $run against the base model"
  "$FOUNDRY" eval-instruct --model "$run/model" --data "$CHAT_RUN/instruct.jsonl" --corpus "$CORPUS" --base "$BASE" \
    --json "$run/eval.json" \
    "${eval_args[@]}"
done

step "5/6 the report"
"$FOUNDRY" report "$BASE_RUN/train" "${runs[@]}" --out "$CHAT_RUN/report.md"

step "6/6 two conversations with $CHAT_RUN/sft/model"
messages=("Write a story that uses the words garden, bird and sing." "Write a story about a boy named Max.")
for m in "${messages[@]}"; do
  printf '\n> %s\n' "$m"
  "$FOUNDRY" chat --model "$CHAT_RUN/sft/model" --message "$m" --temperature 0 --max-new-tokens "$chat_tokens"
done

if [[ -n "$QUICK" ]]; then
  # The test's checks: every stage left its file, and the page has every section.
  for f in "$CHAT_RUN/instruct.jsonl" "$CHAT_RUN/sft/model/model.safetensors" "$CHAT_RUN/sft/eval.json" \
           "$CHAT_RUN/report-sft-1.svg" "$CHAT_RUN/report-pretrain-1.svg"; do
    [[ -s "$f" ]] || { echo "chat_quickstart.sh --quick: $f is missing or empty" >&2; exit 1; }
  done
  for section in "## Tokenizer" "## Pretraining" "## Fine-tuning" "## Evaluation" "## Sample conversations"; do
    grep -q "^$section" "$CHAT_RUN/report.md" || { echo "chat_quickstart.sh --quick: report.md lacks '$section'" >&2; exit 1; }
  done
fi

printf '\nDone in %ds. Everything is in %s/:\n' $(($(date +%s) - start)) "$CHAT_RUN"
printf '  report.md        the pipeline on one page (open it in a Markdown viewer; the SVG curves sit beside it)\n'
printf '  sft/model/       the assistant: %s chat --model %s/sft/model\n' "$FOUNDRY" "$CHAT_RUN"
printf '  sft/eval.json    the evaluation (eval-instruct --json)\n'
