// cpu_internal.h — what the CPU kernel files share: the kernel prototypes that cpu_backend.c
// puts in the table, the float/double template helpers, dtype conversions and the vectorised
// f32 row helpers (cpu_rowops.c).
// Kernel families are written once in a cpu_<family>.inc and included twice by cpu_<family>.c,
// with `real` = float, SFX = f32 and `real` = double, SFX = f64; FN(x) names the instance x_f32 / x_f64.
#pragma once
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "kernels/backend.h"

#define CPU_CAT2(a, b) a##_##b
#define CPU_CAT(a, b) CPU_CAT2(a, b)
#define FN(name) CPU_CAT(name, SFX)

// Instruction-set regions: functions between CPU_TARGET_BEGIN(isa) and CPU_TARGET_END are compiled
// for isa (the AVX2 / AVX-512 copies that cpu_conv.c and cpu_rowops.c pick at load time). GCC gets
// its push_options + target pragmas; clang ignores those (the intrinsics then fail to build and the
// omp-simd copies come out baseline), so it gets the same target attribute by `clang attribute`.
#define CPU_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define CPU_TARGET_BEGIN(isa) CPU_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define CPU_TARGET_END CPU_PRAGMA(clang attribute pop)
#else
#define CPU_TARGET_BEGIN(isa) CPU_PRAGMA(GCC push_options) CPU_PRAGMA(GCC target(isa))
#define CPU_TARGET_END CPU_PRAGMA(GCC pop_options)
#endif
#define CPU_ISA_AVX2 "avx2,fma"
#define CPU_ISA_AVX512 "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"

// sums of many elements are summed in chunks of this many, then chunk by chunk in order
#define CPU_SUM_CHUNK 65536
// below this many elements a loop stays on one thread (fork/join costs ~ a few µs), and a longer
// loop takes one thread per this many (num_threads(cpu_par_threads(n))): waking every thread of a
// 16-core VM for a loop of 64k elements cost more than the loop
#define CPU_PAR_MIN 32768
static inline int cpu_par_threads(double work) {
    int mx = omp_get_max_threads();
    double t = work / CPU_PAR_MIN;
    return t >= mx ? mx : t < 1 ? 1 : (int)t;
}

// calls fn_f32(...) or fn_f64(...) for dt, dies for any other dtype
#define CPU_DISPATCH(opname, dt, fn, ...)                              \
    do {                                                               \
        if ((dt) == CM_F32) fn##_f32(__VA_ARGS__);                     \
        else if ((dt) == CM_F64) fn##_f64(__VA_ARGS__);                \
        else cpu_bad_dtype(opname, dt);                                \
    } while (0)

_Noreturn void cpu_bad_dtype(const char *op, cm_dtype dt);

// --- dtype conversions (round to nearest even; NaN stays NaN) ---
static inline float cpu_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t cpu_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float cpu_bf16_to_f32(uint16_t h) { return cpu_bits_f32((uint32_t)h << 16); }
static inline uint16_t cpu_f32_to_bf16(float f) {
    uint32_t u = cpu_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float cpu_f16_to_f32(uint16_t h);
uint16_t cpu_f32_to_f16(float f);

// --- vectorised f32 row helpers (cpu_rowops.c; AVX2/AVX-512 clones picked at load time) ---
float cpu_rowmax_f32(const float *x, int64_t n);
// x[i] = exp(x[i] - sub) in place (exp(-inf) = 0), returns the sum in double
double cpu_expsub_f32(float *x, int64_t n, float sub);
void cpu_scale_f32(float *x, int64_t n, float s);             // x *= s
void cpu_addrow_f32(float *x, const float *m, int64_t n);      // x += m
double cpu_dot_f32(const float *a, const float *b, int64_t n);  // sum a*b, in double
// ds[i] = p[i] * (dp[i] - d)
void cpu_dsoft_f32(float *ds, const float *p, const float *dp, int64_t n, float d);
float cpu_expf(float x);  // the same polynomial exp as the row helpers, scalar

// sum of (a-b)^2 (b NULL: a^2) in double, deterministic (cpu_reduce.c)
double cpu_sum_sq_diff(cm_dtype dt, int64_t n, const void *a, const void *b);

// --- the kernels (one per backend table entry) ---
void cpu_fill(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value);
// malloc'd scratch for n elements of dt (f32 / f64); dies naming op when memory is short
void *cpu_scratch(cm_dtype dt, int64_t n, const char *op);
void cpu_copy_strided(const cm_kctx *k, int ndim, const int64_t *shape, cm_dtype dst_dt, void *dst,
                      const int64_t *dst_stride, cm_dtype src_dt, const void *src, const int64_t *src_stride);
void cpu_binary(const cm_kctx *k, cm_binop op, cm_dtype dt, int ndim, const int64_t *shape, void *out,
                const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride);
void cpu_axpby(const cm_kctx *k, cm_dtype dt, int64_t n, double alpha, const void *x, double beta, void *y);
void cpu_unary_fwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *y, const void *x);
void cpu_unary_bwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *dx, const void *x, const void *dy);
void cpu_glu_fwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *y, const void *x);
void cpu_glu_bwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *dx, const void *x,
                 const void *dy);
void cpu_reduce_sum(const cm_kctx *k, cm_dtype dt, int64_t outer, int64_t red, int64_t inner, void *y, const void *x);
double cpu_sumsq(const cm_kctx *k, cm_dtype dt, int64_t n, const void *x);
double cpu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n);
void cpu_gemm(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
              void *C, int64_t ldc, int64_t strideC, int64_t batch);
void cpu_gemm_ex(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K,
                 double alpha, const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb,
                 int64_t strideB, double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch, const void *bias,
                 cm_act act, void *aux);
void cpu_layernorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y, float *mean,
                       float *rstd, const void *x, const void *w, const void *b);
void cpu_layernorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, void *dw, void *db,
                       const void *dy, const void *x, const float *mean, const float *rstd, const void *w);
void cpu_rmsnorm_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                     void *y, float *inv, const void *x, const void *w);
void cpu_rmsnorm_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                     void *dx, void *dw, const void *dy, const void *x, const float *inv, const void *w);
void cpu_groupnorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, double eps,
                       void *y, float *mean, float *rstd, const void *x, const void *w, const void *b);
void cpu_groupnorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, void *dx,
                       void *dw, void *db, const void *dy, const void *x, const float *mean, const float *rstd,
                       const void *w);
void cpu_softmax_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *y, const void *x);
void cpu_softmax_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, const void *y,
                     const void *dy);
void cpu_attn_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                  double scale, void *O, const int64_t *os, float *lse, const void *Q, const int64_t *qs,
                  const void *K, const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb,
                  int64_t mh);
void cpu_attn_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                  double scale, void *dQ, void *dK, void *dV, const void *dO, const int64_t *gs, const void *O,
                  const int64_t *os, const float *lse, const void *Q, const int64_t *qs, const void *K,
                  const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh);
// dies unless the RoPE tables' dtype tdt is x's dt or f32 (cpu_rope.c)
void cpu_rope_check_tables(const char *op, cm_dtype dt, cm_dtype tdt);
void cpu_rope(const cm_kctx *k, cm_dtype dt, cm_dtype tdt, int64_t outer, int64_t L, int64_t D, int inverse,
              void *y, const void *x, const void *cos, const void *sin);
void cpu_rms_rope_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                      int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *y, float *inv, const void *x,
                      const void *w, const void *cos, const void *sin);
void cpu_rms_rope_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                      int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *dx, void *dw, const void *dy,
                      const void *x, const float *inv, const void *w, const void *cos, const void *sin);
void cpu_modulate_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *y, const void *x,
                      const void *scale, const void *shift);
void cpu_modulate_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dscale,
                      void *dshift, const void *dy, const void *x, const void *scale);
void cpu_gated_add(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *out, const void *res,
                   const void *gate, const void *y);
void cpu_add_rows(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb,
                  double alpha, void *out, const void *a, const void *b);
void cpu_layernorm_mod_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, double eps, void *y,
                           float *mean, float *rstd, const void *x, const void *w, const void *b, const void *scale,
                           const void *shift);
void cpu_layernorm_mod_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dw,
                           void *db, void *dscale, void *dshift, const void *dy, const void *x, const float *mean,
                           const float *rstd, const void *w, const void *b, const void *scale);
void cpu_timestep_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                      double max_period, void *y, const void *t);
void cpu_timestep_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                      double max_period, void *dtime, const void *t, const void *dy);
void cpu_im2col(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *col, const void *x);
void cpu_col2im(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *x, const void *col);
void cpu_bicubic_fwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                     void *y, const void *x);
void cpu_bicubic_bwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                     void *dx, const void *dy);
int cpu_conv2d_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                   int64_t kw, int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *y, const void *x,
                   const void *w, const void *b);
void cpu_gather_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *y, const void *table,
                     const int32_t *idx);
void cpu_scatter_add_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *dtable, const void *dy,
                          const int32_t *idx);
void cpu_mse_fwd(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, void *out);
void cpu_mse_bwd(const cm_kctx *k, cm_dtype dt, int64_t n, double g, const void *gp, void *da, const void *a,
                 const void *b);
void cpu_adamw(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v, double lr,
               double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale);
void cpu_adamw_multi(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt, double lr, double b1,
                     double b2, double eps, double wd, double bc1, double bc2, double gscale, double ema_decay);
