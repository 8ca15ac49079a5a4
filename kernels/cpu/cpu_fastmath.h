// cpu_fastmath.h — branch-free float exp / tanh / erf that vectorise inside `omp simd` loops, for
// the f32 activations (libm's scalar tanhf/expf were a third of a training step). f64 kernels
// keep libm: they serve the finite-difference gradient checks.
// defines: cm_fast_expf, cm_fast_tanhf, cm_fast_erff
#pragma once
#include <math.h>
#include <stdint.h>

// relative error < 3e-7 on [-87, 88]; inputs are clamped there (exp(-87) ~ 1.6e-38)
static inline float cm_fast_expf(float x) {
    x = x < -87.0f ? -87.0f : x > 88.3f ? 88.3f : x;  // not fminf: that is a libm call and stops vectorisation
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 split in two for an exact reduction
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666716f + r * (0.00833333377f + r * 0.00138888892f)))));
    // a NaN x passes the clamp (its compares are false) and stays NaN in p; its n must not reach the
    // int conversion (UB, and a negative shift after it)
    union { int32_t i; float f; } s = {.i = ((int32_t)(n == n ? n : 0.0f) + 127) << 23};
    return p * s.f;
}

// absolute error < 3e-7
static inline float cm_fast_tanhf(float x) { return 1.0f - 2.0f / (cm_fast_expf(2.0f * x) + 1.0f); }

// tanh(u) and 1 - tanh(u)^2 = 4e / (e + 1)^2 (e = exp(2u)) without the cancellation of 1 - t*t
static inline void cm_fast_tanh_sech2f(float u, float *t, float *s2) {
    float e = cm_fast_expf(2.0f * u), e1 = e + 1.0f;
    *t = 1.0f - 2.0f / e1;
    *s2 = 4.0f * (e / e1) / e1;
}
// the same in double through libm, for the f64 kernels
static inline void cm_tanh_sech2(double u, double *t, double *s2) {
    *t = tanh(u);
    *s2 = 1.0 - *t * *t;
}

// Abramowitz & Stegun 7.1.26: absolute error < 1.5e-7 (+ the exp's)
static inline float cm_fast_erff(float x) {
    float a = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * a);
    float y = 1.0f - t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) *
                         cm_fast_expf(-a * a);
    return copysignf(y, x);
}
