"""One helper for the PyTorch side of the comparisons (bench/torch_reference.py,
bench/nanogpt_shakespeare_char.py). Not part of the build or the tests.

Debian's PyTorch does its matrix products through libblas.so.3, which is OpenBLAS when it is
installed. OpenBLAS keeps its own pool of threads, one per core by default, and
torch.set_num_threads does not reach it. So a "1-thread" PyTorch run multiplied on every core
(faster than one thread can be: an unfair comparison), and a 2-thread run had PyTorch's two
OpenMP threads and OpenBLAS's two threads, all spinning, on two cores (measured: tiny training
at 2 threads ran at 0.31 of the 1-thread speed). This sets OpenBLAS's pool to the thread count
of the run; the spinning is the other half of the cure (a passive OpenMP wait, set by
bench/torch_blas_check.sh's run_torch): with the pool limited alone, the same run was still at 0.33.
"""
import ctypes


def limit_blas_threads(n):
    """Tells OpenBLAS to use n threads; returns a short description for the JSON output."""
    try:
        blas = ctypes.CDLL("libblas.so.3")  # already loaded by torch: the same library
    except OSError:
        return "libblas.so.3 not loadable"
    if not hasattr(blas, "openblas_set_num_threads"):
        return "not OpenBLAS"
    blas.openblas_set_num_threads(ctypes.c_int(n))
    get = getattr(blas, "openblas_get_num_threads", None)
    return f"OpenBLAS threads {get() if get else n}"
