// backend.c — picks the backend for a device and holds the per-device kernel contexts.
#include "kernels/backend.h"
#include <stdio.h>

extern const cm_backend cm_cpu_backend;
int64_t cm_gemm_calls = 0;

#ifndef CAMEO_HAVE_CUDA
const cm_backend *cm_cuda_backend = NULL;
const cm_kctx *cuda_backend_ctx(int index) { return NULL; }
#endif

const cm_backend *backend_get(cm_devtype t) {
    if (t == CM_CPU) return &cm_cpu_backend;
    if (t == CM_CUDA) {
        if (!cm_cuda_backend) cm_die("backend_get", "this cameo was built without CUDA (configure with -DCAMEO_CUDA=ON on a machine with nvcc)");
        return cm_cuda_backend;
    }
    cm_die("backend_get", "unknown device type %d", (int)t);
}

const cm_kctx *backend_ctx(cm_device d) {
    static const cm_kctx cpu_ctx = {{CM_CPU, 0}, NULL, NULL};
    if (d.type == CM_CPU) return &cpu_ctx;
    const cm_kctx *k = cuda_backend_ctx(d.index);
    if (!k) cm_die("backend_ctx", "no CUDA device %d available", d.index);
    return k;
}
