# Fuzz layer (label fuzz): each libFuzzer target built by clang and run
# briefly on its seed corpus. Skips (77) without clang. A long run:
#   tests/fuzz/run_fuzz.sh . build/fuzz -max_total_time=3600
add_test(NAME fuzz_short COMMAND /bin/sh
  ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz.sh ${PROJECT_SOURCE_DIR}
  ${PROJECT_BINARY_DIR}/fuzz)
set_tests_properties(fuzz_short PROPERTIES
  LABELS fuzz TIMEOUT 600 SKIP_RETURN_CODE 77)
