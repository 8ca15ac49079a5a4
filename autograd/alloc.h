// alloc.h — the per-device caching allocator under every tensor storage.
// Blocks are rounded up to a size class and kept in per-class free lists when released, so a
// training step's repeated shapes never go back to malloc / cudaMalloc. Reports live and peak bytes.
// defines: alloc_get, alloc_try, alloc_die_oom, alloc_put, alloc_stats, alloc_reset_peak, alloc_empty_cache
#pragma once
#include <stddef.h>
#include "autograd/tensor.h"

typedef struct cm_alloc_stats {
    size_t current;   // bytes in live storages
    size_t peak;      // max of current since start or alloc_reset_peak
    size_t cached;    // bytes held in free lists
    size_t n_allocs;  // backend allocations made (cache misses)
    size_t allocated; // bytes handed out since start, cache hits included (what new tensors took:
                      // outside in-place sums and GEMM accumulation, every byte an op writes)
} cm_alloc_stats;

void *alloc_get(cm_device dev, size_t nbytes, const char *what);  // dies naming what + bytes on OOM
// the same, but NULL when the device is out of memory (after giving the cache back and retrying)
void *alloc_try(cm_device dev, size_t nbytes);
// dies: out of memory on DEV allocating N bytes for WHAT (free bytes, bytes in live tensors, cached)
void alloc_die_oom(cm_device dev, size_t nbytes, const char *what) __attribute__((noreturn));
void alloc_put(cm_device dev, void *p, size_t nbytes);
cm_alloc_stats alloc_stats(cm_device dev);
void alloc_reset_peak(cm_device dev);
void alloc_empty_cache(cm_device dev);
