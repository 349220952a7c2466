#!/usr/bin/python3
"""PyTorch's bf16 and fp32 matmul on bench_bf16's shapes, to set beside its figures. Not part of the
build or the tests.

Prints GFLOP/s (median of repetitions) of out = x @ w.T with x (M, K) and w (N, K), at 1 and 2
threads, in bf16 (Debian's python3-torch 1.13 sends it to oneDNN) and in fp32. Run it with the
OpenBLAS variables unset in this command only (see BENCHMARKS.md):

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE DNNL_VERBOSE=0 /usr/bin/python3 bench/torch_bf16_matmul.py

With DNNL_VERBOSE=1 oneDNN prints every primitive it runs, including the kernel's instruction set
(brg:avx512_core_amx for AMX tiles, brg:avx512_core_bf16 for vdpbf16ps); --verbose-once prints one
such line per shape.
"""
import argparse
import os
import time

import torch

SHAPES = [(4096, 512, 512), (4096, 512, 2048), (4096, 2048, 512), (2048, 512, 1376)]


def gflops(fn, flops, reps):
    fn()
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        rates.append(flops / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    return rates[len(rates) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 repetitions each")
    args = parser.parse_args()
    torch.manual_seed(1)
    print(f"torch {torch.__version__}; oneDNN enabled: {torch.backends.mkldnn.is_available()}")
    print(f"{'M x K x N':16} {'threads':7} | {'bf16':>8} {'fp32':>8}")
    for M, K, N in SHAPES:
        x = torch.randn(M, K)
        w = torch.randn(N, K)
        xb, wb = x.bfloat16(), w.bfloat16()
        flops = 2.0 * M * K * N
        reps = 3 if args.quick else max(3, min(30, int(200e9 / flops)))
        for threads in (1, 2):
            torch.set_num_threads(threads)
            b = gflops(lambda: torch.matmul(xb, wb.t()), flops, reps)
            f = gflops(lambda: torch.matmul(x, w.t()), flops, reps)
            print(f"{M}x{K}x{N:<8} {threads:<7} | {b:8.1f} {f:8.1f}", flush=True)


if __name__ == "__main__":
    main()
