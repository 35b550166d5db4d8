# Kubernetes API client against the API double (label kube): transport,
# writes, events, leases. The double is tests/doubles/kube_apiserver.py.
foreach(t transport writes events lease)
  add_executable(kube_it_${t}
    ${CMAKE_CURRENT_LIST_DIR}/kube_${t}.c
    ${CMAKE_CURRENT_LIST_DIR}/double.c)
  target_link_libraries(kube_it_${t} PRIVATE ccmcore PkgConfig::CMOCKA)
  target_include_directories(kube_it_${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(kube_it_${t} PRIVATE ${CCM_TEST_DEFS})
  ccm_target_warnings(kube_it_${t})
  add_test(NAME kube_${t} COMMAND kube_it_${t})
  set_tests_properties(kube_${t} PROPERTIES LABELS kube TIMEOUT 600)
endforeach()
