# Informers against the Kubernetes API double (label kube): paginated sync,
# events with old/new, relist after 410 and after a restart. Reuses the
# double's process helper from tests/kube.
add_executable(kube_it_informer
  ${CMAKE_CURRENT_LIST_DIR}/kube_informer.c
  ${PROJECT_SOURCE_DIR}/tests/kube/double.c)
target_link_libraries(kube_it_informer PRIVATE ccmcore PkgConfig::CMOCKA)
target_include_directories(kube_it_informer PRIVATE
  ${PROJECT_SOURCE_DIR}/tests/kube)
target_compile_definitions(kube_it_informer PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(kube_it_informer)
add_test(NAME kube_informer COMMAND kube_it_informer)
set_tests_properties(kube_informer PROPERTIES LABELS kube TIMEOUT 600)
