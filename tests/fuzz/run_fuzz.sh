#!/bin/sh
# run_fuzz.sh: build each libFuzzer target (kube_decode, kubeconfig) with
# clang (ASan + UBSan) and run it briefly on its seed corpus. Exit 77
# (skipped) when clang or libFuzzer is missing.
# Usage: run_fuzz.sh SRC_DIR OUT_DIR [libFuzzer args, applied per target]
# Long run:  run_fuzz.sh . build/fuzz -max_total_time=3600
set -u
SRC=$1
OUT=$2
shift 2
# The short default keeps the whole run (both targets) near 30 s.
ARGS=${*:-"-runs=300000 -max_total_time=15"}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null 2>&1 || { echo "clang absent: skipped"; exit 77; }
mkdir -p "$OUT" || exit 1
CFLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I$SRC/abi -I$SRC/host"
# Probe: some clang installs lack the libFuzzer runtime.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
  > "$OUT/probe.c"
$CLANG -fsanitize=fuzzer "$OUT/probe.c" -o "$OUT/probe" >/dev/null 2>&1 ||
  { echo "libFuzzer runtime absent: skipped"; exit 77; }
status=0
for target in kube_decode kubeconfig; do
  bin="$OUT/fuzz_$target"
  case $target in
    kube_decode) srcs="$SRC/host/kube/objects.c"; libs="-lcjson" ;;
    kubeconfig) srcs="$SRC/host/kube/kubeconfig.c $SRC/host/util/log.c"
                libs="-lyaml -lcrypto -lpthread" ;;
  esac
  # shellcheck disable=SC2086
  $CLANG $CFLAGS -o "$bin" "$SRC/tests/fuzz/fuzz_$target.c" $srcs \
    "$SRC/host/util/mem.c" $libs || exit 1
  # Work on a copy: new inputs found by short runs do not touch the tree.
  rm -rf "$OUT/corpus_$target"
  mkdir -p "$OUT/corpus_$target"
  cp "$SRC/tests/fuzz/corpus/$target/"* "$OUT/corpus_$target/" 2>/dev/null
  dict=""
  [ -f "$SRC/tests/fuzz/$target.dict" ] && dict="-dict=$SRC/tests/fuzz/$target.dict"
  echo "== fuzz_$target $ARGS"
  # shellcheck disable=SC2086
  "$bin" $ARGS $dict -max_len=65536 -artifact_prefix="$OUT/crash-$target-" \
    "$OUT/corpus_$target" 2>"$OUT/fuzz_$target.log" || status=1
  tail -n 3 "$OUT/fuzz_$target.log"
  [ $status -eq 0 ] || { grep -m 20 -E "ERROR|SUMMARY|#[0-9]+ " "$OUT/fuzz_$target.log"; }
done
exit $status
