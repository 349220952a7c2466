#!/usr/bin/env bash
# Configures and builds LLM Foundry in ./build (Release, tuned for this CPU).
#   scripts/build.sh [extra cmake options, e.g. -DFOUNDRY_PORTABLE=ON or -DFOUNDRY_OPENMP=OFF]
# BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j"$JOBS"
