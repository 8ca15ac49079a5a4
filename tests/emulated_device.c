// emulated_device.c — see emulated_device.h. Wrappers: tests/emulated_device.inc, written by
// scripts/gen_emulated_device.py from kernels/backend.h.
#define _GNU_SOURCE
#include "emulated_device.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kernels/backend.h"

extern const cm_backend cm_cpu_backend;
void backend_emulate_cuda(const cm_backend *be, const cm_kctx *(*ctx)(int index));  // kernels/backend.c

#define EMU_ARENA (16ull << 30)  // a sparse memory file: address space, not memory
#define EMU_ALIGN 256
#define EMU_FREE_MAX 4096

static const cm_backend *emu_cpu = &cm_cpu_backend;
static char *arena, *top;  // the device view (PROT_NONE), [arena, top) handed out
static char *kview;        // the same bytes, writable: what the kernels are given
static int64_t emu_calls_n;
static struct { char *p; size_t n; } freed[EMU_FREE_MAX];  // exact-size reuse (the caching allocator sits above)
static int nfreed;

static int in_arena(const void *p) { return (const char *)p >= arena && (const char *)p < arena + EMU_ARENA; }
static void *emu_k(const void *p) { return p ? kview + ((const char *)p - arena) : NULL; }
#define EMU_K(p) ((__typeof__(p))emu_k(p))

static void emu_dev(const char *fn, const char *arg, const void *p) {
    if (p && !in_arena(p)) {
        fprintf(stderr, "emulated device: %s: argument '%s' = %p is host memory, a device pointer was expected\n", fn, arg, p);
        abort();
    }
}

static void emu_host(const char *fn, const char *arg, const void *p) {
    if (p && in_arena(p)) {
        fprintf(stderr, "emulated device: %s: argument '%s' = %p is device memory, a host pointer was expected\n", fn, arg, p);
        abort();
    }
}

// every block ever handed out, in address order (bump allocation): a block's size is the
// distance to the next start
static char **starts;
static size_t nstarts, cap;

static size_t block_size(const char *p) {
    size_t lo = 0, hi = nstarts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (starts[mid] < p) lo = mid + 1; else hi = mid;
    }
    if (lo == nstarts || starts[lo] != p) {
        fprintf(stderr, "emulated device: free of %p, which alloc never returned\n", (const void *)p);
        abort();
    }
    return (size_t)((lo + 1 < nstarts ? starts[lo + 1] : top) - p);
}

static void *emu_alloc(size_t n) {
    n = (n + EMU_ALIGN - 1) / EMU_ALIGN * EMU_ALIGN;
    for (int i = 0; i < nfreed; i++)
        if (freed[i].n == n) {
            char *p = freed[i].p;
            freed[i] = freed[--nfreed];
            return p;
        }
    if ((size_t)(top - arena) + n > EMU_ARENA) return NULL;
    if (nstarts == cap) {
        cap = cap ? 2 * cap : 1024;
        starts = realloc(starts, cap * sizeof *starts);
        if (!starts) abort();
    }
    char *p = top;
    starts[nstarts++] = p;
    top += n;
    return p;
}

static void emu_free(void *p) {
    if (!p) return;
    emu_dev("free", "p", p);
    if (nfreed == EMU_FREE_MAX) return;  // leaked: the arena is address space, not memory
    freed[nfreed].p = p;
    freed[nfreed].n = block_size(p);
    nfreed++;
}

#include "emulated_device.inc"

// adamw_multi: t is a host list of device pointers, which the generator cannot tell from a device
// pointer (scripts/gen_emulated_device.py leaves it to this file)
static void emu_adamw_multi(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale,
                            double ema_decay) {
    emu_calls_n++;
    emu_host("adamw_multi", "t", t);
    cm_adamw_tensor *kt = malloc((size_t)(nt > 0 ? nt : 1) * sizeof *kt);
    if (!kt) abort();
    for (int i = 0; i < nt; i++) {
        emu_dev("adamw_multi", "t[i].p", t[i].p);
        emu_dev("adamw_multi", "t[i].g", t[i].g);
        emu_dev("adamw_multi", "t[i].m", t[i].m);
        emu_dev("adamw_multi", "t[i].v", t[i].v);
        if (t[i].w) emu_dev("adamw_multi", "t[i].w", t[i].w);
        if (t[i].ema) emu_dev("adamw_multi", "t[i].ema", t[i].ema);
        kt[i] = (cm_adamw_tensor){EMU_K(t[i].p), EMU_K(t[i].g), EMU_K(t[i].m), EMU_K(t[i].v), t[i].n, t[i].key,
                                  t[i].w ? EMU_K(t[i].w) : NULL, t[i].ema ? EMU_K(t[i].ema) : NULL};
    }
    emu_cpu->adamw_multi(k, nt, kt, gdt, sdt, lr, b1, b2, eps, wd, bc1, bc2, gscale, ema_decay);
    free(kt);
}

// sumsq_multi: x is a host list of device pointers, as above
static double emu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n) {
    emu_calls_n++;
    emu_host("sumsq_multi", "x", x);
    emu_host("sumsq_multi", "n", n);
    const void **kx = malloc((size_t)(nt > 0 ? nt : 1) * sizeof *kx);
    if (!kx) abort();
    for (int i = 0; i < nt; i++) {
        emu_dev("sumsq_multi", "x[i]", x[i]);
        kx[i] = EMU_K(x[i]);
    }
    double s = emu_cpu->sumsq_multi(k, dt, nt, kx, n);
    free(kx);
    return s;
}

static const cm_backend emu_backend = {
    .name = "emulated-cuda",
    EMU_TABLE_ENTRIES
};

static cm_kctx emu_ctx = {{CM_CUDA, 0}, NULL, NULL};

static const cm_kctx *emu_ctx_for(int index) {
    if (index != 0) {
        fprintf(stderr, "emulated device: cuda:%d asked for, only cuda:0 exists\n", index);
        return NULL;
    }
    return &emu_ctx;
}

// a host touch of the arena lands here: say where, then die as a crash would
static void emu_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char msg[160];
    int n = snprintf(msg, sizeof msg, "emulated device: host code touched device memory at %p\n", si->si_addr);
    if (in_arena(si->si_addr)) (void)!write(2, msg, (size_t)n);
    signal(sig, SIG_DFL);
    raise(sig);
}

void emu_install(void) {
    const void *const *slot = (const void *const *)&emu_backend;
    for (size_t i = 1; i < sizeof emu_backend / sizeof(void *); i++)
        if (!slot[i] && ((const void *const *)emu_cpu)[i]) {
            fprintf(stderr, "emulated device: entry point %zu has no wrapper: run scripts/gen_emulated_device.py\n", i);
            abort();
        }
    int fd = memfd_create("cameo-emulated-device", 0);
    if (fd < 0 || ftruncate(fd, (off_t)EMU_ARENA)) {
        perror("emulated device: memfd");
        abort();
    }
    arena = mmap(NULL, EMU_ARENA, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    kview = mmap(NULL, EMU_ARENA, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (arena == MAP_FAILED || kview == MAP_FAILED) {
        perror("emulated device: mmap");
        abort();
    }
    close(fd);
    top = arena;
    struct sigaction sa = {0};
    sa.sa_sigaction = emu_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    backend_emulate_cuda(&emu_backend, emu_ctx_for);
}

int64_t emu_calls(void) { return emu_calls_n; }
size_t emu_bytes(void) { return (size_t)(top - arena); }
