// cpu_conv.c — direct f32 convolution forward (the backend's optional conv2d_fwd), for small
// kernels (<= 7x7) and narrow layers, where im2col + GEMM spends more time building and packing
// the column matrix than multiplying. The input is copied once into a zero-padded, phase-split
// layout T[n, c, r, p, q] = x[n, c, r - pad, q*stride + p - pad] (0 outside), so tap (i, j) of
// output pixel (oh, ow) is T[n, c, oh*stride + i, j % stride, ow + j / stride]: contiguous in ow
// for any stride. A block kernel then keeps 8 output channels x 3 vectors of one output row in
// registers (AVX-512 or AVX2+FMA, picked at load time); other CPUs decline (return 0).
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_internal.h"

#define CONV_OB 8  // output channels per register block

typedef struct {
    int64_t N, C, O, OH, OW, kh, kw, s;
    int64_t chs, rs;   // T strides: per channel, per padded row
    int64_t ys;        // y stride per output channel (OH*OW)
    int64_t joff[8];   // T offset of tap column j within a padded row
    int64_t flops;
    const float *T, *wpk, *bpk;  // T; weights packed [O/OB, C, kh, kw, OB]; bias [O/OB*OB]
    float *y;
} cpu_conv_geom;

typedef void (*cpu_conv_fn)(const cpu_conv_geom *g);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

CPU_TARGET_BEGIN(CPU_ISA_AVX2)
#define CSFX avx2
#define VL 8
#define V __m256
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#include "kernels/cpu/cpu_conv.inc"
#undef CSFX
#undef VL
#undef V
#undef VLOAD
#undef VSET1
#undef VFMA
#undef VSTORE
CPU_TARGET_END

CPU_TARGET_BEGIN(CPU_ISA_AVX512)
#define CSFX avx512
#define VL 16
#define V __m512
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#include "kernels/cpu/cpu_conv.inc"
#undef CSFX
#undef VL
#undef V
#undef VLOAD
#undef VSET1
#undef VFMA
#undef VSTORE
CPU_TARGET_END
#endif

static cpu_conv_fn conv_impl = NULL;

__attribute__((constructor)) static void conv_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        conv_impl = conv_all_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        conv_impl = conv_all_avx2;
#endif
}

// scratch kept per thread between calls (the padded input is a few MB for the VAE encoder)
static _Thread_local float *conv_buf;
static _Thread_local size_t conv_cap;

int cpu_conv2d_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                   int64_t kw, int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *y, const void *x,
                   const void *w, const void *b) {
    if (!conv_impl || dt != CM_F32 || kh > 7 || kw > 7 || stride > 4 || C * kh * kw > 1152 || N * O * OH * OW == 0)
        return 0;
    const int64_t s = stride, Hp = (OH - 1) * s + kh;
    const int64_t Qw = (OW + 15) / 16 * 16 + (kw - 1) / s;  // room for whole-vector loads of every tap
    const int64_t nob = (O + CONV_OB - 1) / CONV_OB, chs = Hp * s * Qw;
    size_t nT = (size_t)(N * C * chs), nW = (size_t)(nob * C * kh * kw * CONV_OB), need = nT + nW + (size_t)(nob * CONV_OB);
    if (need > conv_cap) {
        free(conv_buf);
        conv_buf = malloc(need * sizeof(float));
        CM_CHECK(conv_buf, "conv2d_fwd", "out of memory (%zu floats)", need);
        conv_cap = need;
    }
    float *T = conv_buf, *wpk = T + nT, *bpk = wpk + nW;
    const float *xf = x, *wf = w, *bf = b;

    // T: one padded, phase-split copy of the input
#pragma omp parallel for schedule(static) if ((int64_t)nT >= CPU_PAR_MIN && N * C > 1) num_threads(cpu_par_threads((int64_t)nT))
    for (int64_t nc = 0; nc < N * C; nc++) {
        const float *xc = xf + nc * H * W;
        float *tc = T + nc * chs;
        for (int64_t r = 0; r < Hp; r++) {
            int64_t ih = r - pad;
            for (int64_t p = 0; p < s; p++) {
                float *t = tc + (r * s + p) * Qw;
                if (ih < 0 || ih >= H) {
                    memset(t, 0, (size_t)Qw * sizeof(float));
                    continue;
                }
                const float *xr = xc + ih * W;
                if (s == 1) {  // [pad zeros | row | zeros]
                    int64_t lo = pad < Qw ? pad : Qw, hi = pad + W < Qw ? pad + W : Qw;
                    memset(t, 0, (size_t)lo * sizeof(float));
                    if (hi > lo) memcpy(t + lo, xr + (lo - pad), (size_t)(hi - lo) * sizeof(float));
                    memset(t + hi, 0, (size_t)(Qw - hi) * sizeof(float));
                } else {
                    for (int64_t q = 0; q < Qw; q++) {
                        int64_t iw = q * s + p - pad;
                        t[q] = iw >= 0 && iw < W ? xr[iw] : 0.0f;
                    }
                }
            }
        }
    }
    // weights [O, C, kh, kw] -> [O/OB, C, kh, kw, OB], zero rows past O; bias likewise
    int64_t ckk = C * kh * kw;
    for (int64_t ob = 0; ob < nob; ob++)
        for (int64_t e = 0; e < ckk; e++)
            for (int64_t o = 0; o < CONV_OB; o++) {
                int64_t oo = ob * CONV_OB + o;
                wpk[(ob * ckk + e) * CONV_OB + o] = oo < O ? wf[oo * ckk + e] : 0.0f;
            }
    for (int64_t o = 0; o < nob * CONV_OB; o++) bpk[o] = bf && o < O ? bf[o] : 0.0f;

    cpu_conv_geom g = {.N = N, .C = C, .O = O, .OH = OH, .OW = OW, .kh = kh, .kw = kw, .s = s,
                       .chs = chs, .rs = s * Qw, .ys = OH * OW, .flops = N * O * OH * OW * ckk,
                       .T = T, .wpk = wpk, .bpk = bpk, .y = y};
    for (int64_t j = 0; j < kw; j++) g.joff[j] = (j % s) * Qw + j / s;
    conv_impl(&g);
    return 1;
}
