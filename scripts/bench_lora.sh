#!/usr/bin/env bash
# Full fine-tuning against LoRA, side by side in one run: trainable parameters, gradient and AdamW
# bytes, peak resident memory, seconds per step, and the instruction-following rate of the result.
#
#   scripts/bench_lora.sh [--base DIR] [--data FILE.jsonl] [--steps N] [--threads N] [--rank R]
#                         [--targets wq,wk,wv,wo] [--per-kind N] [--out DIR]
#
# Defaults: the quickstart's model (runs/quickstart/train/best), the instruction set of
# `foundry make-instruct` on data/tinystories.txt (made if missing), 100 steps each, 2 threads,
# rank 8 on wq,wk,wv,wo, 20 instructions per kind. Each fine-tuning is its own process, so its
# peak memory (getrusage, printed in OUT/<variant>/sft.json) is its own. Memory does not depend
# on the machine's load; seconds per step do, so compare them only within one run on a quiet
# machine. The same steps and learning-rate schedule for both: LoRA usually wants a larger
# learning rate (--lora-lr, default 3e-3, against --lr 1e-3 for full fine-tuning).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
foundry="${FOUNDRY:-$root/build/foundry}"
base="$root/runs/quickstart/train/best"
data=""
steps=100
threads=2
rank=8
targets="wq,wk,wv,wo"
per_kind=20
lr=0.001
lora_lr=0.003
out="$root/runs/bench_lora"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rank) rank="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --per-kind) per_kind="$2"; shift 2 ;;
    --lr) lr="$2"; shift 2 ;;
    --lora-lr) lora_lr="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench_lora.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$foundry" ]] || { echo "bench_lora.sh: $foundry not found (build the foundry program, or set FOUNDRY=)" >&2; exit 1; }
[[ -f "$base/config.json" ]] || { echo "bench_lora.sh: no model in $base (run scripts/quickstart.sh, or pass --base)" >&2; exit 1; }
mkdir -p "$out"
if [[ -z "$data" ]]; then
  data="$out/instruct.jsonl"
  [[ -f "$data" ]] || "$foundry" make-instruct --input "$root/data/tinystories.txt" --out "$data" > /dev/null
fi
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
common=(--base "$base" --data "$data" --max-steps "$steps" --threads "$threads" --overwrite --eval-interval 1000000)
"$foundry" sft "${common[@]}" --out "$out/full" --lr "$lr" > "$out/full.log"
"$foundry" sft "${common[@]}" --out "$out/lora" --lr "$lora_lr" --lora --lora-rank "$rank" --lora-targets "$targets" \
  --merge > "$out/lora.log"
for v in full lora; do
  OMP_NUM_THREADS=$threads "$foundry" eval-instruct --model "$out/$v/model" --data "$data" --per-kind "$per_kind" \
    --json "$out/$v/eval.json" > "$out/$v/eval.log"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for v in ("full", "lora"):
    s = json.load(open(f"{out}/{v}/sft.json"))
    e = json.load(open(f"{out}/{v}/eval.json"))
    words = e.get("kinds", {}).get("words", {})
    rows.append((v, s["trainable_parameters"], s["gradient_bytes"] + s["optimizer_bytes"], s["peak_rss_mib"],
                 s["seconds_per_step"], s["last_loss"], words.get("t0", float("nan"))))
print(f"{'':6} {'trainable':>10} {'grad+AdamW':>12} {'peak RSS':>10} {'s/step':>8} {'last loss':>10} {'words@T0':>9}")
for v, p, b, rss, sps, loss, w in rows:
    print(f"{v:6} {p:>10,} {b / 2**20:>9.2f} MiB {rss:>6.1f} MiB {sps:>8.3f} {loss:>10.4f} {100 * w:>8.1f}%")
PY
