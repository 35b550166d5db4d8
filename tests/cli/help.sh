#!/usr/bin/env bash
# help.sh: --help exits 0 and lists every long option of host/main.c's
# option table, so a new flag cannot be left out of the usage text.
. "$(dirname "$0")/lib.sh"

run_cli h --help
expect_rc 0 h
expect_out h '^Usage: ccm-host'
flags=$(sed -n 's/^ *{"\([a-z-]*\)", *\(no\|required\|optional\)_argument.*/\1/p' \
  "$CCM_SOURCE_DIR/host/main.c")
[ -n "$flags" ] || fail "found no options in host/main.c"
for f in $flags; do
  grep -q -- "--$f\b" "$T/h.out" || fail "--help does not list --$f"
done
for f in help version config check-config check-module print-config-docs \
         log-level kubeconfig master cluster-name; do
  grep -q -- "--$f\b" "$T/h.out" || fail "--help does not list --$f"
done
run_cli h2 -h
expect_rc 0 h2
cmp -s "$T/h.out" "$T/h2.out" || fail "-h and --help differ"
echo "ok"
