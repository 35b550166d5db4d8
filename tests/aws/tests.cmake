# The aws module's unit tests: test_aws links the module's sources directly
# (so internals such as SigV4, the XML walkers and the cloud.conf parser are
# testable) with the real host API from ccmcore. The SigV4 vectors live in
# tests/aws/sigv4_vectors (see SOURCE.md there).
add_executable(test_aws ${CMAKE_CURRENT_LIST_DIR}/test_aws.c ${CCM_AWS_SOURCES})
target_include_directories(test_aws PRIVATE ${PROJECT_SOURCE_DIR}/modules/aws)
target_link_libraries(test_aws PRIVATE ccmcore PkgConfig::CMOCKA
  PkgConfig::AWS_XML2 PkgConfig::CRYPTO PkgConfig::AWS_INIH PkgConfig::CJSON)
target_compile_definitions(test_aws PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(test_aws)
add_test(NAME test_aws COMMAND test_aws)
set_tests_properties(test_aws PROPERTIES LABELS unit TIMEOUT 600)

# The module against the AWS test double (python3 tests/doubles/aws.py,
# started by the test itself on a free 127.0.0.1 port).
add_executable(test_aws_double ${CMAKE_CURRENT_LIST_DIR}/test_aws_double.c
  ${CMAKE_CURRENT_LIST_DIR}/double_fix.c
  ${CCM_AWS_SOURCES})
target_include_directories(test_aws_double PRIVATE
  ${PROJECT_SOURCE_DIR}/modules/aws)
target_link_libraries(test_aws_double PRIVATE ccmcore PkgConfig::CMOCKA
  PkgConfig::AWS_XML2 PkgConfig::CRYPTO PkgConfig::AWS_INIH PkgConfig::CJSON)
target_compile_definitions(test_aws_double PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(test_aws_double)
add_test(NAME test_aws_double COMMAND test_aws_double)
set_tests_properties(test_aws_double PROPERTIES LABELS unit TIMEOUT 600)

# The module unloaded (real dlclose) before a thread that used it exits, in
# a process that does not link the module's libraries itself.
add_executable(test_aws_unload ${CMAKE_CURRENT_LIST_DIR}/test_aws_unload.c)
target_link_libraries(test_aws_unload PRIVATE ccmcore PkgConfig::CMOCKA)
target_compile_definitions(test_aws_unload PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(test_aws_unload)
add_dependencies(test_aws_unload ccm_module_aws)
add_test(NAME test_aws_unload COMMAND test_aws_unload)
set_tests_properties(test_aws_unload PROPERTIES LABELS unit TIMEOUT 600)

# Valgrind: the module loaded and unloaded by ccm-conformance (real dlopen
# and dlclose) against the double, and both test programs.
if(NOT CCM_SANITIZE)
  find_program(CCM_AWS_VALGRIND valgrind)
  if(CCM_AWS_VALGRIND)
    add_test(NAME valgrind_aws_conformance COMMAND /bin/sh
      ${PROJECT_SOURCE_DIR}/tests/aws/run-conformance-aws.sh
      ${PROJECT_SOURCE_DIR} $<TARGET_FILE:ccm-conformance>
      ${CMAKE_BINARY_DIR}/modules/ccm-aws.so
      ${PROJECT_SOURCE_DIR}/tests/conformance/aws.cfg
      --ok instances/metadata-known --ok routes/create-list-delete)
    set_tests_properties(valgrind_aws_conformance PROPERTIES
      ENVIRONMENT CCM_AWS_VALGRIND=${CCM_AWS_VALGRIND}
      LABELS valgrind TIMEOUT 900)
    foreach(t test_aws test_aws_double test_aws_unload)
      add_test(NAME valgrind_${t} COMMAND ${CCM_AWS_VALGRIND} --quiet
        --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite --show-leak-kinds=definite
        $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES LABELS valgrind
        TIMEOUT 900)
    endforeach()
  endif()
endif()

# NLB (ELBv2) against the AWS test double: its own test program, same
# pattern as test_aws_double (the test starts the double itself).
add_executable(test_aws_nlb ${CMAKE_CURRENT_LIST_DIR}/test_aws_nlb.c
  ${CMAKE_CURRENT_LIST_DIR}/double_fix.c
  ${CCM_AWS_SOURCES})
target_include_directories(test_aws_nlb PRIVATE
  ${PROJECT_SOURCE_DIR}/modules/aws)
target_link_libraries(test_aws_nlb PRIVATE ccmcore PkgConfig::CMOCKA
  PkgConfig::AWS_XML2 PkgConfig::CRYPTO PkgConfig::AWS_INIH PkgConfig::CJSON)
target_compile_definitions(test_aws_nlb PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(test_aws_nlb)
add_test(NAME test_aws_nlb COMMAND test_aws_nlb)
set_tests_properties(test_aws_nlb PROPERTIES LABELS unit TIMEOUT 600)
if(NOT CCM_SANITIZE AND CCM_AWS_VALGRIND)
  add_test(NAME valgrind_test_aws_nlb COMMAND ${CCM_AWS_VALGRIND} --quiet
    --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite $<TARGET_FILE:test_aws_nlb>)
  set_tests_properties(valgrind_test_aws_nlb PROPERTIES LABELS valgrind
    TIMEOUT 900)
endif()
