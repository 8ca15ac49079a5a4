// backend.c — picks the backend for a device and holds the per-device kernel contexts.
#include "kernels/backend.h"
#include "kernels/profile.h"
#include <stdio.h>

extern const cm_backend cm_cpu_backend;
int64_t cm_gemm_calls = 0;
int64_t cm_dev_launches = 0;
int64_t cm_attn_wgmma_runs = 0;
int64_t cm_attn_mma_fused_runs = 0;
int64_t cm_attn_gemm_runs = 0;
const char *cm_attn_wgmma_off = NULL;
void (*cm_release_cached)(cm_device d) = NULL;

#ifndef CAMEO_HAVE_CUDA
const cm_backend *cm_cuda_backend = NULL;
const cm_kctx *cuda_backend_ctx(int index) { return NULL; }
#else
const char *cuda_unavailable_reason(void);  // kernels/cuda/cuda_backend.cu: why no device is usable
#endif

// the CUDA-kind device's contexts: kernels/cuda's, or an emulated device's (tests)
static const cm_kctx *(*cuda_ctx)(int index) = cuda_backend_ctx;

// tests/emulated_device.c: the CPU kernels posing as cuda:0 on machines without a GPU
void backend_emulate_cuda(const cm_backend *be, const cm_kctx *(*ctx)(int index)) {
    cm_cuda_backend = be;
    cuda_ctx = ctx;
}

// the backend itself, never the profiler's timed table
const cm_backend *backend_real(cm_devtype t) {
    if (t == CM_CPU) return &cm_cpu_backend;
    if (t == CM_CUDA) {
        if (!cm_cuda_backend) {
#ifdef CAMEO_HAVE_CUDA
            // a CUDA build where the probe found no usable device: say why (driver, no GPU, too old)
            const char *why = cuda_unavailable_reason();
            cm_die("backend_get", "a CUDA device was asked for, but %s", why ? why : "no usable CUDA device was found");
#else
            cm_die("backend_get", "this cameo was built without CUDA (configure with -DCAMEO_CUDA=ON on a machine with nvcc)");
#endif
        }
        return cm_cuda_backend;
    }
    cm_die("backend_get", "unknown device type %d", (int)t);
}

const cm_backend *backend_get(cm_devtype t) {
    const cm_backend *be = backend_real(t);
    return cm_prof_active ? prof_table(t, be) : be;
}

const cm_kctx *backend_ctx(cm_device d) {
    static const cm_kctx cpu_ctx = {{CM_CPU, 0}, NULL, NULL};
    if (d.type == CM_CPU) return &cpu_ctx;
    const cm_kctx *k = cuda_ctx(d.index);
    if (!k) cm_die("backend_ctx", "no CUDA device %d available", d.index);
    return k;
}
