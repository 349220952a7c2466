#!/usr/bin/env bash
# Configures and builds LLM Foundry in ./build (Release, tuned for this CPU).
#   scripts/build.sh [extra cmake options, e.g. -DFOUNDRY_PORTABLE=ON or -DFOUNDRY_OPENMP=OFF]
# BUILD_DIR overrides the folder; BUILD_TARGETS (space-separated) builds only those targets.
# ccache is used when it is installed (never required).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=$(nproc 2>/dev/null || echo 2)
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$JOBS" "${targets[@]}"
