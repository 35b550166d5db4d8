#!/usr/bin/env bash
# demo.sh: `make demo` (examples/demo.sh) runs to the end on this build:
# exit 0 and its "everything converged" line. Skips without kubectl.
. "$(dirname "$0")/../cli/lib.sh"
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed"
build=$(dirname "$CCM_HOST")
rc=0
bash "$CCM_SOURCE_DIR/examples/demo.sh" "$build" >"$T/demo.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || ! grep -q '^demo: everything converged\.$' "$T/demo.log"; then
  tail -n 40 "$T/demo.log" >&2
  fail "the demo exited $rc"
fi
echo "ok: the demo converged and exited 0"
