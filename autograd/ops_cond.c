// ops_cond.c — RoPE, adaLN modulation, the gated residual and sinusoidal timestep embeddings.
#include <stdio.h>
#include "autograd/ops_internal.h"

// --- RoPE: x [..., L, D], cos/sin [L, D] ---
static cm_tensor *rope_apply(cm_tensor *x, cm_tensor *cs, cm_tensor *sn, int inverse) {
    int64_t L = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1];
    cm_tensor *xc = ops_contig(x), *cc = ops_contig(cs), *sc = ops_contig(sn);
    cm_tensor *out = ops_new(x, x->ndim, x->shape);
    if (tensor_numel(x))
        BE(x)->rope(KC(x), x->dtype, cs->dtype, tensor_numel(x) / (L * D), L, D, inverse, tensor_data(out),
                    tensor_data(xc), tensor_data(cc), tensor_data(sc));
    tensor_release(xc); tensor_release(cc); tensor_release(sc);
    return out;
}

static void rope_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = rope_apply(g, n->saved[0], n->saved[1], 1); }
static const cm_opdef OP_ROPE = {"rope", rope_backward};

cm_tensor *op_rope(cm_tensor *x, cm_tensor *cs, cm_tensor *sn) {
    ops_check_compute("rope", x);
    ops_check_rope_tables("rope", x, cs, sn);
    if (x->ndim < 2 || x->shape[x->ndim - 1] % 2) ops_die_shapes("rope", "x must be [..., L, D] with D even", x, NULL);
    int64_t L = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1];
    if (tensor_numel(cs) != L * D || !tensor_same_shape(cs, sn)) ops_die_shapes("rope", "cos/sin must be [L, D]", x, cs);
    cm_tensor *out = rope_apply(x, cs, sn, 0);
    cm_node *n = autograd_record(&OP_ROPE, out, 1, &x);  // no gradient to the tables
    if (n) {
        node_save(n, 0, cs);
        node_save(n, 1, sn);
    }
    return out;
}

// --- modulation: x [B, L, C] * (1 + scale[B, C]) + shift[B, C] ---
static void modulate_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *scale = n->saved[1];
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    cm_tensor *gc = ops_contig(g);
    cm_tensor *dx = n->needs[0] ? ops_new(x, 3, x->shape) : NULL;
    cm_tensor *ds = n->needs[1] ? ops_new(x, 2, (int64_t[]){B, C}) : NULL;
    cm_tensor *dh = n->needs[2] ? ops_new(x, 2, (int64_t[]){B, C}) : NULL;
    BE(x)->modulate_bwd(KC(x), x->dtype, B, L, C, dx ? tensor_data(dx) : NULL, ds ? tensor_data(ds) : NULL,
                        dh ? tensor_data(dh) : NULL, tensor_data(gc), tensor_data(x), tensor_data(scale));
    tensor_release(gc);
    gin[0] = dx;
    if (ds) { gin[1] = op_reshape(ds, n->in_ndim[1], n->in_shape[1]); tensor_release(ds); }
    if (dh) { gin[2] = op_reshape(dh, n->in_ndim[2], n->in_shape[2]); tensor_release(dh); }
}
static const cm_opdef OP_MODULATE = {"modulate", modulate_backward};

cm_tensor *op_modulate(cm_tensor *x, cm_tensor *scale, cm_tensor *shift) {
    ops_check_modulation("modulate", x, scale, shift);
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    cm_tensor *xc = ops_contig(x), *sc = ops_contig(scale), *hc = ops_contig(shift);
    cm_tensor *out = ops_new(x, 3, x->shape);
    if (tensor_numel(x))
        BE(x)->modulate_fwd(KC(x), x->dtype, B, L, C, tensor_data(out), tensor_data(xc), tensor_data(sc), tensor_data(hc));
    cm_node *n = autograd_record(&OP_MODULATE, out, 3, (cm_tensor *[]){x, scale, shift});
    if (n) {
        node_save(n, 0, xc);
        node_save(n, 1, sc);
    }
    tensor_release(xc); tensor_release(sc); tensor_release(hc);
    return out;
}

// --- gated residual: res + gate[b, None, :] * y; res, y [B, L, C], gate [B, C] or [B, 1, C] ---
// backward: dres = g (passed on, no copy); dy = g * gate (the broadcast mul op_mul's backward runs);
// dgate = sum over L of g * y (modulate_bwd's dscale)
static void gated_add_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    if (n->needs[0]) gin[0] = tensor_retain(g);
    if (n->needs[2]) {
        cm_tensor *g3 = op_reshape(n->saved[0], 3, (int64_t[]){g->shape[0], 1, g->shape[2]});  // [B, 1, C]
        gin[2] = op_mul(g, g3);
        tensor_release(g3);
    }
    if (n->needs[1]) {
        cm_tensor *y = n->saved[1], *gc = ops_contig(g);
        cm_tensor *dg = ops_new(y, n->in_ndim[1], n->in_shape[1]);
        BE(y)->modulate_bwd(KC(y), y->dtype, y->shape[0], y->shape[1], y->shape[2], NULL, tensor_data(dg), NULL,
                            tensor_data(gc), tensor_data(y), NULL);
        tensor_release(gc);
        gin[1] = dg;
    }
}
static const cm_opdef OP_GATED_ADD = {"gated_add", gated_add_backward};

cm_tensor *op_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y) {
    ops_check_modulation("gated_add", res, gate, gate);
    ops_check_same("gated_add", res, y);
    if (!tensor_same_shape(res, y)) ops_die_shapes("gated_add", "y must have the residual's shape", res, y);
    int64_t B = res->shape[0], L = res->shape[1], C = res->shape[2];
    cm_tensor *rc = ops_contig(res), *gc = ops_contig(gate), *yc = ops_contig(y);
    cm_tensor *out = ops_new(res, 3, res->shape);
    if (tensor_numel(out))
        BE(res)->gated_add(KC(res), res->dtype, B, L, C, tensor_data(out), tensor_data(rc), tensor_data(gc),
                           tensor_data(yc));
    cm_node *n = autograd_record(&OP_GATED_ADD, out, 3, (cm_tensor *[]){res, gate, y});
    if (n) {
        if (n->needs[2]) node_save(n, 0, gc);  // dy needs the gate
        if (n->needs[1]) node_save(n, 1, yc);  // dgate needs y
    }
    tensor_release(rc), tensor_release(gc), tensor_release(yc);
    return out;
}

// --- a + alpha * b on rows row0 .. row0+Lb of a; a [B, L, C], b [B, Lb, C] ---
// backward: da = g (passed on), db = alpha * g's rows (what op_scale's backward makes)
static void add_rows_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    if (n->needs[0]) gin[0] = tensor_retain(g);
    if (n->needs[1]) {
        cm_tensor *rows = op_slice(g, 1, n->i[0], n->i[0] + n->in_shape[1][1]);
        gin[1] = op_scale(rows, n->f[0]);
        tensor_release(rows);
    }
}
static const cm_opdef OP_ADD_ROWS = {"add_rows", add_rows_backward};

cm_tensor *op_add_rows(cm_tensor *a, cm_tensor *b, double alpha, int64_t row0) {
    ops_check_same("add_rows", a, b);
    ops_check_compute("add_rows", a);
    if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0] || a->shape[2] != b->shape[2])
        ops_die_shapes("add_rows", "a must be [B, L, C] and b [B, Lb, C]", a, b);
    int64_t B = a->shape[0], L = a->shape[1], C = a->shape[2], Lb = b->shape[1];
    if (row0 < 0 || row0 + Lb > L) {
        char what[96];
        snprintf(what, sizeof what, "rows [%lld, %lld) of b do not fit in a's %lld", (long long)row0,
                 (long long)(row0 + Lb), (long long)L);
        ops_die_shapes("add_rows", what, a, b);
    }
    cm_tensor *ac = ops_contig(a), *bc = ops_contig(b);
    cm_tensor *out = ops_new(a, 3, a->shape);
    if (tensor_numel(out))
        BE(a)->add_rows(KC(a), a->dtype, B, L, C, row0, Lb, alpha, tensor_data(out), tensor_data(ac), tensor_data(bc));
    cm_node *n = autograd_record(&OP_ADD_ROWS, out, 2, (cm_tensor *[]){a, b});
    if (n) {
        n->i[0] = row0;
        n->f[0] = alpha;
    }
    tensor_release(ac), tensor_release(bc);
    return out;
}

// --- fold_rows: x [B, L + N, C] -> [B, L, C], rows 0..L-1 plus alpha * rows L.. at rows row0.. ---
// (the pair attention's output, op_sdpa_tokens_pair: the joint attention's rows with the IP
// attention's added to the image tokens' — one pass each way, where two slices and add_rows would
// build two full-size gradients and sum them)
static void fold_rows_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    const int64_t L = n->i[0], row0 = n->i[1], B = n->in_shape[0][0], LN = n->in_shape[0][1], C = n->in_shape[0][2];
    const int64_t N = LN - L;
    cm_tensor *gc = ops_contig(g);
    cm_tensor *rows = op_slice(gc, 1, row0, row0 + N);
    cm_tensor *sc = op_scale(rows, n->f[0]);  // alpha * g's rows row0..: add_rows' backward arithmetic
    cm_tensor *scc = ops_contig(sc);
    cm_tensor *gx = ops_new(g, 3, (int64_t[]){B, LN, C});
    const size_t es = dtype_size(g->dtype);
    char *dx = tensor_data(gx);
    const int64_t dst_st[3] = {LN * C, C, 1}, src_st[3] = {L * C, C, 1}, sc_st[3] = {N * C, C, 1};
    if (B > 0 && L > 0 && C > 0)  // rows 0..L-1: g
        BE(g)->copy_strided(KC(g), 3, (int64_t[]){B, L, C}, g->dtype, dx, dst_st, g->dtype, tensor_data(gc), src_st);
    if (B > 0 && N > 0 && C > 0)  // rows L..: alpha * g's rows row0..
        BE(g)->copy_strided(KC(g), 3, (int64_t[]){B, N, C}, g->dtype, dx + (size_t)(L * C) * es, dst_st, g->dtype,
                            tensor_data(scc), sc_st);
    tensor_release(gc), tensor_release(rows), tensor_release(sc), tensor_release(scc);
    gin[0] = gx;
}
static const cm_opdef OP_FOLD_ROWS = {"fold_rows", fold_rows_backward};

cm_tensor *op_fold_rows(cm_tensor *x, int64_t L, double alpha, int64_t row0) {
    ops_check_compute("fold_rows", x);
    if (x->ndim != 3 || L < 0 || L > x->shape[1]) ops_die_shapes("fold_rows", "x must be [B, L + N, C] with 0 <= L <= its rows", x, NULL);
    const int64_t B = x->shape[0], LN = x->shape[1], C = x->shape[2], N = LN - L;
    if (row0 < 0 || row0 + N > L) {
        char what[160];
        snprintf(what, sizeof what, "the %lld rows after row %lld do not fit at row %lld of the first %lld", (long long)N,
                 (long long)L, (long long)row0, (long long)L);
        ops_die_shapes("fold_rows", what, x, NULL);
    }
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = ops_new(x, 3, (int64_t[]){B, L, C});
    const size_t es = dtype_size(x->dtype);
    for (int64_t b = 0; b < B && L > 0 && C > 0; b++) {
        const char *xb = (const char *)tensor_data(xc) + (size_t)(b * LN * C) * es;
        BE(x)->add_rows(KC(x), x->dtype, 1, L, C, row0, N, alpha, (char *)tensor_data(out) + (size_t)(b * L * C) * es, xb,
                        xb + (size_t)(L * C) * es);
    }
    cm_node *n = autograd_record(&OP_FOLD_ROWS, out, 1, (cm_tensor *[]){x});
    if (n) {
        n->i[0] = L;
        n->i[1] = row0;
        n->f[0] = alpha;
    }
    tensor_release(xc);
    return out;
}

// --- timestep embedding: t [B] -> [B, dim] ---
#define TIMESTEP_MAX_PERIOD 10000.0
static void timestep_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *t = n->saved[0], *gc = ops_contig(g);
    int64_t B = tensor_numel(t);
    cm_tensor *dt = ops_new(t, n->in_ndim[0], n->in_shape[0]);
    BE(t)->timestep_bwd(KC(t), t->dtype, B, n->i[0], (int)n->i[1], n->f[0], TIMESTEP_MAX_PERIOD, tensor_data(dt),
                        tensor_data(t), tensor_data(gc));
    tensor_release(gc);
    gin[0] = dt;
}
static const cm_opdef OP_TIMESTEP = {"timestep_embedding", timestep_backward};

cm_tensor *op_timestep_embedding(cm_tensor *t, int dim, bool flip, double shift) {
    ops_check_compute("timestep_embedding", t);
    if (t->ndim != 1) ops_die_shapes("timestep_embedding", "t must be [B]", t, NULL);
    int64_t B = t->shape[0];
    cm_tensor *tc = ops_contig(t);
    cm_tensor *out = ops_new(t, 2, (int64_t[]){B, dim});
    if (B) BE(t)->timestep_fwd(KC(t), t->dtype, B, dim, flip, shift, TIMESTEP_MAX_PERIOD, tensor_data(out), tensor_data(tc));
    cm_node *n = autograd_record(&OP_TIMESTEP, out, 1, &t);
    if (n) {
        n->i[0] = dim;
        n->i[1] = flip;
        n->f[0] = shift;
        node_save(n, 0, tc);
    }
    tensor_release(tc);
    return out;
}

const cm_opdef *const ops_cond_table[] = {&OP_ROPE, &OP_MODULATE, &OP_GATED_ADD, &OP_ADD_ROWS, &OP_FOLD_ROWS, &OP_TIMESTEP, NULL};
