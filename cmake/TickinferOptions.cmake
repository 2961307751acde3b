# Warnings and sanitizers for tickinfer's own targets only (never forced on consumers).
add_library(tickinfer_build_options INTERFACE)
target_compile_options(tickinfer_build_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                       -Wno-sign-conversion)
# clang checks the TICKINFER_GUARDED_BY / TICKINFER_REQUIRES annotations (tickinfer/mutex.hpp); GCC ignores them.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(tickinfer_build_options INTERFACE -Wthread-safety)
endif()
if(TICKINFER_WERROR)
  target_compile_options(tickinfer_build_options INTERFACE -Werror)
endif()
if(TICKINFER_SANITIZE AND TICKINFER_FUZZ)
  message(FATAL_ERROR "TICKINFER_FUZZ brings its own sanitizers (address;undefined): leave TICKINFER_SANITIZE empty")
endif()
if(TICKINFER_SANITIZE)
  string(REPLACE ";" "," _tickinfer_sanitizers "${TICKINFER_SANITIZE}")
  target_compile_options(tickinfer_build_options INTERFACE -fsanitize=${_tickinfer_sanitizers}
                         -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(tickinfer_build_options INTERFACE -fsanitize=${_tickinfer_sanitizers})
endif()
# libFuzzer build (fuzz/, docs/FUZZING.md): tickinfer's code gets coverage instrumentation and ASan+UBSan; only
# the fuzz targets link libFuzzer itself (-fsanitize=fuzzer, in fuzz/CMakeLists.txt).
if(TICKINFER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TICKINFER_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  target_compile_options(tickinfer_build_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(tickinfer_build_options INTERFACE -fsanitize=address,undefined)
endif()
