// ops_mlp.c — the GELU (tanh) MLP pieces with the activation inside the GEMMs:
//   linear_gelu  y = gelu(x @ w^T + b)                           (FLUX single blocks' proj_mlp)
//   mlp_gelu     out = gelu(x @ w1^T + b1) @ w2^T + b2           (FLUX FeedForward, IC MLPs)
//   mlp_gelu_cat out = [pre | gelu(x @ w1^T + b1)] @ w2^T + b2    (FLUX single blocks: pre is the
//                attention output; the concatenation is never built, forward or backward)
// Forward on the tape: one GEMM writes gelu's output and keeps its input h (the GELU_AUX
// epilogue) instead of a GEMM then a GELU kernel. mlp_gelu's backward makes dh in one GEMM:
// (g @ w2) * gelu'(h) (the DGELU epilogue), and never keeps gelu's output (dw2 recomputes it
// from h: one elementwise pass instead of rows x hidden saved). With nothing recorded (no-grad,
// frozen inputs, a recompute scope's first pass) neither keeps h. On the CPU all give the same
// bits as op_linear / op_gelu composed.
#include "autograd/ops_internal.h"

static void linear_gelu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin);
static void mlp_gelu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin);
static const cm_opdef OP_LINEAR_GELU = {"linear_gelu", linear_gelu_backward};
static const cm_opdef OP_MLP_GELU = {"mlp_gelu", mlp_gelu_backward};

// a new tensor shaped like x with the last dimension n
static cm_tensor *like_rows(cm_tensor *x, int64_t n) {
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = n;
    return ops_new(x, x->ndim, shape);
}

static void save_contig(cm_node *n, int slot, cm_tensor *t) {
    cm_tensor *c = ops_contig(t);
    node_save(n, slot, c);
    tensor_release(c);
}

// dh [rows, H] = gh_in * gelu'(h), from a contiguous upstream gradient
static cm_tensor *gelu_grad(cm_tensor *gc, cm_tensor *h) {
    cm_tensor *d = ops_new(gc, gc->ndim, gc->shape);
    BE(gc)->unary_bwd(KC(gc), CM_UN_GELU_TANH, gc->dtype, tensor_numel(gc), tensor_data(d), tensor_data(h),
                      tensor_data(gc));
    return d;
}

cm_tensor *op_linear_gelu(cm_tensor *x, cm_tensor *w, cm_tensor *b) {
    ops_linear_check("linear_gelu", x, w, b);
    bool taped = autograd_grad_enabled() && (tensor_needs_grad(x) || tensor_needs_grad(w) || tensor_needs_grad(b));
    if (!taped) return ops_linear_forward(x, w, b, CM_ACT_GELU_TANH, NULL);
    cm_tensor *h = like_rows(x, w->shape[0]);  // [..., N] gelu's input, for backward
    cm_tensor *y = ops_linear_forward(x, w, b, CM_ACT_GELU_TANH, h);
    cm_tensor *ins[3] = {x, w, b};
    cm_node *n = autograd_record(&OP_LINEAR_GELU, y, b ? 3 : 2, ins);
    if (n->needs[1]) save_contig(n, 0, x);
    if (n->needs[0]) node_save(n, 1, w);
    node_save(n, 2, h);
    tensor_release(h);
    return y;
}

static void linear_gelu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *gc = ops_contig(g);
    cm_tensor *gh = gelu_grad(gc, n->saved[2]);
    tensor_release(gc);
    ops_linear_grads(gh, n->needs[0] ? n->saved[1] : NULL, n->needs[1] ? n->saved[0] : NULL, n->in_ndim[0],
                     n->in_shape[0], &gin[0], &gin[1], n->n_in > 2 && n->needs[2] ? &gin[2] : NULL,
                     autograd_grad_target(n, 0), autograd_grad_target(n, 1));
    tensor_release(gh);
}

cm_tensor *op_mlp_gelu(cm_tensor *x, cm_tensor *w1, cm_tensor *b1, cm_tensor *w2, cm_tensor *b2) {
    return op_mlp_gelu_cat(NULL, x, w1, b1, w2, b2);
}

// inputs (x, w1, b1, w2, b2, pre); saved: 0 x, 1 w1, 2 h, 3 w2, 4 pre
cm_tensor *op_mlp_gelu_cat(cm_tensor *pre, cm_tensor *x, cm_tensor *w1, cm_tensor *b1, cm_tensor *w2, cm_tensor *b2) {
    const char *op = pre ? "mlp_gelu_cat" : "mlp_gelu";
    ops_linear_check(op, x, w1, b1);
    ops_check_same(op, x, w2);
    const int64_t H = w1->shape[0], P = pre ? ops_cols(pre) : 0;
    if (w2->ndim != 2 || w2->shape[1] != P + H)
        ops_die_shapes(op, pre ? "pre [..., P] and w1 [H, K] need w2 [N, P + H]" : "w1 [H, K] needs w2 [N, H]", w1, w2);
    if (pre) {
        ops_check_same(op, x, pre);
        bool same_rows = pre->ndim == x->ndim;
        for (int d = 0; same_rows && d < x->ndim - 1; d++) same_rows = pre->shape[d] == x->shape[d];
        if (!same_rows) ops_die_shapes(op, "pre and x must have the same leading dimensions", pre, x);
    }
    if (b2) {
        ops_check_same(op, x, b2);
        if (b2->ndim != 1 || b2->shape[0] != w2->shape[0]) ops_die_shapes(op, "bias b2 must be [N]", b2, w2);
    }
    cm_tensor *ins[6] = {x, w1, b1, w2, b2, pre};
    const int n_in = pre ? 6 : 5;
    bool taped = autograd_grad_enabled();
    if (taped) {
        taped = false;
        for (int i = 0; i < n_in; i++) taped |= tensor_needs_grad(ins[i]);
    }
    cm_tensor *h = taped ? like_rows(x, H) : NULL;                      // [..., H] gelu's input, for backward
    cm_tensor *y = ops_linear_forward(x, w1, b1, CM_ACT_GELU_TANH, h);  // [..., H]
    cm_tensor *out;
    if (!pre) out = ops_linear_forward(y, w2, b2, CM_ACT_NONE, NULL);  // [..., N]
    else {  // pre @ w2[:, :P]^T + b2, then += y @ w2[:, P:]^T: the concatenation is never built
        const int64_t N = w2->shape[0], rows = ops_rows(y);
        const size_t es = dtype_size(y->dtype);
        out = like_rows(pre, N);
        cm_tensor *pc = ops_contig(pre), *wc = ops_contig(w2), *bc = b2 ? ops_contig(b2) : NULL;
        BE(y)->gemm_ex(KC(y), y->dtype, 0, 1, rows, N, P, 1.0, tensor_data(pc), P, 0, tensor_data(wc), P + H, 0, 0.0,
                       tensor_data(out), N, 0, 1, bc ? tensor_data(bc) : NULL, CM_ACT_NONE, NULL);
        BE(y)->gemm(KC(y), y->dtype, 0, 1, rows, N, H, 1.0, tensor_data(y), H, 0, (char *)tensor_data(wc) + P * (int64_t)es,
                    P + H, 0, 1.0, tensor_data(out), N, 0, 1);
        tensor_release(pc);
        tensor_release(wc);
        tensor_release(bc);
    }
    tensor_release(y);
    if (!taped) return out;
    cm_node *n = autograd_record(&OP_MLP_GELU, out, n_in, ins);
    if (n->needs[1]) save_contig(n, 0, x);
    if (n->needs[0]) node_save(n, 1, w1);
    node_save(n, 2, h);
    if (n->needs[0] || n->needs[1] || n->needs[2] || (pre && n->needs[5])) node_save(n, 3, w2);
    if (pre && n->needs[3]) save_contig(n, 4, pre);
    tensor_release(h);
    return out;
}

static void mlp_gelu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *gc = ops_contig(g), *h = n->saved[2];  // gc [rows, N], h [rows, H]
    const int64_t rows = ops_rows(gc), N = ops_cols(gc), H = ops_cols(h);
    const int64_t P = n->n_in > 5 ? n->in_shape[5][n->in_ndim[5] - 1] : 0, W = P + H;  // w2 [N, W]
    const cm_dtype dt = gc->dtype;
    const size_t es = dtype_size(dt);
    if (n->needs[3]) {  // dw2 [N, P + H] = g^T @ [pre | gelu(h)]
        cm_tensor *dw = tensor_empty(dt, 2, (int64_t[]){N, W}, DEV(gc));
        if (P)
            BE(gc)->gemm(KC(gc), dt, 1, 0, N, P, rows, 1.0, tensor_data(gc), N, 0, tensor_data(n->saved[4]), P, 0, 0.0,
                         tensor_data(dw), W, 0, 1);
        cm_tensor *y = ops_new(h, h->ndim, h->shape);
        BE(h)->unary_fwd(KC(h), CM_UN_GELU_TANH, dt, tensor_numel(h), tensor_data(y), tensor_data(h));
        BE(gc)->gemm(KC(gc), dt, 1, 0, N, H, rows, 1.0, tensor_data(gc), N, 0, tensor_data(y), H, 0, 0.0,
                     (char *)tensor_data(dw) + P * (int64_t)es, W, 0, 1);
        tensor_release(y);
        gin[3] = dw;
    }
    if (n->needs[4]) ops_linear_grads(gc, NULL, NULL, 0, NULL, NULL, NULL, &gin[4], NULL, NULL);  // db2 = sum of g's rows
    cm_tensor *w2 = n->saved[3] ? ops_contig(n->saved[3]) : NULL;
    if (P && n->needs[5]) {  // dpre [rows, P] = g @ w2[:, :P]
        cm_tensor *d = tensor_empty(dt, n->in_ndim[5], n->in_shape[5], DEV(gc));
        BE(gc)->gemm(KC(gc), dt, 0, 0, rows, P, N, 1.0, tensor_data(gc), N, 0, tensor_data(w2), W, 0, 0.0,
                     tensor_data(d), P, 0, 1);
        gin[5] = d;
    }
    if (n->needs[0] || n->needs[1] || n->needs[2]) {  // dh [rows, H] = (g @ w2[:, P:]) * gelu'(h): one GEMM
        cm_tensor *dh = ops_new(h, h->ndim, h->shape);
        if (tensor_numel(dh))  // no rows (or H = 0): dh is empty, and h has no data for the DGELU epilogue
            BE(gc)->gemm_ex(KC(gc), dt, 0, 0, rows, H, N, 1.0, tensor_data(gc), N, 0, (char *)tensor_data(w2) + P * (int64_t)es,
                            W, 0, 0.0, tensor_data(dh), H, 0, 1, NULL, CM_ACT_DGELU_TANH, tensor_data(h));
        ops_linear_grads(dh, n->needs[0] ? n->saved[1] : NULL, n->needs[1] ? n->saved[0] : NULL, n->in_ndim[0],
                         n->in_shape[0], &gin[0], &gin[1], n->needs[2] ? &gin[2] : NULL,
                         autograd_grad_target(n, 0), autograd_grad_target(n, 1));
        tensor_release(dh);
    }
    tensor_release(w2);
    tensor_release(gc);
}

const cm_opdef *const ops_mlp_table[] = {&OP_LINEAR_GELU, &OP_MLP_GELU, NULL};
