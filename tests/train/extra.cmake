# the text encoders on cuda:0 against the CPU: also under the cuda label (the emulator's build runs that label)
set_tests_properties(test_text_device PROPERTIES LABELS "train;cuda")
# the text cache written and read on cuda:0 in bf16: the cached rows are the encoders' own, bit for bit
set_tests_properties(test_text_cache_device PROPERTIES LABELS "train;cuda")
# the reference cache written and read on cuda:0 in bf16: the cached features are the towers' own, bit for bit
set_tests_properties(test_ref_cache_device PROPERTIES LABELS "train;cuda")
# the latent cache written and read on cuda:0 in bf16: the cached moments (and the draw from them) are the VAE's own, bit for bit
set_tests_properties(test_latent_cache_device PROPERTIES LABELS "train;cuda")

# end-to-end: the real `cameo` binary as separate processes (resume, signals, export)
add_executable(e2e_train ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_train.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_train PRIVATE cameo_train)
add_test(NAME e2e_train COMMAND e2e_train $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_train PROPERTIES LABELS train TIMEOUT 600 SKIP_RETURN_CODE 77)
# the text cache: cameo cache-text (killed and resumed), training with it against without, its refusals
add_executable(e2e_text_cache ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_text_cache.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_text_cache PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_text_cache PRIVATE cameo_train)
add_test(NAME e2e_text_cache COMMAND e2e_text_cache $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_text_cache PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
# what a user sees and keeps while training: metrics across a resume, a closed output pipe, Ctrl-C twice
add_executable(e2e_progress ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_progress.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_progress PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_progress PRIVATE cameo_core)
add_test(NAME e2e_progress COMMAND e2e_progress $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_progress PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
# the Slurm job script with stand-ins for srun and scontrol: stop on the time-limit signal, requeue, resume
add_test(NAME e2e_sbatch COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_sbatch.sh $<TARGET_FILE:cameo> ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_sbatch PROPERTIES LABELS train TIMEOUT 600)
# the README's "Using it" commands and docs/eval.md's sweep, literally, in a scratch folder (seconds)
add_test(NAME readme_quickstart COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/readme_quickstart.sh $<TARGET_FILE:cameo> ${CMAKE_SOURCE_DIR})
set_tests_properties(readme_quickstart PROPERTIES LABELS train TIMEOUT 300)

# the PyTorch twin of `cameo bench train` counts activations as cameo does: weights out, one micro-step
# (skips without torch / diffusers / transformers for the python3 on PATH)
add_test(NAME bench_torch_tape COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/train/bench_torch_tape.py WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(bench_torch_tape PROPERTIES LABELS train TIMEOUT 120 SKIP_RETURN_CODE 77)
# ... and holds fixed the adapter weights adapter.freeze names, as cameo's bench does (same names, same counts)
add_test(NAME bench_torch_freeze COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/train/bench_torch_freeze.py $<TARGET_FILE:cameo>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(bench_torch_freeze PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)

# the command line as a user meets it: every --help, the top-level help, messages for natural mistakes
add_executable(cli_usage ${CMAKE_CURRENT_SOURCE_DIR}/train/cli_usage.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(cli_usage PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(cli_usage PRIVATE cameo_train)
add_test(NAME cli_usage COMMAND cli_usage $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_usage PROPERTIES LABELS train TIMEOUT 120)

# data parallelism: `mpirun -np 2 cameo train` against one process (skips without a usable mpirun)
if(NOT MPI_C_FOUND)
  return()
endif()
add_executable(e2e_mpi ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_mpi.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_mpi PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_mpi PRIVATE cameo_core)
add_test(NAME e2e_mpi COMMAND e2e_mpi $<TARGET_FILE:cameo> ${MPIEXEC_EXECUTABLE} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_mpi PROPERTIES LABELS train TIMEOUT 600 SKIP_RETURN_CODE 77)
# the NCCL half on the CUDA emulator: two emulated devices, NCCL emulated over MPI (emu_nccl.cpp)
if(CAMEO_CUDA_EMU AND EMU_NCCL_INCLUDE_DIR)
  add_test(NAME e2e_mpi_nccl COMMAND e2e_mpi $<TARGET_FILE:cameo> ${MPIEXEC_EXECUTABLE} --cuda-only 1 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_mpi_nccl PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 ENVIRONMENT CUDA_EMU_DEVICES=2 COST 32)
  # rank 1's device too old (compute capability 7.5): the error names it and every rank stops
  add_test(NAME e2e_mpi_old_rank COMMAND e2e_mpi $<TARGET_FILE:cameo> ${MPIEXEC_EXECUTABLE} --cuda-old-rank WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_mpi_old_rank PROPERTIES LABELS cuda TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "CUDA_EMU_DEVICES=2;CUDA_EMU_CC=9.0,7.5")
endif()
# ranks that see different things (a file one node lacks, a stale view of the checkpoints) act alike
add_executable(e2e_mpi_agree ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_mpi_agree.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_mpi_agree PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_mpi_agree PRIVATE cameo_core)
add_test(NAME e2e_mpi_agree COMMAND e2e_mpi_agree $<TARGET_FILE:cameo> ${MPIEXEC_EXECUTABLE} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_mpi_agree PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
# the reference cache: cameo cache-refs (killed and resumed), training with it against without, damaged records, refusals
add_executable(e2e_ref_cache ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_ref_cache.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_ref_cache PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_ref_cache PRIVATE cameo_train)
add_test(NAME e2e_ref_cache COMMAND e2e_ref_cache $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_ref_cache PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
# the latent cache: cameo cache-latents (killed and resumed), training with it against without, new buckets, damaged records, refusals
add_executable(e2e_latent_cache ${CMAKE_CURRENT_SOURCE_DIR}/train/e2e_latent_cache.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_latent_cache PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_latent_cache PRIVATE cameo_train)
add_test(NAME e2e_latent_cache COMMAND e2e_latent_cache $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e_latent_cache PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
