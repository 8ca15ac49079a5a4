// e2e_helpers.h — what the tests of a run's outputs share: a log's text, two adapter files compared
// tensor by tensor, two tensors' bits. Header-only (static): each test is one file and one binary.
#pragma once
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/tensor.h"
#include "models/safetensors.h"

static inline bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

// element k of a safetensors entry in f32 or bf16 (the exported adapter's), as a double
static inline double st_value(const st_entry *x, size_t k) {
    float f;
    uint16_t h;
    if (x->dtype == CM_F32) return memcpy(&f, (const char *)x->data + 4 * k, 4), f;  // the data may be unaligned
    memcpy(&h, (const char *)x->data + 2 * k, 2);
    return bf16_to_f32(h);
}

// over the tensors of two adapter files (models/safetensors.h), matched by name: the largest |a - b|
// and |a|, and ||a - b|| / ||a||; infinite when a tensor is missing or differs in size or dtype
static inline void adapter_diff(const char *a, const char *b, double *diff, double *amax, double *rel) {
    *diff = *rel = INFINITY, *amax = 0;
    char e[512];
    st_file *fa = st_open(a, e, sizeof e), *fb = st_open(b, e, sizeof e);
    double d2 = 0, a2 = 1e-300, worst = 0;
    bool ok = fa && fb && st_count(fa) == st_count(fb) && st_count(fa) > 0;
    for (int i = 0; ok && i < st_count(fa); i++) {
        const st_entry *x = st_at(fa, i), *y = st_find(fb, x->name);
        ok = y && x->dtype == y->dtype && (x->dtype == CM_F32 || x->dtype == CM_BF16) && x->nbytes == y->nbytes;
        for (size_t k = 0; ok && k < x->nbytes / dtype_size(x->dtype); k++) {
            double u = st_value(x, k), v = st_value(y, k);
            worst = fmax(worst, fabs(u - v));
            *amax = fmax(*amax, fabs(u));
            d2 += (u - v) * (u - v), a2 += u * u;
        }
    }
    if (ok) *diff = worst, *rel = sqrt(d2 / a2);
    st_close(fa), st_close(fb);
}

// a and b of one dtype and size, with the same bytes (any device)
static inline bool same_bits(const cm_tensor *a, const cm_tensor *b) {
    int64_t n = tensor_numel(a);
    if (n != tensor_numel(b) || a->dtype != b->dtype) return false;
    size_t bytes = (size_t)n * dtype_size(a->dtype);
    void *x = malloc(bytes), *y = malloc(bytes);
    tensor_copy_to_host(a, a->dtype, x);
    tensor_copy_to_host(b, b->dtype, y);
    bool same = !memcmp(x, y, bytes);
    free(x), free(y);
    return same;
}
