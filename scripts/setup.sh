#!/usr/bin/env bash
# Installs what LLM Foundry needs to build, from Debian 12's packages, and nothing else.
# Safe to run again: it installs only what is missing and says what it installs.
#
#   scripts/setup.sh            build dependencies, and the tools the test command uses (clang for
#                               the second compiler and the sanitizer build, clang-format, clang-tidy)
#   scripts/setup.sh --extras   also gcovr (coverage report), linux-perf (profiling) and ccache
#                               (faster rebuilds; the build uses it when it is installed)
set -euo pipefail

# package           what it is for
PACKAGES=(
  g++               # the C++17 compiler; OpenMP (libgomp) comes with it
  cmake             # the build
  make
  libeigen3-dev     # matrix products (engine/matmul.cpp)
  catch2            # the test framework (Catch2 v2)
  nlohmann-json3-dev  # config.json, tokenizer.json, safetensors headers, metrics logs
  libcxxopts-dev    # command-line options of the foundry program
  clang-14          # the second compiler of the test command, and the sanitizer and fuzzing builds
  libclang-rt-14-dev  # clang's sanitizer and libFuzzer runtimes
  libomp-14-dev     # OpenMP for clang (g++ brings its own)
  clang-format-14   # scripts/format.sh
  clang-tidy-14     # scripts/tidy.sh
  time              # /usr/bin/time: the CPU time each fuzz harness got (scripts/fuzz.sh)
)
if [[ "${1:-}" == "--extras" ]]; then
  PACKAGES+=(gcovr linux-perf ccache)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup: I am not root and there is no sudo, so I cannot install them." >&2
  echo "setup: as root, run:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -qq || ! "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"; then
  echo "setup: apt-get failed. Install these by hand, then run me again:" >&2
  echo "setup:   apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "setup: done"
