#!/usr/bin/env bash
# The README's second command, and what CI runs: installs what is missing, builds, and runs every
# test (unit tests, gradient checks in double precision, PyTorch parity fixtures, the lesson
# checker, the examples, a shortened quickstart, the kill/full-disk tests, the CLI bad-input
# table) in the normal build (g++, OpenMP on, warnings as errors); the format check. Then one extra
# build for the libraries and the fast tests: clang, OpenMP switched off, AddressSanitizer +
# UndefinedBehaviorSanitizer, warnings as errors; clang-tidy over its compile database; and a short
# run of every fuzz harness, built in the same folder. It first installs the extras
# (scripts/setup.sh --extras: Open MPI, chromium, the npm test tools) that some tests need.
#   FOUNDRY_SKIP_FORMAT_CHECK=1 scripts/test.sh   reports unformatted files without failing
#                                               (the default for now; =0 fails on them)
#   FOUNDRY_QUICK=1 scripts/test.sh             only the normal build and its tests
#   FUZZ_SECONDS=N scripts/test.sh              fuzz each harness for N seconds (default 10)
# The extra build compiles only the libraries, the foundry program, the fast tests (ctest label
# `fast`) and the fuzz harnesses, which keeps the whole run within CI's time on a slow 2-core
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --extras
start=$SECONDS
step() { echo; echo "== $1 ($(( (SECONDS - start) / 60 )) min so far) =="; }

step "build and test (g++, OpenMP on, warnings as errors)"
BUILD_DIR=build scripts/build.sh -DFOUNDRY_WERROR=ON
ctest --test-dir build --output-on-failure

if [[ -n "${FOUNDRY_QUICK:-}" ]]; then
  echo "test.sh: FOUNDRY_QUICK is set: skipped the other builds and checks"
  exit 0
fi

step "format check (scripts/format.sh --check)"
if [[ -n "${FOUNDRY_SKIP_FORMAT_CHECK:-}" && "${FOUNDRY_SKIP_FORMAT_CHECK}" != 0 ]]; then
  scripts/format.sh --check || echo "test.sh: FOUNDRY_SKIP_FORMAT_CHECK is set: not failing on the files above"
else
  scripts/format.sh --check
fi

# One extra build serves four checks, because on two cores each compile of the libraries costs
# minutes: clang as the second compiler (warnings as errors), OpenMP switched off (every result the
# same as one thread, and the code builds without OpenMP), AddressSanitizer + UndefinedBehaviorSanitizer
# with libstdc++'s assertions (any report fails), and the fuzz harnesses (FOUNDRY_FUZZ: the libraries
# also carry libFuzzer's coverage instrumentation, and the fast tests run on them). It builds only the
# libraries, the foundry program, the fast tests and the harnesses: the normal build above runs
# everything else. Line tables are all the sanitizers' reports need (file and line of each frame),
# and compile faster than full debug information.
step "build and test (clang, OpenMP off, AddressSanitizer + UndefinedBehaviorSanitizer; libraries and fast tests)"
BUILD_DIR=build-sanitize BUILD_TARGETS="fast-tests fuzz_all" scripts/build.sh -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DFOUNDRY_OPENMP=OFF -DFOUNDRY_SANITIZE=ON -DFOUNDRY_FUZZ=ON -DFOUNDRY_WERROR=ON \
  -DFOUNDRY_BUILD_LESSONS=OFF -DFOUNDRY_BUILD_TOOLS=OFF -DFOUNDRY_BUILD_BENCH=OFF \
  -DFOUNDRY_BUILD_EXAMPLES=OFF -DFOUNDRY_FAST_TESTS_ONLY=ON
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

step "clang-tidy (scripts/tidy.sh, over the clang build's compile database)"
scripts/tidy.sh build-sanitize

# Every reader of an outside file under libFuzzer for a short, bounded time (FUZZ_SECONDS each;
# the long campaign's figures are in fuzz/README.md), from the build above.
step "fuzzing: every harness for ${FUZZ_SECONDS:-10} s (scripts/fuzz.sh)"
FUZZ_BUILD=build-sanitize scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

step "all passed"
