#!/usr/bin/env bash
# Builds cameo and runs the main job: `cameo train` on the embedded tiny default (a generated
# demo dataset, tiny models, all three stages, on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMEO_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)" --target cameo
# a new run folder each time (runs/tiny, runs/tiny-2, ...): cameo refuses to start a run over an
# earlier run's checkpoints (continue one with `--resume auto`)
name=tiny
i=1
while [ -e "runs/$name" ]; do i=$((i + 1)); name="tiny-$i"; done
./build/cameo train --set run.name="$name" "$@"
