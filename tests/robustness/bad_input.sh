#!/usr/bin/env bash
# Bad input at the edges of every `foundry` command. Each row of the table below is one command
# line that must fail cleanly: the expected exit status (2 for a usage error, 1 for a failure),
# and words that its one-line error must contain. Never a crash, a hang or a traceback.
#
#   tests/robustness/bad_input.sh FOUNDRY SCRATCH_DIR
#
# A case passes when the status is the expected one, a line of stderr starts with "foundry" and
# contains the expected words (case-insensitive), and the command finished within its time limit. Every failing case is listed; the script exits 1 if any failed.
# A row's command may start with NAME=VALUE words: they are set in that command's environment.
set -uo pipefail

FOUNDRY=${1:?usage: bad_input.sh FOUNDRY SCRATCH_DIR}
S=${2:?usage: bad_input.sh FOUNDRY SCRATCH_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export OMP_NUM_THREADS=1
rm -rf "$S"
mkdir -p "$S"

# ---- fixtures: a tokenizer, token files and a model, all tiny -------------------------------------
head -c 200000 "$SRC/data/tinystories.txt" > "$S/corpus.txt"
"$FOUNDRY" tokenizer train --input "$S/corpus.txt" --vocab-size 300 --special "<|endoftext|>" --out "$S/tok" --quiet > /dev/null 2>&1 ||
  { echo "setup: tokenizer train failed"; exit 1; }
"$FOUNDRY" prepare --input "$S/corpus.txt" --tokenizer "$S/tok" --out "$S/data" --separator "<|endoftext|>" > /dev/null 2>&1 ||
  { echo "setup: prepare failed"; exit 1; }
"$FOUNDRY" train --config "$SRC/configs/tiny.json" --data "$S/data" --out "$S/run" --threads 1 --quiet \
  --set model.dim=16 --set model.n_layers=1 --set model.n_heads=2 --set model.n_kv_heads=1 --set model.hidden_dim=32 \
  --set model.vocab_size=300 --set model.max_seq_len=16 --set training.seq_len=16 --set training.batch_size=2 \
  --set training.max_steps=2 --set training.warmup_steps=1 --set training.eval_interval=2 --set training.eval_batches=1 > "$S/train.log" 2>&1 ||
  { echo "setup: train failed"; cat "$S/train.log"; exit 1; }
M="$S/run/model"
printf '' > "$S/empty.txt"
printf 'abc\xff\xfe def\n' > "$S/bad_utf8.txt"
head -c 5000 "$SRC/data/tinystories.txt" > "$S/long_prompt.txt"
mkdir -p "$S/a_dir"
printf 'not a tokenizer' > "$S/junk.json"
printf 'FNDRYTOK' > "$S/short.bin"

# GGUF files: a good export, then broken copies (cut short, wrong version, a tensor type we do not read).
"$FOUNDRY" export gguf --model "$M" --out "$S/good.gguf" > /dev/null 2>&1 || { echo "setup: export gguf failed"; exit 1; }
head -c 1000 "$S/good.gguf" > "$S/trunc.gguf"
python3 - "$S" <<'PY'
import struct, sys
s = sys.argv[1]
good = open(f"{s}/good.gguf", "rb").read()
open(f"{s}/v9.gguf", "wb").write(good[:4] + struct.pack("<I", 9) + good[8:])
# One tensor of type 12 (Q4_K), 256 elements, at offset 0 of a data section 32-aligned.
name = b"t"
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
head += struct.pack("<IQIQ", 1, 256, 12, 0)
head += b"\0" * (-len(head) % 32)
open(f"{s}/q4k.gguf", "wb").write(head + b"\0" * 144)
PY

# A model whose vocabulary is larger than its tokenizer's.
cp -r "$M" "$S/vocab_mismatch"
sed -i 's/"vocab_size": *300/"vocab_size": 512/' "$S/vocab_mismatch/config.json"

# A chat model: one SFT step on a two-line chat file (the model's 16 positions hold a short turn).
printf '%s\n' '{"messages":[{"role":"assistant","content":"O."}]}' \
  '{"id":"t","split":"test","messages":[{"role":"user","content":"Yo"},{"role":"assistant","content":"Hi."}]}' > "$S/chat.jsonl"
printf '{nope\n' > "$S/bad.jsonl"
"$FOUNDRY" sft --base "$M" --data "$S/chat.jsonl" --out "$S/sft" --max-steps 1 --batch-size 1 --warmup-steps 0 --threads 1 > "$S/sft.log" 2>&1 ||
  { echo "setup: sft failed"; cat "$S/sft.log"; exit 1; }
C="$S/sft/model"
# LoRA adapters on the same base (rank 2; the model's wk and wv are (8, 16)).
"$FOUNDRY" sft --base "$M" --data "$S/chat.jsonl" --out "$S/sft_lora" --lora --lora-rank 2 --max-steps 1 --batch-size 1 \
  --warmup-steps 0 --threads 1 > "$S/sft_lora.log" 2>&1 || { echo "setup: sft --lora failed"; cat "$S/sft_lora.log"; exit 1; }
A="$S/sft_lora/adapter.safetensors"

# status ; words the error must contain (status 0: unusual but valid input that must just work) (alternatives separated by \|) ; arguments
CASES=$(cat <<EOF
2;unknown command;no-such-command
2;--model;generate
2;--config;train --data $S/data
1;no such file\|not found\|cannot open\|does not exist;tokenizer train --input $S/missing.txt --vocab-size 300 --out $S/t2
1;empty;tokenizer train --input $S/empty.txt --vocab-size 300 --out $S/t3
2;vocab;tokenizer train --input $S/corpus.txt --vocab-size -5 --out $S/t4
2;vocab;tokenizer train --input $S/corpus.txt --vocab-size abc --out $S/t5
1;directory;tokenizer train --input $S/a_dir --vocab-size 300 --out $S/t6
1;tokenizer;tokenizer encode --tokenizer $S/missing --text hello
1;tokenizer\|json;tokenizer encode --tokenizer $S/junk.json --text hello
1;id\|vocab;tokenizer decode --tokenizer $S/tok --ids 99999
2;id;tokenizer decode --tokenizer $S/tok --ids -3
2;id\|number;tokenizer decode --tokenizer $S/tok --ids abc
1;no such file\|not found\|cannot open\|does not exist;prepare --input $S/missing.txt --tokenizer $S/tok --out $S/p1
1;empty;prepare --input $S/empty.txt --tokenizer $S/tok --out $S/p2
2;val-fraction\|fraction;prepare --input $S/corpus.txt --tokenizer $S/tok --out $S/p3 --val-fraction 1.5
2;val-fraction\|fraction;prepare --input $S/corpus.txt --tokenizer $S/tok --out $S/p4 --val-fraction nan
1;config;model-info --config $S/missing.json
1;config\|json;model-info --config $S/junk.json
2;batch;model-info --config $SRC/configs/tiny.json --batch -1
1;train.bin\|data;train --config $SRC/configs/tiny.json --data $S/a_dir --out $S/r1
1;train.bin\|data\|not a directory;train --config $SRC/configs/tiny.json --data $S/corpus.txt --out $S/r2
1;vocab;train --config $SRC/configs/tiny.json --data $S/data --out $S/r3 --max-steps 1 --set training.warmup_steps=0
2;lr;train --config $SRC/configs/tiny.json --data $S/data --out $S/r4 --set model.vocab_size=300 --lr nan
1;lr\|learning rate;train --config $SRC/configs/tiny.json --data $S/data --out $S/r5 --set model.vocab_size=300 --lr -1
1;batch;train --config $SRC/configs/tiny.json --data $S/data --out $S/r6 --set model.vocab_size=300 --batch-size 0
2;threads;train --config $SRC/configs/tiny.json --data $S/data --out $S/r7 --set model.vocab_size=300 --threads -2 --max-steps 1 --set training.warmup_steps=0
1;checkpoint;train --resume $S/a_dir
2;mpirun;train --config $SRC/configs/tiny.json --data $S/data --out $S/r11 --set model.vocab_size=300 --shard-optimizer
2;bucket-mb;train --config $SRC/configs/tiny.json --data $S/data --out $S/r12 --set model.vocab_size=300 --bucket-mb 0
2;mpi-timeout;train --config $SRC/configs/tiny.json --data $S/data --out $S/r13 --set model.vocab_size=300 --mpi-timeout 0
1;unknown field\|no field\|unknown;train --config $SRC/configs/tiny.json --data $S/data --out $S/r8 --set training.nonsense=1
1;precision;train --config $SRC/configs/tiny.json --data $S/data --out $S/r9 --set training.precision=fp16
1;metrics\|run directory\|no such;plot $S/a_dir
2;needs;plot $S/a_dir $S/a_dir
1;model;generate --model $S/missing --prompt hi
1;model;generate --model $S/corpus.txt --prompt hi
1;model\|config;generate --model $S/a_dir --prompt hi
2;temperature;generate --model $M --prompt hi --temperature abc
2;temperature;generate --model $M --prompt hi --temperature -1
2;temperature;generate --model $M --prompt hi --temperature nan
2;top-p;generate --model $M --prompt hi --top-p 2
2;top-k;generate --model $M --prompt hi --top-k -1
2;max-new-tokens;generate --model $M --prompt hi --max-new-tokens -5
1;context\|longer\|too long;generate --model $M --prompt-file $S/long_prompt.txt
1;no such file\|not found\|cannot open\|does not exist;generate --model $M --prompt-file $S/missing.txt
1;vocab;generate --model $S/vocab_mismatch --prompt hi
1;text\|no such file\|not found\|cannot open;eval --model $M --text $S/missing.txt
1;0 tokens\|empty\|too short;eval --model $M --text $S/empty.txt
1;token\|short\|truncated;eval --model $M --tokens $S/short.bin
2;window;eval --model $M --text $S/corpus.txt --window 0
2;window;eval --model $M --text $S/corpus.txt --window -4
1;checkpoint\|no such file\|cannot open;import llama2c --checkpoint $S/missing.bin --tokenizer $S/missing.bin --out $S/i1
1;checkpoint\|short\|truncated\|header;import llama2c --checkpoint $S/short.bin --tokenizer $SRC/tests/fixtures/llama2c/tok512.bin --out $S/i2
2;type\|q5_1;quantize --model $M --type q5_1 --out $S/q1
2;out\|required;quantize --model $M --type q8_0
2;exists;quantize --model $M --type q8_0 --out $S/a_dir
1;directory\|no such\|cannot;quantize --model $S/missing --type q8_0 --out $S/q2
2;export;export
2;format;export safetensors --model $M --out $S/x.gguf
2;--out;export gguf --model $M
2;--type;export gguf --model $M --out $S/x.gguf --type q5_k
1;not a model directory;export gguf --model $S/missing --out $S/x.gguf
1;directory\|cannot\|write;export gguf --model $M --out $S/no_dir/x.gguf
2;gguf;import gguf
2;gguf\|--out;import gguf $S/good.gguf
1;not a GGUF;import gguf $S/junk.json --out $S/g1
1;truncated;import gguf $S/trunc.gguf --out $S/g2
1;version 9;import gguf $S/v9.gguf --out $S/g3
1;Q4_K;import gguf $S/q4k.gguf --out $S/g4
1;cannot\|no such\|not found;import gguf $S/missing.gguf --out $S/g5
1;not a GGUF;model-info --gguf $S/short.bin
1;truncated;model-info --gguf $S/trunc.gguf
2;temperature;generate --model $M --prompt hi --temperature inf
2;top-p;generate --model $M --prompt hi --top-p nan
1;directory\|prompt;generate --model $M --prompt-file $S/a_dir
2;max-windows;eval --model $M --text $S/corpus.txt --max-windows -1
1;directory\|exists\|not a;train --config $SRC/configs/tiny.json --data $S/data --out $S/corpus.txt --set model.vocab_size=300 --max-steps 1 --set training.warmup_steps=0
1;directory\|exists\|not a;prepare --input $S/corpus.txt --tokenizer $S/tok --out $S/corpus.txt
1;id\|vocab;tokenizer decode --tokenizer $S/tok --ids 300
0;;generate --model $M --prompt-file $S/bad_utf8.txt --max-new-tokens 3 --temperature 0
0;;tokenizer encode --tokenizer $S/tok --file $S/bad_utf8.txt
2;--input;make-instruct --input $S/corpus.txt
1;0 stories\|at least 2;make-instruct --input $S/empty.txt --out $S/i1.jsonl
2;val-fraction;make-instruct --input $S/corpus.txt --out $S/i2.jsonl --val-fraction 2
2;--words-windows;make-instruct --input $S/corpus.txt --out $S/i3.jsonl --words-windows -1
2;--base;sft --data $S/chat.jsonl --out $S/sft1
1;no such file\|cannot open\|does not exist;sft --base $M --data $S/missing.jsonl --out $S/sft2
1;line 1: not valid JSON;sft --base $M --data $S/bad.jsonl --out $S/sft3
2;max-steps;sft --base $M --data $S/chat.jsonl --out $S/sft4 --max-steps 0
2;batch-size;sft --base $M --data $S/chat.jsonl --out $S/sft5 --batch-size -1
1;exists and is not empty;sft --base $M --data $S/chat.jsonl --out $S/corpus.txt
1;config.json\|model directory\|no such;sft --base $S/a_dir --data $S/chat.jsonl --out $S/sft6
2;rank 0: expected at least 1;sft --base $M --data $S/chat.jsonl --out $S/sft7 --lora --lora-rank 0
2;exceeds min(in, out) = 8 of wk;sft --base $M --data $S/chat.jsonl --out $S/sft8 --lora --lora-rank 9
2;unknown target 'wz';sft --base $M --data $S/chat.jsonl --out $S/sft9 --lora --lora-targets wq,wz
2;alpha;sft --base $M --data $S/chat.jsonl --out $S/sft10 --lora --lora-alpha 0
2;--lora-rank needs --lora;sft --base $M --data $S/chat.jsonl --out $S/sft11 --lora-rank 4
2;--merge needs --lora;sft --base $M --data $S/chat.jsonl --out $S/sft12 --merge
2;--adapter;merge-lora --base $M --out $S/merged1
1;fingerprint;merge-lora --base $C --adapter $A --out $S/merged2
1;foundry-lora\|not a LoRA adapter;merge-lora --base $M --adapter $M/model.safetensors --out $S/merged3
1;junk.json;merge-lora --base $M --adapter $S/junk.json --out $S/merged4
1;no such file\|not found\|cannot open\|does not exist;merge-lora --base $M --adapter $S/missing.safetensors --out $S/merged5
2;exists and is not empty;merge-lora --base $M --adapter $A --out $S/sft
2;--model;chat
1;not a chat model;chat --model $M --message hi
2;max-new-tokens;chat --model $C --message hi --max-new-tokens 0
2;temperature;chat --model $C --message hi --temperature -1
1;message too long;chat --model $C --message aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
2;--corpus\|--data;eval-instruct --model $C
1;not a chat model;eval-instruct --model $M --corpus $S/corpus.txt
2;per-kind;eval-instruct --model $C --corpus $S/corpus.txt --per-kind 0
1;line 1: not valid JSON;eval-instruct --model $C --data $S/bad.jsonl
1;neither a fine-tuning checkpoint;sft --resume $S/sft
1;pretraining run\|pretraining checkpoint;sft --resume $S/run
2;keeps the settings;sft --resume $S/sft --lr 0.1
2;stop-at;sft --base $M --data $S/chat.jsonl --out $S/sft7 --stop-at -1
2;checkpoint-interval;sft --base $M --data $S/chat.jsonl --out $S/sft8 --checkpoint-interval -1
2;run directories;report
2;--out;report $S/run
1;no such run directory;report $S/missing --out $S/r.md
1;not a run directory;report $S/a_dir --out $S/r.md
2;file name;report $S/run --out $S/a_dir
2;--model;serve
1;model;serve --model $S/missing
2;port;serve --model $M --port 70000
2;port;serve --model $M --port abc
2;max-batch;serve --model $M --max-batch 0
2;max-tokens;serve --model $M --max-tokens 0
2;max-body-bytes;serve --model $M --max-body-bytes 1
1;vocab;serve --model $S/vocab_mismatch
1;listen;serve --model $M --host 203.0.113.7 --port 0
1;FOUNDRY_SPLIT;FOUNDRY_SPLIT=fast generate --model $M --prompt a --max-tokens 2
1;FOUNDRY_PIN_THREADS;FOUNDRY_PIN_THREADS=yes generate --model $M --prompt a --max-tokens 2 --threads 2
EOF
)

failures=0 total=0
while IFS=';' read -r want words args; do
  [[ -z $want ]] && continue
  total=$((total + 1))
  envs=()
  while [[ $args =~ ^([A-Z_]+=[^ ]*)\ (.*)$ ]]; do
    envs+=("${BASH_REMATCH[1]}")
    args=${BASH_REMATCH[2]}
  done
  # shellcheck disable=SC2086
  timeout 60 env "${envs[@]}" "$FOUNDRY" $args < /dev/null > "$S/out.txt" 2> "$S/err.txt"
  status=$?
  problem=""
  if (( status == 124 )); then problem="timed out (hang)"
  elif (( status >= 128 )); then problem="crashed with signal $((status - 128))"
  elif (( status != want )); then problem="exit status $status, expected $want"
  elif (( want == 0 )); then :  # input that is unusual but valid (bytes that are not UTF-8): it must simply work
  elif ! grep -i -e "$words" "$S/err.txt" | grep -q '^foundry'; then  # GNU grep: \| separates alternatives
    problem="the error does not mention: $words"
  fi
  if [[ -n $problem ]]; then
    failures=$((failures + 1))
    echo "FAIL: foundry ${args//$S/\$S}"
    echo "      $problem; stderr: $(head -c 300 "$S/err.txt" | tr '\n' ' ')"
  fi
done <<< "$CASES"

echo "bad input: $((total - failures)) passed, $failures failed"
(( failures == 0 ))
