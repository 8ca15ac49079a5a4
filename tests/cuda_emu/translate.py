#!/usr/bin/env python3
"""translate.py — one kernels/cuda/*.cu (or .cuh) file as C++ for the CUDA emulator.

Usage: translate.py IN OUT

The emulator (tests/cuda_emu/emu_device.h, emu_runtime.cpp) runs kernels on the CPU; this
rewrites the little CUDA syntax a host compiler cannot take:
  kernel<<<grid, block, smem, stream>>>(args);  ->  emu_launch(&kernel, "kernel", grid, block, smem, stream,
                       [emu_a = std::make_tuple(args)] { std::apply([](const auto &...x) { kernel(x...); }, emu_a); });
  extern __shared__ T name[];                     ->  T *name = (T *)emu_dynamic_smem();
  __shared__ T name[...];                         ->  static T name[...];   (blocks run one at a time)
  __CUDA_ARCH__                                   ->  CAMEO_EMU_ARCH (the header's own stays undefined)
  __global__ / __device__ / __host__ / __grid_constant__ / __launch_bounds__(n) / __forceinline__ -> dropped / inline
Includes of the other .cuh files are pointed at their translations (same folder).
"""
import re
import sys


def match_back(s, end, open_c, close_c):
    """index of the open_c that balances the close_c at s[end]"""
    depth = 0
    for i in range(end, -1, -1):
        if s[i] == close_c:
            depth += 1
        elif s[i] == open_c:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced")


def match_fwd(s, start, open_c, close_c):
    depth = 0
    for i in range(start, len(s)):
        if s[i] == open_c:
            depth += 1
        elif s[i] == close_c:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced")


def launches(s):
    out, pos = [], 0
    while True:
        i = s.find("<<<", pos)
        if i < 0:
            out.append(s[pos:])
            return "".join(out)
        # the kernel's name: identifier (with ::) and an optional template argument list
        j = i
        while s[j - 1].isspace():
            j -= 1
        if s[j - 1] == ">":
            j = match_back(s, j - 1, "<", ">")
        while j > 0 and (s[j - 1].isalnum() or s[j - 1] in "_:"):
            j -= 1
        name = s[j:i].strip()
        k = s.index(">>>", i)
        cfg = s[i + 3:k]
        a0 = s.index("(", k)
        a1 = match_fwd(s, a0, "(", ")")
        args = s[a0 + 1:a1]
        out.append(s[pos:j])
        # the arguments evaluated and copied at the launch (CUDA copies them then: a deferred launch,
        # CUDA_EMU_DEFER, runs later), the kernel called on the copies
        out.append(f'emu_launch((const void *)&{name}, "{name}", {cfg}, '
                   f'[emu_a = std::make_tuple({args})]() {{ std::apply([](const auto &...emu_x) {{ {name}(emu_x...); }}, emu_a); }})')
        pos = a1 + 1


def translate(src):
    src = src.replace("__CUDA_ARCH__", "CAMEO_EMU_ARCH")
    src = re.sub(r'#include\s+"([\w]+)\.cuh"', r'#include "\1.emu.h"', src)
    src = re.sub(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w\s]+?)\s+(\w+)\s*\[\s*\]\s*;",
                 r"\1 *\2 = (\1 *)emu_dynamic_smem();", src)
    src = re.sub(r"\b__shared__\s+", "static ", src)
    src = re.sub(r"__launch_bounds__\s*\([^)]*\)", "", src)
    src = re.sub(r"\b__global__\s+", "", src)
    src = re.sub(r"\b__device__\s+", "", src)
    src = re.sub(r"\b__host__\s+", "", src)
    src = re.sub(r"\b__grid_constant__\s+", "", src)
    src = re.sub(r"\b__forceinline__\b", "inline", src)
    return launches(src)


def main():
    src = open(sys.argv[1]).read()
    out = translate(src)
    with open(sys.argv[2], "w") as f:
        f.write(f'// translated from {sys.argv[1]} by tests/cuda_emu/translate.py — do not edit\n#line 1 "{sys.argv[1]}"\n')
        f.write(out)


if __name__ == "__main__":
    main()
