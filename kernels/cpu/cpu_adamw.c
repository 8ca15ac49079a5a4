// cpu_adamw.c — AdamW step on f32 master weights (decoupled weight decay), gradient f32 or bf16;
// one tensor (adamw) or a list of them in one parallel loop over chunks (adamw_multi). Both run
// every element through the same range function, so their results are the same bits.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_internal.h"
#include "kernels/sr_round.h"

// elements per chunk of adamw_multi's loop (and of adamw's, so both split alike)
#define ADAMW_CHUNK 16384

typedef struct {
    float gs, b1f, b2f, c1, c2, decay, step, rbc2, epsf;
} adamw_consts;

// the host-folded constants (the CUDA kernels take the same ones)
static adamw_consts adamw_fold(double lr, double b1, double b2, double eps, double wd, double bc1, double bc2,
                               double gscale) {
    return (adamw_consts){.gs = (float)gscale, .b1f = (float)b1, .b2f = (float)b2, .c1 = (float)(1 - b1),
                          .c2 = (float)(1 - b2), .decay = (float)(1 - lr * wd), .step = (float)(lr / bc1),
                          .rbc2 = (float)(1 / sqrt(bc2)), .epsf = (float)eps};
}

// g *= gscale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr wd p;
// p -= lr (m / bc1) / (sqrt(v / bc2) + eps)      — PyTorch's AdamW order, in f32 per element
#define ADAMW_RANGE(LOADG)                                                                       \
    for (int64_t i = lo; i < hi; i++) {                                                          \
        float gi = (LOADG) * c.gs;                                                               \
        float mi = c.b1f * m[i] + c.c1 * gi, vi = c.b2f * v[i] + c.c2 * gi * gi;                 \
        m[i] = mi, v[i] = vi;                                                                    \
        float pi = p[i] * c.decay;                                                               \
        p[i] = pi - c.step * mi / (sqrtf(vi) * c.rbc2 + c.epsf);                                 \
    }

// elements [lo, hi) of one tensor
static void adamw_range(adamw_consts c, int64_t lo, int64_t hi, float *p, cm_dtype gdt, const void *g, float *m,
                        float *v) {
    if (gdt == CM_F32) {
        const float *gg = g;
        ADAMW_RANGE(gg[i])
    } else {
        const uint16_t *gg = g;
        ADAMW_RANGE(cpu_bf16_to_f32(gg[i]))
    }
}

// the same arithmetic on bf16 moments: read as f32, stored with stochastic rounding keyed (key, i)
#define ADAMW_RANGE_BF16(LOADG)                                                                  \
    for (int64_t i = lo; i < hi; i++) {                                                          \
        float gi = (LOADG) * c.gs;                                                               \
        float mi = c.b1f * cpu_bf16_to_f32(m[i]) + c.c1 * gi;                                    \
        float vi = c.b2f * cpu_bf16_to_f32(v[i]) + c.c2 * gi * gi;                               \
        uint32_t mb, vb;                                                                         \
        memcpy(&mb, &mi, 4), memcpy(&vb, &vi, 4);                                                \
        uint32_t r = cm_sr_bits(key, i);                                                         \
        m[i] = cm_bf16_sr(mb, r), v[i] = cm_bf16_sr(vb, r ^ 0x5A5Au);                            \
        float pi = p[i] * c.decay;                                                               \
        p[i] = pi - c.step * mi / (sqrtf(vi) * c.rbc2 + c.epsf);                                 \
    }

static void adamw_range_bf16(adamw_consts c, int64_t lo, int64_t hi, float *p, cm_dtype gdt, const void *g, uint16_t *m,
                             uint16_t *v, uint64_t key) {
    if (gdt == CM_F32) {
        const float *gg = g;
        ADAMW_RANGE_BF16(gg[i])
    } else {
        const uint16_t *gg = g;
        ADAMW_RANGE_BF16(cpu_bf16_to_f32(gg[i]))
    }
}

static void check_gdt(const char *op, cm_dtype gdt) {
    if (gdt != CM_F32 && gdt != CM_BF16)
        cm_die(op, "gradient dtype %s not supported (allowed: f32, bf16)", dtype_name(gdt));
}

void cpu_adamw(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v, double lr,
               double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale) {
    check_gdt("adamw", gdt);
    const adamw_consts c = adamw_fold(lr, b1, b2, eps, wd, bc1, bc2, gscale);
    const int64_t nc = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN) num_threads(cpu_par_threads(n))
    for (int64_t ch = 0; ch < nc; ch++) {
        int64_t lo = ch * ADAMW_CHUNK, hi = lo + ADAMW_CHUNK < n ? lo + ADAMW_CHUNK : n;
        adamw_range(c, lo, hi, p, gdt, g, m, v);
    }
}

void cpu_adamw_multi(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt, double lr, double b1,
                     double b2, double eps, double wd, double bc1, double bc2, double gscale, double ema_decay) {
    check_gdt("adamw_multi", gdt);
    if (sdt != CM_F32 && sdt != CM_BF16) cm_die("adamw_multi", "moment dtype %s not supported (allowed: f32, bf16)", dtype_name(sdt));
    if (nt <= 0) return;
    const adamw_consts c = adamw_fold(lr, b1, b2, eps, wd, bc1, bc2, gscale);
    const float ea = (float)(1 - ema_decay), eb = (float)ema_decay;  // axpby's alpha, beta
    // first[i]: the global index of tensor i's first chunk; first[nt]: the chunk count
    int64_t *first = malloc(((size_t)nt + 1) * sizeof *first);
    CM_CHECK(first, "adamw_multi", "out of host memory for %d tensors", nt);
    int64_t total = 0;
    first[0] = 0;
    for (int i = 0; i < nt; i++) {
        CM_CHECK(t[i].n >= 0, "adamw_multi", "tensor %d has %lld elements", i, (long long)t[i].n);
        first[i + 1] = first[i] + (t[i].n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
        total += t[i].n;
    }
    const int64_t nc = first[nt];
#pragma omp parallel for schedule(static) if (total >= CPU_PAR_MIN) num_threads(cpu_par_threads(total))
    for (int64_t ch = 0; ch < nc; ch++) {
        int lo_t = 0, hi_t = nt - 1;  // the tensor i with first[i] <= ch < first[i + 1]
        while (lo_t < hi_t) {
            int mid = (lo_t + hi_t + 1) / 2;
            if (first[mid] <= ch) lo_t = mid;
            else hi_t = mid - 1;
        }
        const cm_adamw_tensor *ti = &t[lo_t];
        int64_t lo = (ch - first[lo_t]) * ADAMW_CHUNK, hi = lo + ADAMW_CHUNK < ti->n ? lo + ADAMW_CHUNK : ti->n;
        if (sdt == CM_F32) adamw_range(c, lo, hi, ti->p, gdt, ti->g, ti->m, ti->v);
        else adamw_range_bf16(c, lo, hi, ti->p, gdt, ti->g, ti->m, ti->v, ti->key);
        // the chunk's p is still in cache: its bf16 copy and its average from it
        if (ti->w)
            for (int64_t i = lo; i < hi; i++) ti->w[i] = cpu_f32_to_bf16(ti->p[i]);
        if (ti->ema)
            for (int64_t i = lo; i < hi; i++) ti->ema[i] = ea * ti->p[i] + eb * ti->ema[i];
    }
    free(first);
}
