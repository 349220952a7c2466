#!/usr/bin/python3
"""The reference of the speedrun (scripts/speedrun.sh): nanoGPT's CPU recipe for shakespeare_char,
written here in plain PyTorch. Not part of the build or the tests.

nanoGPT's README trains a character-level GPT on Tiny Shakespeare on a CPU with

  python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
      --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
      --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

and reports a validation loss of about 1.88 after some 3 minutes on a laptop. This script
reproduces that recipe: its model (GPT-2 style: learned positions, LayerNorm without biases,
causal multi-head attention, a 4x GELU MLP, the output tied to the token embedding, weights
normal(0, 0.02) with the residual projections at 0.02 / sqrt(2 * n_layer)), and its settings
(the config file's learning rate 1e-3 with 100 warmup iterations and a cosine to 1e-4 at 2000,
AdamW betas (0.9, 0.99) with weight decay 0.1 on the matrices, gradient clipping at 1, an
evaluation every 250 iterations of eval_iters = 20 random batches of both splits, as nanoGPT's
estimate_loss does). Data: nanoGPT's character vocabulary (the 65 distinct characters of the
text) and its split, the first 90% for training and the last 10% for validation.

Note: LLM Foundry's speedrun reads the text as bytes (vocabulary 256). Tiny Shakespeare is plain
ASCII, so the byte and character sequences are the same; only the embedding has 256 rows there
against 65 here (its unused rows cost a little arithmetic in the output projection).

It prints one line per evaluation and, at the end, one JSON line:
  {"impl": "nanogpt", "threads": ..., "target": 1.88, "crossed_at_s": ..., "crossed_at_iter": ...,
   "final_val_loss": ..., "total_s": ...}
crossed_at_s is the wall time from the start of training (model built, data loaded) to the end of
the first evaluation whose validation loss is <= the target, evaluations included; null when the
2000 iterations never get there; crossed_at_cpu_s is the process's CPU time at that point (on a
busy machine, at one thread, a better measure of the work than the wall time).

  /usr/bin/python3 bench/nanogpt_shakespeare_char.py [--threads N] [--target 1.88] [--data FILE]
(scripts/speedrun.sh runs it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, see BENCHMARKS.md.)
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from blas_threads import limit_blas_threads

N_LAYER, N_HEAD, N_EMBD, BLOCK_SIZE, BATCH_SIZE = 4, 4, 128, 64, 12
MAX_ITERS, LR_DECAY_ITERS, WARMUP_ITERS = 2000, 2000, 100
LEARNING_RATE, MIN_LR = 1e-3, 1e-4
BETA1, BETA2, WEIGHT_DECAY, GRAD_CLIP = 0.9, 0.99, 0.1, 1.0
EVAL_INTERVAL, EVAL_ITERS = 250, 20


class LayerNorm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNorm(N_EMBD), LayerNorm(N_EMBD)
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD, bias=False)
        self.c_fc = nn.Linear(N_EMBD, 4 * N_EMBD, bias=False)
        self.mlp_proj = nn.Linear(4 * N_EMBD, N_EMBD, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(BLOCK_SIZE, BLOCK_SIZE)).view(1, 1, BLOCK_SIZE, BLOCK_SIZE))

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(N_EMBD, dim=2)
        q, k, v = (t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(BLOCK_SIZE, N_EMBD)
        self.h = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.wte.weight = self.lm_head.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * N_LAYER))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, dtype=torch.long))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def lr_at(it):
    if it < WARMUP_ITERS:
        return LEARNING_RATE * it / WARMUP_ITERS
    if it > LR_DECAY_ITERS:
        return MIN_LR
    ratio = (it - WARMUP_ITERS) / (LR_DECAY_ITERS - WARMUP_ITERS)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LEARNING_RATE - MIN_LR)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/tinyshakespeare.txt")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's own choice)")
    ap.add_argument("--target", type=float, default=1.88)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    limit_blas_threads(torch.get_num_threads())  # OpenBLAS's own pool, otherwise one thread per core
    torch.manual_seed(args.seed)

    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - BLOCK_SIZE, (BATCH_SIZE,))
        x = torch.stack([d[i:i + BLOCK_SIZE] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + BLOCK_SIZE] for i in ix])
        return x, y

    model = GPT(len(chars))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LEARNING_RATE, betas=(BETA1, BETA2))

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        out = {}
        for split in ("train", "val"):
            losses = torch.zeros(EVAL_ITERS)
            for k in range(EVAL_ITERS):
                losses[k] = model(*get_batch(split)).item()
            out[split] = losses.mean().item()
        model.train()
        return out

    start, start_cpu = time.perf_counter(), time.process_time()
    crossed_s = crossed_cpu = crossed_iter = None
    val = float("nan")
    x, y = get_batch("train")
    for it in range(MAX_ITERS + 1):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        if it % EVAL_INTERVAL == 0:
            losses = estimate_loss()
            val = losses["val"]
            elapsed = time.perf_counter() - start
            print(f"iter {it}: train loss {losses['train']:.4f}, val loss {val:.4f}, {elapsed:.1f} s", flush=True)
            if crossed_s is None and val <= args.target:
                crossed_s, crossed_cpu, crossed_iter = elapsed, time.process_time() - start_cpu, it
                break
        if it == MAX_ITERS:
            break
        loss = model(x, y)
        x, y = get_batch("train")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
    total = time.perf_counter() - start
    print(json.dumps({"impl": "nanogpt", "threads": torch.get_num_threads(), "target": args.target,
                      "crossed_at_s": None if crossed_s is None else round(crossed_s, 1),
                      "crossed_at_cpu_s": None if crossed_cpu is None else round(crossed_cpu, 1),
                      "crossed_at_iter": crossed_iter, "final_val_loss": round(val, 4), "total_s": round(total, 1)}))


if __name__ == "__main__":
    main()
