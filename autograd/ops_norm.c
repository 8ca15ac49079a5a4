// ops_norm.c — LayerNorm (alone and fused with the adaLN modulation), RMSNorm (both eps
// conventions), GroupNorm and softmax.
// Statistics are computed and saved in f32 whatever the storage dtype.
#include "autograd/ops_internal.h"

static cm_tensor *stats_new(const cm_tensor *like, int64_t n) { return tensor_empty(CM_F32, 1, (int64_t[]){n}, DEV(like)); }

static void check_param(const char *op, const cm_tensor *x, const cm_tensor *p, int64_t n) {
    if (!p) return;
    ops_check_same(op, x, p);
    if (tensor_numel(p) != n) ops_die_shapes(op, "weight/bias size must equal the normalised size", x, p);
}

// the weight gradients of a norm over no rows (or no columns): zero
static void zero_grads(const cm_tensor *x, cm_tensor *dw, cm_tensor *db) {
    cm_tensor *t[2] = {dw, db};
    for (int i = 0; i < 2; i++)
        if (t[i] && tensor_numel(t[i])) BE(x)->fill(KC(x), t[i]->dtype, tensor_data(t[i]), tensor_numel(t[i]), 0.0);
}

// --- LayerNorm over the last axis ---
static void layernorm_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *mean = n->saved[1], *rstd = n->saved[2], *w = n->saved[3];
    cm_tensor *gc = ops_contig(g), *wc = w ? ops_contig(w) : NULL;
    int64_t cols = ops_cols(x), rows = ops_rows(x);
    cm_tensor *dx = ops_new(x, x->ndim, x->shape);
    cm_tensor *dw = n->n_in > 1 && n->needs[1] ? ops_new(x, 1, (int64_t[]){cols}) : NULL;
    cm_tensor *db = n->n_in > 2 && n->needs[2] ? ops_new(x, 1, (int64_t[]){cols}) : NULL;
    if (rows && cols)
        BE(x)->layernorm_bwd(KC(x), x->dtype, rows, cols, tensor_data(dx), dw ? tensor_data(dw) : NULL,
                             db ? tensor_data(db) : NULL, tensor_data(gc), tensor_data(x),
                             tensor_data(mean), tensor_data(rstd), wc ? tensor_data(wc) : NULL);
    else zero_grads(x, dw, db);  // no rows: nothing flows to the weights
    if (n->needs[0]) gin[0] = dx;
    else tensor_release(dx);
    if (dw) { gin[1] = op_reshape(dw, n->in_ndim[1], n->in_shape[1]); tensor_release(dw); }
    if (db) { gin[2] = op_reshape(db, n->in_ndim[2], n->in_shape[2]); tensor_release(db); }
    tensor_release(gc);
    tensor_release(wc);
}
static const cm_opdef OP_LAYERNORM = {"layernorm", layernorm_backward};

cm_tensor *op_layernorm(cm_tensor *x, cm_tensor *w, cm_tensor *b, double eps) {
    ops_check_compute("layernorm", x);
    int64_t cols = ops_cols(x), rows = ops_rows(x);
    check_param("layernorm", x, w, cols);
    check_param("layernorm", x, b, cols);
    CM_CHECK(!b || w, "layernorm", "a bias needs a weight");
    cm_tensor *xc = ops_contig(x), *wc = w ? ops_contig(w) : NULL, *bc = b ? ops_contig(b) : NULL;
    cm_tensor *out = ops_new(x, x->ndim, x->shape), *mean = stats_new(x, rows), *rstd = stats_new(x, rows);
    if (rows && cols)
        BE(x)->layernorm_fwd(KC(x), x->dtype, rows, cols, eps, tensor_data(out), tensor_data(mean), tensor_data(rstd),
                             tensor_data(xc), wc ? tensor_data(wc) : NULL, bc ? tensor_data(bc) : NULL);
    cm_tensor *ins[3] = {x, w, b};
    cm_node *n = autograd_record(&OP_LAYERNORM, out, b ? 3 : (w ? 2 : 1), ins);
    if (n) {
        node_save(n, 0, xc);
        node_save(n, 1, mean);
        node_save(n, 2, rstd);
        if (w) node_save(n, 3, w);
    }
    tensor_release(xc); tensor_release(wc); tensor_release(bc); tensor_release(mean); tensor_release(rstd);
    return out;
}

// --- LayerNorm fused with the adaLN modulation: layernorm(x [B, L, C], w, b) * (1 + scale[B, C]) + shift ---
// saves x, the statistics, w, b and scale: the normalised tensor is neither stored nor kept
static void layernorm_mod_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *mean = n->saved[1], *rstd = n->saved[2], *w = n->saved[3], *b = n->saved[4];
    cm_tensor *scale = n->saved[5];
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    cm_tensor *gc = ops_contig(g), *wc = w ? ops_contig(w) : NULL, *bc = b ? ops_contig(b) : NULL;
    cm_tensor *d[5] = {n->needs[0] ? ops_new(x, 3, x->shape) : NULL,       // dx
                       n->needs[1] ? ops_new(x, 1, (int64_t[]){C}) : NULL,  // dw
                       n->needs[2] ? ops_new(x, 1, (int64_t[]){C}) : NULL,  // db
                       n->needs[3] ? ops_new(x, 2, (int64_t[]){B, C}) : NULL,  // dscale
                       n->needs[4] ? ops_new(x, 2, (int64_t[]){B, C}) : NULL};  // dshift
    void *p[5];
    for (int i = 0; i < 5; i++) p[i] = d[i] ? tensor_data(d[i]) : NULL;
    if (B > 0 && C > 0)  // L = 0 is the kernels' (zero dw, db, dscale, dshift)
        BE(x)->layernorm_mod_bwd(KC(x), x->dtype, B, L, C, p[0], p[1], p[2], p[3], p[4], tensor_data(gc), tensor_data(x),
                                 tensor_data(mean), tensor_data(rstd), wc ? tensor_data(wc) : NULL,
                                 bc ? tensor_data(bc) : NULL, tensor_data(scale));
    else zero_grads(x, d[1], d[2]);  // no batch: nothing flows to the weights (every backend alike)
    gin[0] = d[0];
    for (int i = 1; i < 5; i++)
        if (d[i]) { gin[i] = op_reshape(d[i], n->in_ndim[i], n->in_shape[i]); tensor_release(d[i]); }
    tensor_release(gc); tensor_release(wc); tensor_release(bc);
}
static const cm_opdef OP_LAYERNORM_MOD = {"layernorm_modulate", layernorm_mod_backward};

cm_tensor *op_layernorm_modulate(cm_tensor *x, cm_tensor *w, cm_tensor *b, double eps, cm_tensor *scale,
                                 cm_tensor *shift) {
    ops_check_modulation("layernorm_modulate", x, scale, shift);
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    check_param("layernorm_modulate", x, w, C);
    check_param("layernorm_modulate", x, b, C);
    CM_CHECK(!b || w, "layernorm_modulate", "a bias needs a weight");
    cm_tensor *xc = ops_contig(x), *wc = w ? ops_contig(w) : NULL, *bc = b ? ops_contig(b) : NULL;
    cm_tensor *sc = ops_contig(scale), *hc = ops_contig(shift);
    cm_tensor *out = ops_new(x, 3, x->shape), *mean = stats_new(x, B * L), *rstd = stats_new(x, B * L);
    if (tensor_numel(x))
        BE(x)->layernorm_mod_fwd(KC(x), x->dtype, B, L, C, eps, tensor_data(out), tensor_data(mean), tensor_data(rstd),
                                 tensor_data(xc), wc ? tensor_data(wc) : NULL, bc ? tensor_data(bc) : NULL,
                                 tensor_data(sc), tensor_data(hc));
    cm_node *n = autograd_record(&OP_LAYERNORM_MOD, out, 5, (cm_tensor *[]){x, w, b, scale, shift});
    if (n) {
        node_save(n, 0, xc);
        node_save(n, 1, mean);
        node_save(n, 2, rstd);
        if (w) node_save(n, 3, w);
        if (b) node_save(n, 4, b);
        node_save(n, 5, sc);
    }
    tensor_release(xc); tensor_release(wc); tensor_release(bc); tensor_release(sc); tensor_release(hc);
    tensor_release(mean); tensor_release(rstd);
    return out;
}

// --- RMSNorm over the last axis ---
static void rmsnorm_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *inv = n->saved[1], *w = n->saved[2];
    cm_tensor *gc = ops_contig(g), *wc = w ? ops_contig(w) : NULL;
    int64_t cols = ops_cols(x), rows = ops_rows(x);
    cm_tensor *dx = ops_new(x, x->ndim, x->shape);
    cm_tensor *dw = n->n_in > 1 && n->needs[1] ? ops_new(x, 1, (int64_t[]){cols}) : NULL;
    if (rows && cols)
        BE(x)->rmsnorm_bwd(KC(x), (cm_rmsvariant)n->i[0], x->dtype, rows, cols, n->f[0], tensor_data(dx),
                           dw ? tensor_data(dw) : NULL, tensor_data(gc), tensor_data(x), tensor_data(inv),
                           wc ? tensor_data(wc) : NULL);
    else zero_grads(x, dw, NULL);
    if (n->needs[0]) gin[0] = dx;
    else tensor_release(dx);
    if (dw) { gin[1] = op_reshape(dw, n->in_ndim[1], n->in_shape[1]); tensor_release(dw); }
    tensor_release(gc);
    tensor_release(wc);
}
static const cm_opdef OP_RMSNORM = {"rmsnorm", rmsnorm_backward};

cm_tensor *op_rmsnorm(cm_tensor *x, cm_tensor *w, double eps, cm_rmsvariant v) {
    ops_check_compute("rmsnorm", x);
    int64_t cols = ops_cols(x), rows = ops_rows(x);
    check_param("rmsnorm", x, w, cols);
    cm_tensor *xc = ops_contig(x), *wc = w ? ops_contig(w) : NULL;
    cm_tensor *out = ops_new(x, x->ndim, x->shape), *inv = stats_new(x, rows);
    if (rows && cols)
        BE(x)->rmsnorm_fwd(KC(x), v, x->dtype, rows, cols, eps, tensor_data(out), tensor_data(inv), tensor_data(xc),
                           wc ? tensor_data(wc) : NULL);
    cm_tensor *ins[2] = {x, w};
    cm_node *n = autograd_record(&OP_RMSNORM, out, w ? 2 : 1, ins);
    if (n) {
        n->i[0] = v;
        n->f[0] = eps;
        node_save(n, 0, xc);
        node_save(n, 1, inv);
        if (w) node_save(n, 2, w);
    }
    tensor_release(xc); tensor_release(wc); tensor_release(inv);
    return out;
}

// --- GroupNorm: x [N, C, *spatial] ---
static void groupnorm_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *mean = n->saved[1], *rstd = n->saved[2], *w = n->saved[3];
    cm_tensor *gc = ops_contig(g), *wc = w ? ops_contig(w) : NULL;
    int64_t N = x->shape[0], C = x->shape[1], HW = (N > 0 && C > 0) ? tensor_numel(x) / (N * C) : 0, G = n->i[0];
    cm_tensor *dx = ops_new(x, x->ndim, x->shape);
    cm_tensor *dw = n->n_in > 1 && n->needs[1] ? ops_new(x, 1, (int64_t[]){C}) : NULL;
    cm_tensor *db = n->n_in > 2 && n->needs[2] ? ops_new(x, 1, (int64_t[]){C}) : NULL;
    BE(x)->groupnorm_bwd(KC(x), x->dtype, N, C, HW, G, tensor_data(dx), dw ? tensor_data(dw) : NULL,
                         db ? tensor_data(db) : NULL, tensor_data(gc), tensor_data(x), tensor_data(mean),
                         tensor_data(rstd), wc ? tensor_data(wc) : NULL);
    if (n->needs[0]) gin[0] = dx;
    else tensor_release(dx);
    if (dw) { gin[1] = op_reshape(dw, n->in_ndim[1], n->in_shape[1]); tensor_release(dw); }
    if (db) { gin[2] = op_reshape(db, n->in_ndim[2], n->in_shape[2]); tensor_release(db); }
    tensor_release(gc);
    tensor_release(wc);
}
static const cm_opdef OP_GROUPNORM = {"groupnorm", groupnorm_backward};

cm_tensor *op_groupnorm(cm_tensor *x, int groups, cm_tensor *w, cm_tensor *b, double eps) {
    ops_check_compute("groupnorm", x);
    if (x->ndim < 2 || groups <= 0 || x->shape[1] % groups) ops_die_shapes("groupnorm", "needs [N, C, ...] with C divisible by the groups", x, NULL);
    int64_t N = x->shape[0], C = x->shape[1], HW = (N > 0 && C > 0) ? tensor_numel(x) / (N * C) : 0;
    check_param("groupnorm", x, w, C);
    check_param("groupnorm", x, b, C);
    CM_CHECK(!b || w, "groupnorm", "a bias needs a weight");
    cm_tensor *xc = ops_contig(x), *wc = w ? ops_contig(w) : NULL, *bc = b ? ops_contig(b) : NULL;
    cm_tensor *out = ops_new(x, x->ndim, x->shape), *mean = stats_new(x, N * groups), *rstd = stats_new(x, N * groups);
    if (tensor_numel(x))
        BE(x)->groupnorm_fwd(KC(x), x->dtype, N, C, HW, groups, eps, tensor_data(out), tensor_data(mean),
                             tensor_data(rstd), tensor_data(xc), wc ? tensor_data(wc) : NULL, bc ? tensor_data(bc) : NULL);
    cm_tensor *ins[3] = {x, w, b};
    cm_node *n = autograd_record(&OP_GROUPNORM, out, b ? 3 : (w ? 2 : 1), ins);
    if (n) {
        n->i[0] = groups;
        node_save(n, 0, xc);
        node_save(n, 1, mean);
        node_save(n, 2, rstd);
        if (w) node_save(n, 3, w);
    }
    tensor_release(xc); tensor_release(wc); tensor_release(bc); tensor_release(mean); tensor_release(rstd);
    return out;
}

// --- softmax over the last axis ---
static void softmax_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *y = n->saved[0], *gc = ops_contig(g);
    cm_tensor *dx = ops_new(y, y->ndim, y->shape);
    BE(y)->softmax_bwd(KC(y), y->dtype, ops_rows(y), ops_cols(y), tensor_data(dx), tensor_data(y), tensor_data(gc));
    tensor_release(gc);
    gin[0] = dx;
}
static const cm_opdef OP_SOFTMAX = {"softmax", softmax_backward};

cm_tensor *op_softmax(cm_tensor *x) {
    ops_check_compute("softmax", x);
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = ops_new(x, x->ndim, x->shape);
    if (tensor_numel(x)) BE(x)->softmax_fwd(KC(x), x->dtype, ops_rows(x), ops_cols(x), tensor_data(out), tensor_data(xc));
    tensor_release(xc);
    cm_node *n = autograd_record(&OP_SOFTMAX, out, 1, &x);
    if (n) node_save(n, 0, out);
    return out;
}

const cm_opdef *const ops_norm_table[] = {&OP_LAYERNORM, &OP_LAYERNORM_MOD, &OP_RMSNORM, &OP_GROUPNORM, &OP_SOFTMAX, NULL};
