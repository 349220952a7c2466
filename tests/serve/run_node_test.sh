#!/usr/bin/env bash
# Runs one of the node-driven tests of `foundry serve` against a real server:
#
#   run_node_test.sh FOUNDRY SCRATCH openai|load|browser [SCREENSHOT]
#
#   openai   the official `openai` npm client: a completion, a streamed chat completion, an error
#   load     many concurrent clients on loopback, bounded in count and time: nothing lost, memory flat
#   browser  Debian's chromium driven headless by playwright-core: the playground streams, and
#            hovering a token shows alternatives whose probabilities sum to at most 1
#
# The model is the llama2.c fixture (stories260K), imported into SCRATCH. node and the npm
# packages come from $FOUNDRY_NODE_DIR (scripts/setup.sh --extras installs them), chromium from
# Debian. When something is missing the test says what and exits 77, which CTest reports as
# skipped (SKIP_RETURN_CODE), never as passed.
set -euo pipefail
foundry=$1 scratch=$2 which=$3 screenshot=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
node_dir=${FOUNDRY_NODE_DIR:-$HOME/.cache/llm-foundry/node}

skip() { echo "skipped: $*"; exit 77; }
command -v node > /dev/null || skip "node is not installed (scripts/setup.sh --extras)"
case $which in
  openai) [[ -d $node_dir/node_modules/openai ]] || skip "the openai npm package is not in $node_dir (scripts/setup.sh --extras)" ;;
  browser)
    [[ -d $node_dir/node_modules/playwright-core ]] || skip "playwright-core is not in $node_dir (scripts/setup.sh --extras)"
    [[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || skip "chromium is not installed (scripts/setup.sh --extras)" ;;
  load) ;;
  *) echo "unknown test '$which'" >&2; exit 2 ;;
esac

rm -rf "$scratch"
mkdir -p "$scratch"
OMP_NUM_THREADS=1 "$foundry" import llama2c --checkpoint "$root/tests/fixtures/llama2c/stories260K.bin" \
  --tokenizer "$root/tests/fixtures/llama2c/tok512.bin" --out "$scratch/stories" > /dev/null

OMP_NUM_THREADS=1 "$foundry" serve --model "$scratch/stories" --port 0 --max-batch 8 --max-queue 256 \
  > "$scratch/serve.log" 2>&1 &
server=$!
trap 'kill $server 2> /dev/null; wait $server 2> /dev/null || true' EXIT
url=
for _ in $(seq 300); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$scratch/serve.log" || true)
  [[ -n $url ]] && break
  kill -0 $server 2> /dev/null || { cat "$scratch/serve.log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { cat "$scratch/serve.log"; echo "the server did not say where it listens" >&2; exit 1; }

export NODE_PATH=$node_dir/node_modules
export FOUNDRY_URL=$url FOUNDRY_MODEL=stories FOUNDRY_SERVER_PID=$server
export SCREENSHOT=${screenshot:-$scratch/playground.png}
timeout 300 node "$here/${which}_test.js"
