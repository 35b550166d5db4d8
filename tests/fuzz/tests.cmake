# Fuzz layer (label fuzz): each libFuzzer target (fuzz_kube_decode,
# fuzz_kubeconfig) built by clang and run about 15 s on its seed corpus.
# Skips (77) without clang. A long run, per target:
#   tests/fuzz/run_fuzz.sh . build/fuzz -max_total_time=3600
add_test(NAME fuzz_short COMMAND /bin/sh
  ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz.sh ${PROJECT_SOURCE_DIR}
  ${PROJECT_BINARY_DIR}/fuzz)
set_tests_properties(fuzz_short PROPERTIES
  LABELS fuzz TIMEOUT 600 SKIP_RETURN_CODE 77)
