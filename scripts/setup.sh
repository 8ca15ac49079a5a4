#!/usr/bin/env bash
# Installs what cameo needs on a fresh Debian 12 machine. Idempotent: does nothing when all is present.
# The one list of system dependencies lives here.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config          # toolchain
  python3                                   # tests/cuda_emu/translate.py (the CUDA emulator build)
  libopenblas-dev libopenblas-openmp-dev libomp-dev  # CPU GEMM (OpenMP build), OpenMP
  liblmdb-dev libzstd-dev libwebp-dev       # dataset shards, metadata, images
  libpng-dev libjpeg-dev                    # dataset build inputs, `cameo data show`
  libyaml-dev libcjson-dev                  # configs, manifests and safetensors headers
  libopenmpi-dev openmpi-bin                # multi-rank CPU path
  libclang-rt-14-dev clang                  # sanitizer build (ASan/UBSan/LSan)
  git                                       # tests/cuda/gpu_deps_dry.sh's scratch repository, scripts/gpu-deps.sh
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
