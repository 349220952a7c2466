#!/usr/bin/python3
"""Writes the PyTorch parity fixtures for tests/model/test_parity.cpp.

A small LLaMA written here in plain PyTorch, independently of the C++ code, from the same
specification:

  - RMSNorm:  y = x / sqrt(mean(x^2) + eps) * w            (eps inside the square root)
  - RoPE:     within each head, the adjacent pair (2i, 2i+1) at position pos turns by the angle
              pos * theta^(-2i/HS)                          (the original LLaMA / llama2.c pairing)
  - attention with GQA: query head h uses kv head h // (NH/NKV); scores scaled by 1/sqrt(HS);
              causal mask; softmax; head h owns rows [h*HS, (h+1)*HS) of wq, wk, wv
  - SwiGLU:   w2(silu(w1 x) * w3 x)
  - pre-norm blocks: h = x + attn(attention_norm(x)); out = h + ffn(ffn_norm(h))
  - final norm, output projection (the embedding matrix when tied), mean cross-entropy over B*T

Each case gets a directory tests/fixtures/parity/<case>/ holding
  config.json, model.safetensors   a model directory that foundry's load_model reads
  expected.safetensors             "logits" (B, T, V) and "grad.<name>" for every parameter
  expected.json                    B, T, ids, targets, loss, and how the file was made

The weights are drawn in float32 (what the model file stores); the forward and backward then run
in float64, so the expected values carry no float32 rounding of their own and the C++ float build
is compared against (almost) exact answers.

Run with Debian's Python, which has torch (the test suite never runs this script):
    /usr/bin/python3 tests/parity/make_fixtures.py
Check that a model directory written by foundry reads back in Python (interoperability):
    /usr/bin/python3 tests/parity/make_fixtures.py --read DIR
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_ROOT = os.path.join(HERE, "..", "fixtures", "parity")

# Two cases: the main one (GQA with NKV < NH, untied output, T = max_seq_len) and a second one
# with tied embeddings, a single kv head (multi-query), T < max_seq_len and non-default eps/theta.
CASES = {
    "untied_gqa": dict(
        config=dict(dim=16, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=37, hidden_dim=40,
                    max_seq_len=8, norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=False),
        B=2, T=8, seed=1234),
    "tied_mqa": dict(
        config=dict(dim=24, n_layers=1, n_heads=3, n_kv_heads=1, vocab_size=29, hidden_dim=32,
                    max_seq_len=8, norm_eps=1e-4, rope_theta=500.0, tie_embeddings=True),
        B=3, T=5, seed=99),
}


# ---- safetensors, by hand (Debian has no `safetensors` Python package) -------------------------

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, float32 numpy array), stored in that order."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    blobs = []
    for name, array in tensors:
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # the data section starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path):
    """Returns ({name: torch tensor}, metadata). Checks the offsets tile the data section."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    spans = []
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        if end - begin != 4 * int(np.prod(shape, dtype=np.int64)) or end > len(data):
            raise ValueError(f"{path}: tensor {name!r} has bad data_offsets {entry['data_offsets']}")
        spans.append((begin, end, name))
        array = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=begin).reshape(shape)
        tensors[name] = torch.from_numpy(array.copy())
    covered = 0
    for begin, end, name in sorted(spans):
        if begin != covered:
            raise ValueError(f"{path}: tensor {name!r} starts at {begin}, expected {covered}")
        covered = end
    if covered != len(data):
        raise ValueError(f"{path}: tensors cover {covered} of {len(data)} data bytes")
    return tensors, metadata


# ---- the model ------------------------------------------------------------------------------

def param_shapes(c):
    """The file's tensor names and shapes, in file order (model/model_io.h lists the same)."""
    C, F_, V = c["dim"], c["hidden_dim"], c["vocab_size"]
    HS = C // c["n_heads"]
    shapes = [("tok_embeddings.weight", (V, C))]
    for i in range(c["n_layers"]):
        p = f"layers.{i}."
        shapes += [
            (p + "attention_norm.weight", (C,)),
            (p + "attention.wq.weight", (c["n_heads"] * HS, C)),
            (p + "attention.wk.weight", (c["n_kv_heads"] * HS, C)),
            (p + "attention.wv.weight", (c["n_kv_heads"] * HS, C)),
            (p + "attention.wo.weight", (C, c["n_heads"] * HS)),
            (p + "ffn_norm.weight", (C,)),
            (p + "feed_forward.w1.weight", (F_, C)),
            (p + "feed_forward.w3.weight", (F_, C)),
            (p + "feed_forward.w2.weight", (C, F_)),
        ]
    shapes.append(("norm.weight", (C,)))
    if not c["tie_embeddings"]:
        shapes.append(("output.weight", (V, C)))
    return shapes


def random_weights(c, gen):
    """float32 weights, large enough that attention is far from uniform and every term matters:
    matrices N(0, 1/sqrt(fan_in)), norm gains 1 + N(0, 0.2)."""
    weights = {}
    for name, shape in param_shapes(c):
        if len(shape) == 1:
            w = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        else:
            w = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        weights[name] = w.to(torch.float32)
    return weights


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rope(x, theta):
    """x: (B, T, H, HS). Rotates the adjacent pairs (x[..., 2i], x[..., 2i+1])."""
    B, T, H, HS = x.shape
    i = torch.arange(HS // 2, dtype=torch.float64)
    freq = theta ** (-2.0 * i / HS)                        # (HS/2,)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]  # (T, HS/2)
    cos = torch.cos(angle)[None, :, None, :].to(x.dtype)
    sin = torch.sin(angle)[None, :, None, :].to(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def attention(x, wq, wk, wv, wo, c):
    B, T, C = x.shape
    NH, NKV = c["n_heads"], c["n_kv_heads"]
    HS = C // NH
    q = (x @ wq.T).view(B, T, NH, HS)     # head h: columns [h*HS, (h+1)*HS) = rows of wq
    k = (x @ wk.T).view(B, T, NKV, HS)
    v = (x @ wv.T).view(B, T, NKV, HS)
    q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, HS)
    group = NH // NKV
    kv_of_head = torch.arange(NH) // group  # query head h reads kv head h // group
    k, v = k[:, kv_of_head], v[:, kv_of_head]  # (B, NH, T, HS)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)  # (B, NH, T, T)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v  # (B, NH, T, HS)
    y = y.transpose(1, 2).reshape(B, T, NH * HS)
    return y @ wo.T


def feed_forward(x, w1, w2, w3):
    return (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def forward(w, ids, c):
    x = w["tok_embeddings.weight"][ids]  # (B, T, C)
    for i in range(c["n_layers"]):
        p = f"layers.{i}."
        a = rmsnorm(x, w[p + "attention_norm.weight"], c["norm_eps"])
        x = x + attention(a, w[p + "attention.wq.weight"], w[p + "attention.wk.weight"],
                          w[p + "attention.wv.weight"], w[p + "attention.wo.weight"], c)
        f = rmsnorm(x, w[p + "ffn_norm.weight"], c["norm_eps"])
        x = x + feed_forward(f, w[p + "feed_forward.w1.weight"], w[p + "feed_forward.w2.weight"],
                             w[p + "feed_forward.w3.weight"])
    x = rmsnorm(x, w["norm.weight"], c["norm_eps"])
    out = w["tok_embeddings.weight"] if c["tie_embeddings"] else w["output.weight"]
    return x @ out.T  # (B, T, V)


# ---- fixtures ---------------------------------------------------------------------------------

def make_case(name, case):
    c = case["config"]
    B, T = case["B"], case["T"]
    gen = torch.Generator().manual_seed(case["seed"])
    weights32 = random_weights(c, gen)
    ids = torch.randint(0, c["vocab_size"], (B, T), generator=gen)
    targets = torch.randint(0, c["vocab_size"], (B, T), generator=gen)

    # float64 from the float32 values the file stores
    w = {k: v.to(torch.float64).requires_grad_(True) for k, v in weights32.items()}
    logits = forward(w, ids, c)
    loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))  # mean over B*T
    loss.backward()

    out_dir = os.path.join(OUT_ROOT, name)
    os.makedirs(out_dir, exist_ok=True)
    names = [n for n, _ in param_shapes(c)]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "model.safetensors"),
                      [(n, weights32[n].numpy()) for n in names], {"format": "pt"})
    expected = [("logits", logits.detach().numpy())]
    expected += [("grad." + n, w[n].grad.numpy()) for n in names]
    write_safetensors(os.path.join(out_dir, "expected.safetensors"), expected,
                      {"producer": "tests/parity/make_fixtures.py"})
    info = {
        "B": B, "T": T,
        "ids": ids.reshape(-1).tolist(),
        "targets": targets.reshape(-1).tolist(),
        "loss": loss.item(),
        "made_by": "tests/parity/make_fixtures.py",
        "torch_version": torch.__version__,
        "seed": case["seed"],
        "note": "weights drawn in float32; forward and backward in float64; stored as float32",
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")

    # Read everything back with our own reader: what we wrote is what we meant.
    back, _ = read_safetensors(os.path.join(out_dir, "model.safetensors"))
    assert list(back) == names
    assert all(torch.equal(back[n], weights32[n]) for n in names)
    print(f"{name}: loss {loss.item():.6f} (ln V = {math.log(c['vocab_size']):.6f}), "
          f"logits std {logits.std().item():.3f}, {sum(v.numel() for v in weights32.values())} parameters")


def read_model_dir(path):
    """Interoperability check: load a model directory written by foundry's save_model, print what
    is in it, and run this file's PyTorch forward on it."""
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    tensors, metadata = read_safetensors(os.path.join(path, "model.safetensors"))
    print("metadata:", metadata)
    expected = dict(param_shapes(c))
    for n, t in tensors.items():
        print(f"  {n:40s} {tuple(t.shape)} mean {t.double().mean().item():+.6f}")
        assert tuple(t.shape) == expected[n], (n, t.shape, expected[n])
    assert set(tensors) == set(expected), set(tensors) ^ set(expected)
    w = {k: v.to(torch.float64) for k, v in tensors.items()}
    T = min(4, c["max_seq_len"])
    ids = torch.arange(T)[None, :] % c["vocab_size"]
    logits = forward(w, ids, c)
    print(f"read {len(tensors)} tensors; PyTorch logits[0, :{T}, :3] =")
    print(logits[0, :, :3])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--read", metavar="DIR", help="read a model directory written by foundry instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.read:
        read_model_dir(args.read)
        return 0
    for name, case in CASES.items():
        make_case(name, case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
