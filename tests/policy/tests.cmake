# Shipped policies (scripts/*.lua), label unit: each runs through the policy
# engine on its fixtures (cases/<name>.json, declarations from decls.json),
# the stand-alone Lua runner documents the same fixtures, and luacheck keeps
# every script inside the sandbox's globals (scripts/.luacheckrc).
set(CCM_POLICY_SCRIPTS default lab aws gcp openstack portable)
set(CCM_POLICY_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(policy_cases ${CCM_POLICY_DIR}/policy_cases.c)
target_link_libraries(policy_cases PRIVATE ccmcore PkgConfig::CMOCKA)
target_compile_definitions(policy_cases PRIVATE ${CCM_TEST_DEFS})
ccm_target_warnings(policy_cases)
add_dependencies(policy_cases ccm_module_lab ccm_module_aws)

# The modules that exist declare exactly what decls.json says.
add_test(NAME policy_decls_modules
  COMMAND policy_cases --check-decls ${CCM_POLICY_DIR}/decls.json
    ${PROJECT_BINARY_DIR}/modules/ccm-lab.so
    ${PROJECT_BINARY_DIR}/modules/ccm-aws.so)
set_tests_properties(policy_decls_modules PROPERTIES LABELS unit TIMEOUT 120)

# Debian lua5.4 and lua-check; when absent the tests fail rather than vanish.
find_program(CCM_LUA54 NAMES lua5.4 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(CCM_LUACHECK NAMES luacheck PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT CCM_LUA54)
  set(CCM_LUA54 lua5.4)
endif()
if(NOT CCM_LUACHECK)
  set(CCM_LUACHECK luacheck)
endif()

foreach(script ${CCM_POLICY_SCRIPTS})
  add_test(NAME policy_shipped_${script}
    COMMAND policy_cases
      ${PROJECT_SOURCE_DIR}/scripts/${script}.lua
      ${CCM_POLICY_DIR}/cases/${script}.json
      ${CCM_POLICY_DIR}/decls.json)
  set_tests_properties(policy_shipped_${script} PROPERTIES
    LABELS unit TIMEOUT 120)
  add_test(NAME policy_fixtures_${script}
    COMMAND ${CCM_LUA54} ${CCM_POLICY_DIR}/run_cases.lua
      ${PROJECT_SOURCE_DIR}/scripts/${script}.lua
      ${CCM_POLICY_DIR}/cases/${script}.json
      ${CCM_POLICY_DIR}/decls.json)
  set_tests_properties(policy_fixtures_${script} PROPERTIES
    LABELS unit TIMEOUT 120)
endforeach()

add_test(NAME policy_luacheck
  COMMAND ${CCM_LUACHECK} --no-color --config
    ${PROJECT_SOURCE_DIR}/scripts/.luacheckrc
    ${PROJECT_SOURCE_DIR}/scripts)
set_tests_properties(policy_luacheck PROPERTIES LABELS unit TIMEOUT 120)
