// cuda_backend.cu — the CUDA backend: device discovery, per-device contexts (stream + cuBLASLt
// handle + scratch), raw memory, copies, and the cm_backend table that collects the kernels of
// the other kernels/cuda/*.cu files.
// defines: cm_cuda_backend, cuda_backend_ctx, cuda_device_count, cuda_unavailable_reason.
#include "cuda_common.cuh"
#include <pthread.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------
extern "C" _Noreturn void cuda_fail(const char *file, int line, const char *call, const char *msg) {
    fprintf(stderr, "cameo: cuda: %s:%d: %s failed: %s\n", file, line, call, msg);
    exit(1);
}

const char *cublas_status_str(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialized (driver or library problem)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed (out of device memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value (unsupported shape, leading dimension or alignment)";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch (feature absent on this GPU)";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "kernel execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported (no algorithm for these types/layouts)";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown cuBLAS status";
    }
}

void cuda_require_float(const char *op, cm_dtype dt) {
    if (dt != CM_F32 && dt != CM_BF16)
        cm_die(op, "the CUDA backend computes in f32 or bf16, got dtype %s", dtype_name(dt));
}

// ---------------------------------------------------------------------------------------------
// device discovery: done once at program start so that cm_cuda_backend is a plain pointer,
// non-NULL exactly when a usable device is present
// ---------------------------------------------------------------------------------------------
extern "C" {
extern const cm_backend cm_cuda_backend_impl;
const cm_backend *cm_cuda_backend = NULL;
}
static int g_device_count = 0;
static char g_unavailable[512] = "CUDA not yet probed";
#define CUDA_MAX_DEVICES 16
// each device's compute capability (major * 10 + minor; 0: unknown) and name, from the probe
static int g_cc[CUDA_MAX_DEVICES];
static char g_dev_name[CUDA_MAX_DEVICES][256];  // cudaDeviceProp::name's size
#define CUDA_CC_NEEDED "cameo's CUDA backend needs 8.0 or newer (A100, H100, RTX 30xx/40xx)"

static void cuda_probe(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        const char *hint = "";
        char buf[200];
        int drv = 0, rt = 0;
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        if (e == cudaErrorInsufficientDriver && drv == 0)
            hint = " (no NVIDIA driver is installed or loadable: libcuda.so.1 not found)";
        else if (e == cudaErrorInsufficientDriver) {
            snprintf(buf, sizeof buf, " (the NVIDIA driver supports CUDA %d.%d, this build's runtime is %d.%d: update the driver)",
                     drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
            hint = buf;
        }
        else if (e == cudaErrorNoDevice)
            hint = " (no NVIDIA GPU visible: check nvidia-smi and CUDA_VISIBLE_DEVICES)";
        else if (e == cudaErrorInitializationError || e == cudaErrorSystemDriverMismatch ||
                 e == cudaErrorCompatNotSupportedOnDevice)
            hint = " (driver missing or not matching the kernel module: check nvidia-smi)";
        snprintf(g_unavailable, sizeof g_unavailable, "no usable CUDA device: %s%s", cudaGetErrorString(e), hint);
        (void)cudaGetLastError();
        g_device_count = 0;
        return;
    }
    if (n == 0) {
        snprintf(g_unavailable, sizeof g_unavailable, "no CUDA device found (cudaGetDeviceCount returned 0)");
        g_device_count = 0;
        return;
    }
    // sm_80 or newer: the build carries sm_80 / sm_90 code only (bf16 tensor cores). Each device is
    // judged on its own (cuda_backend_ctx turns an older one down): an old GPU at index 0 beside
    // an A100 leaves the A100 usable
    int usable = 0;
    for (int i = 0; i < n && i < CUDA_MAX_DEVICES; i++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
            (void)cudaGetLastError();
            g_cc[i] = 0;  // unknown: the context's architecture probe decides
            usable++;
            continue;
        }
        g_cc[i] = p.major * 10 + p.minor;
        snprintf(g_dev_name[i], sizeof g_dev_name[i], "%s", p.name);
        usable += p.major >= 8;
    }
    if (!usable) {
        if (n == 1)
            snprintf(g_unavailable, sizeof g_unavailable, "CUDA device 0 (%s) has compute capability %d.%d; " CUDA_CC_NEEDED,
                     g_dev_name[0], g_cc[0] / 10, g_cc[0] % 10);
        else
            snprintf(g_unavailable, sizeof g_unavailable, "none of the %d CUDA devices has compute capability 8.0 or "
                     "newer (cuda:0, %s, has %d.%d): cameo's CUDA backend needs sm_80+ (A100, H100, RTX 30xx/40xx)", n, g_dev_name[0], g_cc[0] / 10, g_cc[0] % 10);
        g_device_count = 0;
        return;
    }
    g_device_count = n;
    g_unavailable[0] = 0;
    cm_cuda_backend = &cm_cuda_backend_impl;
}

__attribute__((constructor)) static void cuda_probe_ctor(void) {
    // CAMEO_NO_CUDA=1 keeps the runtime untouched (CPU-only runs on GPU machines, forked tools)
    const char *off = getenv("CAMEO_NO_CUDA");
    if (off && *off && strcmp(off, "0") != 0) {
        snprintf(g_unavailable, sizeof g_unavailable, "CUDA disabled by CAMEO_NO_CUDA");
        return;
    }
    cuda_probe();
}

extern "C" int cuda_device_count(void) { return g_device_count; }
extern "C" const char *cuda_unavailable_reason(void) { return g_unavailable[0] ? g_unavailable : NULL; }

// ---------------------------------------------------------------------------------------------
// contexts: one per device, created on first use (thread-safe), never destroyed
// ---------------------------------------------------------------------------------------------
static cuda_ctx_ext *g_ctx[CUDA_MAX_DEVICES];
static pthread_mutex_t g_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int t_current_dev = -1;

// the architecture the running device code was compiled for (PTX JIT-compiled from an older
// target reports that older target: the tensor-core kernels would then be empty)
__global__ void k_arch_probe(int *out) {
#ifdef __CUDA_ARCH__
    *out = __CUDA_ARCH__;
#endif
}

static void set_device(int index) {
    if (t_current_dev != index) {
        CUDA_CHECK(cudaSetDevice(index));
        t_current_dev = index;
    }
}

// a context's own buffer: running out here is an error naming the buffer, the bytes and the free bytes
static void *ctx_alloc(int index, size_t nbytes, const char *what) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, nbytes);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        cm_die("cuda", "out of device memory on cuda:%d for %s: asked %zu bytes, %zu free of %zu", index, what, nbytes,
               fr, tot);
    }
    CUDA_CHECK(e);
    return p;
}

extern "C" const cm_kctx *cuda_backend_ctx(int index) {
    if (g_device_count == 0) {
        fprintf(stderr, "cameo: cuda: %s\n", g_unavailable);
        return NULL;
    }
    if (index < 0 || index >= g_device_count || index >= CUDA_MAX_DEVICES) {
        fprintf(stderr, "cameo: cuda: device cuda:%d asked for, but %d device(s) are visible (cuda:0..cuda:%d)\n",
                index, g_device_count, g_device_count - 1);
        return NULL;
    }
    if (g_cc[index] && g_cc[index] < 80) {  // before any kernel: its launch would say "rebuild for sm_75"
        fprintf(stderr, "cameo: cuda: cuda:%d (%s) has compute capability %d.%d; " CUDA_CC_NEEDED "; usable:",
                index, g_dev_name[index], g_cc[index] / 10, g_cc[index] % 10);
        for (int i = 0; i < g_device_count && i < CUDA_MAX_DEVICES; i++)
            if (!g_cc[i] || g_cc[i] >= 80) fprintf(stderr, " cuda:%d (%s)", i, g_dev_name[i]);
        fprintf(stderr, "\n");
        return NULL;
    }
    set_device(index);
    cuda_ctx_ext *c = __atomic_load_n(&g_ctx[index], __ATOMIC_ACQUIRE);
    if (c) return &c->k;
    pthread_mutex_lock(&g_ctx_lock);
    c = g_ctx[index];
    if (!c) {
        c = (cuda_ctx_ext *)calloc(1, sizeof *c);
        if (!c) cm_die("cuda_backend_ctx", "out of host memory");
        c->index = index;
        c->k.dev.type = CM_CUDA;
        c->k.dev.index = index;
        cudaStream_t s;
        CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        c->k.stream = s;
        CUDA_CHECK(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking));
        for (int i = 0; i < CUDA_SIDE_STREAMS; i++) {
            CUDA_CHECK(cudaStreamCreateWithFlags(&c->side[i], cudaStreamNonBlocking));
            CUDA_CHECK(cudaEventCreateWithFlags(&c->side_go[i], cudaEventDisableTiming));
            CUDA_CHECK(cudaEventCreateWithFlags(&c->side_done[i], cudaEventDisableTiming));
        }
        for (int st = 0; st < 2; st++)
            for (int e = 0; e < CUDA_EVENT_RING; e++)
                CUDA_CHECK(cudaEventCreateWithFlags(&c->ev[st][e], cudaEventDisableTiming));
        pthread_mutex_init(&c->ev_lock, NULL);
        pthread_mutex_init(&c->tm_lock, NULL);
        cublasLtHandle_t h;
        CUBLAS_CHECK(cublasLtCreate(&h));
        c->k.blas = h;
        c->workspace_bytes = 32u << 20;  // cuBLASLt workspace (Hopper kernels want >= 32 MiB)
        c->workspace = ctx_alloc(index, c->workspace_bytes, "the cuBLASLt workspace");
        c->partials = (double *)ctx_alloc(index, CUDA_MAX_PARTIALS * sizeof(double), "the reduction partials");
        CUDA_CHECK(cudaMallocHost(&c->host_result, sizeof(double)));
        cudaDeviceProp p;
        CUDA_CHECK(cudaGetDeviceProperties(&p, index));
        c->sm_count = p.multiProcessorCount;
        c->cc_major = p.major;
        c->cc_minor = p.minor;
        c->smem_optin = p.sharedMemPerBlockOptin;
        int arch = 0;
        k_arch_probe<<<1, 1, 0, s>>>((int *)c->partials);
        cudaError_t le = cudaGetLastError();
        if (le == cudaErrorNoKernelImageForDevice || le == cudaErrorInvalidDeviceFunction)
            cm_die("cuda", "this cameo holds no CUDA code for %s (compute capability %d.%d): rebuild with "
                   "-DCMAKE_CUDA_ARCHITECTURES=%d%d", p.name, p.major, p.minor, p.major, p.minor);
        if (le != cudaSuccess) cuda_fail(__FILE__, __LINE__, "k_arch_probe launch", cudaGetErrorString(le));
        CUDA_CHECK(cudaMemcpyAsync(&arch, c->partials, sizeof arch, cudaMemcpyDeviceToHost, s));
        CUDA_CHECK(cudaStreamSynchronize(s));
        if (arch < 800)
            cm_die("cuda", "this cameo's CUDA code was built for sm_%d, below sm_80: the bf16 tensor-core kernels "
                   "need sm_80+. Reconfigure with -DCMAKE_CUDA_ARCHITECTURES=\"80;90\" (or %d%d for this %s)",
                   arch / 10, p.major, p.minor, p.name);
        __atomic_store_n(&g_ctx[index], c, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&g_ctx_lock);
    return &c->k;
}

const cuda_ctx_ext *cuda_ext(const cm_kctx *k) {
    int i = k ? k->dev.index : 0;
    if (i < 0 || i >= CUDA_MAX_DEVICES || !g_ctx[i]) {
        if (!cuda_backend_ctx(i)) cm_die("cuda", "no CUDA context for device %d", i);
    }
    return g_ctx[i];
}

// a 0 / 1 environment switch, read once (cuda_common.cuh)
bool cuda_env_switch(const char *name, bool dflt, int *cache) {
    int v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv(name);
        if (e && *e && strcmp(e, "0") && strcmp(e, "1")) cm_die("cuda", "%s='%s' (allowed: 0, 1)", name, e);
        v = e && *e ? e[0] == '1' : dflt;
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

// ---------------------------------------------------------------------------------------------
// side streams (cuda_common.cuh): a fork records an event on k's stream for the side stream to
// wait on; a join records one on the side stream for k's to wait on. Each record is waited on at
// once, so one event per side stream and direction serves every fork.
// ---------------------------------------------------------------------------------------------
static int g_side_env = -1, g_side_force = -1;  // -1: not read yet / no override
static int64_t g_side_forks;
bool cuda_side_streams_on(void) {
    return g_side_force >= 0 ? g_side_force == 1 : cuda_env_switch("CAMEO_SIDE_STREAMS", true, &g_side_env);
}
extern "C" void cuda_side_streams_use(int on) { g_side_force = on < 0 ? -1 : on ? 1 : 0; }
extern "C" int64_t cuda_side_forks(void) { return __atomic_load_n(&g_side_forks, __ATOMIC_RELAXED); }

bool cuda_fork(const cm_kctx *k, cuda_side *side) {
    side->k = *k;
    side->slot = -1;
    if (!cuda_side_streams_on()) return false;
    cuda_ctx_ext *c = (cuda_ctx_ext *)cuda_ext(k);
    const int i = (int)(__atomic_fetch_add(&c->side_next, 1u, __ATOMIC_RELAXED) % CUDA_SIDE_STREAMS);
    if (c->side[i] == KSTREAM(k)) return false;  // (a fork from a side stream that came round again)
    CUDA_CHECK(cudaEventRecord(c->side_go[i], KSTREAM(k)));
    CUDA_CHECK(cudaStreamWaitEvent(c->side[i], c->side_go[i], 0));
    side->k.stream = c->side[i];
    side->slot = i;
    __atomic_fetch_add(&g_side_forks, 1, __ATOMIC_RELAXED);
    return true;
}
void cuda_join(const cm_kctx *k, cuda_side *side) {
    if (side->slot < 0) return;
    const cuda_ctx_ext *c = cuda_ext(k);
    CUDA_CHECK(cudaEventRecord(c->side_done[side->slot], c->side[side->slot]));
    CUDA_CHECK(cudaStreamWaitEvent(KSTREAM(k), c->side_done[side->slot], 0));
    side->slot = -1;
}

// the stream-ordered pool's unused memory back to the device (it keeps what was freed until a
// synchronisation; the caching allocator's cudaMalloc cannot use it before)
static void trim_async_pool(int dev) {
    cudaMemPool_t mp;
    CUDA_CHECK(cudaDeviceSynchronize());
    if (cudaDeviceGetDefaultMemPool(&mp, dev) == cudaSuccess) CUDA_CHECK(cudaMemPoolTrimTo(mp, 0));
    (void)cudaGetLastError();
}

// kernel scratch: stream-ordered, from the driver's pool. Where the device has no room, the
// caching allocator's cached blocks (free memory it holds for tensors) are given back and the
// pool trimmed, then one more try: memory free in either pool serves the other
void *cuda_tmp_alloc(const cm_kctx *k, size_t nbytes, const char *what) {
    void *p = NULL;
    if (nbytes == 0) nbytes = 16;
    cudaError_t e = cudaMallocAsync(&p, nbytes, KSTREAM(k));
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        if (cm_release_cached) cm_release_cached(k->dev);
        trim_async_pool(k->dev.index);
        e = cudaMallocAsync(&p, nbytes, KSTREAM(k));
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        cm_die("cuda", "out of device memory for %s scratch: asked %zu bytes, %zu free of %zu (%s)", what, nbytes, fr,
               tot, cudaGetErrorString(e));
    }
    return p;
}
void cuda_tmp_free(const cm_kctx *k, void *p) {
    if (p) CUDA_CHECK(cudaFreeAsync(p, KSTREAM(k)));
}

// ---------------------------------------------------------------------------------------------
// memory and copies
// ---------------------------------------------------------------------------------------------
static void *cu_alloc(size_t nbytes) {
    void *p = NULL;
    if (nbytes == 0) nbytes = 1;
    cudaError_t e = cudaMalloc(&p, nbytes);
    if (e == cudaErrorMemoryAllocation) {  // what kernel scratch left in the stream-ordered pool, then once more
        (void)cudaGetLastError();
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        trim_async_pool(dev);
        e = cudaMalloc(&p, nbytes);
    }
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // clear the sticky-free error so the caller can retry after freeing
        return NULL;
    }
    if (e != cudaSuccess) cuda_fail(__FILE__, __LINE__, "cudaMalloc", cudaGetErrorString(e));
    return p;
}
static void cu_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}
// h2d: asynchronous on the stream; when src is pinned, waits, so that src may be reused on return
// in every case (pageable sources are staged by the driver before cudaMemcpyAsync returns)
static void cu_memcpy_h2d(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, KSTREAM(k)));
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, src) == cudaSuccess && a.type == cudaMemoryTypeHost)
        CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
    (void)cudaGetLastError();
}
static void cu_memcpy_d2h(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, KSTREAM(k)));
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
}
static void cu_memcpy_d2d(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, KSTREAM(k)));
}
static void cu_sync(const cm_kctx *k) { CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k))); }

// ---------------------------------------------------------------------------------------------
// asynchronous uploads: pinned host memory, the copy stream, events across the two streams
// ---------------------------------------------------------------------------------------------
cudaStream_t cuda_stream_of(const cm_kctx *k, cm_stream s) {
    if (s == CM_STREAM_COMPUTE) return KSTREAM(k);
    if (s == CM_STREAM_COPY) return cuda_ext(k)->copy_stream;
    cm_die("cuda", "unknown stream %d (allowed: CM_STREAM_COMPUTE, CM_STREAM_COPY)", (int)s);
}

// page-locked, usable from every device (portable); NULL when the host is out of pinnable memory
static void *cu_host_alloc(size_t nbytes) {
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, nbytes ? nbytes : 1, cudaHostAllocPortable);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        return NULL;
    }
    if (e != cudaSuccess) cuda_fail(__FILE__, __LINE__, "cudaHostAlloc", cudaGetErrorString(e));
    return p;
}
static void cu_host_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
}
static void cu_memcpy_h2d_async(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cuda_ext(k)->copy_stream));
}
static uint64_t cu_event_record(const cm_kctx *k, cm_stream s) {
    cuda_ctx_ext *c = (cuda_ctx_ext *)cuda_ext(k);
    cudaStream_t st = cuda_stream_of(k, s);
    pthread_mutex_lock(&c->ev_lock);  // seq and the record of its slot together: ids stay in stream order
    uint64_t seq = ++c->ev_seq[s];
    cudaError_t e = cudaEventRecord(c->ev[s][seq % CUDA_EVENT_RING], st);
    pthread_mutex_unlock(&c->ev_lock);
    if (e != cudaSuccess) cuda_fail(__FILE__, __LINE__, "cudaEventRecord", cudaGetErrorString(e));
    return seq << 1 | (uint64_t)s;
}
static cudaEvent_t event_of(const cm_kctx *k, uint64_t e) {
    return cuda_ext(k)->ev[e & 1][(e >> 1) % CUDA_EVENT_RING];
}
static void cu_event_wait(const cm_kctx *k, cm_stream s, uint64_t e) {
    if (!e) return;
    cudaStream_t st = cuda_stream_of(k, s);
    if ((cm_stream)(e & 1) == s) return;  // one stream runs in order: its own events are behind it
    // the slot may be re-recorded concurrently by event_record: the wait takes its latest record,
    // a later point of the same stream (see cuda_common.cuh)
    CUDA_CHECK(cudaStreamWaitEvent(st, event_of(k, e), 0));
}
static void cu_event_sync(const cm_kctx *k, uint64_t e) {
    if (!e) return;
    CUDA_CHECK(cudaEventSynchronize(event_of(k, e)));
}
// the op profiler's marks: timing events from a pool that grows as a profiled stretch needs
// (kernels/profile.c folds and resets every few thousand calls)
static uint64_t cu_timer_mark(const cm_kctx *k) {
    cuda_ctx_ext *c = (cuda_ctx_ext *)cuda_ext(k);
    pthread_mutex_lock(&c->tm_lock);
    if (c->tm_n == c->tm_cap) {
        int cap = c->tm_cap ? 2 * c->tm_cap : 1024;
        cudaEvent_t *tm = (cudaEvent_t *)realloc(c->tm, (size_t)cap * sizeof *tm);
        if (!tm) cm_die("cuda timer_mark", "out of host memory for %d timing events", cap);
        for (int i = c->tm_cap; i < cap; i++) CUDA_CHECK(cudaEventCreate(&tm[i]));
        c->tm = tm;
        c->tm_cap = cap;
    }
    int slot = c->tm_n++;
    CUDA_CHECK(cudaEventRecord(c->tm[slot], (cudaStream_t)k->stream));
    pthread_mutex_unlock(&c->tm_lock);
    return (uint64_t)slot + 1;
}
static double cu_timer_ms(const cm_kctx *k, uint64_t a, uint64_t b) {
    cuda_ctx_ext *c = (cuda_ctx_ext *)cuda_ext(k);
    if (!a || !b || a > (uint64_t)c->tm_n || b > (uint64_t)c->tm_n)
        cm_die("cuda timer_ms", "marks %llu, %llu are not among the %d taken since the last reset",
               (unsigned long long)a, (unsigned long long)b, c->tm_n);
    float ms = 0;
    CUDA_CHECK(cudaEventSynchronize(c->tm[b - 1]));
    CUDA_CHECK(cudaEventElapsedTime(&ms, c->tm[a - 1], c->tm[b - 1]));
    return ms;
}
static void cu_timer_reset(const cm_kctx *k) {
    cuda_ctx_ext *c = (cuda_ctx_ext *)cuda_ext(k);
    pthread_mutex_lock(&c->tm_lock);
    c->tm_n = 0;
    pthread_mutex_unlock(&c->tm_lock);
}

static size_t cu_mem_free(const cm_kctx *k) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return fr;
}

// ---------------------------------------------------------------------------------------------
// the table
// ---------------------------------------------------------------------------------------------
extern "C" const cm_backend cm_cuda_backend_impl = {
    /*name*/ "cuda",
    cu_alloc, cu_free, cu_memcpy_h2d, cu_memcpy_d2h, cu_memcpy_d2d, cu_sync, cu_mem_free,
    cu_host_alloc, cu_host_free, cu_memcpy_h2d_async, cu_event_record, cu_event_wait, cu_event_sync,
    cu_fill, cu_copy_strided,
    cu_binary, cu_axpby, cu_unary_fwd, cu_unary_bwd, cu_glu_fwd, cu_glu_bwd,
    cu_reduce_sum, cu_sumsq, cu_sumsq_multi,
    cu_gemm, cu_gemm_ex,
    cu_layernorm_fwd, cu_layernorm_bwd, cu_rmsnorm_fwd, cu_rmsnorm_bwd, cu_groupnorm_fwd, cu_groupnorm_bwd,
    cu_softmax_fwd, cu_softmax_bwd,
    cu_attn_fwd, cu_attn_bwd, cu_attn_fwd_group, cu_attn_bwd_group,
    cu_rope, cu_rms_rope_fwd, cu_rms_rope_bwd, cu_modulate_fwd, cu_modulate_bwd, cu_gated_add, cu_add_rows,
    cu_layernorm_mod_fwd, cu_layernorm_mod_bwd, cu_timestep_fwd, cu_timestep_bwd,
    cu_im2col, cu_col2im, cu_bicubic_fwd, cu_bicubic_bwd, /*conv2d_fwd*/ NULL,
    cu_gather_rows, cu_scatter_add_rows,
    cu_mse_fwd, cu_mse_bwd, cu_adamw, cu_adamw_multi,
    cu_timer_mark, cu_timer_ms, cu_timer_reset,
};
