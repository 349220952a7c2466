#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs every test (unit
# tests, gradient checks in double precision, PyTorch parity fixtures, the lesson checker, the
# examples and a shortened quickstart) twice: in the normal build, and in a build with OpenMP
# switched off, which must give the same results on one thread.
#   SKIP_NO_OPENMP=1 scripts/test.sh   runs only the normal build (about half the time)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== build and test (OpenMP on) =="
BUILD_DIR=build scripts/build.sh
ctest --test-dir build --output-on-failure

if [[ -z "${SKIP_NO_OPENMP:-}" ]]; then
  echo "== build and test (OpenMP off) =="
  BUILD_DIR=build-no-openmp scripts/build.sh -DFOUNDRY_OPENMP=OFF
  ctest --test-dir build-no-openmp --output-on-failure
fi
