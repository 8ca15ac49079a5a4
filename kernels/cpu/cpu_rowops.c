// cpu_rowops.c — vectorised f32 row helpers for softmax and attention: max, exp-and-sum, scale,
// dot. The build targets x86-64-v2 (SSE4.2), so the same code is also compiled for AVX2+FMA and
// AVX-512 and the widest one this CPU runs is picked once at load time.
#include <float.h>
#include <math.h>
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    float (*rowmax)(const float *x, int64_t n);
    double (*expsub)(float *x, int64_t n, float sub);
    void (*scale)(float *x, int64_t n, float s);
    void (*addrow)(float *x, const float *m, int64_t n);
    double (*dot)(const float *a, const float *b, int64_t n);
    void (*dsoft)(float *ds, const float *p, const float *dp, int64_t n, float d);
} cpu_rowops;

#define RSFX base
#include "kernels/cpu/cpu_rowops.inc"
#undef RSFX

#if defined(__x86_64__) && defined(__GNUC__)
CPU_TARGET_BEGIN(CPU_ISA_AVX2)
#define RSFX avx2
#include "kernels/cpu/cpu_rowops.inc"
#undef RSFX
CPU_TARGET_END

CPU_TARGET_BEGIN(CPU_ISA_AVX512)
#define RSFX avx512
#include "kernels/cpu/cpu_rowops.inc"
#undef RSFX
CPU_TARGET_END
#endif

static const cpu_rowops *ops = &rowops_base;

__attribute__((constructor)) static void rowops_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        ops = &rowops_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ops = &rowops_avx2;
#endif
}

float cpu_rowmax_f32(const float *x, int64_t n) { return ops->rowmax(x, n); }
double cpu_expsub_f32(float *x, int64_t n, float sub) { return ops->expsub(x, n, sub); }
void cpu_scale_f32(float *x, int64_t n, float s) { ops->scale(x, n, s); }
void cpu_addrow_f32(float *x, const float *m, int64_t n) { ops->addrow(x, m, n); }
double cpu_dot_f32(const float *a, const float *b, int64_t n) { return ops->dot(a, b, n); }
void cpu_dsoft_f32(float *ds, const float *p, const float *dp, int64_t n, float d) { ops->dsoft(ds, p, dp, n, d); }
float cpu_expf(float x) { return exp_poly_base(x); }
