// profile.c — the op profiler (profile.h). The wrappers are generated from backend.h into
// backend_profile.inc (scripts/gen_backend_profile.py); this file holds what they call.
#include "kernels/profile.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile int cm_prof_active = 0;
const cm_backend *backend_real(cm_devtype t);  // backend.c: the table behind the timed one

// the variant an `op` / `act` argument names; values index the name lists below
enum { PROF_V_NONE = 0, PROF_V_BIN, PROF_V_UN, PROF_V_GLU, PROF_V_ACT };
#define PROF_VALUES 8  // values per variant kind (the largest enum has 6)
static const char *const v_bin[] = {"add", "sub", "mul", "div"};
static const char *const v_un[] = {"gelu_tanh", "gelu_erf", "silu", "square", "exp", "neg"};
static const char *const v_glu[] = {"geglu", "swiglu"};
static const char *const v_act[] = {"none", "gelu_tanh", "dgelu_tanh"};

// one call in flight: id < 0 when it is not timed (profiler off, or nested in a timed call)
typedef struct prof_call { int id, vk, v; unsigned gen; uint64_t a; } prof_call;
typedef struct prof_mark { const cm_kctx *k; int id, vk, v; uint64_t a, b; } prof_mark;

static _Thread_local int prof_depth;  // timed calls this thread is inside
static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static prof_mark *pend;               // marks not yet folded [pend_cap]
static int pend_n, pend_cap, open_calls;
static unsigned prof_gen;             // bumped when the devices' marks are reset: older marks are void
#define PROF_FOLD_AT 4096             // fold (and reuse the device's events) every this many calls

static inline const cm_backend *prof_inner(const cm_kctx *k) { return backend_real(k->dev.type); }

static inline prof_call prof_begin(const cm_kctx *k, int id, int vk, int v) {
    prof_call c = {-1, vk, v, 0, 0};
    if (prof_depth++ || !cm_prof_active) return c;
    c.id = id;
    pthread_mutex_lock(&prof_lock);
    open_calls++;
    c.gen = prof_gen;
    pthread_mutex_unlock(&prof_lock);
    c.a = prof_inner(k)->timer_mark(k);
    return c;
}
static void prof_end(const cm_kctx *k, const prof_call *c);

#include "kernels/backend_profile.inc"

typedef struct prof_sum { int64_t calls; double ms; int vk; } prof_sum;
static prof_sum sums[2][PROF_N_ENTRIES][PROF_VALUES];  // [device type][entry][variant value]

// the marks' times into the sums; then each device's events may be reused. Under prof_lock.
static void fold_locked(void) {
    for (int i = 0; i < pend_n; i++) {
        prof_mark *m = &pend[i];
        int dev = m->k->dev.type == CM_CPU ? 0 : 1, v = m->v >= 0 && m->v < PROF_VALUES ? m->v : 0;
        prof_sum *s = &sums[dev][m->id][v];
        s->calls++;
        s->ms += prof_inner(m->k)->timer_ms(m->k, m->a, m->b);
        s->vk = m->vk;
    }
    // every context the marks came from (few: the CPU and a device or two)
    for (int i = 0; i < pend_n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = pend[j].k == pend[i].k;
        if (!seen) prof_inner(pend[i].k)->timer_reset(pend[i].k);
    }
    if (pend_n) prof_gen++;
    pend_n = 0;
}

static void prof_end(const cm_kctx *k, const prof_call *c) {
    prof_depth--;
    if (c->id < 0) return;
    uint64_t b = prof_inner(k)->timer_mark(k);
    pthread_mutex_lock(&prof_lock);
    open_calls--;
    if (c->gen != prof_gen) {  // its first mark was reset under it (a stop or start on another thread): dropped
        pthread_mutex_unlock(&prof_lock);
        return;
    }
    if (pend_n == pend_cap) {
        int cap = pend_cap ? 2 * pend_cap : PROF_FOLD_AT;
        prof_mark *p = realloc(pend, (size_t)cap * sizeof *p);
        if (!p) cm_die("profiler", "out of host memory for %d marks", cap);
        pend = p;
        pend_cap = cap;
    }
    pend[pend_n++] = (prof_mark){k, c->id, c->vk, c->v, c->a, b};
    // fold only when no call is between its marks: a reset would free an event still to be read
    if (pend_n >= PROF_FOLD_AT && !open_calls) fold_locked();
    pthread_mutex_unlock(&prof_lock);
}

const cm_backend *prof_table(cm_devtype t, const cm_backend *real) {
    static cm_backend tables[2];
    static const cm_backend *filled[2];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int i = t == CM_CPU ? 0 : 1;
    if (__atomic_load_n(&filled[i], __ATOMIC_ACQUIRE) == real) return &tables[i];  // every call after the first
    pthread_mutex_lock(&lock);
    if (filled[i] != real) {  // the CUDA slot changes when a test installs its emulated device
        prof_fill_table(&tables[i], real);
        // every entry the backend has must be in the timed table: the name, then only function
        // pointers (backend.h), so an entry the generated file misses shows as a NULL here
        void (*const *want)(void) = (void (*const *)(void))((const char *)real + sizeof(const char *));
        void (*const *got)(void) = (void (*const *)(void))((const char *)&tables[i] + sizeof(const char *));
        for (size_t e = 0; e < (sizeof(cm_backend) - sizeof(const char *)) / sizeof(void (*)(void)); e++)
            if (want[e] && !got[e]) {
                cm_prof_active = 0;  // exit's handlers free memory through backend_get
                pthread_mutex_unlock(&lock);
                cm_die("profiler", "kernels/backend_profile.inc misses entry %zu of cm_backend: rerun "
                       "python3 scripts/gen_backend_profile.py after changing kernels/backend.h", e + 1);
            }
        __atomic_store_n(&filled[i], real, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
    return &tables[i];
}

void prof_start(void) {
    pthread_mutex_lock(&prof_lock);
    fold_locked();
    memset(sums, 0, sizeof sums);
    cm_prof_active = 1;
    pthread_mutex_unlock(&prof_lock);
}

static void row_name(char *buf, size_t n, int id, int vk, int v) {
    const char *const *names = vk == PROF_V_BIN ? v_bin : vk == PROF_V_UN ? v_un : vk == PROF_V_GLU ? v_glu : v_act;
    int nv = vk == PROF_V_BIN ? 4 : vk == PROF_V_UN ? 6 : vk == PROF_V_GLU ? 2 : 3;
    if (vk == PROF_V_NONE) snprintf(buf, n, "%s", prof_entry_names[id]);
    else if (v < nv) snprintf(buf, n, "%s[%s]", prof_entry_names[id], names[v]);
    else snprintf(buf, n, "%s[%d]", prof_entry_names[id], v);
}

static int cmp_rows(const void *a, const void *b) {
    double x = ((const cm_prof_row *)a)->ms, y = ((const cm_prof_row *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int prof_stop(cm_prof_row *rows, int max) {
    pthread_mutex_lock(&prof_lock);
    cm_prof_active = 0;
    fold_locked();
    cm_prof_row all[2 * PROF_N_ENTRIES * PROF_VALUES];
    int n = 0;
    for (int d = 0; d < 2; d++)
        for (int id = 0; id < PROF_N_ENTRIES; id++)
            for (int v = 0; v < PROF_VALUES; v++) {
                const prof_sum *s = &sums[d][id][v];
                if (!s->calls) continue;
                cm_prof_row *r = &all[n++];
                row_name(r->name, sizeof r->name, id, s->vk, v);
                r->dev = d ? CM_CUDA : CM_CPU;
                r->calls = s->calls;
                r->ms = s->ms;
            }
    pthread_mutex_unlock(&prof_lock);
    qsort(all, (size_t)n, sizeof all[0], cmp_rows);
    for (int i = 0; i < n && i < max; i++) rows[i] = all[i];
    return n;
}

int prof_format(char *buf, size_t n, const char *title, const cm_prof_row *rows, int nrows, double wall_ms, int top) {
    size_t at = 0;
#define EMIT(...) (at += (size_t)snprintf(buf + (at < n ? at : n), at < n ? n - at : 0, __VA_ARGS__))
    bool both = false;
    for (int i = 1; i < nrows; i++) both |= rows[i].dev != rows[0].dev;
    EMIT("%s — device time per backend call, summed (%.3f ms wall):\n\n", title, wall_ms);
    EMIT("| op | calls | ms | share | µs per call |\n|---|---:|---:|---:|---:|\n");
    double tot = 0, rest = 0;
    int64_t calls = 0, rest_calls = 0;
    for (int i = 0; i < nrows; i++) {
        tot += rows[i].ms;
        calls += rows[i].calls;
        if (i >= top) {
            rest += rows[i].ms;
            rest_calls += rows[i].calls;
            continue;
        }
        EMIT("| %s%s | %lld | %.3f | %.1f %% | %.1f |\n", rows[i].name, both ? (rows[i].dev == CM_CPU ? " (cpu)" : " (cuda)") : "",
             (long long)rows[i].calls, rows[i].ms, wall_ms > 0 ? 100 * rows[i].ms / wall_ms : 0, 1e3 * rows[i].ms / (double)rows[i].calls);
    }
    if (nrows > top)
        EMIT("| the other %d | %lld | %.3f | %.1f %% | |\n", nrows - top, (long long)rest_calls, rest, wall_ms > 0 ? 100 * rest / wall_ms : 0);
    EMIT("| **all ops** | %lld | %.3f | %.1f %% | |\n", (long long)calls, tot, wall_ms > 0 ? 100 * tot / wall_ms : 0);
    if (wall_ms > 0)
        EMIT("| between ops (the host's own time, allocator, synchronisation) | | %.3f | %.1f %% | |\n", wall_ms - tot,
             100 * (wall_ms - tot) / wall_ms);
    // the same time by kind: what a model's MFU is made of
    static const char *const kinds[] = {"GEMM", "attention", "optimizer", "copies", "memory-bound ops"};
    double by[5] = {0};
    for (int i = 0; i < nrows; i++) {
        const char *nm = rows[i].name;
        int k = !strncmp(nm, "gemm", 4) ? 0 : !strncmp(nm, "attn_", 5) ? 1
                : !strncmp(nm, "adamw", 5) || !strncmp(nm, "sumsq", 5) ? 2 : !strncmp(nm, "memcpy", 6) ? 3 : 4;
        by[k] += rows[i].ms;
    }
    EMIT("\nBy kind:");
    const char *sep = " ";
    for (int k = 0; k < 5; k++)
        if (by[k] > 0) {
            EMIT("%s%s %.3f ms (%.1f %%)", sep, kinds[k], by[k], wall_ms > 0 ? 100 * by[k] / wall_ms : 0);
            sep = "; ";
        }
    if (wall_ms > 0) EMIT("%sbetween ops %.3f ms (%.1f %%)", sep, wall_ms - tot, 100 * (wall_ms - tot) / wall_ms);
    EMIT(".\n");
#undef EMIT
    return (int)at;
}

int prof_stop_format(char *buf, size_t n, const char *title, double wall_ms, int top) {
    static cm_prof_row rows[2 * PROF_N_ENTRIES * PROF_VALUES];  // every row there can be
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    int nr = prof_stop(rows, (int)(sizeof rows / sizeof rows[0]));
    int r = prof_format(buf, n, title, rows, nr, wall_ms, top);
    pthread_mutex_unlock(&lock);
    return r;
}
