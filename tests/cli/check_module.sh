#!/usr/bin/env bash
# check_module.sh: --check-module prints what a module declares (exit 0), or
# the loader's one-line refusal (exit 1); it leaves no scratch dir behind.
. "$(dirname "$0")/lib.sh"
need_module ccm-fake.so

export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"

run_cli fake --check-module "$CCM_MODULE_DIR/ccm-fake.so"
expect_rc 0 fake
expect_out fake '^name: fake$'
expect_out fake '^version: '
expect_out fake '^description: '
expect_out fake '^ABI [0-9]+\.[0-9]+ \(host [0-9]+\.[0-9]+\)$'
expect_out fake '^thread safety: (thread-safe|serial)$'
expect_out fake '^capabilities: '
expect_out fake '^options: '
expect_out fake '^lb name rules: '

echo "this is not a module" >"$T/text.so"
chmod 0644 "$T/text.so"
run_cli text --check-module "$T/text.so"
expect_rc 1 text
expect_one_err_line text "$T/text.so"
[ ! -s "$T/text.out" ] || fail "text: wrote to stdout"

run_cli absent --check-module "$T/absent.so"
expect_rc 1 absent
expect_one_err_line absent "$T/absent.so"

if [ -f "$CCM_MODULE_DIR/ccm-fake-major2.so" ]; then
  run_cli major2 --check-module "$CCM_MODULE_DIR/ccm-fake-major2.so"
  expect_rc 1 major2
  expect_one_err_line major2 'ABI major 2'
fi

if [ -f "$CCM_MODULE_DIR/ccm-lab.so" ]; then
  run_cli lab --check-module "$CCM_MODULE_DIR/ccm-lab.so"
  expect_rc 0 lab
  expect_out lab '^name: lab$'
fi

left=$(find "$TMPDIR" -mindepth 1 | wc -l)
[ "$left" -eq 0 ] || { find "$TMPDIR" >&2; fail "scratch files left in TMPDIR"; }
echo "ok"
