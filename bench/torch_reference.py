#!/usr/bin/python3
"""The PyTorch side of the speed comparison (scripts/bench_vs_pytorch.sh). Not part of the build or the tests.

Runs the same LLaMA-style model as LLM Foundry (same configuration, batch, context, threads,
float32, AdamW, gradient clipping) in PyTorch and prints one JSON object per measurement:

  {"config": "small", "threads": 2, "what": "train", "tokens_per_s": ..., "peak_rss_mib": ...}
  {"config": "small", "threads": 1, "what": "generate", "tokens_per_s": ...}

Usage (Debian's python3 with python3-torch; see BENCHMARKS.md for the exact command, which
unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE because they slow OpenBLAS here):

  /usr/bin/python3 bench/torch_reference.py --config small --threads 2 --what train
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

from blas_threads import limit_blas_threads

CONFIGS = {
    # dim, layers, heads, kv heads, hidden, context, batch (the reference sizes, bench/reference_configs.h)
    "tiny": dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=4, hidden_dim=352, seq=64, batch=12),
    "small": dict(dim=256, n_layers=4, n_heads=8, n_kv_heads=4, hidden_dim=704, seq=256, batch=16),
    "medium": dict(dim=512, n_layers=8, n_heads=8, n_kv_heads=4, hidden_dim=1376, seq=256, batch=8),
}
VOCAB = 4096


def rope_tables(seq, head_size, theta=10000.0):
    inv = theta ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (HS/2)
    ang = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]  # (T, HS/2)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    # x (B, T, H, HS): rotate adjacent pairs (2i, 2i+1), the LLaMA / llama2.c convention
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hs = c["dim"], c["dim"] // c["n_heads"]
        self.nh, self.nkv, self.hs = c["n_heads"], c["n_kv_heads"], hs
        self.attention_norm = torch.nn.Parameter(torch.ones(d))
        self.ffn_norm = torch.nn.Parameter(torch.ones(d))
        self.wq = torch.nn.Linear(d, self.nh * hs, bias=False)
        self.wk = torch.nn.Linear(d, self.nkv * hs, bias=False)
        self.wv = torch.nn.Linear(d, self.nkv * hs, bias=False)
        self.wo = torch.nn.Linear(self.nh * hs, d, bias=False)
        self.w1 = torch.nn.Linear(d, c["hidden_dim"], bias=False)
        self.w3 = torch.nn.Linear(d, c["hidden_dim"], bias=False)
        self.w2 = torch.nn.Linear(c["hidden_dim"], d, bias=False)

    @staticmethod
    def rmsnorm(x, w, eps=1e-5):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def attend(self, x, cos, sin, cache=None, pos=0):
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, self.nh, self.hs), cos, sin)
        k = apply_rope(self.wk(x).view(B, T, self.nkv, self.hs), cos, sin)
        v = self.wv(x).view(B, T, self.nkv, self.hs)
        if cache is not None:  # the same cache strategy as ours: preallocated (B, S, NKV, HS)
            cache[0][:, pos:pos + T] = k
            cache[1][:, pos:pos + T] = v
            k, v = cache[0][:, :pos + T], cache[1][:, :pos + T]
        rep = self.nh // self.nkv
        q = q.transpose(1, 2)  # (B, NH, T, HS)
        k = k.transpose(1, 2).repeat_interleave(rep, dim=1)
        v = v.transpose(1, 2).repeat_interleave(rep, dim=1)
        causal = cache is None or T > 1
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal) if hasattr(F, "scaled_dot_product_attention") \
            else self.sdpa(q, k, v, causal)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.nh * self.hs))

    def sdpa(self, q, k, v, causal):
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hs)
        if causal:
            T, S = att.shape[-2], att.shape[-1]
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            att = att.masked_fill(~mask, float("-inf"))
        return torch.softmax(att, dim=-1) @ v

    def forward(self, x, cos, sin, cache=None, pos=0):
        h = x + self.attend(self.rmsnorm(x, self.attention_norm), cos, sin, cache, pos)
        n = self.rmsnorm(h, self.ffn_norm)
        return h + self.w2(F.silu(self.w1(n)) * self.w3(n))


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embeddings = torch.nn.Embedding(VOCAB, c["dim"])
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["n_layers"]))
        self.norm = torch.nn.Parameter(torch.ones(c["dim"]))
        self.output = torch.nn.Linear(c["dim"], VOCAB, bias=False)
        self.output.weight = self.tok_embeddings.weight  # tied, as our default configs
        cos, sin = rope_tables(c["seq"], c["dim"] // c["n_heads"])
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, ids, caches=None, pos=0):
        T = ids.shape[1]
        cos, sin = self.cos[pos:pos + T], self.sin[pos:pos + T]
        x = self.tok_embeddings(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i], pos)
        return self.output(Block.rmsnorm(x, self.norm))


def bench_train(c, steps, warmup):
    model = Llama(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    B, T = c["batch"], c["seq"]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (B, T + 1), generator=g)
    x, y = ids[:, :-1], ids[:, 1:]

    def step():
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    times = []  # seconds per step; the median, as bench_suite reports, ignores the odd slow step
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return B * T / median(times)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


@torch.no_grad()
def bench_generate(c, new_tokens, repeats=5):
    model = Llama(c).eval()
    nkv, hs = c["n_kv_heads"], c["dim"] // c["n_heads"]
    caches = [(torch.zeros(1, c["seq"], nkv, hs), torch.zeros(1, c["seq"], nkv, hs)) for _ in range(c["n_layers"])]
    n = min(new_tokens, c["seq"])
    rates = []
    for r in range(repeats + 1):  # the first run is a warm-up, as in bench_suite
        tok = torch.zeros(1, 1, dtype=torch.long)
        t0 = time.perf_counter()
        for pos in range(n):
            logits = model(tok, caches, pos)
            tok = logits[:, -1].argmax(-1, keepdim=True)
        if r > 0:
            rates.append(n / (time.perf_counter() - t0))
    return median(rates)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=CONFIGS, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--what", choices=["train", "generate"], required=True)
    p.add_argument("--steps", type=int, default=0, help="timed training steps (default: by config)")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed generation runs (median)")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    blas = limit_blas_threads(a.threads)
    c = CONFIGS[a.config]
    if a.what == "train":
        steps = a.steps or {"tiny": 40, "small": 8, "medium": 5}[a.config]  # as bench_suite
        tps = bench_train(c, steps, warmup=2)
    else:
        tps = bench_generate(c, a.new_tokens, max(1, a.repeats))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB on Linux
    print(json.dumps({"impl": "pytorch", "config": a.config, "threads": a.threads, "what": a.what,
                      "tokens_per_s": round(tps, 1), "peak_rss_mib": round(peak, 1), "blas": blas}))


if __name__ == "__main__":
    main()
