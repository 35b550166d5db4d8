# ABI layer: abidiff against the committed baseline, and a self-test proving
# that the check refuses removed, moved and retyped fields.
find_program(ABIDIFF abidiff REQUIRED)
add_test(NAME abi_baseline COMMAND /usr/bin/python3
  ${PROJECT_SOURCE_DIR}/tests/abi/abi_check.py check
  --cc ${CMAKE_C_COMPILER} --src ${PROJECT_SOURCE_DIR})
add_test(NAME abi_check_selftest COMMAND /usr/bin/python3
  ${PROJECT_SOURCE_DIR}/tests/abi/abi_check.py selftest
  --cc ${CMAKE_C_COMPILER} --src ${PROJECT_SOURCE_DIR})
set_tests_properties(abi_baseline abi_check_selftest PROPERTIES LABELS abi)
