#!/usr/bin/env bash
# Runs clang-tidy (checks: .clang-tidy at the top) over the libraries, the `foundry` program and the
# tools, using a build folder's compile database (CMAKE_EXPORT_COMPILE_COMMANDS is on). The
# project's own headers are checked through the sources that include them. Tests, lessons,
# benchmarks and examples are left out to keep CI short: they include Catch2 or repeat library code.
#   scripts/tidy.sh [BUILD_DIR]     default BUILD_DIR: build (configure it first)
# Exits 1 when clang-tidy reports anything. CLANG_TIDY overrides the program.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
CLANG_TIDY=${CLANG_TIDY:-$(command -v clang-tidy-14 || command -v clang-tidy || true)}
if [[ -z "$CLANG_TIDY" ]]; then
  echo "tidy: clang-tidy not found (scripts/setup.sh installs it)" >&2
  exit 2
fi
if [[ ! -f "$BUILD_DIR/compile_commands.json" ]]; then
  echo "tidy: $BUILD_DIR/compile_commands.json is missing: configure $BUILD_DIR with cmake first" >&2
  exit 2
fi
JOBS=$(nproc 2>/dev/null || echo 2)
# Only the sources the build folder compiles (a build without the tools has no command for them).
files=()
while IFS= read -r f; do
  if grep -qF "\"$PWD/$f\"" "$BUILD_DIR/compile_commands.json"; then files+=("$f"); fi
done < <(git ls-files common engine model tokenizer train infer dist serve cli tools | grep '\.cpp$')
echo "tidy: checking ${#files[@]} files with $CLANG_TIDY ($JOBS at a time)"
# A g++ build's database carries g++-only warning options; clang-tidy must not count those.
if printf '%s\0' "${files[@]}" |
    xargs -0 -n 1 -P "$JOBS" "$CLANG_TIDY" -p "$BUILD_DIR" --quiet --extra-arg=-Wno-unknown-warning-option \
      2> >(grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' >&2); then
  echo "tidy: clean"
else
  echo "tidy: clang-tidy found problems (listed above)" >&2
  exit 1
fi
