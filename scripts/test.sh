#!/usr/bin/env bash
# The README's second command, and what CI runs: installs what is missing, builds, and runs every
# test (unit tests, gradient checks in double precision, PyTorch parity fixtures, the lesson
# checker, the examples and a shortened quickstart) twice: in the normal build (g++, warnings as
# errors), and in a build with OpenMP switched off, which must give the same results on one
# thread. Then the habits: the format check, clang-tidy, a clang build of the libraries and the
# fast tests (warnings as errors), and the same under AddressSanitizer + UndefinedBehaviorSanitizer.
#   SKIP_NO_OPENMP=1 scripts/test.sh            skips the OpenMP-off build
#   FOUNDRY_SKIP_FORMAT_CHECK=1 scripts/test.sh   reports unformatted files without failing
#                                               (the default for now; =0 fails on them)
#   FOUNDRY_QUICK=1 scripts/test.sh             only the normal build and its tests
# The extra builds compile only the libraries, the foundry program and the fast tests (ctest label
# `fast`), which keeps the whole run within CI's time on a slow 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# Until the whole tree has been formatted once, the format check reports without failing. Delete
# this line after `scripts/format.sh` has been applied and committed.
export FOUNDRY_SKIP_FORMAT_CHECK=${FOUNDRY_SKIP_FORMAT_CHECK-1}
scripts/setup.sh
start=$SECONDS
step() { echo; echo "== $1 ($(( (SECONDS - start) / 60 )) min so far) =="; }

step "build and test (g++, OpenMP on, warnings as errors)"
BUILD_DIR=build scripts/build.sh -DFOUNDRY_WERROR=ON
ctest --test-dir build --output-on-failure

if [[ -n "${FOUNDRY_QUICK:-}" ]]; then
  echo "test.sh: FOUNDRY_QUICK is set: skipped the other builds and checks"
  exit 0
fi

if [[ -z "${SKIP_NO_OPENMP:-}" ]]; then
  step "build and test (OpenMP off)"
  BUILD_DIR=build-no-openmp scripts/build.sh -DFOUNDRY_OPENMP=OFF -DFOUNDRY_WERROR=ON
  ctest --test-dir build-no-openmp --output-on-failure
fi

step "format check (scripts/format.sh --check)"
if [[ -n "${FOUNDRY_SKIP_FORMAT_CHECK:-}" && "${FOUNDRY_SKIP_FORMAT_CHECK}" != 0 ]]; then
  scripts/format.sh --check || echo "test.sh: FOUNDRY_SKIP_FORMAT_CHECK is set: not failing on the files above"
else
  scripts/format.sh --check
fi

# Only the libraries, the foundry program and the fast tests for the clang and sanitizer builds.
FAST_ONLY=(-DFOUNDRY_BUILD_LESSONS=OFF -DFOUNDRY_BUILD_TOOLS=OFF -DFOUNDRY_BUILD_BENCH=OFF
           -DFOUNDRY_BUILD_EXAMPLES=OFF -DFOUNDRY_FAST_TESTS_ONLY=ON)

step "build and test (clang, warnings as errors; libraries and fast tests)"
BUILD_DIR=build-clang BUILD_TARGETS=fast-tests scripts/build.sh -DCMAKE_CXX_COMPILER=clang++-14 \
  -DFOUNDRY_WERROR=ON "${FAST_ONLY[@]}"
ctest --test-dir build-clang --output-on-failure -L fast

step "clang-tidy (scripts/tidy.sh, over the clang build's compile database)"
scripts/tidy.sh build-clang

step "sanitizers: AddressSanitizer + UndefinedBehaviorSanitizer (clang; libraries and fast tests)"
BUILD_DIR=build-sanitize BUILD_TARGETS=fast-tests scripts/build.sh -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOUNDRY_SANITIZE=ON -DFOUNDRY_WERROR=ON "${FAST_ONLY[@]}"
rm -rf build-sanitize/sanitizer-logs && mkdir -p build-sanitize/sanitizer-logs
status=0
ctest --test-dir build-sanitize --output-on-failure -L fast || status=$?
# Reports of processes the tests started (the foundry program) land here too.
if compgen -G "build-sanitize/sanitizer-logs/*" >/dev/null; then
  echo "test.sh: sanitizer reports:" >&2
  cat build-sanitize/sanitizer-logs/* >&2
  status=1
fi
[[ $status -eq 0 ]] || exit $status

step "all passed"
