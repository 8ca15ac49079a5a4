#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: dependencies, the main build (with CUDA
# compiled whenever nvcc is present), all ctest tests, the CUDA kernels on the CPU emulator, then
# an ASan + UBSan (+ LeakSanitizer) build and its tests. GPU tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=${JOBS:-$(nproc)}

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMEO_CMAKE_ARGS:-}
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-})

# the CUDA kernels on the CPU (tests/cuda_emu, where the CUDA toolkit's headers are): every
# GPU-against-CPU op test in both thread orders, and bf16 training on the emulated cuda:0
if command -v nvcc >/dev/null 2>&1 || [ -e /usr/local/cuda/include/cuda_runtime.h ]; then
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DCAMEO_CUDA_EMU=ON -DCUDAToolkit_ROOT=/usr/local/cuda
  cmake --build build-emu -j"$JOBS" --target test_cuda_ops test_cuda_device test_text_device test_text_cache_device test_ref_cache_device test_latent_cache_device e2e_gpu_train e2e_gpu_oom e2e_mpi cameo
  # in parallel: most of these run one thread (95 s on 2 cores)
  (cd build-emu && ctest --output-on-failure -L cuda -j"$JOBS")
  # the same kernels under AddressSanitizer + UBSan: a kernel's read or write past a device
  # allocation stops with the kernel's name and launch site (compute-sanitizer's memcheck, on the CPU).
  # Every attention family: the default (wgmma, split backward), wgmma3, mma and its fused backward, mma2, mma8, wmma
  cmake -S . -B build-emu-asan -DCMAKE_BUILD_TYPE=Debug -DCAMEO_SANITIZE=ON -DCAMEO_CUDA_EMU=ON -DCUDAToolkit_ROOT=/usr/local/cuda
  cmake --build build-emu-asan -j"$JOBS" --target test_cuda_ops
  (cd build-emu-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j"$JOBS" -R "^(test_cuda_ops(_attn_mma|_attn_mma2|_attn_mma8|_attn_wgmma|_attn_wgmma3|_attn_wmma|_attn_mma_fused)?|cuda_bench_tiny)$")
else
  echo "test.sh: no CUDA toolkit headers: the CUDA emulator tree is skipped"
fi

# sanitizer tree (ASan + UBSan + LeakSanitizer): every test but the multi-process end-to-end
# runs (e2e_*: the cameo binary under mpirun and signals), which the main tree covers
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAMEO_SANITIZE=ON -DCAMEO_CUDA=OFF
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$JOBS" -E "e2e_")
