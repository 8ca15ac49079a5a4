#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: dependencies, the main build (with CUDA
# compiled whenever nvcc is present), all ctest tests, then an ASan + UBSan (+ LeakSanitizer)
# build of the core and its tests. GPU tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=${JOBS:-$(nproc)}

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMEO_CMAKE_ARGS:-}
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-})

# sanitizer tree (ASan + UBSan + LeakSanitizer): every test but the multi-process end-to-end
# runs (e2e_*: the cameo binary under mpirun and signals), which the main tree covers
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAMEO_SANITIZE=ON -DCAMEO_CUDA=OFF
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$JOBS" -E "e2e_")
