# Warning set (trimmed from curl's picky list for GCC 12 / clang 14) and the
# sanitizer switch, applied to every target of ours through one function.
set(CCM_WARNING_FLAGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wold-style-definition -Wpointer-arith -Wundef -Wvla -Wformat=2
  -Wmissing-noreturn -Wredundant-decls -Wcast-align
  # snprintf into a bounded buffer truncates by design; GCC's -O2 guesswork
  # about possible truncation is noise, and real overflows are not possible.
  -Wno-format-truncation)
if(CCM_WERROR)
  list(APPEND CCM_WARNING_FLAGS -Werror)
endif()

set(CCM_SANITIZE_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
  -fno-sanitize-recover=undefined)

if(CCM_SANITIZE)
  add_compile_options(${CCM_SANITIZE_FLAGS})
  add_link_options(-fsanitize=address,undefined)
endif()

function(ccm_target_warnings target)
  target_compile_options(${target} PRIVATE ${CCM_WARNING_FLAGS})
endfunction()
