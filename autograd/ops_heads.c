// ops_heads.c — a FLUX attention's q / k preparation as one op: the per-head RMSNorm of each
// stream's projection, RoPE at its place in the joint sequence, written head-major. Composed, the
// same work is rmsnorm + concat + a permuted copy + rope: four passes over q (and k) forward and
// three back where this takes one (rms_rope_fwd) and two (rms_rope_bwd).
#include <stdio.h>
#include "autograd/ops_internal.h"

#define RR_MAX_SEGMENTS 2  // saved slots: x, inv, w per segment + cos, sin

// saved: [s] x (contiguous), [2 + s] inv [B*Ls*H] f32, [4 + s] w, [6] cos, [7] sin;
// i: [0] segments, [1] has weights, [2] variant, [3] H, [4] D; f: [0] eps
static void rms_rope_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    int ns = (int)n->i[0];
    bool has_w = n->i[1] != 0;
    int64_t H = n->i[3], D = n->i[4];
    cm_tensor *cs = n->saved[6], *sn = n->saved[7];
    cm_tensor *gc = ops_contig(g);  // [B, H, L, D]
    int64_t B = gc->shape[0], L = gc->shape[2], l0 = 0;
    for (int s = 0; s < ns; s++) {
        cm_tensor *x = n->saved[s], *inv = n->saved[2 + s], *w = has_w ? n->saved[4 + s] : NULL;
        int64_t Ls = B > 0 && D > 0 ? tensor_numel(x) / (B * H * D) : 0;
        cm_tensor *dx = n->needs[s] ? ops_new(x, n->in_ndim[s], n->in_shape[s]) : NULL;
        cm_tensor *dw = has_w && n->needs[ns + s] ? ops_new(x, n->in_ndim[ns + s], n->in_shape[ns + s]) : NULL;
        if (dx || dw)
            BE(x)->rms_rope_bwd(KC(x), (cm_rmsvariant)n->i[2], x->dtype, cs->dtype, B, Ls, H, D, n->f[0], L, l0,
                                dx ? tensor_data(dx) : NULL, dw ? tensor_data(dw) : NULL, tensor_data(gc),
                                tensor_data(x), tensor_data(inv), w ? tensor_data(w) : NULL, tensor_data(cs),
                                tensor_data(sn));
        gin[s] = dx;
        if (dw) gin[ns + s] = dw;
        l0 += Ls;
    }
    tensor_release(gc);
}
static const cm_opdef OP_RMS_ROPE = {"rms_rope_heads", rms_rope_backward};

cm_tensor *op_rms_rope_heads(int n, cm_tensor **xs, cm_tensor **ws, int H, double eps, cm_rmsvariant var,
                             cm_tensor *cos, cm_tensor *sin) {
    const char *op = "rms_rope_heads";
    CM_CHECK(n >= 1 && n <= RR_MAX_SEGMENTS, op, "%d segments (1..%d)", n, RR_MAX_SEGMENTS);
    CM_CHECK(H > 0, op, "%d heads", H);
    cm_tensor *x0 = xs[0];
    ops_check_compute(op, x0);
    if (x0->ndim != 3 && x0->ndim != 4) ops_die_shapes(op, "each x must be [B, L, H*D] or [B, L, H, D]", x0, NULL);
    int64_t B = x0->shape[0], C = x0->ndim == 3 ? x0->shape[2] : x0->shape[2] * x0->shape[3];
    if (C % H || (x0->ndim == 4 && x0->shape[2] != H)) ops_die_shapes(op, "the width does not split into the heads", x0, NULL);
    int64_t D = C / H, L = 0;
    if (D % 2) ops_die_shapes(op, "head dim must be even (adjacent pairs rotate)", x0, NULL);
    for (int s = 0; s < n; s++) {
        cm_tensor *x = xs[s];
        ops_check_same(op, x0, x);
        bool ok = x->ndim == x0->ndim && x->shape[0] == B &&
                  (x->ndim == 3 ? x->shape[2] == C : x->shape[2] == H && x->shape[3] == D);
        if (!ok) ops_die_shapes(op, "segments differ off the sequence axis", x0, x);
        if (ws) {
            CM_CHECK(ws[s] != NULL, op, "segment %d has no weight (all segments have one, or none)", s);
            ops_check_same(op, x0, ws[s]);
            if (tensor_numel(ws[s]) != D) ops_die_shapes(op, "a weight must have head_dim elements", x, ws[s]);
        }
        L += x->shape[1];
    }
    ops_check_rope_tables(op, x0, cos, sin);
    if (tensor_numel(cos) != L * D || !tensor_same_shape(cos, sin)) {
        char what[96];
        snprintf(what, sizeof what, "cos/sin must be [L, D] = [%lld, %lld] (the streams' rows, the head dim)",
                 (long long)L, (long long)D);
        ops_die_shapes(op, what, x0, cos);
    }

    cm_tensor *out = ops_new(x0, 4, (int64_t[]){B, H, L, D});
    cm_tensor *cc = ops_contig(cos), *sc = ops_contig(sin), *xc[RR_MAX_SEGMENTS], *inv[RR_MAX_SEGMENTS],
              *wc[RR_MAX_SEGMENTS] = {NULL, NULL};
    int64_t l0 = 0;
    for (int s = 0; s < n; s++) {
        int64_t Ls = xs[s]->shape[1];
        xc[s] = ops_contig(xs[s]);
        inv[s] = tensor_empty(CM_F32, 1, (int64_t[]){B * Ls * H}, DEV(x0));
        if (ws) wc[s] = ops_contig(ws[s]);
        if (B > 0 && Ls > 0)
            BE(x0)->rms_rope_fwd(KC(x0), var, x0->dtype, cos->dtype, B, Ls, H, D, eps, L, l0, tensor_data(out),
                                 tensor_data(inv[s]), tensor_data(xc[s]), wc[s] ? tensor_data(wc[s]) : NULL,
                                 tensor_data(cc), tensor_data(sc));
        l0 += Ls;
    }
    cm_tensor *ins[2 * RR_MAX_SEGMENTS];
    for (int s = 0; s < n; s++) {
        ins[s] = xs[s];
        if (ws) ins[n + s] = ws[s];
    }
    cm_node *nd = autograd_record(&OP_RMS_ROPE, out, ws ? 2 * n : n, ins);  // no gradient to the tables
    if (nd) {
        nd->i[0] = n;
        nd->i[1] = ws != NULL;
        nd->i[2] = var;
        nd->i[3] = H;
        nd->i[4] = D;
        nd->f[0] = eps;
        for (int s = 0; s < n; s++) {
            node_save(nd, s, xc[s]);
            node_save(nd, 2 + s, inv[s]);
            if (wc[s]) node_save(nd, 4 + s, wc[s]);
        }
        node_save(nd, 6, cc);
        node_save(nd, 7, sc);
    }
    for (int s = 0; s < n; s++) {
        tensor_release(xc[s]);
        tensor_release(inv[s]);
        tensor_release(wc[s]);
    }
    tensor_release(cc);
    tensor_release(sc);
    return out;
}

const cm_opdef *const ops_heads_table[] = {&OP_RMS_ROPE, NULL};
