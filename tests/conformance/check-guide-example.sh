#!/bin/sh
# check-guide-example.sh: a document prints an example module verbatim
# between BEGIN/END markers naming its source; fail (with a diff) when the
# document and the compiled source drift apart. It changes nothing.
# usage: check-guide-example.sh DOC.md SOURCE.c NAME
#   NAME is the source's path as the markers spell it.
set -u
guide=$1 src=$2 name=$3
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
