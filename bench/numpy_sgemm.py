#!/usr/bin/python3
"""OpenBLAS's sgemm through numpy on medium's feed-forward product, (2048, 512) · (512, 1376): the
reference the GEMM comparisons measure ours against (scripts/bench_vs_pytorch.sh,
scripts/tune_check.sh). Not part of the build or the tests.

  OPENBLAS_NUM_THREADS=T /usr/bin/python3 bench/numpy_sgemm.py T [REPEATS]

Prints one JSON line: {"impl": "openblas", "what": "matmul", "threads": T, "gflops": median}.
The caller sets OPENBLAS_NUM_THREADS (read when numpy loads OpenBLAS); T only labels the line.
"""
import json
import sys
import time

import numpy as np


def main():
    threads = int(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    M, K, N = 2048, 512, 1376
    a = np.random.rand(M, K).astype(np.float32)
    b = np.random.rand(K, N).astype(np.float32)
    a @ b  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        rates.append(2.0 * M * K * N / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    print(json.dumps({"impl": "openblas", "what": "matmul", "threads": threads,
                      "gflops": round(rates[len(rates) // 2], 1)}))


if __name__ == "__main__":
    main()
