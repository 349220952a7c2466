# shellcheck shell=bash
# Sourced by the scripts that time PyTorch against us (scripts/bench_vs_pytorch.sh,
# scripts/bench_memory.sh, scripts/speedrun.sh --reference).
#
# Debian's python3-torch does its matrix products through libblas.so.3, which is whichever BLAS
# the alternatives system points at. With only the reference BLAS installed (libblas3, the
# straightforward Fortran loops) PyTorch trains 10 to 20 times slower than with OpenBLAS, and a
# comparison against it says nothing about us. So refuse to time PyTorch on it, unless
# FOUNDRY_ALLOW_REFERENCE_BLAS=1 says the user knows.
#
#   require_fast_blas SCRIPT_NAME     exits 2 with the fix when libblas.so.3 is not OpenBLAS
#   run_torch COMMAND...              runs a PyTorch command in its best environment (below)
require_fast_blas() {
  local name=$1 target
  target=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2> /dev/null || true)
  if [[ "$target" == *openblas* || "${FOUNDRY_ALLOW_REFERENCE_BLAS:-}" == 1 ]]; then return 0; fi
  echo "$name: PyTorch would use ${target:-no BLAS at all} for its products, not OpenBLAS," >&2
  echo "  and would run 10-20 times slower than it can: install it (apt-get install libopenblas0-pthread)," >&2
  echo "  or set FOUNDRY_ALLOW_REFERENCE_BLAS=1 to time it anyway." >&2
  exit 2
}

# PyTorch's best environment on this kind of machine, measured (tiny training at 2 threads, one
# process each, quiet: 2,219 tokens/s with the defaults, 6,671 with our own short spin, 8,184
# with a passive wait):
#   - OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: set, they can make OpenBLAS use slower kernels
#     than its own CPU detection would.
#   - OMP_WAIT_POLICY=passive (unless the caller chose one): PyTorch's OpenMP threads otherwise
#     spin after every parallel loop, on the same two cores as OpenBLAS's own threads (which
#     bench/blas_threads.py sizes to the run's thread count), and the spinners starve the workers.
run_torch() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" "$@"
}
