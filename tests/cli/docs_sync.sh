#!/usr/bin/env bash
# docs_sync.sh: docs/configuration.md is exactly what --print-config-docs
# prints (regenerate with `make config-docs`).
. "$(dirname "$0")/lib.sh"

run_cli docs --print-config-docs
expect_rc 0 docs
if ! diff -u "$CCM_SOURCE_DIR/docs/configuration.md" "$T/docs.out" >"$T/diff"; then
  head -50 "$T/diff" >&2
  fail "docs/configuration.md is stale: run make config-docs"
fi
echo "ok"
