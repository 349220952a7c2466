#!/bin/sh
# Line coverage of the library code (engine, model, tokenizer, train, infer) by the test suite.
#
#   scripts/coverage.sh              configure build-coverage, build, run every test, report
#   scripts/coverage.sh -R engine    pass ctest options through (here: only the engine tests)
#
# The build is instrumented with -DFOUNDRY_COVERAGE=ON (gcc --coverage at -O0), so it is slow
# and lives in its own directory, build-coverage. gcovr (Debian package `gcovr`) reads the
# counters the tests leave behind and prints one line per file and a total per library. The
# HTML version lands in build-coverage/coverage/index.html.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-coverage"
JOBS=${JOBS:-2}

if ! command -v gcovr >/dev/null 2>&1; then
  echo "coverage.sh: gcovr is not installed; install it with: apt-get install gcovr" >&2
  exit 1
fi

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DFOUNDRY_COVERAGE=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS"
# Counters from an earlier run would add up with this one's.
find "$BUILD" -name '*.gcda' -delete
# A failing test still leaves its counters; report coverage either way, then exit with its status.
status=0
ctest --test-dir "$BUILD" --output-on-failure "$@" || status=$?

mkdir -p "$BUILD/coverage"
cd "$ROOT"
# One pass of gcov over every counter file (the slow part), kept as JSON; the per-library
# summaries below are then read from that file.
gcovr --root "$ROOT" --object-directory "$BUILD" \
      --filter "$ROOT/engine/" --filter "$ROOT/model/" --filter "$ROOT/tokenizer/" \
      --filter "$ROOT/train/" --filter "$ROOT/infer/" \
      --json "$BUILD/coverage/coverage.json" --html-details "$BUILD/coverage/index.html"
echo
echo "== line coverage of the library code =="
# subtle: never `--output /dev/null`: gcovr replaces the file it writes, and run as root that
# replaces the device itself with a regular file. The text reports go to a scratch file instead.
scratch="$BUILD/coverage/summary.txt"
for lib in engine model tokenizer train infer; do
  gcovr --root "$ROOT" --add-tracefile "$BUILD/coverage/coverage.json" --filter "$ROOT/$lib/" \
        --print-summary --output "$scratch" | sed -n "s/^lines: */$lib: /p"
done
gcovr --root "$ROOT" --add-tracefile "$BUILD/coverage/coverage.json" --print-summary --output "$scratch" |
  sed -n 's/^lines: */all libraries: /p'
echo "per-file report: $BUILD/coverage/index.html"
exit $status
