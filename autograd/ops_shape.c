// ops_shape.c — reshape, permute, slice, concat, expand and friends. Views share storage;
// their backward rules route the gradient back to the viewed layout.
#include "autograd/ops_internal.h"
#include "autograd/upload.h"

// --- reshape ---
static void reshape_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = op_reshape(g, n->in_ndim[0], n->in_shape[0]); }
static const cm_opdef OP_RESHAPE = {"reshape", reshape_backward};

cm_tensor *op_reshape(cm_tensor *x, int ndim, const int64_t *shape_in) {
    int64_t shape[CM_MAX_DIMS], known = 1;
    int infer = -1;
    CM_CHECK(ndim >= 0 && ndim <= CM_MAX_DIMS, "reshape", "%d dims", ndim);
    for (int d = 0; d < ndim; d++) {
        shape[d] = shape_in[d];
        if (shape[d] == -1) {
            CM_CHECK(infer < 0, "reshape", "more than one -1");
            infer = d;
        } else known *= shape[d];
    }
    if (infer >= 0) shape[infer] = known ? tensor_numel(x) / known : 0;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (n != tensor_numel(x)) {
        char b[160];
        cm_die("reshape", "cannot view %s as %d dims with %lld elements", tensor_shape_str(x, b, sizeof b), ndim, (long long)n);
    }
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = tensor_view_raw(xc, ndim, shape, NULL, xc->offset);
    tensor_release(xc);
    autograd_record(&OP_RESHAPE, out, 1, &x);
    return out;
}

cm_tensor *op_unsqueeze(cm_tensor *x, int axis) {
    int a = axis < 0 ? axis + x->ndim + 1 : axis;
    CM_CHECK(a >= 0 && a <= x->ndim && x->ndim < CM_MAX_DIMS, "unsqueeze", "axis %d for %d dims", axis, x->ndim);
    int64_t shape[CM_MAX_DIMS];
    for (int d = 0, s = 0; d <= x->ndim; d++) shape[d] = d == a ? 1 : x->shape[s++];
    return op_reshape(x, x->ndim + 1, shape);
}

cm_tensor *op_squeeze(cm_tensor *x, int axis) {
    int a = tensor_axis(x, axis, "squeeze");
    if (x->shape[a] != 1) ops_die_shapes("squeeze", "axis is not of size 1", x, NULL);
    int64_t shape[CM_MAX_DIMS];
    for (int d = 0, s = 0; d < x->ndim; d++)
        if (d != a) shape[s++] = x->shape[d];
    return op_reshape(x, x->ndim - 1, shape);
}

// --- permute ---
static void permute_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    int inv[CM_MAX_DIMS];
    for (int d = 0; d < n->in_ndim[0]; d++) inv[n->i[d]] = d;
    gin[0] = op_permute(g, inv);
}
static const cm_opdef OP_PERMUTE = {"permute", permute_backward};

cm_tensor *op_permute(cm_tensor *x, const int *perm) {
    int64_t shape[CM_MAX_DIMS], stride[CM_MAX_DIMS];
    bool seen[CM_MAX_DIMS] = {0};
    for (int d = 0; d < x->ndim; d++) {
        CM_CHECK(perm[d] >= 0 && perm[d] < x->ndim && !seen[perm[d]], "permute", "invalid permutation at %d", d);
        seen[perm[d]] = true;
        shape[d] = x->shape[perm[d]];
        stride[d] = x->stride[perm[d]];
    }
    cm_tensor *out = tensor_view_raw(x, x->ndim, shape, stride, x->offset);
    cm_node *n = autograd_record(&OP_PERMUTE, out, 1, &x);
    if (n)
        for (int d = 0; d < x->ndim; d++) n->i[d] = perm[d];
    return out;
}

cm_tensor *op_transpose(cm_tensor *x, int d0, int d1) {
    int a = tensor_axis(x, d0, "transpose"), b = tensor_axis(x, d1, "transpose");
    int perm[CM_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return op_permute(x, perm);
}

// --- slice (narrow) ---
// a view of acc (contiguous, the input's shape) at the slice's place
static cm_tensor *slice_region(cm_node *n, cm_tensor *acc, const cm_tensor *g) {
    return tensor_view_raw(acc, g->ndim, g->shape, acc->stride, acc->offset + n->i[1] * acc->stride[n->i[0]]);
}

static void slice_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *acc = autograd_grad_target(n, 0);
    if (acc && acc->dtype == g->dtype) {  // the other slices' gradients are there: add into its place
        cm_tensor *dst = slice_region(n, acc, g);
        bool done = ops_add_into(dst, g);
        tensor_release(dst);
        if (done) {
            gin[0] = tensor_retain(acc);
            return;
        }
    }
    // the input's gradient: zeros around the slice (before and after it on the axis, per outer
    // index; the whole tensor when that takes more than 64 pieces), g copied into its place
    int axis = (int)n->i[0];
    const int64_t *sh = n->in_shape[0];
    int64_t outer = 1, inner = 1, len = sh[axis], s0 = n->i[1], s1 = n->i[1] + g->shape[axis];
    for (int d = 0; d < axis; d++) outer *= sh[d];
    for (int d = axis + 1; d < n->in_ndim[0]; d++) inner *= sh[d];
    cm_tensor *z = tensor_empty(g->dtype, n->in_ndim[0], sh, DEV(g));
    char *zp = tensor_data(z);
    size_t es = dtype_size(g->dtype);
    if (!tensor_numel(z)) {
    } else if (outer > 64) {
        BE(g)->fill(KC(g), g->dtype, zp, tensor_numel(z), 0.0);
    } else
        for (int64_t o = 0; o < outer; o++) {
            if (s0) BE(g)->fill(KC(g), g->dtype, zp + (o * len) * inner * (int64_t)es, s0 * inner, 0.0);
            if (s1 < len) BE(g)->fill(KC(g), g->dtype, zp + (o * len + s1) * inner * (int64_t)es, (len - s1) * inner, 0.0);
        }
    cm_tensor *dst = tensor_view_raw(z, g->ndim, g->shape, z->stride, z->offset + n->i[1] * z->stride[axis]);
    if (tensor_numel(g)) BE(g)->copy_strided(KC(g), g->ndim, g->shape, g->dtype, tensor_data(dst), dst->stride, g->dtype, tensor_data(g), g->stride);
    tensor_release(dst);
    gin[0] = z;
}
static const cm_opdef OP_SLICE = {"slice", slice_backward};

cm_tensor *op_slice(cm_tensor *x, int axis, int64_t start, int64_t end) {
    int a = tensor_axis(x, axis, "slice");
    if (start < 0) start += x->shape[a];
    if (end < 0) end += x->shape[a];
    if (start < 0 || end > x->shape[a] || start > end) {
        char b[160];
        cm_die("slice", "range [%lld, %lld) out of bounds on axis %d of %s", (long long)start, (long long)end, axis, tensor_shape_str(x, b, sizeof b));
    }
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = end - start;
    cm_tensor *out = tensor_view_raw(x, x->ndim, shape, x->stride, x->offset + start * x->stride[a]);
    cm_node *n = autograd_record(&OP_SLICE, out, 1, &x);
    if (n) {
        n->i[0] = a;
        n->i[1] = start;
    }
    return out;
}

cm_tensor *op_chunk(cm_tensor *x, int nchunks, int axis, int i) {
    int a = tensor_axis(x, axis, "chunk");
    if (nchunks <= 0 || x->shape[a] % nchunks) ops_die_shapes("chunk", "axis not divisible by the chunk count", x, NULL);
    CM_CHECK(i >= 0 && i < nchunks, "chunk", "chunk %d of %d", i, nchunks);
    int64_t sz = x->shape[a] / nchunks;
    return op_slice(x, a, i * sz, (i + 1) * sz);
}

void op_split(cm_tensor *x, int axis, int n, const int64_t *sizes, cm_tensor **outs) {
    int a = tensor_axis(x, axis, "split");
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        outs[i] = op_slice(x, a, at, at + sizes[i]);
        at += sizes[i];
    }
    if (at != x->shape[a]) ops_die_shapes("split", "sizes do not add up to the axis", x, NULL);
}

// --- concat ---
static void concat_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    int axis = (int)n->i[0];
    int64_t at = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t len = n->in_shape[k][axis];
        if (n->needs[k]) {
            autograd_no_grad_push();
            cm_tensor *s = op_slice(g, axis, at, at + len);
            autograd_no_grad_pop();
            cm_tensor *acc = autograd_grad_target(n, k);
            if (acc && acc->dtype == s->dtype && ops_add_into(acc, s)) gin[k] = tensor_retain(acc);  // no copy first
            else gin[k] = ops_contig(s);
            tensor_release(s);
        }
        at += len;
    }
}
static const cm_opdef OP_CONCAT = {"concat", concat_backward};

cm_tensor *op_concat(int n, cm_tensor **xs, int axis) {
    CM_CHECK(n >= 1 && n <= CM_MAX_INPUTS, "concat", "%d inputs (1..%d)", n, CM_MAX_INPUTS);
    int a = tensor_axis(xs[0], axis, "concat");
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[a] = 0;
    for (int k = 0; k < n; k++) {
        ops_check_same("concat", xs[0], xs[k]);
        bool ok = xs[k]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++) ok = d == a || xs[k]->shape[d] == xs[0]->shape[d];
        if (!ok) ops_die_shapes("concat", "shapes differ off the concat axis", xs[0], xs[k]);
        shape[a] += xs[k]->shape[a];
    }
    cm_tensor *out = ops_new(xs[0], xs[0]->ndim, shape);
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        cm_tensor *x = xs[k];
        if (tensor_numel(x))
            BE(x)->copy_strided(KC(x), x->ndim, x->shape, x->dtype, (char *)tensor_data(out) + at * out->stride[a] * (int64_t)dtype_size(x->dtype),
                                out->stride, x->dtype, tensor_data(x), x->stride);
        at += x->shape[a];
    }
    cm_node *nd = autograd_record(&OP_CONCAT, out, n, xs);
    if (nd) nd->i[0] = a;
    return out;
}

// --- expand (broadcast view) ---
static void expand_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = ops_reduce_to(g, n->in_ndim[0], n->in_shape[0]); }
static const cm_opdef OP_EXPAND = {"expand", expand_backward};

cm_tensor *op_expand(cm_tensor *x, int ndim, const int64_t *shape) {
    CM_CHECK(ndim >= x->ndim && ndim <= CM_MAX_DIMS, "expand", "cannot expand %d dims to %d", x->ndim, ndim);
    int64_t st[CM_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        int dx = d - (ndim - x->ndim);
        int64_t sx = dx >= 0 ? x->shape[dx] : 1;
        if (sx != shape[d] && sx != 1) ops_die_shapes("expand", "size must match or be 1", x, NULL);
        st[d] = (dx >= 0 && sx == shape[d]) ? x->stride[dx] : 0;
    }
    cm_tensor *out = tensor_view_raw(x, ndim, shape, st, x->offset);
    autograd_record(&OP_EXPAND, out, 1, &x);
    return out;
}

// --- contiguous ---
static void identity_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = tensor_retain(g); }
static const cm_opdef OP_CONTIGUOUS = {"contiguous", identity_backward};

cm_tensor *op_contiguous(cm_tensor *x) {
    if (tensor_is_contiguous(x)) return tensor_retain(x);
    cm_tensor *out = ops_contig(x);
    autograd_record(&OP_CONTIGUOUS, out, 1, &x);
    return out;
}

// --- detach: same storage, no history ---
cm_tensor *op_detach(cm_tensor *x) { return tensor_view_raw(x, x->ndim, x->shape, x->stride, x->offset); }

// --- cast ---
static void cast_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = op_cast(g, n->in_dtype[0]); }
static const cm_opdef OP_CAST = {"cast", cast_backward};

cm_tensor *op_cast(cm_tensor *x, cm_dtype dt) {
    if (x->dtype == dt) return op_contiguous(x);
    cm_tensor *out = tensor_empty(dt, x->ndim, x->shape, DEV(x));
    if (tensor_numel(x)) BE(x)->copy_strided(KC(x), x->ndim, x->shape, dt, tensor_data(out), out->stride, x->dtype, tensor_data(x), x->stride);
    if (dtype_is_float(dt)) autograd_record(&OP_CAST, out, 1, &x);
    return out;
}

// --- device transfer ---
static void to_device_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_device d = {(cm_devtype)n->i[0], (int)n->i[1]};
    gin[0] = op_to_device(g, d);
}
static const cm_opdef OP_TO_DEVICE = {"to_device", to_device_backward};

cm_tensor *op_to_device(cm_tensor *x, cm_device dev) {
    if (device_eq(DEV(x), dev)) return op_contiguous(x);
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = tensor_empty(x->dtype, x->ndim, x->shape, dev);
    size_t nb = tensor_nbytes(x);
    if (nb) {
        if (DEV(x).type == CM_CPU) upload_to_device(dev, tensor_data(out), tensor_data(xc), nb);  // overlaps queued work
        else if (dev.type == CM_CPU) {
            BE(x)->memcpy_d2h(KC(x), tensor_data(out), tensor_data(xc), nb);
            BE(x)->sync(KC(x));
        } else {  // device to device through the host (peer copies are the CUDA backend's business)
            void *h = malloc(nb);
            CM_CHECK(h, "to_device", "out of host memory");
            BE(x)->memcpy_d2h(KC(x), h, tensor_data(xc), nb);
            BE(x)->sync(KC(x));
            backend_get(dev.type)->memcpy_h2d(backend_ctx(dev), tensor_data(out), h, nb);
            backend_get(dev.type)->sync(backend_ctx(dev));
            free(h);
        }
    }
    tensor_release(xc);
    cm_node *n = autograd_record(&OP_TO_DEVICE, out, 1, &x);
    if (n) {
        n->i[0] = DEV(x).type;
        n->i[1] = DEV(x).index;
    }
    return out;
}

const cm_opdef *const ops_shape_table[] = {&OP_RESHAPE, &OP_PERMUTE, &OP_SLICE, &OP_CONCAT, &OP_EXPAND, &OP_CONTIGUOUS, &OP_CAST, &OP_TO_DEVICE, NULL};
