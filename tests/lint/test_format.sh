#!/usr/bin/env bash
# Every C file is formatted by the checked-in .clang-format.
set -euo pipefail
cd "${AXION_SOURCE_DIR:?}"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ -n "$files" ] || { echo "no C files found" >&2; exit 1; }
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -w) files clean"
