#!/bin/bash
# builds lab/bf16_flux against a build tree's libraries (default build-emu: the CUDA kernels on the CPU)
set -e
B=${1:-build-emu}
nice ninja -C "$B" cameo_train cameo_models cameo_core cameo_data
L=$(grep -A3 '^build cameo:' "$B/build.ninja" | sed -n 's/.*LINK_LIBRARIES = //p')
cd "$B" && c++ -O2 -x c -std=gnu11 -I.. ../lab/bf16_flux.c -x none -o bf16_flux $L -lstdc++ -fopenmp
