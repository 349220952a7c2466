#!/usr/bin/env bash
# Greedy decoding speed, llama.cpp against us, side by side on the same model at one thread.
#
#   bench/llama_cpp_speed.sh MODEL_DIR [NEW_TOKENS]       FOUNDRY=build/foundry  TYPES="f32 q8_0"
#
# For each weight type the model is exported to GGUF, then both engines continue the same prompt
# ids greedily for NEW_TOKENS tokens (default 200; fewer when the context ends first) at one thread:
#   ours:      foundry generate --temperature 0 --threads 1 (its own tokens/s, decode only)
#   llama.cpp: tests/interop/llama_cpp_generate.mjs (node-llama-cpp's prebuilt CPU build, the
#              same harness that checks its output; decode only: the time after the first new token)
# It also says whether the two continuations are equal. For a quantized type our side runs the
# model quantized the same way (`foundry quantize`), so both engines read the same blocks.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:?usage: bench/llama_cpp_speed.sh MODEL_DIR [NEW_TOKENS]}
NEW=${2:-200}
FOUNDRY=${FOUNDRY:-$ROOT/build/foundry}
TYPES=${TYPES:-f32}
NODE_DIR=${FOUNDRY_NODE_DIR:-$HOME/.cache/llm-foundry/node}
PROMPT=${PROMPT:-Once upon a time}
[[ -f "$NODE_DIR/node_modules/node-llama-cpp/package.json" ]] ||
  { echo "llama_cpp_speed.sh: node-llama-cpp is not installed in $NODE_DIR (scripts/setup.sh --extras)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1

printf '%-6s %-10s %10s %14s %s\n' type engine "new tokens" "tokens/s" "same text"
for type in $TYPES; do
  "$FOUNDRY" export gguf --model "$MODEL" --out "$WORK/m.gguf" --type "$type" > /dev/null
  ours_model=$MODEL
  if [[ $type != f32 ]]; then
    ours_model=$WORK/ours-$type
    "$FOUNDRY" quantize --model "$MODEL" --type "$type" --out "$ours_model" > /dev/null
  fi
  ours=$("$FOUNDRY" generate --model "$ours_model" --prompt "$PROMPT" --temperature 0 --max-new-tokens "$NEW" \
    --threads 1 --print-ids 2>&1 > /dev/null)
  ids=$(echo "$ours" | sed -n 's/^\[ids\] //p')
  prompt_ids=$(echo "$ids" | sed 's/^prompt: \(.*\) | new:.*/\1/' | tr ' ' ',')
  new_ids=$(echo "$ids" | sed 's/.*| new: *//' | tr ' ' ',')
  our_tps=$(echo "$ours" | sed -n 's/.* new tokens in .* s: \([0-9.]*\) tokens\/s.*/\1/p')
  theirs=$(node "$ROOT/tests/interop/llama_cpp_generate.mjs" "$NODE_DIR" "$WORK/m.gguf" "$prompt_ids" "$NEW" "" 1)
  python3 - "$type" "$new_ids" "$our_tps" "$theirs" <<'PY'
import json, sys
type_, ours, our_tps, theirs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ours = [int(x) for x in ours.split(",") if x]
n = len(ours)
same = theirs["new"][:n] == ours
tps = theirs["decode_tokens"] / theirs["decode_seconds"] if theirs["decode_seconds"] > 0 else 0
print("%-6s %-10s %10d %14s" % (type_, "foundry", n, our_tps))
print("%-6s %-10s %10d %14.1f %s" % (type_, "llama.cpp", len(theirs["new"]), tps, "yes" if same else "NO"))
PY
done
