// test_conv_fast.c — the CPU backend's direct conv2d_fwd against im2col + gemm (the general path
// op_conv2d falls back to) on random shapes: odd sizes, strides 1-3, pads 0-2, 1x1 / 3x3 / odd
// kernels, 1-40 channels, batches > 1, with and without bias. Calls the backend table directly.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "testutil.h"

extern const cm_backend cm_cpu_backend;
static const cm_backend *be = &cm_cpu_backend;
static const cm_kctx kc = {{CM_CPU, 0}, NULL, NULL};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static int64_t irand(int64_t lo, int64_t hi) {  // uniform in [lo, hi]
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return lo + (int64_t)((rng >> 11) % (uint64_t)(hi - lo + 1));
}
static float *randf(int64_t n) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = (float)(irand(0, 1 << 20) / (double)(1 << 19) - 1.0);
    return v;
}

static int taken;

// one case, checked when the fast path takes it (counted in `taken`)
static void one(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw, int64_t s, int64_t p,
                int bias) {
    int64_t OH = (H + 2 * p - kh) / s + 1, OW = (W + 2 * p - kw) / s + 1;
    if (H + 2 * p < kh || W + 2 * p < kw) return;
    int64_t CK = C * kh * kw, P = OH * OW;
    float *x = randf(N * C * H * W), *w = randf(O * CK), *b = bias ? randf(O) : NULL;
    float *y = malloc((size_t)(N * O * P) * sizeof(float)), *r = malloc((size_t)(N * O * P) * sizeof(float));
    float *col = malloc((size_t)(CK * P) * sizeof(float));
    for (int64_t i = 0; i < N * O * P; i++) y[i] = NAN;
    int ok = be->conv2d_fwd(&kc, CM_F32, N, C, H, W, O, kh, kw, s, p, OH, OW, y, x, w, b);
    if (!ok) goto done;
    taken++;
    for (int64_t n = 0; n < N; n++) {
        float *ri = r + n * O * P;
        for (int64_t o = 0; o < O; o++)
            for (int64_t q = 0; q < P; q++) ri[o * P + q] = b ? b[o] : 0.0f;
        be->im2col(&kc, CM_F32, C, H, W, kh, kw, s, p, OH, OW, col, x + n * C * H * W);
        be->gemm(&kc, CM_F32, 0, 0, O, P, CK, 1.0, w, CK, 0, col, P, 0, 1.0, ri, P, 0, 1);
    }
    double maxd = 0, maxr = 0;
    for (int64_t i = 0; i < N * O * P; i++) {
        double d = fabs((double)y[i] - r[i]);
        if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        if (fabs(r[i]) > maxr) maxr = fabs(r[i]);
    }
    TEST_CHECK(maxd <= 1e-5 * (maxr > 1 ? maxr : 1), "N%ld C%ld %ldx%ld O%ld k%ldx%ld s%ld p%ld bias%d: max diff %g (max %g)",
               (long)N, (long)C, (long)H, (long)W, (long)O, (long)kh, (long)kw, (long)s, (long)p, bias, maxd, maxr);
done:
    free(x), free(w), free(b), free(y), free(r), free(col);
}

int main(void) {
    if (!be->conv2d_fwd) test_skip("the CPU backend has no conv2d_fwd");
    // the VAE encoder's shapes, small
    one(2, 16, 18, 14, 16, 3, 3, 1, 1, 1);
    one(2, 16, 19, 15, 32, 1, 1, 1, 0, 1);
    one(3, 32, 17, 13, 32, 3, 3, 2, 0, 1);
    one(1, 3, 37, 29, 16, 3, 3, 1, 1, 1);
    one(1, 40, 5, 70, 40, 3, 3, 1, 1, 0);  // several 3-vector blocks and a tail per row
    one(1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
    one(1, 2, 1, 1, 3, 3, 3, 1, 1, 1);     // all but the centre tap in the padding
    for (int it = 0; it < 150; it++) {
        int64_t k = irand(0, 4) == 0 ? irand(1, 7) : (irand(0, 1) ? 3 : 1);
        int64_t kw = irand(0, 5) == 0 ? irand(1, 7) : k;
        one(irand(1, 3), irand(1, 40), irand(1, 23), irand(1, 41), irand(1, 40), k, kw, irand(1, 3), irand(0, 2),
            (int)irand(0, 1));
    }
    TEST_CHECK(taken >= 150, "the fast path took only %d cases", taken);
    // what it declines: kernels over 7, f64; y stays untouched
    float z[4] = {0}, y[1] = {42};
    TEST_CHECK(!be->conv2d_fwd(&kc, CM_F32, 1, 1, 8, 8, 1, 8, 8, 1, 0, 1, 1, y, (float[64]){0}, (float[64]){0}, NULL) && y[0] == 42,
               "an 8x8 kernel is declined");
    TEST_CHECK(!be->conv2d_fwd(&kc, CM_F64, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, y, z, z, NULL) && y[0] == 42, "f64 is declined");
    return test_summary("test_conv_fast");
}
