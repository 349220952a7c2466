#!/usr/bin/env bash
# The README's first command: from a fresh Debian 12 machine to generated stories.
#
#   1. install what is missing (scripts/setup.sh)        4. tokenize the corpus (foundry prepare)
#   2. build the foundry program                          5. train a model (foundry train)
#   3. train a BPE tokenizer on the TinyStories sample    6. draw the loss curves, generate stories
#
# Everything goes to runs/quickstart/ (override with RUN=dir). CONFIG picks another config, e.g.
#   CONFIG=configs/shakespeare.json CORPUS=data/tinyshakespeare.txt SEPARATOR= scripts/quickstart.sh
# QUICK=1 shortens training to a few steps, and FOUNDRY=path/to/foundry skips set-up and build
# (the test suite runs it so, as the test `quickstart`).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${CONFIG:-configs/tinystories.json}
CORPUS=${CORPUS:-data/tinystories.txt}
SEPARATOR=${SEPARATOR-"<|endoftext|>"}
RUN=${RUN:-runs/quickstart}
BUILD_DIR=${BUILD_DIR:-build}
VOCAB=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$CONFIG" | head -n 1)
start=$(date +%s)
step() { printf '\n== %s (%ds so far)\n' "$1" $(($(date +%s) - start)); }

if [[ -n "${FOUNDRY:-}" ]]; then
  step "1-2/6 using the foundry program at $FOUNDRY (no set-up, no build)"
else
  step "1/6 dependencies"
  scripts/setup.sh

  step "2/6 build"
  mkdir -p "$BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > "$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log"; exit 1; }
  grep "LLM Foundry" "$BUILD_DIR/configure.log" || true
  cmake --build "$BUILD_DIR" --target foundry -j"$(nproc 2>/dev/null || echo 2)"
  FOUNDRY=$BUILD_DIR/foundry
fi

mkdir -p "$RUN"
step "3/6 tokenizer: byte-level BPE with $VOCAB tokens on $CORPUS"
special=()
[[ -n "$SEPARATOR" ]] && special=(--special "$SEPARATOR")
"$FOUNDRY" tokenizer train --input "$CORPUS" --vocab-size "$VOCAB" "${special[@]}" \
  --out "$RUN/tokenizer.json" --vocab-listing "$RUN/vocab.txt"

step "4/6 prepare: tokens for training and validation"
sep=()
[[ -n "$SEPARATOR" ]] && sep=(--separator "$SEPARATOR")
"$FOUNDRY" prepare --input "$CORPUS" --tokenizer "$RUN/tokenizer.json" --out "$RUN/data" "${sep[@]}"

step "5/6 train with $CONFIG"
extra=()
[[ -n "${QUICK:-}" ]] && extra=(--max-steps 6 --set training.warmup_steps=2 --set training.eval_interval=3
                               --set training.checkpoint_interval=3)
rm -rf "$RUN/train"
"$FOUNDRY" train --config "$CONFIG" --data "$RUN/data" --out "$RUN/train" "${extra[@]}"

step "6/6 loss curves and generated text"
"$FOUNDRY" plot "$RUN/train" --out "$RUN/loss.svg"
prompts=("Once upon a time" "Lily and Ben went to the park." "The little dog was sad because")
[[ "$CORPUS" == *shakespeare* ]] && prompts=("ROMEO:" "First Citizen:" "KING HENRY VI:")
n=0
for p in "${prompts[@]}"; do
  n=$((n + 1))
  printf '\n--- sample %d, prompt: "%s"\n' "$n" "$p"
  "$FOUNDRY" generate --model "$RUN/train/best" --prompt "$p" --max-new-tokens 200 \
    --temperature 0.8 --top-p 0.95 --seed "$n" ${QUICK:+--max-new-tokens 20} 2>>"$RUN/generate.log"
  echo
done

printf '\nDone in %ds. Everything is in %s/:\n' $(($(date +%s) - start)) "$RUN"
printf '  train/best/      the model with the best validation loss (config.json, model.safetensors, tokenizer.json)\n'
printf '  train/metrics.jsonl, loss.svg   the loss curves (open loss.svg in a browser)\n'
printf '  next: %s generate --model %s/train/best --prompt "Once upon a time"\n' "$FOUNDRY" "$RUN"
