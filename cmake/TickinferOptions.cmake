# Warnings and sanitizers for tickinfer's own targets only (never forced on consumers).
add_library(tickinfer_build_options INTERFACE)
target_compile_options(tickinfer_build_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                       -Wno-sign-conversion)
if(TICKINFER_WERROR)
  target_compile_options(tickinfer_build_options INTERFACE -Werror)
endif()
if(TICKINFER_SANITIZE)
  string(REPLACE ";" "," _tickinfer_sanitizers "${TICKINFER_SANITIZE}")
  target_compile_options(tickinfer_build_options INTERFACE -fsanitize=${_tickinfer_sanitizers}
                         -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(tickinfer_build_options INTERFACE -fsanitize=${_tickinfer_sanitizers})
endif()
