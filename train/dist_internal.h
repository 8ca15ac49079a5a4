// dist_internal.h — what dist.c and dist_reduce.c share: NCCL's checked call and the gradient of
// a trainable parameter every rank must send. Not for use outside train/dist*.c.
#pragma once
#include "autograd/autograd.h"
#include "models/params.h"
#ifdef CAMEO_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
// every NCCL call: a failure names the call, file and line, NCCL's reason and its last message
#define NCCL_CHECK(call)                                                                                  \
    do {                                                                                                  \
        ncclResult_t r_ = (call);                                                                         \
        if (r_ != ncclSuccess)                                                                            \
            cm_die("dist", "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call, ncclGetErrorString(r_), \
                   ncclGetLastError(NULL));                                                               \
    } while (0)
// the same for the CUDA runtime calls of the reducer's communication stream
#define DIST_CUDA_CHECK(call)                                                                             \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess) cm_die("dist", "%s:%d: %s failed: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    } while (0)
#endif

// a trainable parameter's gradient, zeros when backward gave it none (every rank must send one)
static inline cm_tensor *dist_grad_of(cm_param *p) {
    cm_tensor *t = p->t;
    if (!t->grad) t->grad = tensor_zeros(t->dtype, t->ndim, t->shape, t->storage->dev);
    return t->grad;
}
