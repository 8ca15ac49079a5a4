#!/usr/bin/env bash
# setup_deps.sh — scripts/setup.sh, the one list of system packages, names the Debian 12 package
# of every program that the build and the tests run and that a fresh (minbase) Debian 12 lacks.
# This machine has them all installed anyway, so a missing one passes here and fails on a fresh
# machine (gpu_deps_dry's `git init` did: git: command not found). Essential packages (coreutils,
# diffutils' cmp, grep, sed, findutils, mawk, bash, util-linux) need no entry.
# Usage: setup_deps.sh [SOURCE_DIR]
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
# the PKGS=( ... ) array of setup.sh, comments dropped
pkgs=" $(sed -n '/^PKGS=(/,/^)/p' "$ROOT/scripts/setup.sh" | sed -e 's/#.*//' -e 's/PKGS=(//' -e 's/)//' | tr -s ' \n' '  ') "
[ "$pkgs" != "  " ] || { echo "FAIL: no PKGS=( ... ) list in $ROOT/scripts/setup.sh"; exit 1; }
# program   package   who runs it
need='
cc          build-essential  every tree (gcc, make, g++ for the CUDA emulator)
cmake       cmake            scripts/test.sh, ctest
pkg-config  pkg-config       CMakeLists.txt pkg_check_modules
python3     python3          tests/cuda_emu/translate.py, tests/train/torch_*.py, bench_torch_tape.py
mpirun      openmpi-bin      e2e_mpi, e2e_mpi_agree, e2e_eval (2 ranks)
git         git              tests/cuda/gpu_deps_dry.sh (a scratch repository), scripts/gpu-deps.sh
clang       clang            tests/core/clang_kernels.sh (skipped without it), the sanitizer tree
'
fails=0
while read -r prog pkg who; do
    [ -n "$prog" ] || continue
    case "$pkgs" in
        *" $pkg "*) ;;
        *) echo "FAIL: scripts/setup.sh does not install $pkg, which provides $prog ($who)"; fails=$((fails + 1)) ;;
    esac
done <<<"$need"
[ $fails -eq 0 ] && echo "setup_deps: setup.sh installs every program the build and the tests run" && exit 0
echo "setup_deps: $fails missing"; exit 1
