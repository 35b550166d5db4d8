# Example configs (label cli): every examples/*.cfg passes
# `ccm-host --check-config`, and examples/lab.cfg really runs the lab
# provider against the API double with nothing but --kubeconfig.
add_test(NAME examples_check_config
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_config.sh)
add_test(NAME examples_lab_runs
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/lab_runs.sh)
set_tests_properties(examples_check_config examples_lab_runs PROPERTIES
  LABELS cli
  TIMEOUT 600
  SKIP_RETURN_CODE 77
  ENVIRONMENT "CCM_HOST=$<TARGET_FILE:ccm-host>;CCM_SOURCE_DIR=${PROJECT_SOURCE_DIR};CCM_MODULE_DIR=${PROJECT_BINARY_DIR}/modules")

# make demo, end to end (kubectl, the API double, ccm-host, a hot-swap).
add_test(NAME examples_demo
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo.sh)
set_tests_properties(examples_demo PROPERTIES
  LABELS cli
  TIMEOUT 600
  SKIP_RETURN_CODE 77
  ENVIRONMENT "CCM_HOST=$<TARGET_FILE:ccm-host>;CCM_SOURCE_DIR=${PROJECT_SOURCE_DIR};CCM_MODULE_DIR=${PROJECT_BINARY_DIR}/modules")
