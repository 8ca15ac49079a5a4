// tensor.c — tensor creation, views, references, dtype conversion, host access.
#include "autograd/tensor.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/upload.h"
#include "kernels/backend.h"

void cm_die(const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cameo: %s: ", where);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

void cm_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool g_warn_muted;
void cm_warn_mute(bool mute) { g_warn_muted = mute; }
void cm_warn(const char *fmt, ...) {
    if (g_warn_muted) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("cameo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

// --- dtypes ---
size_t dtype_size(cm_dtype dt) {
    static const size_t sz[CM_NDTYPES] = {4, 2, 2, 8, 4, 1};
    return sz[dt];
}
const char *dtype_name(cm_dtype dt) {
    static const char *nm[CM_NDTYPES] = {"f32", "bf16", "f16", "f64", "i32", "u8"};
    return (unsigned)dt < CM_NDTYPES ? nm[dt] : "?";
}
bool dtype_is_float(cm_dtype dt) { return dt == CM_F32 || dt == CM_BF16 || dt == CM_F16 || dt == CM_F64; }

uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    return (uint16_t)(u >> 16);
}
float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x7fffffu;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {  // subnormal or zero
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = 1u << (shift - 1);
        uint32_t r = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;  // may carry into the exponent: correct
    return (uint16_t)(sign | r);
}
float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, u;
    if (exp == 0) {
        if (!mant) u = sign;
        else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) { mant <<= 1; exp--; }
            u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) u = sign | 0x7f800000u | (mant << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// --- devices ---
const char *device_name(cm_device d, char *buf, size_t n) {
    if (d.type == CM_CPU) snprintf(buf, n, "cpu");
    else snprintf(buf, n, "cuda:%d", d.index);
    return buf;
}
bool device_eq(cm_device a, cm_device b) { return a.type == b.type && (a.type == CM_CPU || a.index == b.index); }

// --- storage ---
// t: the tensor it is for, named when the device is out of memory (with the op whose backward runs)
static cm_storage *storage_new(size_t nbytes, cm_device dev, const cm_tensor *t) {
    cm_storage *s = calloc(1, sizeof *s);
    CM_CHECK(s, "storage_new", "out of host memory");
    s->nbytes = nbytes;
    s->dev = dev;
    s->refcount = 1;
    s->data = nbytes ? alloc_try(dev, nbytes) : NULL;
    if (nbytes && !s->data) {
        char sh[128], what[256];
        const char *op = autograd_backward_op();
        snprintf(what, sizeof what, "a tensor %s%s%s", tensor_shape_str(t, sh, sizeof sh), op ? ", in the backward of " : "",
                 op ? op : "");
        alloc_die_oom(dev, nbytes, what);
    }
    return s;
}
static void storage_release(cm_storage *s) {
    if (!s || --s->refcount > 0) return;
    if (s->data && s->nbytes) alloc_put(s->dev, s->data, s->nbytes);
    free(s);
}

static void set_contiguous_strides(cm_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = st;
        st *= t->shape[d];
    }
}

static cm_tensor *tensor_shell(cm_dtype dt, int ndim, const int64_t *shape) {
    CM_CHECK(ndim >= 0 && ndim <= CM_MAX_DIMS, "tensor", "%d dims (at most %d)", ndim, CM_MAX_DIMS);
    CM_CHECK((unsigned)dt < CM_NDTYPES, "tensor", "bad dtype %d", (int)dt);
    cm_tensor *t = calloc(1, sizeof *t);
    CM_CHECK(t, "tensor", "out of host memory");
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        CM_CHECK(shape[d] >= 0, "tensor", "negative size %lld in dim %d", (long long)shape[d], d);
        t->shape[d] = shape[d];
    }
    t->dtype = dt;
    t->refcount = 1;
    // the byte count must fit an int64: a wrapped one would make a storage too small (or none).
    // Innermost first, so that every contiguous stride fits too
    int64_t bytes = (int64_t)dtype_size(dt);
    bool fits = true;
    for (int d = ndim - 1; d >= 0 && fits; d--) fits = !__builtin_mul_overflow(bytes, shape[d], &bytes);
    if (!fits) {
        char b[160];
        tensor_shape_str(t, b, sizeof b);
        free(t);
        cm_die("tensor", "shape %s: its byte count overflows 64 bits", b);
    }
    set_contiguous_strides(t);
    return t;
}

cm_tensor *tensor_empty(cm_dtype dt, int ndim, const int64_t *shape, cm_device dev) {
    cm_tensor *t = tensor_shell(dt, ndim, shape);
    t->storage = storage_new((size_t)tensor_numel(t) * dtype_size(dt), dev, t);
    return t;
}

cm_tensor *tensor_full(cm_dtype dt, int ndim, const int64_t *shape, double value, cm_device dev) {
    cm_tensor *t = tensor_empty(dt, ndim, shape, dev);
    int64_t n = tensor_numel(t);
    if (n) backend_get(dev.type)->fill(backend_ctx(dev), dt, t->storage->data, n, value);
    return t;
}
cm_tensor *tensor_zeros(cm_dtype dt, int ndim, const int64_t *shape, cm_device dev) { return tensor_full(dt, ndim, shape, 0.0, dev); }
cm_tensor *tensor_empty_like(const cm_tensor *t) { return tensor_empty(t->dtype, t->ndim, t->shape, t->storage->dev); }
cm_tensor *tensor_zeros_like(const cm_tensor *t) { return tensor_zeros(t->dtype, t->ndim, t->shape, t->storage->dev); }

cm_tensor *tensor_from_host(cm_dtype dt, int ndim, const int64_t *shape, const void *data, cm_device dev) {
    cm_tensor *t = tensor_empty(dt, ndim, shape, dev);
    size_t nb = tensor_nbytes(t);
    if (nb) upload_to_device(dev, t->storage->data, data, nb);  // overlaps the device's queued work
    return t;
}

cm_tensor *tensor_wrap_host(cm_dtype dt, int ndim, const int64_t *shape, void *data) {
    cm_tensor *t = tensor_shell(dt, ndim, shape);
    cm_storage *s = calloc(1, sizeof *s);
    CM_CHECK(s, "tensor_wrap_host", "out of host memory");
    s->data = data;
    s->nbytes = 0;  // 0 = not ours: never returned to the allocator
    s->dev = CM_DEV_CPU;
    s->refcount = 1;
    t->storage = s;
    return t;
}

// counter-based: value i of seed s is a pure function of (s, i), so fills are reproducible
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static double unit_uniform(uint64_t seed, uint64_t i) {  // (0, 1)
    return ((double)(mix64(seed ^ mix64(i)) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void fill_host_values(cm_tensor *t, uint64_t seed, int kind, double a, double b) {
    int64_t n = tensor_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    CM_CHECK(v, "tensor_fill", "out of host memory");
    for (int64_t i = 0; i < n; i++) {
        if (kind == 0) {  // Box-Muller on a pair of counters
            double u1 = unit_uniform(seed, 2 * (uint64_t)i), u2 = unit_uniform(seed, 2 * (uint64_t)i + 1);
            v[i] = a * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        } else v[i] = a + (b - a) * unit_uniform(seed, (uint64_t)i);
    }
    cm_tensor *src = tensor_wrap_host(CM_F64, t->ndim, t->shape, v);
    const cm_backend *be = backend_get(t->storage->dev.type);
    if (t->storage->dev.type == CM_CPU) {
        be->copy_strided(backend_ctx(t->storage->dev), t->ndim, t->shape, t->dtype, tensor_data(t), t->stride, CM_F64, v, src->stride);
    } else {  // stage on the host in the target dtype, then upload (t is contiguous on devices)
        CM_CHECK(tensor_is_contiguous(t), "tensor_fill", "device tensor must be contiguous");
        void *h = malloc(tensor_nbytes(t) + 1);
        const cm_backend *cpu = backend_get(CM_CPU);
        int64_t st[CM_MAX_DIMS];
        memcpy(st, src->stride, sizeof st);
        cpu->copy_strided(backend_ctx(CM_DEV_CPU), t->ndim, t->shape, t->dtype, h, st, CM_F64, v, src->stride);
        be->memcpy_h2d(backend_ctx(t->storage->dev), tensor_data(t), h, tensor_nbytes(t));
        free(h);
    }
    tensor_release(src);
    free(v);
}
void tensor_fill_randn(cm_tensor *t, uint64_t seed, double std) { fill_host_values(t, seed, 0, std, 0); }
void tensor_fill_uniform(cm_tensor *t, uint64_t seed, double lo, double hi) { fill_host_values(t, seed, 1, lo, hi); }

// --- references ---
cm_tensor *tensor_retain(cm_tensor *t) {
    if (t) t->refcount++;
    return t;
}

void node_release(cm_node *n);  // tape.c

void tensor_release(cm_tensor *t) {
    if (!t || --t->refcount > 0) return;
    storage_release(t->storage);
    tensor_release(t->grad);
    if (t->grad_fn) node_release(t->grad_fn);
    free(t);
}

// --- queries ---
int64_t tensor_numel(const cm_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}
size_t tensor_nbytes(const cm_tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dtype); }
bool tensor_is_contiguous(const cm_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != st) return false;
        st *= t->shape[d];
    }
    return true;
}
bool tensor_same_shape(const cm_tensor *a, const cm_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}
void *tensor_data(const cm_tensor *t) {
    return t->storage->data ? (char *)t->storage->data + t->offset * (int64_t)dtype_size(t->dtype) : NULL;
}
int tensor_axis(const cm_tensor *t, int axis, const char *op) {
    int a = axis < 0 ? axis + t->ndim : axis;
    if (a < 0 || a >= t->ndim) {
        char b[128];
        cm_die(op, "axis %d out of range for %s", axis, tensor_shape_str(t, b, sizeof b));
    }
    return a;
}
int64_t tensor_dim(const cm_tensor *t, int d) { return t->shape[tensor_axis(t, d, "tensor_dim")]; }
const char *tensor_shape_str(const cm_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < t->ndim && o < n; d++) o += (size_t)snprintf(buf + o, n - o, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    char dn[16];
    if (o < n) snprintf(buf + o, n - o, "] %s%s%s", dtype_name(t->dtype), t->storage ? " " : "",
                        t->storage ? device_name(t->storage->dev, dn, sizeof dn) : "");  // no storage yet: being made
    return buf;
}

cm_tensor *tensor_view_raw(const cm_tensor *t, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset) {
    cm_tensor *v = tensor_shell(t->dtype, ndim, shape);
    if (stride) memcpy(v->stride, stride, sizeof(int64_t) * (size_t)ndim);
    v->offset = offset;
    v->storage = t->storage;
    t->storage->refcount++;
    return v;
}

void tensor_copy_to_host(const cm_tensor *t, cm_dtype dt, void *dst) {
    int64_t n = tensor_numel(t);
    if (!n) return;
    int64_t cst[CM_MAX_DIMS];
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) { cst[d] = s; s *= t->shape[d]; }
    const cm_backend *cpu = backend_get(CM_CPU);
    if (t->storage->dev.type == CM_CPU) {
        cpu->copy_strided(backend_ctx(CM_DEV_CPU), t->ndim, t->shape, dt, dst, cst, t->dtype, tensor_data(t), t->stride);
        return;
    }
    // device: make it contiguous in its own dtype on the device, download, convert on the host
    const cm_backend *be = backend_get(t->storage->dev.type);
    const cm_kctx *k = backend_ctx(t->storage->dev);
    size_t nb = (size_t)n * dtype_size(t->dtype);
    void *dev = alloc_get(t->storage->dev, nb, "tensor_copy_to_host staging");
    be->copy_strided(k, t->ndim, t->shape, t->dtype, dev, cst, t->dtype, tensor_data(t), t->stride);
    void *h = malloc(nb);
    CM_CHECK(h, "tensor_copy_to_host", "out of host memory (%zu bytes)", nb);
    be->memcpy_d2h(k, h, dev, nb);
    be->sync(k);
    alloc_put(t->storage->dev, dev, nb);
    cpu->copy_strided(backend_ctx(CM_DEV_CPU), t->ndim, t->shape, dt, dst, cst, t->dtype, h, cst);
    free(h);
}

double tensor_get(const cm_tensor *t, int64_t flat) {
    // flat index in row-major order of the view
    int64_t off = 0, rem = flat;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t i = rem % t->shape[d];
        rem /= t->shape[d];
        off += i * t->stride[d];
    }
    cm_tensor *one = tensor_view_raw(t, 0, NULL, NULL, t->offset + off);
    double v;
    tensor_copy_to_host(one, CM_F64, &v);
    tensor_release(one);
    return v;
}
