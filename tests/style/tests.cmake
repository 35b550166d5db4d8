# Style layer: banned calls and the other machine-checkable STYLE.md rules.
add_test(NAME checksrc COMMAND /usr/bin/python3
  ${PROJECT_SOURCE_DIR}/tests/style/checksrc.py ${PROJECT_SOURCE_DIR})
set_tests_properties(checksrc PROPERTIES LABELS style)
