# CLI layer: shell scripts that drive the built ccm-host (label cli). They
# skip (exit 77) when a module they need is not built.
set(CCM_CLI_TESTS version help usage check_config check_module docs_sync
  run_reload)
foreach(t ${CCM_CLI_TESTS})
  add_test(NAME cli_${t}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${t}.sh)
  set_tests_properties(cli_${t} PROPERTIES
    LABELS cli
    TIMEOUT 600
    SKIP_RETURN_CODE 77
    ENVIRONMENT "CCM_HOST=$<TARGET_FILE:ccm-host>;CCM_SOURCE_DIR=${PROJECT_SOURCE_DIR};CCM_MODULE_DIR=${PROJECT_BINARY_DIR}/modules")
endforeach()

# --check-policy (host/policy): its own block, so areas do not edit one list.
add_test(NAME cli_check_policy
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_policy.sh)
set_tests_properties(cli_check_policy PROPERTIES
  LABELS cli
  TIMEOUT 600
  SKIP_RETURN_CODE 77
  ENVIRONMENT "CCM_HOST=$<TARGET_FILE:ccm-host>;CCM_SOURCE_DIR=${PROJECT_SOURCE_DIR};CCM_MODULE_DIR=${PROJECT_BINARY_DIR}/modules")
