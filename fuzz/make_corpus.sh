#!/usr/bin/env bash
# Builds the seed corpus of every harness from the project's own valid files, into OUT
# (default build-fuzz/corpus): nothing here is committed, it is made again in seconds.
#
#   fuzz/make_corpus.sh [OUT]         FOUNDRY=path/to/foundry (default build/foundry)
#
# The `foundry` program (the normal build, not the fuzz build) makes a tiny tokenizer, token
# files, a model directory and a training checkpoint from 20 KB of TinyStories; the test
# fixtures give GPT-2's files, a trained tokenizer.json and llama2.c's files. Multi-file inputs
# are the files joined by the separator line of fuzz_util.h.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-fuzz/corpus}
FOUNDRY=${FOUNDRY:-$ROOT/build/foundry}
SEP=$'\n#--next-file--#\n'
FIX=$ROOT/tests/fixtures
[[ -x "$FOUNDRY" ]] || { echo "make_corpus.sh: $FOUNDRY not found; build the foundry program first (or set FOUNDRY=)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
seed() { mkdir -p "$OUT/$1"; cat > "$OUT/$1/$2"; }
join_files() {  # join_files f1 f2 ...: the files with the separator between them
  local first=1
  for f in "$@"; do
    [[ $first == 1 ]] || printf '%s' "$SEP"
    first=0
    cat "$f"
  done
}

# A tiny run: tokenizer, token files, two training steps, a checkpoint and the best model.
head -c 20000 "$ROOT/data/tinystories.txt" > "$WORK/corpus.txt"
"$FOUNDRY" tokenizer train --input "$WORK/corpus.txt" --vocab-size 300 --special "<|endoftext|>" \
  --out "$WORK/tokenizer.json" --quiet
"$FOUNDRY" prepare --input "$WORK/corpus.txt" --tokenizer "$WORK/tokenizer.json" --out "$WORK/data" \
  --separator "<|endoftext|>" > /dev/null
cat > "$WORK/config.json" <<'JSON'
{ "model": { "dim": 16, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "vocab_size": 300,
             "hidden_dim": 32, "max_seq_len": 16, "norm_eps": 1e-5, "rope_theta": 10000,
             "tie_embeddings": true },
  "training": { "batch_size": 2, "seq_len": 16, "max_steps": 2, "warmup_steps": 1, "eval_interval": 2,
                "eval_batches": 1, "checkpoint_interval": 2, "log_interval": 1 } }
JSON
OMP_NUM_THREADS=1 "$FOUNDRY" train --config "$WORK/config.json" --data "$WORK/data" --out "$WORK/run" --quiet \
  > /dev/null
CKPT=$(ls -d "$WORK"/run/ckpt-* | tail -n 1)

# The same run at width 32, whose matrices have whole 32-value rows, quantized by `foundry
# quantize`: U8 block tensors and their "quantization" metadata for the two loaders.
sed 's/"dim": 16/"dim": 32/; s/"hidden_dim": 32/"hidden_dim": 64/' "$WORK/config.json" > "$WORK/config32.json"
OMP_NUM_THREADS=1 "$FOUNDRY" train --config "$WORK/config32.json" --data "$WORK/data" --out "$WORK/run32" --quiet \
  > /dev/null
CKPT32=$(ls -d "$WORK"/run32/ckpt-* | tail -n 1)
for type in q8_0 q4_0; do
  "$FOUNDRY" quantize --model "$CKPT32" --type $type --out "$WORK/$type" > /dev/null
  seed safetensors $type < "$WORK/$type/model.safetensors"
  seed model_dir $type < <(join_files "$WORK/$type/config.json" "$WORK/$type/model.safetensors" \
    "$WORK/$type/tokenizer.json")
done
seed safetensors tiny_model < "$CKPT/model.safetensors"
seed safetensors optimizer < "$CKPT/optimizer.safetensors"
seed safetensors parity_untied < "$FIX/parity/untied_gqa/model.safetensors"
seed model_dir bpe < <(join_files "$CKPT/config.json" "$CKPT/model.safetensors" "$CKPT/tokenizer.json")
seed model_dir parity < <(join_files "$FIX/parity/tied_mqa/config.json" "$FIX/parity/tied_mqa/model.safetensors" \
  "$WORK/tokenizer.json")
seed train_config tiny < "$WORK/config.json"
for c in "$ROOT"/configs/*.json; do seed train_config "$(basename "$c" .json)" < "$c"; done
seed checkpoint tiny < <(join_files "$CKPT/config.json" "$CKPT/model.safetensors" "$CKPT/optimizer.safetensors" \
  "$CKPT/train_state.json")
seed tokenizer_json trained < "$WORK/tokenizer.json"
seed tokenizer_json hf < "$FIX/tokenizer/hf/tokenizer.json"
# GPT-2's real files are 1.5 MB; the seed is their first 400 entries, which still load (the
# bytes come first in vocab.json), plus the merges among them.
python3 - "$FIX/tokenizer/gpt2" "$WORK" <<'PY'
import json, sys
src, work = sys.argv[1], sys.argv[2]
vocab = json.load(open(f"{src}/vocab.json", encoding="utf-8"))
small = {k: v for k, v in vocab.items() if v < 400}
merges = [l for l in open(f"{src}/merges.txt", encoding="utf-8").read().split("\n") if l and not l.startswith("#")]
kept = [m for m in merges if all(p in small for p in m.split(" ")) and m.replace(" ", "") in small]
json.dump(small, open(f"{work}/vocab.json", "w", encoding="utf-8"), ensure_ascii=False)
open(f"{work}/merges.txt", "w", encoding="utf-8").write("#version: 0.2\n" + "\n".join(kept) + "\n")
PY
seed gpt2_files small < <(join_files "$WORK/vocab.json" "$WORK/merges.txt")
seed llama2c_tokenizer tok512 < "$FIX/llama2c/tok512.bin"
# GGUF: the tiny run's model exported (gpt2 tokenizer, tied) as f32.
"$FOUNDRY" export gguf --model "$CKPT" --out "$WORK/tiny.gguf" > /dev/null
seed gguf tiny_f32 < "$WORK/tiny.gguf"
# The real stories260K.bin is 1 MB, too big to mutate quickly: tiny checkpoints of the same
# layout instead, one with a tied classifier and one without (negative vocab_size).
python3 - "$OUT" <<'PY'
import os, struct, sys
def checkpoint(dim, hidden, layers, heads, kv_heads, vocab, seq_len):
    hs = dim // heads
    kv = kv_heads * hs
    n = (abs(vocab) * dim + layers * dim + layers * dim * dim + 2 * layers * kv * dim + layers * dim * dim
         + layers * dim + 3 * layers * hidden * dim + dim + 2 * seq_len * (hs // 2) + (abs(vocab) * dim if vocab < 0 else 0))
    floats = [((i * 2654435761) % 1000) / 1000.0 - 0.5 for i in range(n)]
    return struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab, seq_len) + struct.pack("<%df" % n, *floats)
os.makedirs(f"{sys.argv[1]}/llama2c_checkpoint", exist_ok=True)
open(f"{sys.argv[1]}/llama2c_checkpoint/tied", "wb").write(checkpoint(8, 16, 1, 2, 1, 12, 4))
open(f"{sys.argv[1]}/llama2c_checkpoint/untied", "wb").write(checkpoint(8, 12, 2, 2, 2, -10, 3))
PY
seed token_file train < "$WORK/data/val.bin"
head -c 2000 "$WORK/corpus.txt" | seed pretokenize tinystories
head -c 3000 "$ROOT/data/tinyshakespeare.txt" | seed pretokenize shakespeare
seed pretokenize hard_cases < "$FIX/tokenizer/hf/text.txt"
head -c 2000 "$WORK/corpus.txt" | seed encode tinystories
seed encode hard_cases < "$FIX/tokenizer/hf/text.txt"
printf 'abcdefghijklmnopqrstuvwxyz%.0s' $(seq 40) | seed encode no_spaces
head -c 2000 "$WORK/data/val.bin" | tail -c 1976 | python3 -c '
import sys, struct
b = sys.stdin.buffer.read()
ids = struct.unpack("<%dH" % (len(b) // 2), b[: len(b) // 2 * 2])
sys.stdout.buffer.write(struct.pack("<%di" % len(ids), *ids))' | seed decode tinystories_ids
# Instruction data: the first examples `foundry make-instruct` writes, and a hand-written chat.
"$FOUNDRY" make-instruct --input "$ROOT/data/tinystories.txt" --out "$WORK/instruct.jsonl" > /dev/null
head -n 6 "$WORK/instruct.jsonl" | seed instruct_jsonl tinystories
printf '%s\n' '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi<|im_end|>"},{"role":"assistant","content":"Hello."}]}' |
  seed instruct_jsonl chat
# LoRA adapters: one step of `foundry sft --lora` on the tiny run's model (every target, rank 2),
# on a chat short enough for its 16 positions.
printf '%s\n' '{"messages":[{"role":"assistant","content":"Once."}]}' > "$WORK/short_chat.jsonl"
OMP_NUM_THREADS=1 "$FOUNDRY" sft --base "$CKPT" --data "$WORK/short_chat.jsonl" --out "$WORK/sft_lora" --lora \
  --lora-rank 2 --lora-targets wq,wk,wv,wo,w1,w3,w2 --max-steps 1 --batch-size 1 --warmup-steps 0 > /dev/null
seed lora_adapter tiny < "$WORK/sft_lora/adapter.safetensors"

# A fine-tuning checkpoint's state: three training examples, no trainable tensors (the harness's run).
python3 - "$WORK" <<'PY'
import json, struct, sys
work = sys.argv[1]
settings = {"base": "base", "data": "data.jsonl", "batch_size": 2, "seq_len": 0, "max_steps": 5, "lr": 0.001,
            "min_lr": 0.0001, "warmup_steps": 1, "weight_decay": 0.0, "grad_clip": 1.0, "log_interval": 1,
            "eval_interval": 2, "eval_examples": 4, "seed": "1337", "checkpoint_interval": 2, "keep_checkpoints": 2}
# std::mt19937_64 seeded with 5489 as libstdc++ writes it: the 312 state words, then the index.
x = [5489]
for i in range(1, 312):
    x.append((6364136223846793005 * (x[-1] ^ (x[-1] >> 62)) + i) % 2**64)
rng = " ".join(map(str, x + [312]))
state = {"format": "foundry-sft-state", "version": 1, "step": 2, "adam_t": 2, "rng": rng, "cursor": 1,
         "order": [2, 0, 1], "first_loss": 3.5, "seconds": 1.5, "chat_tokens_added": True,
         "data_fingerprint": "fnv1a64:0000000000000000", "settings": settings}
open(f"{work}/sft_state.json", "w").write(json.dumps(state, indent=1))
head = json.dumps({"__metadata__": {"format": "foundry-adamw", "adam_t": "2"}}).encode()
head += b" " * (-len(head) % 8)
open(f"{work}/sft_optimizer.safetensors", "wb").write(struct.pack("<Q", len(head)) + head)
open(f"{work}/sft_metrics.jsonl", "w").write('{"kind":"train","step":1,"loss":3.5}\n')
PY
seed sft_checkpoint tiny < <(join_files "$WORK/sft_state.json" "$WORK/sft_optimizer.safetensors" "$WORK/sft_metrics.jsonl")

# foundry serve's request bodies: the first byte picks the endpoint (even: completions, odd: chat).
{ printf '\x00'; printf '%s' '{"model":"m","prompt":"Once upon a time","max_tokens":8,"temperature":0.8,"top_k":40,"top_p":0.9,"seed":1,"stop":["\n"],"stream":true,"stream_options":{"include_usage":true},"logprobs":2}'; } | seed serve_request completion
{ printf '\x01'; printf '%s' '{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"logprobs":true,"top_logprobs":3,"foundry_probs":5}'; } | seed serve_request chat

echo "seed corpus in $OUT:"
for d in "$OUT"/*/; do printf '  %-20s %s files, %s\n' "$(basename "$d")" "$(ls "$d" | wc -l)" "$(du -sh "$d" | cut -f1)"; done
