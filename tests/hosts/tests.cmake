# Host process tests (label hosts): whole ccm-host processes, alone or two
# replicas competing for the Lease on the Kubernetes API double. They skip
# (exit 77) when a module they need is not built.
set(CCM_HOSTS_ENV "CCM_HOST=$<TARGET_FILE:ccm-host>;CCM_SOURCE_DIR=${PROJECT_SOURCE_DIR};CCM_MODULE_DIR=${PROJECT_BINARY_DIR}/modules")

add_test(NAME hosts_leader_election
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/two_hosts.sh)
set_tests_properties(hosts_leader_election PROPERTIES
  LABELS hosts TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")

add_test(NAME hosts_bad_kubeconfig
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bad_kubeconfig.sh)
set_tests_properties(hosts_bad_kubeconfig PROPERTIES
  LABELS "hosts;cli" TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")

# host/kube/runtime in-process against the double (tests/kube/double.c).
add_executable(hosts_it_runtime
  ${CMAKE_CURRENT_LIST_DIR}/runtime_it.c
  ${PROJECT_SOURCE_DIR}/tests/kube/double.c)
target_link_libraries(hosts_it_runtime PRIVATE ccmcore PkgConfig::CMOCKA)
target_include_directories(hosts_it_runtime PRIVATE
  ${PROJECT_SOURCE_DIR}/tests/kube)
target_compile_definitions(hosts_it_runtime PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(hosts_it_runtime)
if(TARGET ccm_module_fake)
  add_dependencies(hosts_it_runtime ccm_module_fake)
endif()
add_test(NAME hosts_runtime COMMAND hosts_it_runtime)
set_tests_properties(hosts_runtime PROPERTIES
  LABELS hosts TIMEOUT 600 SKIP_RETURN_CODE 77)

# SIGKILL at random points during ensure and delete, 20 times (seeded).
add_test(NAME hosts_crash_safety
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/crash_safety.sh)
set_tests_properties(hosts_crash_safety PROPERTIES
  LABELS hosts TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")

# A standby replica (own token, so the double's log tells it apart) makes
# no write, no provider call, while the leader does all the work.
add_test(NAME hosts_standby
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/standby.sh)
set_tests_properties(hosts_standby PROPERTIES
  LABELS hosts TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")

# ccm-host with a Lua policy: rejections in /metrics, live reload on a file
# edit (inotify), a broken edit refused, SIGHUP reload, names kept.
add_test(NAME hosts_policy_reload
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/policy_reload.sh)
set_tests_properties(hosts_policy_reload PROPERTIES
  LABELS hosts TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")

# ccm-host with the aws module and scripts/aws.lua against the AWS double
# and the API double, driven with kubectl: Nodes, routes, Classic ELB (and
# NLB once implemented), annotation change, throttling storm, idle restart,
# shutdown/terminate, zero leftovers, the unowned group left alone.
add_test(NAME hosts_aws_e2e
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/aws_e2e.sh)
set_tests_properties(hosts_aws_e2e PROPERTIES
  LABELS "hosts;aws" TIMEOUT 900 SKIP_RETURN_CODE 77
  ENVIRONMENT "${CCM_HOSTS_ENV}")
