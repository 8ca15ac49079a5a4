// upload.c — see upload.h.
//
// Each piece of at most UP_SLOT_MAX bytes takes the next slot of the device's ring:
//   host:    wait until the slot's previous upload is done (its pinned buffer is free), copy in
//   copy:    wait until the compute stream has moved the slot's previous contents out, then DMA
//            the pinned buffer into the slot's device buffer           -> event `copied`
//   compute: wait for `copied`, copy the device buffer into dst        -> event `consumed`
// The copy stream never waits for the compute stream's backlog, only for a slot's last
// device-to-device copy: with UP_SLOTS slots, a step's uploads (the next batch) run on the copy
// engine while the previous step's kernels still run. The device buffers are the ring's own —
// never tensor memory, which the caching allocator may hand out while queued kernels still use it.
#include "autograd/upload.h"
#include <pthread.h>
#include <string.h>
#include "kernels/backend.h"

#define UP_SLOTS 8
#define UP_SLOT_MAX ((size_t)32 << 20)  // per slot: at most 8 x 32 MiB pinned + the same on the device
#define UP_MIN_BYTES ((size_t)64 << 10)
#define UP_DEVICES 16

typedef struct {
    void *host, *dev;   // pinned host / device buffers of cap bytes (allocated at first use, grown)
    size_t cap;
    uint64_t copied;    // copy-stream event after the slot's last upload (0: none)
    uint64_t consumed;  // compute-stream event after the slot's last device-to-device copy
} up_slot;

typedef struct {
    up_slot s[UP_SLOTS];
    int next;
} up_ring;

static up_ring g_rings[UP_DEVICES];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

// the slot's buffers hold at least len bytes; false when memory for them cannot be had
static bool slot_reserve(const cm_backend *be, const cm_kctx *k, up_slot *s, size_t len) {
    if (s->cap >= len) return true;
    size_t cap = s->cap ? s->cap : (size_t)1 << 20;
    while (cap < len) cap *= 2;
    if (cap > UP_SLOT_MAX) cap = UP_SLOT_MAX;
    if (s->host || s->dev) {  // growing: the old buffers must be idle on both streams
        be->event_sync(k, s->copied);
        be->sync(k);
        be->host_free(s->host);
        be->free(s->dev);
        *s = (up_slot){0};
    }
    s->host = be->host_alloc(cap);
    s->dev = be->alloc(cap);
    if (!s->host || !s->dev) {
        if (s->host) be->host_free(s->host);
        if (s->dev) be->free(s->dev);
        *s = (up_slot){0};
        return false;
    }
    s->cap = cap;
    return true;
}

void upload_to_device(cm_device dev, void *dst, const void *src, size_t n) {
    const cm_backend *be = backend_get(dev.type);
    const cm_kctx *k = backend_ctx(dev);
    if (!n) return;
    if (dev.type == CM_CPU || n < UP_MIN_BYTES || dev.index < 0 || dev.index >= UP_DEVICES) {
        be->memcpy_h2d(k, dst, src, n);
        return;
    }
    up_ring *r = &g_rings[dev.index];
    pthread_mutex_lock(&g_lock);
    size_t off = 0;
    while (off < n) {
        size_t len = n - off < UP_SLOT_MAX ? n - off : UP_SLOT_MAX;
        up_slot *s = &r->s[r->next];
        r->next = (r->next + 1) % UP_SLOTS;
        if (!slot_reserve(be, k, s, len)) break;  // no staging memory: the rest goes the plain way
        be->event_sync(k, s->copied);              // the pinned buffer's last DMA has finished
        memcpy(s->host, (const char *)src + off, len);
        be->event_wait(k, CM_STREAM_COPY, s->consumed);  // its device buffer has been read out
        be->memcpy_h2d_async(k, s->dev, s->host, len);
        s->copied = be->event_record(k, CM_STREAM_COPY);
        be->event_wait(k, CM_STREAM_COMPUTE, s->copied);
        be->memcpy_d2d(k, (char *)dst + off, s->dev, len);
        s->consumed = be->event_record(k, CM_STREAM_COMPUTE);
        off += len;
    }
    pthread_mutex_unlock(&g_lock);
    if (off < n) be->memcpy_h2d(k, (char *)dst + off, (const char *)src + off, n - off);
}
