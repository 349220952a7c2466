#!/usr/bin/env bash
# Installs what LLM Foundry needs to build, from Debian 12's packages, and nothing else.
# Safe to run again: it installs only what is missing and says what it installs.
#
#   scripts/setup.sh            build dependencies, and the tools the test command uses (clang for
#                               the second compiler and the sanitizer build, clang-format, clang-tidy)
#   scripts/setup.sh --extras   also what only some tests and tools use: Open MPI (the data-parallel
#                               path and its test), Debian's chromium (the playground's browser
#                               test), gcovr (coverage report), linux-perf (profiling), ccache (faster
#                               rebuilds), and from npm, outside the checkout, the pinned packages of
#                               tools/node/package.json (playwright-core, the openai client,
#                               node-llama-cpp's prebuilt llama.cpp) in $FOUNDRY_NODE_DIR
#                               (default ~/.cache/llm-foundry/node). The tests that need them say
#                               "skipped" when they are missing. scripts/test.sh runs this step.
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
  libcpp-httplib-dev  # the HTTP server of `foundry serve`
  libdnnl-dev       # oneDNN: the bf16 matrix products of mixed-precision training (faster than ours; AMX on Intel)
  time              # /usr/bin/time: the CPU time each fuzz harness got (scripts/fuzz.sh)
)
EXTRAS=0
[[ "${1:-}" == "--extras" ]] && EXTRAS=1
if (( EXTRAS )); then
  PACKAGES+=(openmpi-bin libopenmpi-dev chromium gcovr linux-perf ccache)
fi

# The npm packages that only tests use, pinned in tools/node/package.json, installed outside the
# checkout so that every clone shares them. Skipped quietly when they are already there.
# Node.js (20 or later) and npm are not installed here: Debian 12's are too old for these tools.
install_node_tools() {
  local dir=${FOUNDRY_NODE_DIR:-$HOME/.cache/llm-foundry/node}
  local want
  want=$(dirname "$0")/../tools/node/package.json
  if [[ -f "$dir/package.json" && -d "$dir/node_modules" ]] && cmp -s "$want" "$dir/package.json"; then
    echo "setup: the npm test tools are installed in $dir"
    return 0
  fi
  if ! command -v npm > /dev/null 2>&1; then
    echo "setup: npm is missing, so the tests that need the npm tools will be skipped" >&2
    return 0
  fi
  echo "setup: installing the npm test tools (tools/node/package.json) into $dir"
  mkdir -p "$dir"
  cp "$want" "$dir/package.json"
  # node-llama-cpp ships prebuilt llama.cpp binaries; never let it try to build or download one.
  if ! (cd "$dir" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error); then
    rm -f "$dir/package.json"
    echo "setup: npm install failed in $dir; the tests that need it will be skipped" >&2
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all build dependencies are installed"
  (( EXTRAS )) && install_node_tools
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
(( EXTRAS )) && install_node_tools
echo "setup: done"
