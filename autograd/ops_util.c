// ops_util.c — shape checks, broadcasting and reduction helpers shared by the ops.
#include <stdio.h>
#include "autograd/ops_internal.h"

void ops_die_shapes(const char *op, const char *what, const cm_tensor *a, const cm_tensor *b) {
    char x[160], y[160] = "";
    tensor_shape_str(a, x, sizeof x);
    if (b) tensor_shape_str(b, y, sizeof y);
    cm_die(op, "%s: %s%s%s", what, x, b ? " and " : "", y);
}

void ops_check_same(const char *op, const cm_tensor *a, const cm_tensor *b) {
    if (a->dtype != b->dtype) ops_die_shapes(op, "dtypes differ", a, b);
    if (!device_eq(DEV(a), DEV(b))) ops_die_shapes(op, "devices differ", a, b);
}

void ops_check_rope_tables(const char *op, const cm_tensor *x, const cm_tensor *cos, const cm_tensor *sin) {
    if (cos->dtype != x->dtype && cos->dtype != CM_F32)
        ops_die_shapes(op, "cos/sin must have x's dtype or f32", x, cos);
    ops_check_same(op, cos, sin);
    if (!device_eq(DEV(x), DEV(cos))) ops_die_shapes(op, "devices differ", x, cos);
}

void ops_check_compute(const char *op, const cm_tensor *t) {
    bool ok = DEV(t).type == CM_CPU ? (t->dtype == CM_F32 || t->dtype == CM_F64)
                                    : (t->dtype == CM_F32 || t->dtype == CM_BF16);
    if (!ok) ops_die_shapes(op, "unsupported dtype for this device (cpu: f32/f64, cuda: f32/bf16; cast first)", t, NULL);
}

void ops_check_modulation(const char *op, const cm_tensor *x, const cm_tensor *scale, const cm_tensor *shift) {
    ops_check_compute(op, x);
    ops_check_same(op, x, scale);
    ops_check_same(op, x, shift);
    if (x->ndim != 3) ops_die_shapes(op, "x must be [B, L, C]", x, NULL);
    int64_t B = x->shape[0], C = x->shape[2];
    if (tensor_numel(scale) != B * C || tensor_numel(shift) != B * C || scale->shape[0] != B || shift->shape[0] != B)
        ops_die_shapes(op, "scale and shift must be [B, C] (or [B, 1, C])", x, scale);
}

cm_tensor *ops_contig(cm_tensor *t) {
    if (tensor_is_contiguous(t)) return tensor_retain(t);
    cm_tensor *c = tensor_empty(t->dtype, t->ndim, t->shape, DEV(t));
    if (tensor_numel(t))
        BE(t)->copy_strided(KC(t), t->ndim, t->shape, t->dtype, tensor_data(c), c->stride, t->dtype, tensor_data(t), t->stride);
    return c;
}

bool ops_add_into(cm_tensor *dst, const cm_tensor *g) {
    ops_check_same("add_into", dst, g);
    if (!tensor_same_shape(dst, g)) ops_die_shapes("add_into", "shapes differ", dst, g);
    int nd = dst->ndim, k = nd;  // dims k.. are one contiguous run of dst
    int64_t run = 1;
    while (k > 0 && (dst->shape[k - 1] == 1 || dst->stride[k - 1] == run)) run *= dst->shape[--k];
    int64_t outer = 1;
    for (int d = 0; d < k; d++) outer *= dst->shape[d];
    if (outer > 64) return false;
    if (!run || !outer) return true;
    int64_t cs[CM_MAX_DIMS];  // dst's run as contiguous strides
    for (int64_t d = nd - 1, s = 1; d >= k; s *= dst->shape[d], d--) cs[d] = s;
    size_t es = dtype_size(dst->dtype);
    for (int64_t r = 0; r < outer; r++) {
        int64_t rem = r, od = 0, og = 0;
        for (int d = k - 1; d >= 0; d--) {
            int64_t c = rem % dst->shape[d];
            rem /= dst->shape[d];
            od += c * dst->stride[d];
            og += c * g->stride[d];
        }
        char *o = (char *)tensor_data(dst) + od * (int64_t)es;
        const char *b = (const char *)tensor_data(g) + og * (int64_t)es;
        BE(dst)->binary(KC(dst), CM_BIN_ADD, dst->dtype, nd - k, dst->shape + k, o, o, cs + k, b, g->stride + k);
    }
    return true;
}

cm_tensor *ops_new(const cm_tensor *like, int ndim, const int64_t *shape) { return tensor_empty(like->dtype, ndim, shape, DEV(like)); }

int ops_broadcast_shape(const char *op, const cm_tensor *a, const cm_tensor *b, int64_t *shape) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) ops_die_shapes(op, "shapes do not broadcast", a, b);
        shape[d] = sa == 1 ? sb : sa;
    }
    return nd;
}

void ops_broadcast_strides(const cm_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
    for (int d = 0; d < ndim; d++) {
        int dt = d - (ndim - t->ndim);
        stride[d] = (dt >= 0 && t->shape[dt] == shape[d] && shape[d] != 1) ? t->stride[dt] : 0;
    }
}

cm_tensor *ops_sum_axis(cm_tensor *cur, int d) {
    int64_t outer = 1, inner = 1;
    for (int e = 0; e < d; e++) outer *= cur->shape[e];
    for (int e = d + 1; e < cur->ndim; e++) inner *= cur->shape[e];
    int64_t ns[CM_MAX_DIMS];
    memcpy(ns, cur->shape, sizeof ns);
    ns[d] = 1;
    cm_tensor *r = ops_new(cur, cur->ndim, ns);
    if (outer > 0 && inner > 0) {
        if (cur->shape[d]) BE(cur)->reduce_sum(KC(cur), cur->dtype, outer, cur->shape[d], inner, tensor_data(r), tensor_data(cur));
        else BE(cur)->fill(KC(cur), cur->dtype, tensor_data(r), outer * inner, 0.0);  // an empty sum
    }
    return r;
}

cm_tensor *ops_reduce_to(cm_tensor *g, int ndim, const int64_t *shape) {
    cm_tensor *cur = ops_contig(g);
    int lead = cur->ndim - ndim;
    // sum over every axis that is missing or 1 in the target, one axis at a time (fixed order)
    for (int d = 0; d < cur->ndim; d++) {
        int dt = d - lead;
        bool reduce = dt < 0 ? true : (shape[dt] == 1 && cur->shape[d] != 1);
        if (!reduce || cur->shape[d] == 1) continue;
        cm_tensor *r = ops_sum_axis(cur, d);
        tensor_release(cur);
        cur = r;
    }
    // drop the leading axes (all 1 now) and match the target shape exactly
    cm_tensor *out = tensor_view_raw(cur, ndim, shape, NULL, cur->offset);
    tensor_release(cur);
    return out;
}
