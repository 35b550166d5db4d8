# Controller e2e tests (label e2e): one executable per tests/e2e/test_*.c,
# linked with the harness (harness.c), the load-test helpers (load.c) and
# the API double's helper (tests/kube/double.c). Each runs the double, a
# provider module and the host's runtime in-process; see tests/e2e/harness.h
# and tests/e2e/load.h.
file(GLOB CCM_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.c)
get_property(CCM_E2E_MODULES GLOBAL PROPERTY CCM_MODULE_TARGETS)
foreach(src ${CCM_E2E_TESTS})
  get_filename_component(name ${src} NAME_WE)
  set(target e2e_${name})
  add_executable(${target} ${src}
    ${CMAKE_CURRENT_LIST_DIR}/harness.c
    ${CMAKE_CURRENT_LIST_DIR}/load.c
    ${CMAKE_CURRENT_LIST_DIR}/../kube/double.c)
  target_link_libraries(${target} PRIVATE ccmcore PkgConfig::CMOCKA)
  target_include_directories(${target} PRIVATE
    ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_LIST_DIR}/../kube)
  target_compile_definitions(${target} PRIVATE ${CCM_TEST_DEFS})
  ccm_target_warnings(${target})
  if(CCM_E2E_MODULES)
    add_dependencies(${target} ${CCM_E2E_MODULES})
  endif()
  add_test(NAME ${target} COMMAND ${target})
  set_tests_properties(${target} PROPERTIES LABELS e2e TIMEOUT 900)
endforeach()
