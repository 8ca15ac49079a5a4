// cpu_adamw.c — AdamW step on f32 master weights (decoupled weight decay), gradient f32 or bf16.
#include <math.h>
#include "kernels/cpu/cpu_internal.h"

// g *= gscale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr wd p;
// p -= lr (m / bc1) / (sqrt(v / bc2) + eps)      — PyTorch's AdamW order, in f32 per element
#define ADAMW_LOOP(LOADG)                                                                       \
    _Pragma("omp parallel for schedule(static) if (n >= CPU_PAR_MIN)")                          \
    for (int64_t i = 0; i < n; i++) {                                                           \
        float gi = (LOADG) * gs;                                                                \
        float mi = b1f * m[i] + c1 * gi, vi = b2f * v[i] + c2 * gi * gi;                        \
        m[i] = mi, v[i] = vi;                                                                   \
        float pi = p[i] * decay;                                                                \
        p[i] = pi - step * mi / (sqrtf(vi) * rbc2 + epsf);                                      \
    }

void cpu_adamw(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v, double lr,
               double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale) {
    const float gs = (float)gscale, b1f = (float)b1, b2f = (float)b2, c1 = (float)(1 - b1), c2 = (float)(1 - b2);
    const float decay = (float)(1 - lr * wd), step = (float)(lr / bc1), rbc2 = (float)(1 / sqrt(bc2));
    const float epsf = (float)eps;
    if (gdt == CM_F32) {
        const float *gg = g;
        ADAMW_LOOP(gg[i])
    } else if (gdt == CM_BF16) {
        const uint16_t *gg = g;
        ADAMW_LOOP(cpu_bf16_to_f32(gg[i]))
    } else {
        cm_die("adamw", "gradient dtype %d not supported (allowed: f32, bf16)", (int)gdt);
    }
}
