#!/usr/bin/env bash
# clang_kernels.sh — the CPU kernels must build with clang too, not only gcc: compiles every
# kernels/cpu/*.c with clang (-O0, object thrown away) when clang is installed, else skips (77).
# Code generation, not just -fsyntax-only: clang reports an AVX intrinsic used outside a matching
# target region only when it emits the call. -Werror=unknown-pragmas: clang ignores GCC's
# `#pragma GCC target`, which would silently turn the AVX2/AVX-512 copies into baseline code.
# Usage: clang_kernels.sh SOURCE_DIR [-I... include dirs of the kernels' dependencies]
set -u
ROOT=$1
shift
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null 2>&1 || { echo "SKIP: $CLANG not installed"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: the kernels' AVX copies are x86-64 only"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <omp.h>\nint main(void) { return omp_get_max_threads() < 0; }\n' >"$tmp/omp.c"
"$CLANG" -fopenmp -c -o "$tmp/omp.o" "$tmp/omp.c" 2>/dev/null || { echo "SKIP: $CLANG has no OpenMP (omp.h)"; exit 77; }
fails=0
for f in "$ROOT"/kernels/cpu/*.c; do
    # the flags of the CMake tree (CMakeLists.txt) for these files
    if ! "$CLANG" -std=gnu17 -O0 -march=x86-64-v2 -fopenmp -fno-trapping-math -fno-math-errno -Wall -Wextra \
        -Wno-unused-parameter -Werror=unknown-pragmas -I"$ROOT" "$@" -c -o "$tmp/k.o" "$f" 2>"$tmp/err"; then
        echo "FAIL: $CLANG cannot build ${f#"$ROOT"/}:"
        head -20 "$tmp/err"
        fails=$((fails + 1))
    elif [ -s "$tmp/err" ]; then
        echo "warnings from $CLANG in ${f#"$ROOT"/}:"
        head -20 "$tmp/err"
    fi
done
[ $fails -eq 0 ] && echo "clang_kernels: every kernels/cpu file builds with $CLANG" && exit 0
echo "clang_kernels: $fails file(s) fail with $CLANG"; exit 1
