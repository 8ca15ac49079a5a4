# the CUDA path end to end: cameo train on cuda:0 (bf16) against the CPU (f32); skips without a
# GPU unless this is the emulator's build (-DCAMEO_CUDA_EMU=ON), where the steps are slower (2 per stage)
if(NOT TARGET cameo)
  return()
endif()
add_executable(e2e_gpu_train ${CMAKE_CURRENT_SOURCE_DIR}/cuda/e2e_gpu_train.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_gpu_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(e2e_gpu_train PRIVATE cameo_core m)
if(CAMEO_CUDA_EMU)
  add_test(NAME e2e_gpu_train COMMAND e2e_gpu_train $<TARGET_FILE:cameo> 2 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # the kernels again with the threads between barriers in reverse order (a missing barrier
  # shows in one order or the other)
  add_test(NAME test_cuda_ops_reverse COMMAND test_cuda_ops WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_reverse PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 ENVIRONMENT CUDA_EMU_REVERSE=1)
  # the kernels and a run again with the kernels, copies and stream-ordered frees held back in their
  # streams until an event wait or a sync needs them (CUDA_EMU_DEFER, tests/cuda_emu/emu_runtime.cpp):
  # a missing wait shows as data not yet there (or, in the ASan tree, as a side stream's kernel
  # reading scratch its parent stream freed) — the emulator otherwise runs every stream's work when
  # it is queued
  add_test(NAME test_cuda_ops_deferred COMMAND test_cuda_ops WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_deferred PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 ENVIRONMENT CUDA_EMU_DEFER=1)
  # the other half of the side streams' ordering (CUDA_EMU_DEFER=2: side streams' kernels run at
  # their launch, the compute stream's wait): a fork that does not wait for its parent fails
  add_test(NAME test_cuda_ops_side_streams COMMAND test_cuda_ops --only attention WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_side_streams PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                       ENVIRONMENT CUDA_EMU_DEFER=2)
  if(CAMEO_SANITIZE)  # the ASan tree's one plain run of the kernels: deferred (a superset of the checks)
    set_property(TEST test_cuda_ops APPEND PROPERTY ENVIRONMENT CUDA_EMU_DEFER=1)
  endif()
  add_test(NAME e2e_gpu_train_deferred COMMAND e2e_gpu_train $<TARGET_FILE:cameo> 2 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_gpu_train_deferred PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 COST 26
                       ENVIRONMENT CUDA_EMU_DEFER=1)
else()
  add_test(NAME e2e_gpu_train COMMAND e2e_gpu_train $<TARGET_FILE:cameo> 10 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endif()
# COST: ctest -j starts the long ones first (a fresh clone has no timings of its own to go by)
set_tests_properties(e2e_gpu_train PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 COST 26)

# out of device memory at every point of a step is a clean error (the emulator's device can be capped)
add_executable(e2e_gpu_oom ${CMAKE_CURRENT_SOURCE_DIR}/cuda/e2e_gpu_oom.c $<TARGET_OBJECTS:cameo_testutil>)
target_include_directories(e2e_gpu_oom PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
if(CAMEO_CUDA_EMU)
  add_test(NAME e2e_gpu_oom COMMAND e2e_gpu_oom $<TARGET_FILE:cameo> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_gpu_oom PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 COST 30)
endif()

# test_cuda_ops runs the default attention kernels (mma); the other families (CAMEO_ATTN=KIND)
# through the same GPU-against-CPU comparisons — ARGN: test_cuda_ops's arguments (none: every op)
# — and on the emulator in the reverse thread order too where `reverse` is ON.
# cameo_attn_test_env: test_cuda_ops_attn_NAME with the environment ENV (a ;-list) the same way
function(cameo_attn_test_env name env reverse)
  add_test(NAME test_cuda_ops_attn_${name} COMMAND test_cuda_ops ${ARGN} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_attn_${name} PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                       ENVIRONMENT "${env}")
  if(CAMEO_CUDA_EMU AND reverse)
    add_test(NAME test_cuda_ops_attn_${name}_reverse COMMAND test_cuda_ops ${ARGN} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_cuda_ops_attn_${name}_reverse PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                         ENVIRONMENT "${env};CUDA_EMU_REVERSE=1")
  endif()
endfunction()
function(cameo_attn_test kind reverse)
  cameo_attn_test_env(${kind} "CAMEO_ATTN=${kind}" ${reverse} ${ARGN})
endfunction()
# (attention_picked: the attention group's bf16 cases of head dim <= 128, the only ones a family
# changes; f32 and the wider heads run the same kernels in every family, checked by test_cuda_ops)
cameo_attn_test(mma ON --only attention_picked)      # mma.sync, 4-warp blocks (the default until session 22; off Hopper wgmma runs these)
cameo_attn_test(wmma ON --only attention_picked)     # the WMMA kernels (only the attention group calls them)
cameo_attn_test(mma8 ON --only attention_picked)     # 8-warp forward / dQ blocks
# the mma family is what an A100 runs: this run and the fused one below on the emulator posing as
# one (sm_80's 163 KiB of shared memory a block, not the H100's 227; the attention group fails a
# bf16 call that falls back to the generic kernels for want of it)
# Its reverse-order run poses as an sm_86 / sm_89 card (RTX 30xx / 40xx, A40, L40S: the sm_80 code,
# 99 KiB a block), where the dK dV kernel at head dim 128 takes 32-query tiles
if(CAMEO_CUDA_EMU)
  set_tests_properties(test_cuda_ops_attn_mma8 PROPERTIES ENVIRONMENT "CAMEO_ATTN=mma8;CUDA_EMU_CC=8.0")
  set_tests_properties(test_cuda_ops_attn_mma8_reverse PROPERTIES ENVIRONMENT "CAMEO_ATTN=mma8;CUDA_EMU_REVERSE=1;CUDA_EMU_CC=8.6")
endif()
cameo_attn_test(mma2 ON --only attention_picked)     # 32 queries per forward warp
cameo_attn_test(wgmma ON --only attention_picked)    # sm_90a's wgmma (the default), the split backward (the test fails if it never ran)
cameo_attn_test(wgmma3 ON --only attention_picked)   # wgmma3: the warp-specialised kernels (named barriers, a producer warpgroup) and the pair launches
# wgmma3's forward 128 keys a step (CAMEO_WGMMA3_KEYS=128; fails unless that kernel ran)
cameo_attn_test_env(wgmma3_k128 "CAMEO_ATTN=wgmma3;CAMEO_WGMMA3_KEYS=128" ON --only attention_picked)
# the mma backward fused (CAMEO_ATTN_BWD=fused: dQ inside the dK dV kernel, f32 sums by atomics),
# both thread orders on the emulator
add_test(NAME test_cuda_ops_attn_mma_fused COMMAND test_cuda_ops --only attention_picked WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cuda_ops_attn_mma_fused PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                     ENVIRONMENT "CAMEO_ATTN=mma;CAMEO_ATTN_BWD=fused")
if(CAMEO_CUDA_EMU)
  set_tests_properties(test_cuda_ops_attn_mma_fused PROPERTIES ENVIRONMENT "CAMEO_ATTN=mma;CAMEO_ATTN_BWD=fused;CUDA_EMU_CC=8.0")
  add_test(NAME test_cuda_ops_attn_mma_fused_reverse COMMAND test_cuda_ops --only attention_picked WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_attn_mma_fused_reverse PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                       ENVIRONMENT "CAMEO_ATTN=mma;CAMEO_ATTN_BWD=fused;CUDA_EMU_REVERSE=1")
endif()
# the GEMMs with CAMEO_GEMM_TUNE=1: each new plan times the heuristic's first algorithms on scratch
# outputs (the emulator offers three) and keeps the fastest; C and aux come out as without it
add_test(NAME test_cuda_ops_gemm_tune COMMAND test_cuda_ops --only gemm,gemm_ex WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cuda_ops_gemm_tune PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                     ENVIRONMENT "CAMEO_GEMM_TUNE=1")
# the wgmma backward fused (CAMEO_ATTN_BWD=fused: dQ inside the dK dV kernel, f32 sums by atomics)
add_test(NAME test_cuda_ops_attn_wgmma_fused COMMAND test_cuda_ops --only attention_picked WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cuda_ops_attn_wgmma_fused PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                     ENVIRONMENT "CAMEO_ATTN=wgmma;CAMEO_ATTN_BWD=fused")
# and wgmma3's (the warp-specialised dK dV kernel with dQ: two dS^T buffers, the "dS" barrier)
cameo_attn_test_env(wgmma3_fused "CAMEO_ATTN=wgmma3;CAMEO_ATTN_BWD=fused" ON --only attention_picked)
if(CAMEO_CUDA_EMU)
  # wgmma3's both backwards under schedules drawn from a seed (CUDA_EMU_SHUFFLE): there a consumer
  # group runs tiles ahead of the other, which neither fixed order does (the fused kernel with one
  # dS^T buffer fails 2 to 5 checks under each of seeds 1 to 5, passes both fixed orders)
  # (the split run with the 128-key forward)
  foreach(bwd split fused)
    add_test(NAME test_cuda_ops_attn_wgmma3_${bwd}_shuffle COMMAND test_cuda_ops --only attention_picked
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_cuda_ops_attn_wgmma3_${bwd}_shuffle PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                         ENVIRONMENT "CAMEO_ATTN=wgmma3;CAMEO_ATTN_BWD=${bwd};CUDA_EMU_SHUFFLE=3")
  endforeach()
  set_tests_properties(test_cuda_ops_attn_wgmma3_split_shuffle PROPERTIES
                       ENVIRONMENT "CAMEO_ATTN=wgmma3;CAMEO_ATTN_BWD=split;CUDA_EMU_SHUFFLE=3;CAMEO_WGMMA3_KEYS=128")
endif()

# the GPU benchmark's every case at 1/32 size (`cameo bench gpu --tiny`): its buffers, strides and
# calls run through before an H100 spends minutes on the full sizes (timings meaningless here)
add_test(NAME cuda_bench_tiny COMMAND test_cuda_ops --bench-tiny WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cuda_bench_tiny PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77 COST 30)  # (the emulator: 5 s; under ASan: 28 s)
# `cameo bench blocks` on cuda:0 at tiny dims, bf16, full step included (what gpu-check runs at
# full size): the model code through the CUDA kernels end to end (31 s on the emulator)
add_test(NAME cuda_bench_blocks_tiny
         COMMAND cameo bench blocks --device cuda:0 --tokens-txt 8 --tokens-img 16 --hidden 64 --heads 2 --ip-tokens 4
                 --ip-dim 48 --warmup 0 --iters 1 --projector tiny --encoders tiny --no-torch --full-step --blocks 1+1 --profile
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# passes on the last table it prints (the profiled step with fewer blocks recomputed: the CUDA
# timer's events through a whole step), so a crash anywhere before it fails
# On the emulator the device poses as a 141 GiB card (an H200's size): the memory table's
# verdicts stay against the 80 GB target and the device's own size shows beside them
set_tests_properties(cuda_bench_blocks_tiny PROPERTIES LABELS cuda TIMEOUT 900 SKIP_RETURN_CODE 77
                     ENVIRONMENT "CUDA_EMU_MEM=141G"
                     PASS_REGULAR_EXPRESSION "One step, fewer blocks recomputed \\(`--profile`\\)"
                     FAIL_REGULAR_EXPRESSION "\\| the card[^|]*\\| \\| 1[0-9][0-9]\\."
                     SKIP_REGULAR_EXPRESSION "cuda: (this cameo was built without CUDA|no usable CUDA device)")

# the wgmma attention kernels compile for sm_90a without spills and without ptxas serializing their
# wgmma pipeline (it would say so only under -Xptxas -v): a static property, checked where nvcc is
if(CAMEO_CUDA)
  add_test(NAME ptxas_wgmma
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check_ptxas.sh ${CMAKE_CUDA_COMPILER}
                   ${CMAKE_SOURCE_DIR}/kernels/cuda/cuda_attention_wgmma.cu 90a)
  set_tests_properties(ptxas_wgmma PROPERTIES LABELS cuda TIMEOUT 300)
  add_test(NAME ptxas_wgws
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check_ptxas.sh ${CMAKE_CUDA_COMPILER}
                   ${CMAKE_SOURCE_DIR}/kernels/cuda/cuda_attention_wgws.cu 90a)
  set_tests_properties(ptxas_wgws PROPERTIES LABELS cuda TIMEOUT 300)
  # the mma kernels on sm_80 (an A100's only fast attention): the fused backward's dK dV kernel sits
  # at 252 registers. (On sm_90a the head-dim-80 dK dV kernel spills 64 bytes — SigLIP's backward,
  # which training never runs: its encoder is frozen.)
  add_test(NAME ptxas_mma
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check_ptxas.sh ${CMAKE_CUDA_COMPILER}
                   ${CMAKE_SOURCE_DIR}/kernels/cuda/cuda_attention_mma.cu 80)
  set_tests_properties(ptxas_mma PROPERTIES LABELS cuda TIMEOUT 300)
endif()

# the GPU machine's scripts parse (bash -n): they run only where a GPU is lent, so a syntax error
# there would cost that machine's minutes
foreach(script gpu-check gpu-deps check_ptxas)
  add_test(NAME bash_syntax_${script} COMMAND bash -n ${CMAKE_SOURCE_DIR}/scripts/${script}.sh)
  set_tests_properties(bash_syntax_${script} PROPERTIES LABELS cuda TIMEOUT 60)
endforeach()
# and gpu-check.sh runs end to end with stand-ins for the GPU's tools and binaries (seconds): every
# step runs or says why not, the table and at most 8 files reach $OUT, ctest's outcome decides the
# exit (label scripts, not cuda: the GPU run's own `ctest -L cuda` need not run them)
add_test(NAME gpu_check_dry COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cuda/gpu_check_dry.sh)
set_tests_properties(gpu_check_dry PROPERTIES LABELS scripts TIMEOUT 120)
# gpu-deps.sh's package derivation offline (stand-ins for dpkg and apt, a scratch copy of the tree)
add_test(NAME gpu_deps_dry COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cuda/gpu_deps_dry.sh)
set_tests_properties(gpu_deps_dry PROPERTIES LABELS scripts TIMEOUT 60)

# kernel scratch on a device full of cached tensor blocks: the cache is given back, the op runs
# (opt-in: it fills the device — the emulator's capped to 128 MiB; on a GPU it runs alone)
add_test(NAME test_cuda_ops_scratch_cache COMMAND test_cuda_ops --only scratch_cache WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cuda_ops_scratch_cache PROPERTIES LABELS cuda TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                     ENVIRONMENT "CUDA_EMU_MEM=128M")

# device selection with two devices (the emulator's: CUDA_EMU_DEVICES; a real machine needs two GPUs)
if(CAMEO_CUDA_EMU)
  set_tests_properties(test_cuda_device PROPERTIES ENVIRONMENT CUDA_EMU_DEVICES=2)
endif()
# a GPU below compute capability 8.0 (the emulator reports CUDA_EMU_CC): second, first, alone
if(CAMEO_CUDA_EMU)
  foreach(_case second:9.0,7.5:2 first:7.5,9.0:2 only:7.5:1)
    string(REPLACE ":" ";" _f ${_case})
    list(GET _f 0 _where)
    list(GET _f 1 _cc)
    list(GET _f 2 _n)
    add_test(NAME test_cuda_device_old_${_where} COMMAND test_cuda_device --old-${_where} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_cuda_device_old_${_where} PROPERTIES LABELS cuda TIMEOUT 60 SKIP_RETURN_CODE 77
                         ENVIRONMENT "CUDA_EMU_DEVICES=${_n};CUDA_EMU_CC=${_cc}")
  endforeach()
endif()
