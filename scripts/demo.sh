#!/usr/bin/env bash
# Builds cameo and runs the main job: `cameo train` on the embedded tiny default (a generated
# demo dataset, tiny models, all three stages, on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMEO_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)" --target cameo
./build/cameo train "$@"
