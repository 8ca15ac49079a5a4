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

// a GEMM's or an attention call's shape, summed apart with its FLOPs (kind 0: not summed per
// shape). GEMM: op(A), op(B), d = {M, N, K, batch}; attention: d = {B, H, Lq, Lk, D}; a pair of
// attentions (attn_*_group, two problems of one B, H, D): d = {B H, Lq1, Lk1, Lq2, Lk2, D}
typedef struct prof_shape { int8_t kind, ta, tb; int64_t d[6]; } prof_shape;
enum { PROF_SH_K_NONE = 0, PROF_SH_K_GEMM, PROF_SH_K_ATTN, PROF_SH_K_ATTN2 };
#define PROF_SH_NONE ((prof_shape){0})
#define PROF_SH_GEMM(ta, tb, m, n, k, b) ((prof_shape){PROF_SH_K_GEMM, (int8_t)(ta), (int8_t)(tb), {m, n, k, b, 0}})
#define PROF_SH_ATTN(b, h, lq, lk, dd) ((prof_shape){PROF_SH_K_ATTN, 0, 0, {b, h, lq, lk, dd, 0}})
static prof_shape prof_sh_attn_group(int n, const cm_attn_problem *p) {
    if (n != 2) return PROF_SH_NONE;
    return (prof_shape){PROF_SH_K_ATTN2, 0, 0, {p[0].B * p[0].H, p[0].Lq, p[0].Lk, p[1].Lq, p[1].Lk, p[0].D}};
}

// one call in flight: id < 0 when it is not timed (profiler off, or nested in a timed call)
typedef struct prof_call { int id, vk, v; unsigned gen; uint64_t a; prof_shape sh; } prof_call;
typedef struct prof_mark { const cm_kctx *k; int id, vk, v; uint64_t a, b; prof_shape sh; } prof_mark;

static _Thread_local int prof_depth;  // timed calls this thread is inside
static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static prof_mark *pend;               // marks not yet folded [pend_cap]
static int pend_n, pend_cap, open_calls;
static unsigned prof_gen;             // bumped when the devices' marks are reset: older marks are void
#define PROF_FOLD_AT 4096             // fold (and reuse the device's events) every this many calls

static inline const cm_backend *prof_inner(const cm_kctx *k) { return backend_real(k->dev.type); }

static inline prof_call prof_begin(const cm_kctx *k, int id, int vk, int v, prof_shape sh) {
    prof_call c = {-1, vk, v, 0, 0, PROF_SH_NONE};
    if (prof_depth++ || !cm_prof_active) return c;
    c.id = id;
    c.sh = sh;
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

// the GEMM and attention calls per (device, entry, variant, shape): an open-addressed table; shapes
// past its size are summed in one overflow row
typedef struct prof_shsum { int used, dev, id, vk, v; prof_shape sh; int64_t calls; double ms; } prof_shsum;
#define PROF_SHAPES 512
static prof_shsum shsums[PROF_SHAPES];
static int shsums_n;
static prof_shsum sh_over;  // calls whose shape found no slot

static bool same_shape(const prof_shsum *s, int dev, int id, int v, const prof_shape *sh) {
    return s->dev == dev && s->id == id && s->v == v && s->sh.kind == sh->kind && s->sh.ta == sh->ta && s->sh.tb == sh->tb &&
           !memcmp(s->sh.d, sh->d, sizeof sh->d);
}

static void shape_add_locked(int dev, const prof_mark *m, int v, double ms) {
    uint64_t h = 1469598103934665603ull;
    const int64_t *d = m->sh.d, key[12] = {dev, m->id, v, m->sh.kind, m->sh.ta, m->sh.tb, d[0], d[1], d[2], d[3], d[4], d[5]};
    for (int i = 0; i < 12; i++) h = (h ^ (uint64_t)key[i]) * 1099511628211ull;
    for (int p = 0; p < PROF_SHAPES; p++) {
        prof_shsum *s = &shsums[(h + (uint64_t)p) % PROF_SHAPES];
        if (s->used && !same_shape(s, dev, m->id, v, &m->sh)) continue;
        if (!s->used) {
            if (shsums_n >= PROF_SHAPES * 3 / 4) break;  // keep probes short: the rest overflow
            *s = (prof_shsum){1, dev, m->id, m->vk, v, m->sh, 0, 0};
            shsums_n++;
        }
        s->calls++;
        s->ms += ms;
        return;
    }
    sh_over.calls++;
    sh_over.ms += ms;
}

// the marks' times into the sums; then each device's events may be reused. Under prof_lock.
static void fold_locked(void) {
    for (int i = 0; i < pend_n; i++) {
        prof_mark *m = &pend[i];
        int dev = m->k->dev.type == CM_CPU ? 0 : 1, v = m->v >= 0 && m->v < PROF_VALUES ? m->v : 0;
        prof_sum *s = &sums[dev][m->id][v];
        double ms = prof_inner(m->k)->timer_ms(m->k, m->a, m->b);
        s->calls++;
        s->ms += ms;
        s->vk = m->vk;
        if (m->sh.kind) shape_add_locked(dev, m, v, ms);
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
    pend[pend_n++] = (prof_mark){k, c->id, c->vk, c->v, c->a, b, c->sh};
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
    memset(shsums, 0, sizeof shsums);
    shsums_n = 0;
    sh_over = (prof_shsum){0};
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

static int cmp_shape_rows(const void *a, const void *b) {
    double x = ((const cm_prof_shape_row *)a)->ms, y = ((const cm_prof_shape_row *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int prof_shapes(cm_prof_shape_row *rows, int max) {
    static cm_prof_shape_row all[PROF_SHAPES + 1];
    pthread_mutex_lock(&prof_lock);
    int n = 0;
    for (int i = 0; i < PROF_SHAPES; i++) {
        const prof_shsum *s = &shsums[i];
        if (!s->used) continue;
        cm_prof_shape_row *r = &all[n++];
        row_name(r->name, sizeof r->name, s->id, s->vk, s->v);
        r->dev = s->dev ? CM_CUDA : CM_CPU;
        r->calls = s->calls;
        r->ms = s->ms;
        const int64_t *d = s->sh.d;
        if (s->sh.kind == PROF_SH_K_GEMM) {
            int at = snprintf(r->shape, sizeof r->shape, "%c%c %lld×%lld×%lld", s->sh.ta ? 'T' : 'N', s->sh.tb ? 'T' : 'N',
                              (long long)d[0], (long long)d[1], (long long)d[2]);
            if (d[3] > 1 && at > 0 && at < (int)sizeof r->shape) snprintf(r->shape + at, sizeof r->shape - (size_t)at, " ×%lld", (long long)d[3]);
            r->flop = 2.0 * (double)d[0] * (double)d[1] * (double)d[2] * (double)d[3];
        } else if (s->sh.kind == PROF_SH_K_ATTN2) {
            snprintf(r->shape, sizeof r->shape, "BH%lld %lld×%lld + %lld×%lld D%lld", (long long)d[0], (long long)d[1],
                     (long long)d[2], (long long)d[3], (long long)d[4], (long long)d[5]);
            r->flop = 4.0 * (double)d[0] * ((double)d[1] * (double)d[2] + (double)d[3] * (double)d[4]) * (double)d[5];
            if (strstr(r->name, "_bwd")) r->flop *= 2.5;
        } else {
            snprintf(r->shape, sizeof r->shape, "B%lld H%lld %lld×%lld D%lld", (long long)d[0], (long long)d[1], (long long)d[2],
                     (long long)d[3], (long long)d[4]);
            r->flop = 4.0 * (double)d[0] * (double)d[1] * (double)d[2] * (double)d[3] * (double)d[4];
            if (strstr(r->name, "_bwd")) r->flop *= 2.5;
        }
    }
    if (sh_over.calls) all[n++] = (cm_prof_shape_row){"other shapes", "", CM_CPU, sh_over.calls, sh_over.ms, 0};
    pthread_mutex_unlock(&prof_lock);
    qsort(all, (size_t)n, sizeof all[0], cmp_shape_rows);
    for (int i = 0; i < n && i < max; i++) rows[i] = all[i];
    return n;
}

int prof_format_shapes(char *buf, size_t n, const cm_prof_shape_row *rows, int nrows, int top) {
    size_t at = 0;
#define EMIT(...) (at += (size_t)snprintf(buf + (at < n ? at : n), at < n ? n - at : 0, __VA_ARGS__))
    bool both = false;
    for (int i = 1; i < nrows; i++) both |= rows[i].dev != rows[0].dev && rows[i].flop > 0 && rows[0].flop > 0;
    EMIT("GEMMs and attention by shape (TFLOP/s of the model's count: GEMM 2·M·N·K; attention 4·B·H·Lq·Lk·D "
         "forward, 2.5× that backward):\n\n");
    EMIT("| call | shape | calls | ms | µs per call | TFLOP/s |\n|---|---|---:|---:|---:|---:|\n");
    double rest = 0;
    int64_t rest_calls = 0;
    for (int i = 0; i < nrows; i++) {
        const cm_prof_shape_row *r = &rows[i];
        if (i >= top) {
            rest += r->ms;
            rest_calls += r->calls;
            continue;
        }
        EMIT("| %s%s | %s | %lld | %.3f | %.1f | ", r->name, both ? (r->dev == CM_CPU ? " (cpu)" : " (cuda)") : "", r->shape,
             (long long)r->calls, r->ms, 1e3 * r->ms / (double)r->calls);
        if (r->flop > 0 && r->ms > 0) EMIT("%.4g |\n", r->flop * (double)r->calls / (r->ms * 1e9));
        else EMIT("|\n");
    }
    if (nrows > top) EMIT("| the other %d | | %lld | %.3f | | |\n", nrows - top, (long long)rest_calls, rest);
    // all GEMMs and all attention calls: their summed FLOPs over their summed time
    for (int kind = 0; kind < 2; kind++) {
        double ms = 0, flop = 0;
        int64_t calls = 0;
        for (int i = 0; i < nrows; i++)
            if (rows[i].flop > 0 && !strncmp(rows[i].name, kind ? "attn_" : "gemm", kind ? 5 : 4))
                ms += rows[i].ms, flop += rows[i].flop * (double)rows[i].calls, calls += rows[i].calls;
        if (calls && ms > 0)
            EMIT("| **all %s** | | %lld | %.3f | | %.4g |\n", kind ? "attention" : "GEMMs", (long long)calls, ms, flop / (ms * 1e9));
    }
#undef EMIT
    return (int)at;
}

int prof_stop_format(char *buf, size_t n, const char *title, double wall_ms, int top) {
    static cm_prof_row rows[2 * PROF_N_ENTRIES * PROF_VALUES];  // every row there can be
    static cm_prof_shape_row shapes[PROF_SHAPES + 1];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    int nr = prof_stop(rows, (int)(sizeof rows / sizeof rows[0]));
    int r = prof_format(buf, n, title, rows, nr, wall_ms, top);
    int ns = prof_shapes(shapes, (int)(sizeof shapes / sizeof shapes[0]));
    if (ns > 0 && r >= 0 && (size_t)r + 2 < n) {
        buf[r++] = '\n';
        buf[r] = 0;
        r += prof_format_shapes(buf + r, n - (size_t)r, shapes, ns, top);
    }
    pthread_mutex_unlock(&lock);
    return r;
}
