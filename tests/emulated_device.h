// emulated_device.h — a stand-in "cuda:0" for machines without a GPU: the CPU kernels behind the
// backend interface, with device memory that host code cannot touch: the addresses handed out lie
// in a PROT_NONE view of a memory file, and the kernels are given the same bytes through a
// second, writable view. A host read or write of device memory faults (SIGSEGV, reported with the
// address), and
// a host pointer handed to a kernel as device memory, or the reverse in a copy, stops with the
// entry point's and the argument's names. Proves that models and trainer run unchanged on a
// device — what the real GPU adds (bf16, streams) is tests/cuda's part.
#pragma once
#include <stddef.h>
#include <stdint.h>

void emu_install(void);      // from now on CM_CUDA device 0 is the emulated one
int64_t emu_calls(void);     // backend entry points run so far
size_t emu_bytes(void);      // arena bytes handed out so far
