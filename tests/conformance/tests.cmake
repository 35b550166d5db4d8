# Conformance layer: ccm-conformance against the modules we ship, the example
# module of docs/writing-a-module.md (built here so the guide cannot rot), and
# a module that breaks the contract on purpose (its FAIL lines are asserted).
ccm_add_module(minimal
  SOURCES ${PROJECT_SOURCE_DIR}/examples/minimal-module/minimal.c)
ccm_add_module(tiny
  SOURCES ${PROJECT_SOURCE_DIR}/examples/tiny-module/tiny.c)

set(CCM_CONF_DIR ${CMAKE_CURRENT_LIST_DIR})
set(CCM_CONF_RUN /bin/sh ${CCM_CONF_DIR}/run-conformance.sh
  $<TARGET_FILE:ccm-conformance>)
set(CCM_CONF_MODULES ${CMAKE_BINARY_DIR}/modules)

set(CCM_CONF_TESTS)
if(CCM_WITH_LAB)
  add_test(NAME conformance_lab COMMAND ${CCM_CONF_RUN}
    ${CCM_CONF_MODULES}/ccm-lab.so ${CCM_CONF_DIR}/lab.cfg
    --max-skipped 0
    --ok lb/ensure-idempotent --ok instances/metadata-known
    --ok instances/batch-consistent --ok routes/create-list-delete
    --ok contract/concurrency --ok contract/state-roundtrip)
  list(APPEND CCM_CONF_TESTS conformance_lab)
endif()

add_test(NAME conformance_fake COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-fake.so ${CCM_CONF_DIR}/fake.cfg
  --ok lb/ensure-idempotent --ok lb/delete-absent --ok lb/get-after-delete
  --ok instances/exists-unknown --ok instances/metadata-known
  --ok contract/concurrency --ok contract/status-enum)

# The serial variant: every check but contract/concurrency (skipped for a
# CCM_THREAD_SERIAL module) passes, with the kit taking the serial lock.
add_test(NAME conformance_fake_serial COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-fake-serial.so ${CCM_CONF_DIR}/fake.cfg
  --max-skipped 1 --ok lb/ensure-idempotent --ok instances/metadata-known)

add_test(NAME conformance_minimal COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-minimal.so ${CCM_CONF_DIR}/minimal.cfg
  --ok lb/ensure-idempotent --ok lb/update-hosts --ok lb/delete-absent
  --ok contract/options --ok contract/name-rules
  --ok contract/state-roundtrip)

# The walkthrough module of abi/ABI.md: instances only, every instance check.
add_test(NAME conformance_tiny COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-tiny.so ${CCM_CONF_DIR}/tiny.cfg
  --ok instances/exists-unknown --ok instances/shutdown-unknown
  --ok instances/metadata-unknown --ok instances/metadata-known
  --ok contract/concurrency)

# Broken on purpose: ensure makes duplicates, delete of the absent answers
# NOT_FOUND, exists of an unknown node answers INTERNAL, and one operation
# returns 42. Each must be reported as its own FAIL line.
add_test(NAME conformance_nonconforming COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-fake-nonconforming.so ${CCM_CONF_DIR}/fake.cfg
  --fail lb/ensure-idempotent --fail lb/delete-absent
  --fail instances/exists-unknown --fail contract/status-enum
  --ok lb/get-absent)

# --only runs one group and nothing else.
add_test(NAME conformance_only_group COMMAND ${CCM_CONF_RUN}
  ${CCM_CONF_MODULES}/ccm-fake.so ${CCM_CONF_DIR}/fake.cfg
  --ok instances/exists-unknown --absent lb/ --absent contract/
  -- --only instances)

# Usage errors exit 2 (not 0, not 1).
add_test(NAME conformance_usage COMMAND /bin/sh -c
  "\"$0\" --module x.so; test $? -eq 2 && \"$0\" --module x.so --config y --only nope; test $? -eq 2"
  $<TARGET_FILE:ccm-conformance>)

list(APPEND CCM_CONF_TESTS conformance_fake conformance_fake_serial
  conformance_minimal conformance_tiny conformance_nonconforming conformance_only_group
  conformance_usage)
set_tests_properties(${CCM_CONF_TESTS} PROPERTIES
  LABELS conformance TIMEOUT 600)

# The guide prints the example module verbatim: fail when they drift apart.
add_test(NAME conformance_guide_example COMMAND /bin/sh
  ${CCM_CONF_DIR}/check-guide-example.sh
  ${PROJECT_SOURCE_DIR}/docs/writing-a-module.md
  ${PROJECT_SOURCE_DIR}/examples/minimal-module/minimal.c
  examples/minimal-module/minimal.c)
add_test(NAME conformance_abi_example COMMAND /bin/sh
  ${CCM_CONF_DIR}/check-guide-example.sh
  ${PROJECT_SOURCE_DIR}/abi/ABI.md
  ${PROJECT_SOURCE_DIR}/examples/tiny-module/tiny.c
  examples/tiny-module/tiny.c)
set_tests_properties(conformance_guide_example conformance_abi_example
  PROPERTIES LABELS conformance)

# The aws module against the AWS test double (tests/doubles/aws.py): the
# runner starts the double, points every endpoint at it and passes the
# double's credentials in the environment (Classic ELB for the lb group).
add_test(NAME conformance_aws COMMAND /bin/sh
  ${PROJECT_SOURCE_DIR}/tests/aws/run-conformance-aws.sh ${PROJECT_SOURCE_DIR}
  $<TARGET_FILE:ccm-conformance> ${CCM_CONF_MODULES}/ccm-aws.so
  ${CCM_CONF_DIR}/aws.cfg --max-skipped 1
  --ok lb/ensure-idempotent --ok lb/update-hosts --ok lb/delete-absent
  --ok lb/get-after-delete
  --ok instances/exists-known --ok instances/metadata-known
  --ok instances/batch-consistent --ok routes/create-list-delete
  --ok routes/create-idempotent --ok routes/delete-absent
  --ok contract/concurrency --ok contract/options)
set_tests_properties(conformance_aws PROPERTIES LABELS conformance TIMEOUT 600)
