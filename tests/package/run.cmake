# Installs the built qkv into a temporary prefix, then builds and runs the consumer project in
# this folder against it with find_package(qkv): on a view of the machine without MPI
# (CMAKE_DISABLE_FIND_PACKAGE_MPI), where asking for the ring component must fail, and, when qkv
# was built with ring attention, with the component ring.
set(work ${QKV_BINARY_DIR}/package-test)
file(REMOVE_RECURSE ${work})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${QKV_BINARY_DIR} --prefix ${work}/prefix)
set(no_mpi -DCMAKE_PREFIX_PATH=${work}/prefix -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
run(${CMAKE_COMMAND} -S ${QKV_PACKAGE_DIR} -B ${work}/no-mpi ${no_mpi})
run(${CMAKE_COMMAND} --build ${work}/no-mpi)
run(${work}/no-mpi/consumer)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${QKV_PACKAGE_DIR} -B ${work}/no-mpi-ring ${no_mpi}
                        -DQKV_CONSUMER_RING=ON
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(rc EQUAL 0)
  message(FATAL_ERROR "find_package(qkv COMPONENTS ring) succeeded without MPI")
endif()
file(GLOB_RECURSE ring_config ${work}/prefix/qkvRingTargets.cmake)
if(ring_config)
  run(${CMAKE_COMMAND} -S ${QKV_PACKAGE_DIR} -B ${work}/ring -DCMAKE_PREFIX_PATH=${work}/prefix
                       -DQKV_CONSUMER_RING=ON)
  run(${CMAKE_COMMAND} --build ${work}/ring)
  run(${work}/ring/consumer)
endif()
