#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs every test
# (unit tests, gradient checks in double precision, PyTorch parity fixtures, the lesson
# checker, the examples and a shortened quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh
ctest --test-dir "$BUILD_DIR" --output-on-failure -j1
