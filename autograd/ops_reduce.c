// ops_reduce.c — sums and means over axes, and the mean-squared-error loss.
#include "autograd/ops_internal.h"

static void sum_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    // g has the kept-dims shape (or fewer dims): view it with 1s on the reduced axes and broadcast
    int64_t ks[CM_MAX_DIMS];
    for (int d = 0; d < n->in_ndim[0]; d++) ks[d] = (n->i[0] >> d) & 1 ? 1 : n->in_shape[0][d];
    cm_tensor *gk = op_reshape(g, n->in_ndim[0], ks);
    cm_tensor *e = op_expand(gk, n->in_ndim[0], n->in_shape[0]);
    cm_tensor *c = ops_contig(e);
    gin[0] = n->f[0] != 1.0 ? op_scale(c, n->f[0]) : tensor_retain(c);
    tensor_release(gk); tensor_release(e); tensor_release(c);
}
static const cm_opdef OP_SUM = {"sum", sum_backward};

static cm_tensor *reduce(cm_tensor *x, int naxes, const int *axes, bool keepdim, bool mean) {
    ops_check_compute(mean ? "mean" : "sum", x);
    int64_t mask = 0, count = 1;
    for (int i = 0; i < naxes; i++) {
        int a = tensor_axis(x, axes[i], mean ? "mean" : "sum");
        if (!((mask >> a) & 1)) count *= x->shape[a];
        mask |= 1ll << a;
    }
    cm_tensor *cur = ops_contig(x);
    for (int a = 0; a < x->ndim; a++) {  // one axis at a time, keeping dims
        if (!((mask >> a) & 1)) continue;
        cm_tensor *r = ops_sum_axis(cur, a);
        tensor_release(cur);
        cur = r;
    }
    if (mean && count) {
        double s = 1.0 / (double)count;
        BE(cur)->axpby(KC(cur), cur->dtype, tensor_numel(cur), s, tensor_data(cur), 0.0, tensor_data(cur));
    }
    int64_t shape[CM_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if ((mask >> d) & 1) {
            if (keepdim) shape[nd++] = 1;
        } else shape[nd++] = x->shape[d];
    }
    cm_tensor *out = tensor_view_raw(cur, nd, shape, NULL, cur->offset);
    tensor_release(cur);
    cm_node *n = autograd_record(&OP_SUM, out, 1, &x);
    if (n) {
        n->i[0] = mask;
        n->f[0] = mean && count ? 1.0 / (double)count : 1.0;
    }
    return out;
}

cm_tensor *op_sum(cm_tensor *x, int naxes, const int *axes, bool keepdim) { return reduce(x, naxes, axes, keepdim, false); }
cm_tensor *op_mean(cm_tensor *x, int naxes, const int *axes, bool keepdim) { return reduce(x, naxes, axes, keepdim, true); }

static cm_tensor *reduce_all(cm_tensor *x, bool mean) {
    int axes[CM_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) axes[d] = d;
    if (x->ndim == 0) return op_scale(x, 1.0);  // a scalar is its own sum and mean
    return reduce(x, x->ndim, axes, false, mean);
}
cm_tensor *op_sum_all(cm_tensor *x) { return reduce_all(x, false); }
cm_tensor *op_mean_all(cm_tensor *x) { return reduce_all(x, true); }

// --- mse: mean((a - b)^2) -> [] ---
// the upstream gradient g (a scalar) is read by the kernel where it lies: no host synchronisation
static void mse_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *a = n->saved[0], *b = n->saved[1];
    cm_tensor *gc = g->dtype == a->dtype ? ops_contig(g) : op_cast(g, a->dtype);
    int64_t N = tensor_numel(a);
    for (int i = 0; i < 2; i++)
        if (n->needs[i]) {
            gin[i] = ops_new(a, a->ndim, a->shape);
            BE(a)->mse_bwd(KC(a), a->dtype, N, i ? -1.0 : 1.0, tensor_data(gc), tensor_data(gin[i]), tensor_data(a),
                           tensor_data(b));
        }
    tensor_release(gc);
}
static const cm_opdef OP_MSE = {"mse", mse_backward};

cm_tensor *op_mse(cm_tensor *a, cm_tensor *b) {
    ops_check_same("mse", a, b);
    ops_check_compute("mse", a);
    if (!tensor_same_shape(a, b)) ops_die_shapes("mse", "shapes differ", a, b);
    cm_tensor *ac = ops_contig(a), *bc = ops_contig(b);
    cm_tensor *out = ops_new(a, 0, NULL);  // the loss stays on the device
    BE(a)->mse_fwd(KC(a), a->dtype, tensor_numel(a), tensor_data(ac), tensor_data(bc), tensor_data(out));
    cm_node *n = autograd_record(&OP_MSE, out, 2, (cm_tensor *[]){a, b});
    if (n) {
        node_save(n, 0, ac);
        node_save(n, 1, bc);
    }
    tensor_release(ac);
    tensor_release(bc);
    return out;
}

// --- embedding: table [V, D], idx i32 [...] -> [..., D] ---
static void embedding_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *idx = n->saved[0], *gc = ops_contig(g);
    int64_t D = n->in_shape[0][1];
    cm_tensor *dt = tensor_zeros(g->dtype, 2, n->in_shape[0], DEV(g));
    BE(g)->scatter_add_rows(KC(g), g->dtype, tensor_numel(idx), D, tensor_data(dt), tensor_data(gc), tensor_data(idx));
    tensor_release(gc);
    gin[0] = dt;
}
static const cm_opdef OP_EMBEDDING = {"embedding", embedding_backward};

cm_tensor *op_embedding(cm_tensor *table, cm_tensor *idx) {
    ops_check_compute("embedding", table);
    if (table->ndim != 2 || idx->dtype != CM_I32 || idx->ndim >= CM_MAX_DIMS) ops_die_shapes("embedding", "table [V, D] and i32 indices", table, idx);
    if (!device_eq(DEV(table), DEV(idx))) ops_die_shapes("embedding", "devices differ", table, idx);
    cm_tensor *tc = ops_contig(table), *ic = ops_contig(idx);
    if (DEV(idx).type == CM_CPU) {  // bad ids are a clear error, never a wild read
        const int32_t *ip = tensor_data(ic);
        for (int64_t i = 0; i < tensor_numel(ic); i++)
            CM_CHECK(ip[i] >= 0 && ip[i] < table->shape[0], "embedding", "index %d out of range [0, %lld)", ip[i], (long long)table->shape[0]);
    }
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = table->shape[1];
    cm_tensor *out = ops_new(table, idx->ndim + 1, shape);
    if (tensor_numel(out)) BE(table)->gather_rows(KC(table), table->dtype, tensor_numel(idx), table->shape[1], tensor_data(out), tensor_data(tc), tensor_data(ic));
    cm_node *n = autograd_record(&OP_EMBEDDING, out, 1, &table);
    if (n) node_save(n, 0, ic);
    tensor_release(tc);
    tensor_release(ic);
    return out;
}

const cm_opdef *const ops_reduce_table[] = {&OP_SUM, &OP_MSE, &OP_EMBEDDING, NULL};
