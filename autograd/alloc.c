// alloc.c — per-device caching allocator: size-class free lists over the backend's raw alloc.
#include "autograd/alloc.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"

#if defined(__SANITIZE_ADDRESS__)
#define CM_ALLOC_CACHE 0  // let ASan see every use-after-free
#else
#define CM_ALLOC_CACHE 1
#endif

#define MAX_DEVICES 17  // cpu + 16 GPUs

typedef struct { size_t size; void **ptrs; int n, cap; } size_class;

typedef struct {
    size_class *cls;
    int ncls, capcls;
    cm_alloc_stats st;
} dev_pool;

static dev_pool pools[MAX_DEVICES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static dev_pool *pool_of(cm_device d) {
    int i = d.type == CM_CPU ? 0 : 1 + d.index;
    CM_CHECK(i >= 0 && i < MAX_DEVICES, "alloc", "device index %d out of range", d.index);
    return &pools[i];
}

// round up: 512 B granularity below 1 MiB, 1/16 of the power of two above (bounded waste, few classes)
static size_t round_size(size_t n) {
    if (n < (1u << 20)) return (n + 511) & ~(size_t)511;
    if (n > SIZE_MAX / 2) return n;  // no power of two above it: no device has it (alloc_try fails)
    size_t p = 1;
    while (p < n) p <<= 1;
    size_t step = p >> 4;
    return (n + step - 1) / step * step;
}

static size_class *find_class(dev_pool *p, size_t size, int create) {
    for (int i = 0; i < p->ncls; i++)
        if (p->cls[i].size == size) return &p->cls[i];
    if (!create) return NULL;
    if (p->ncls == p->capcls) {
        p->capcls = p->capcls ? 2 * p->capcls : 64;
        p->cls = realloc(p->cls, (size_t)p->capcls * sizeof *p->cls);
        CM_CHECK(p->cls, "alloc", "out of host memory");
    }
    size_class *c = &p->cls[p->ncls++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

static void release_cache_locked(cm_device dev, dev_pool *p) {
    const cm_backend *be = backend_get(dev.type);
    for (int i = 0; i < p->ncls; i++) {
        for (int j = 0; j < p->cls[i].n; j++) be->free(p->cls[i].ptrs[j]);
        p->st.cached -= p->cls[i].size * (size_t)p->cls[i].n;
        p->cls[i].n = 0;
    }
}

void *alloc_try(cm_device dev, size_t nbytes) {
    size_t size = round_size(nbytes);
    if (size > SIZE_MAX / 2) return NULL;  // a size gone negative somewhere, or simply too big
    // the backend's alloc takes the calling thread's current device: make it dev's (a first
    // tensor of a cuda:1 run would otherwise land on cuda:0, the default, unusable by cuda:1's kernels)
    if (dev.type != CM_CPU && backend_get(dev.type)) backend_ctx(dev);
    pthread_mutex_lock(&mu);
    dev_pool *p = pool_of(dev);
    void *ptr = NULL;
    size_class *c = CM_ALLOC_CACHE ? find_class(p, size, 0) : NULL;
    if (c && c->n) {
        ptr = c->ptrs[--c->n];
        p->st.cached -= size;
    } else {
        const cm_backend *be = backend_get(dev.type);
        ptr = be->alloc(size);
        if (!ptr) {  // give the cache back and retry once before failing
            release_cache_locked(dev, p);
            ptr = be->alloc(size);
        }
        if (!ptr) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        p->st.n_allocs++;
    }
    p->st.current += size;
    p->st.allocated += size;
    if (p->st.current > p->st.peak) p->st.peak = p->st.current;
    pthread_mutex_unlock(&mu);
    return ptr;
}

void alloc_die_oom(cm_device dev, size_t nbytes, const char *what) {
    char dn[16];
    cm_alloc_stats st = alloc_stats(dev);
    size_t fr = backend_get(dev.type)->mem_free(backend_ctx(dev));
    cm_die("alloc", "out of memory on %s allocating %zu bytes for %s (%zu bytes free on the device, %zu in live tensors, "
           "peak %zu)", device_name(dev, dn, sizeof dn), round_size(nbytes), what ? what : "?", fr, st.current, st.peak);
}

void *alloc_get(cm_device dev, size_t nbytes, const char *what) {
    void *p = alloc_try(dev, nbytes);
    if (!p) alloc_die_oom(dev, nbytes, what);
    return p;
}

void alloc_put(cm_device dev, void *ptr, size_t nbytes) {
    if (!ptr) return;
    size_t size = round_size(nbytes);
    pthread_mutex_lock(&mu);
    dev_pool *p = pool_of(dev);
    p->st.current -= size;
    if (!CM_ALLOC_CACHE) {
        backend_get(dev.type)->free(ptr);
        pthread_mutex_unlock(&mu);
        return;
    }
    size_class *c = find_class(p, size, 1);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->ptrs = realloc(c->ptrs, (size_t)c->cap * sizeof(void *));
        CM_CHECK(c->ptrs, "alloc", "out of host memory");
    }
    c->ptrs[c->n++] = ptr;
    p->st.cached += size;
    pthread_mutex_unlock(&mu);
}

cm_alloc_stats alloc_stats(cm_device dev) {
    pthread_mutex_lock(&mu);
    cm_alloc_stats s = pool_of(dev)->st;
    pthread_mutex_unlock(&mu);
    return s;
}

void alloc_reset_peak(cm_device dev) {
    pthread_mutex_lock(&mu);
    dev_pool *p = pool_of(dev);
    p->st.peak = p->st.current;
    pthread_mutex_unlock(&mu);
}

void alloc_empty_cache(cm_device dev) {
    pthread_mutex_lock(&mu);
    dev_pool *p = pool_of(dev);
    release_cache_locked(dev, p);
    for (int i = 0; i < p->ncls; i++) free(p->cls[i].ptrs);
    free(p->cls);
    p->cls = NULL;
    p->ncls = p->capcls = 0;
    pthread_mutex_unlock(&mu);
}

// the backends' way back to the cache when their own scratch allocation fails (kernels/backend.h)
__attribute__((constructor)) static void alloc_offer_cache(void) { cm_release_cached = alloc_empty_cache; }

// return cached host memory at exit so LeakSanitizer reports only real leaks
__attribute__((destructor)) static void alloc_at_exit(void) { alloc_empty_cache(CM_DEV_CPU); }
