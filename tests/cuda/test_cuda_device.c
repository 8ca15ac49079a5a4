// test_cuda_device.c — device selection with several GPUs: a tensor of cuda:N lives on device N
// whatever device the calling thread had current (the emulator: CUDA_EMU_DEVICES=2, set by
// tests/cuda/extra.cmake); with --old-*, a device of compute capability below 8.0 among them
// (the emulator's CUDA_EMU_CC). Skips (77) without CUDA or with fewer than 2 devices.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "autograd/alloc.h"
#include "kernels/backend.h"
#include "testutil.h"

#ifndef CAMEO_HAVE_CUDA
int main(void) { test_skip("cameo was built without CUDA (CAMEO_CUDA=OFF): nothing to test"); }
#else
#include <cuda_runtime.h>

int cuda_device_count(void);
const char *cuda_unavailable_reason(void);

// the device a device pointer belongs to, -1 when it is none's
static int device_of(const void *p) {
    struct cudaPointerAttributes a;
    memset(&a, 0, sizeof a);
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess || a.type != cudaMemoryTypeDevice) return -1;
    return a.device;
}

static const cm_device D0 = {CM_CUDA, 0}, D1 = {CM_CUDA, 1};

// a thread of its own: CUDA's current device is per host thread, device 0 in a new one
static void *alloc_on_1(void *out) {
    void *p = alloc_get(D1, (size_t)7 << 20, "a cuda:1 buffer of a fresh thread");
    *(int *)out = device_of(p);
    alloc_put(D1, p, (size_t)7 << 20);
    return NULL;
}

// the process's first allocation is cuda:1's (before any context exists: a one-GPU run on
// cuda:1 loads its weights so), then cuda:0 and cuda:1 in turn, then from a fresh thread
static void t_alloc_device(void) {
    void *p = alloc_get(D1, (size_t)1 << 20, "a first cuda:1 buffer");
    TEST_CHECK(device_of(p) == 1, "the process's first allocation, for cuda:1, is on device %d", device_of(p));
    backend_ctx(D0);  // the thread's current device: 0
    void *q = alloc_get(D1, (size_t)3 << 20, "a cuda:1 buffer");
    TEST_CHECK(device_of(q) == 1, "a cuda:1 allocation after cuda:0's context is on device %d", device_of(q));
    void *r = alloc_get(D0, (size_t)5 << 20, "a cuda:0 buffer");
    TEST_CHECK(device_of(r) == 0, "a cuda:0 allocation after cuda:1's is on device %d", device_of(r));
    int64_t shape[2] = {64, 96};
    cm_tensor *t = tensor_zeros(CM_F32, 2, shape, D1);
    TEST_CHECK(device_of(tensor_data(t)) == 1, "a cuda:1 tensor is on device %d", device_of(tensor_data(t)));
    tensor_release(t);
    int dev = -2;
    pthread_t th;
    TEST_CHECK(pthread_create(&th, NULL, alloc_on_1, &dev) == 0, "pthread_create");
    pthread_join(th, NULL);
    TEST_CHECK(dev == 1, "a cuda:1 allocation of a fresh thread is on device %d", dev);
    alloc_put(D1, p, (size_t)1 << 20);
    alloc_put(D1, q, (size_t)3 << 20);
    alloc_put(D0, r, (size_t)5 << 20);
}

// compute capability below 8.0 (the emulator reports CUDA_EMU_CC's): such a device is turned down
// by name and number before any kernel runs, and the others stay usable
#ifdef CAMEO_CUDA_EMU  // (only the emulator's run calls them)
static void ctx_1(void) { backend_ctx(D1); }
static void ctx_0(void) { backend_ctx(D0); }
static void tensor_on_0(void) { tensor_zeros(CM_F32, 1, (int64_t[]){4}, D0); }
#endif
static int t_old_gpu(const char *mode) {
#ifndef CAMEO_CUDA_EMU
    (void)mode;
    test_skip("compute capabilities are set only on the emulator (CUDA_EMU_CC)");
#else
    if (!strcmp(mode, "--old-second")) {  // CUDA_EMU_CC=9.0,7.5
        TEST_CHECK(cuda_device_count() == 2 && cm_cuda_backend, "2 devices, one of 8.0+: the backend is there");
        TEST_CHECK(cuda_backend_ctx(0) != NULL, "cuda:0 (9.0) has a context");
        test_expect_death("cuda:1 of compute capability 7.5", ctx_1, "cuda:1 (emulated sm_75 (CPU)) has compute capability 7.5",
                          "needs 8.0 or newer");
    } else if (!strcmp(mode, "--old-first")) {  // CUDA_EMU_CC=7.5,9.0: an old GPU at index 0 beside a new one
        TEST_CHECK(cuda_device_count() == 2 && cm_cuda_backend, "an old cuda:0 leaves cuda:1 usable (%s)",
                   cuda_unavailable_reason() ? cuda_unavailable_reason() : "available");
        if (cm_cuda_backend) TEST_CHECK(cuda_backend_ctx(1) != NULL, "cuda:1 (9.0) has a context");
        test_expect_death("cuda:0 of compute capability 7.5", ctx_0, "compute capability 7.5", "usable: cuda:1");
    } else if (!strcmp(mode, "--old-only")) {  // CUDA_EMU_CC=7.5, one device
        const char *r = cuda_unavailable_reason();
        TEST_CHECK(cuda_device_count() == 0 && !cm_cuda_backend, "no usable device");
        TEST_CHECK(r && strstr(r, "compute capability 7.5") && strstr(r, "8.0 or newer"), "the reason: %s", r ? r : "(none)");
        // a tensor asked for there says why the GPU is unusable, not that CUDA was never built
        test_expect_death("a cuda:0 tensor with no usable device", tensor_on_0, "compute capability 7.5", "8.0 or newer");
    } else {
        fprintf(stderr, "test_cuda_device: unknown mode %s (allowed: --old-second, --old-first, --old-only)\n", mode);
        return 2;
    }
    return test_summary("test_cuda_device (old GPU)");
#endif
}

int main(int argc, char **argv) {
    if (argc > 1) return t_old_gpu(argv[1]);
    if (cuda_device_count() < 2) {
        char why[700];
        const char *r = cuda_unavailable_reason();
        snprintf(why, sizeof why, "needs 2 CUDA devices (the emulator: CUDA_EMU_DEVICES=2), %d usable%s%s", cuda_device_count(),
                 r ? ": " : "", r ? r : "");
        test_skip(why);
    }
    t_alloc_device();
    return test_summary("test_cuda_device");
}
#endif
