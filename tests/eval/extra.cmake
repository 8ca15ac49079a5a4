# end-to-end: `cameo eval` as a user runs it, on checkpoints of a real tiny `cameo train` run
add_executable(e2e_eval ${CMAKE_CURRENT_SOURCE_DIR}/eval/e2e_eval.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_eval PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_eval PRIVATE cameo_train)
if(MPI_C_FOUND)  # the 2-rank sweep too
  add_test(NAME e2e_eval COMMAND e2e_eval $<TARGET_FILE:cameo> ${MPIEXEC_EXECUTABLE} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
else()
  add_test(NAME e2e_eval COMMAND e2e_eval $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endif()
set_tests_properties(e2e_eval PROPERTIES LABELS eval TIMEOUT 600 SKIP_RETURN_CODE 77)
