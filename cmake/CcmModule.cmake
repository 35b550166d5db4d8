# ccm_add_module(<name> SOURCES ... [DEFINES ...] [OUTPUT <file-stem>]
#                [NO_VERSION_SCRIPT] [ALLOW_UNDEFINED])
# Builds build/modules/<stem>.so (default ccm-<name>.so): hidden visibility,
# a version script that exports only ccm_provider_entry, --no-undefined.
# The two switches exist only for the deliberately broken test modules.
function(ccm_add_module name)
  cmake_parse_arguments(M "NO_VERSION_SCRIPT;ALLOW_UNDEFINED" "OUTPUT"
    "SOURCES;DEFINES;LIBS" ${ARGN})
  if(NOT M_OUTPUT)
    set(M_OUTPUT ccm-${name})
  endif()
  set(target ccm_module_${name})
  add_library(${target} MODULE ${M_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${M_OUTPUT}
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/modules
    C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/abi)
  target_compile_definitions(${target} PRIVATE ${M_DEFINES})
  target_link_libraries(${target} PRIVATE ${M_LIBS})
  ccm_target_warnings(${target})
  set_property(GLOBAL APPEND PROPERTY CCM_MODULE_TARGETS ${target})
  if(NOT M_NO_VERSION_SCRIPT)
    target_link_options(${target} PRIVATE
      -Wl,--version-script=${PROJECT_SOURCE_DIR}/abi/module.vers)
  endif()
  # Sanitized modules resolve the sanitizer runtime from the host binary.
  if(NOT M_ALLOW_UNDEFINED AND NOT CCM_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()
