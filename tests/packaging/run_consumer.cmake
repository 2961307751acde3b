# Builds and runs the consumer. MODE: find_package (install, then find it) or add_subdirectory.
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
      "-DCMAKE_PREFIX_PATH=${out}/prefix" -DTorch_DIR=${Torch_DIR})
else()
  run(${CMAKE_COMMAND} -S ${CONSUMER}/subdir -B ${out}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
      -DTICKINFER_SOURCE=${TICKINFER_SOURCE} -DTorch_DIR=${Torch_DIR})
endif()
run(${CMAKE_COMMAND} --build ${out}/build)
run(${out}/build/engine ${MODEL})
