#!/usr/bin/env bash
# Formats the project's C++ sources with clang-format (style: .clang-format at the top).
#   scripts/format.sh            rewrites every tracked .cpp/.h file in place
#   scripts/format.sh --check    changes nothing; lists the files that are not formatted and exits 1
#                                if there are any (the test command runs this)
# CLANG_FORMAT overrides the program (default: clang-format-14, else clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [[ -z "$CLANG_FORMAT" ]]; then
  echo "format: clang-format not found (scripts/setup.sh installs it)" >&2
  exit 2
fi

mode=fix
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

mapfile -t files < <(git ls-files '*.cpp' '*.h')
if [[ $mode == fix ]]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 32 "$CLANG_FORMAT" -i
  echo "format: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" "$f" | cmp -s - "$f"; then bad+=("$f"); fi
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "format: ${#bad[@]} of ${#files[@]} files are not formatted (run scripts/format.sh):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: all ${#files[@]} files are formatted"
