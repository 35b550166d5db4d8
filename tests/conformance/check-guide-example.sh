#!/bin/sh
# check-guide-example.sh: docs/writing-a-module.md prints the example module
# verbatim between BEGIN/END markers; fail (with a diff) when the guide and
# examples/minimal-module/minimal.c drift apart. It changes nothing.
# usage: check-guide-example.sh GUIDE.md SOURCE.c
set -u
guide=$1 src=$2
name=examples/minimal-module/minimal.c
tmp=$(mktemp "${TMPDIR:-/tmp}/ccm-guide.XXXXXX") || exit 2
trap 'rm -f "$tmp"' EXIT
awk -v b="<!-- BEGIN $name -->" -v e="<!-- END $name -->" '
  $0 == e { f = 0 }
  f { print }
  $0 == b { f = 1 }' "$guide" > "$tmp"
if [ "$(head -n 1 "$tmp")" != '```c' ] || [ "$(tail -n 1 "$tmp")" != '```' ]; then
  echo "check-guide-example.sh: no \`\`\`c block between the markers of $name in $guide" >&2
  exit 1
fi
sed '1d;$d' "$tmp" | diff -u - "$src"
