#!/usr/bin/env bash
# version.sh: --version prints "ccm-host VERSION (ABI M.N)" and exits 0.
. "$(dirname "$0")/lib.sh"

run_cli v --version
expect_rc 0 v
expect_out v '^ccm-host [0-9]+\.[0-9]+\.[0-9]+ \(ABI [0-9]+\.[0-9]+\)$'
major=$(sed -n 's/^#define CCM_ABI_MAJOR \([0-9]*\)$/\1/p' "$CCM_SOURCE_DIR/abi/ccm_provider.h")
minor=$(sed -n 's/^#define CCM_ABI_MINOR \([0-9]*\)$/\1/p' "$CCM_SOURCE_DIR/abi/ccm_provider.h")
expect_out v "\(ABI $major\.$minor\)$"
[ "$(wc -l <"$T/v.out")" -eq 1 ] || fail "--version prints more than one line"
[ ! -s "$T/v.err" ] || fail "--version wrote to stderr"
echo "ok"
