# Installs the built qkv into a temporary prefix, builds the consumer project in this folder
# against it with find_package(qkv), and runs the consumer.
set(work ${QKV_BINARY_DIR}/package-test)
file(REMOVE_RECURSE ${work})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${QKV_BINARY_DIR} --prefix ${work}/prefix)
run(${CMAKE_COMMAND} -S ${QKV_PACKAGE_DIR} -B ${work}/build -DCMAKE_PREFIX_PATH=${work}/prefix)
run(${CMAKE_COMMAND} --build ${work}/build)
run(${work}/build/consumer)
