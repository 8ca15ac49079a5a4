// cpu_copy.c — fill, strided copy with a cast between any two dtypes, f16 conversions.
#include <math.h>
#include <stdlib.h>
#include "kernels/cpu/cpu_internal.h"

// --- f16 <-> f32, exact IEEE with round to nearest even (the FP16 library's branch-free forms) ---
float cpu_f16_to_f32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    const float normalized = cpu_bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = cpu_bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
    return cpu_bits_f32(sign | (two_w < (1u << 27) ? cpu_f32_bits(denormalized) : cpu_f32_bits(normalized)));
}

uint16_t cpu_f32_to_f16(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;  // overflow to inf, then scale back down
    const uint32_t w = cpu_f32_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = cpu_bits_f32((bias >> 1) + 0x07800000u) + base;  // the addition rounds the mantissa
    const uint32_t bits = cpu_f32_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// --- every dtype loaded as double and stored from double (exact for all but f64 -> narrower) ---
static inline double ld_f32(const float *p) { return *p; }
static inline double ld_bf16(const uint16_t *p) { return cpu_bf16_to_f32(*p); }
static inline double ld_f16(const uint16_t *p) { return cpu_f16_to_f32(*p); }
static inline double ld_f64(const double *p) { return *p; }
static inline double ld_i32(const int32_t *p) { return *p; }
static inline double ld_u8(const uint8_t *p) { return *p; }
static inline void st_f32(float *p, double v) { *p = (float)v; }
static inline void st_bf16(uint16_t *p, double v) { *p = cpu_f32_to_bf16((float)v); }
static inline void st_f16(uint16_t *p, double v) { *p = cpu_f32_to_f16((float)v); }
static inline void st_f64(double *p, double v) { *p = v; }
// integers truncate toward zero like a C / PyTorch cast; NaN -> 0, out of range saturates
static inline void st_i32(int32_t *p, double v) {
    *p = v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
}
static inline void st_u8(uint8_t *p, double v) {  // wraps modulo 256 like PyTorch's float -> uint8
    *p = v != v ? 0 : (uint8_t)(int64_t)(v >= 9.2e18 ? 0 : v <= -9.2e18 ? 0 : v);
}

// X-macro over (dtype enum, name, C type)
#define CPU_DTYPES(X) X(CM_F32, f32, float) X(CM_BF16, bf16, uint16_t) X(CM_F16, f16, uint16_t) \
    X(CM_F64, f64, double) X(CM_I32, i32, int32_t) X(CM_U8, u8, uint8_t)

typedef void (*row_copy_fn)(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss);

// one strided row, dst type D from src type S
#define ROW_FN(dn, dtname, dtype, sn, stname, stype)                                              \
    static void row_##dtname##_##stname(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss) { \
        dtype *d = dst;                                                                             \
        const stype *s = src;                                                                       \
        for (int64_t i = 0; i < n; i++) st_##dtname(d + i * ds, ld_##stname(s + i * ss));           \
    }
#define ROW_FNS_FOR_DST(dn, dtname, dtype)                                                          \
    ROW_FN(dn, dtname, dtype, CM_F32, f32, float) ROW_FN(dn, dtname, dtype, CM_BF16, bf16, uint16_t)  \
    ROW_FN(dn, dtname, dtype, CM_F16, f16, uint16_t) ROW_FN(dn, dtname, dtype, CM_F64, f64, double)   \
    ROW_FN(dn, dtname, dtype, CM_I32, i32, int32_t) ROW_FN(dn, dtname, dtype, CM_U8, u8, uint8_t)
CPU_DTYPES(ROW_FNS_FOR_DST)
#define ROW_ENTRY(dn, dtname, dtype) {row_##dtname##_f32, row_##dtname##_bf16, row_##dtname##_f16, \
                                      row_##dtname##_f64, row_##dtname##_i32, row_##dtname##_u8},
static const row_copy_fn row_copy[CM_NDTYPES][CM_NDTYPES] = {CPU_DTYPES(ROW_ENTRY)};

// same dtype: move the bits (exact for NaN payloads too)
#define ROW_RAW(T)                                                                                \
    static void row_raw_##T(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss) {       \
        T *d = dst;                                                                                \
        const T *s = src;                                                                          \
        if (ds == 1 && ss == 1) memcpy(d, s, (size_t)n * sizeof(T));                               \
        else for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];                                \
    }
ROW_RAW(uint8_t)
ROW_RAW(uint16_t)
ROW_RAW(uint32_t)
ROW_RAW(uint64_t)

static size_t elsize(cm_dtype dt) {
    static const size_t sz[CM_NDTYPES] = {4, 2, 2, 8, 4, 1};
    if ((unsigned)dt >= CM_NDTYPES) cm_die("copy_strided", "unknown dtype %d", (int)dt);
    return sz[dt];
}

void cpu_copy_strided(const cm_kctx *k, int ndim, const int64_t *shape, cm_dtype dst_dt, void *dst,
                      const int64_t *dst_stride, cm_dtype src_dt, const void *src, const int64_t *src_stride) {
    size_t dsz = elsize(dst_dt), ssz = elsize(src_dt);
    // drop size-1 dims and merge dims that are contiguous with their inner neighbour in both
    int64_t sh[CM_MAX_DIMS + 1], dst_s[CM_MAX_DIMS + 1], src_s[CM_MAX_DIMS + 1];
    int nd = 0;
    CM_CHECK(ndim >= 0 && ndim <= CM_MAX_DIMS, "copy_strided", "ndim %d outside [0, %d]", ndim, CM_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return;
        if (shape[i] == 1) continue;
        if (nd > 0 && dst_s[nd - 1] == dst_stride[i] * shape[i] && src_s[nd - 1] == src_stride[i] * shape[i]) {
            sh[nd - 1] *= shape[i];
            dst_s[nd - 1] = dst_stride[i];
            src_s[nd - 1] = src_stride[i];
            continue;
        }
        sh[nd] = shape[i], dst_s[nd] = dst_stride[i], src_s[nd] = src_stride[i], nd++;
    }
    if (nd == 0) sh[0] = 1, dst_s[0] = src_s[0] = 1, nd = 1;

    row_copy_fn fn = row_copy[dst_dt][src_dt];
    if (dst_dt == src_dt)
        fn = dsz == 1 ? row_raw_uint8_t : dsz == 2 ? row_raw_uint16_t : dsz == 4 ? row_raw_uint32_t : row_raw_uint64_t;
    int64_t inner = sh[nd - 1], rows = 1;
    for (int i = 0; i < nd - 1; i++) rows *= sh[i];
    char *d0 = dst;
    const char *s0 = src;
#pragma omp parallel for schedule(static) if (rows * inner >= CPU_PAR_MIN && rows > 1) num_threads(cpu_par_threads(rows * inner))
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, doff = 0, soff = 0;
        for (int i = nd - 2; i >= 0; i--) {
            int64_t c = rem % sh[i];
            rem /= sh[i];
            doff += c * dst_s[i];
            soff += c * src_s[i];
        }
        fn(inner, d0 + doff * (int64_t)dsz, dst_s[nd - 1], s0 + soff * (int64_t)ssz, src_s[nd - 1]);
    }
}

void cpu_fill(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value) {
    if (n <= 0) return;
    uint64_t pat = 0;  // the element's bit pattern
    size_t sz = elsize(dt);
    switch (dt) {
    case CM_F32: { float v; st_f32(&v, value); memcpy(&pat, &v, 4); break; }
    case CM_BF16: { uint16_t v; st_bf16(&v, value); memcpy(&pat, &v, 2); break; }
    case CM_F16: { uint16_t v; st_f16(&v, value); memcpy(&pat, &v, 2); break; }
    case CM_F64: { memcpy(&pat, &value, 8); break; }
    case CM_I32: { int32_t v; st_i32(&v, value); memcpy(&pat, &v, 4); break; }
    case CM_U8: { uint8_t v; st_u8(&v, value); memcpy(&pat, &v, 1); break; }
    default: cm_die("fill", "unknown dtype %d", (int)dt);
    }
    if (pat == 0 || sz == 1) {  // zeros (the common case) and bytes: memset
        memset(dst, (int)(pat & 0xff), (size_t)n * sz);
        return;
    }
#define FILL_AS(T)                                                      \
    do {                                                                \
        T *d = dst, v = (T)pat;                                         \
        _Pragma("omp parallel for schedule(static) if (n >= 4 * CPU_PAR_MIN) num_threads(cpu_par_threads((n) / 4.0))") \
        for (int64_t i = 0; i < n; i++) d[i] = v;                       \
    } while (0)
    if (sz == 2) FILL_AS(uint16_t);
    else if (sz == 4) FILL_AS(uint32_t);
    else FILL_AS(uint64_t);
#undef FILL_AS
}

void *cpu_scratch(cm_dtype dt, int64_t n, const char *op) {
    void *p = malloc((size_t)(n > 0 ? n : 1) * (dt == CM_F64 ? 8 : 4));
    CM_CHECK(p, op, "out of memory for a %lld-element scratch copy", (long long)n);
    return p;
}
