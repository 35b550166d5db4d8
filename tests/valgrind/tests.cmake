# Valgrind layer: module load, unload and hot-swap must be clean (no invalid
# access, no definite leak) with real dlclose. Not in the sanitizer build:
# valgrind and ASan cannot share a process.
if(NOT CCM_SANITIZE)
  find_program(VALGRIND valgrind REQUIRED)
  foreach(t test_loader test_registry test_lab test_http_tls)
    add_test(NAME valgrind_${t} COMMAND ${VALGRIND} --quiet
      --error-exitcode=99 --leak-check=full
      --errors-for-leak-kinds=definite --show-leak-kinds=definite
      $<TARGET_FILE:${t}>)
    set_tests_properties(valgrind_${t} PROPERTIES LABELS valgrind
      TIMEOUT 900)
    if(t STREQUAL "test_registry")
      # 25 swaps x 8 threads still crosses every swap path; the full 100
      # run natively (and under ASan) in test_registry itself.
      set_tests_properties(valgrind_${t} PROPERTIES
        ENVIRONMENT CCM_TEST_SWAPS=25)
    endif()
  endforeach()
endif()
