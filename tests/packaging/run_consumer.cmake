# Builds and runs the consumer. MODE: find_package (install, then find it) or add_subdirectory.
# Then checks the consumer's compile lines: LibTorch's _GLIBCXX_USE_CXX11_ABI (CXX11_ABI) is there, Torch's
# include directories and other definitions are not (no_torch_check.cpp checks the same from inside).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

set(out ${WORK}/${MODE})
file(REMOVE_RECURSE ${out})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${TICKINFER_BUILD} --prefix ${out}/prefix)
  run(${CMAKE_COMMAND} -S ${CONSUMER}/consumer -B ${out}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "-DCMAKE_PREFIX_PATH=${out}/prefix" -DTorch_DIR=${Torch_DIR})
else()
  # Build type None (no optimization flags): this checks the build's wiring, and tickinfer's own sources compile
  # about a third faster without -O3 (the longest single test of the suite otherwise).
  run(${CMAKE_COMMAND} -S ${CONSUMER}/subdir -B ${out}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=None
      -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DTICKINFER_SOURCE=${TICKINFER_SOURCE} -DTorch_DIR=${Torch_DIR})
endif()
run(${CMAKE_COMMAND} --build ${out}/build)
run(${out}/build/engine ${MODEL})

file(READ ${out}/build/compile_commands.json commands)
# The consumer's own sources are tests/packaging/{engine,no_torch_check}.cpp (add_subdirectory also lists tickinfer's).
string(REGEX MATCHALL "\"command\": \"[^\"]*packaging/(engine|no_torch_check)\\.cpp[^\"]*\"" consumer_commands
       "${commands}")
list(LENGTH consumer_commands n)
if(NOT n EQUAL 2)
  message(FATAL_ERROR "expected the 2 consumer compile commands in ${out}/build/compile_commands.json, found ${n}")
endif()
foreach(command IN LISTS consumer_commands)
  if(NOT CXX11_ABI STREQUAL "" AND NOT command MATCHES "-D_GLIBCXX_USE_CXX11_ABI=${CXX11_ABI}")
    message(FATAL_ERROR "the consumer is not compiled with LibTorch's -D_GLIBCXX_USE_CXX11_ABI=${CXX11_ABI}: ${command}")
  endif()
  if(command MATCHES "csrc/api/include|USE_DISTRIBUTED|USE_C10D_GLOO|USE_RPC|USE_TENSORPIPE")
    message(FATAL_ERROR "Torch's include directories or definitions reached the consumer: ${command}")
  endif()
endforeach()
message(STATUS "consumer (${MODE}): ran; compiled with _GLIBCXX_USE_CXX11_ABI=${CXX11_ABI} and without Torch's "
               "include directories or definitions")
