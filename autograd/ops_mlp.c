// ops_mlp.c — the GELU (tanh) MLP pieces with the activation inside the GEMMs:
//   linear_gelu  y = gelu(x @ w^T + b)                           (FLUX single blocks' proj_mlp)
//   mlp_gelu     out = gelu(x @ w1^T + b1) @ w2^T + b2           (FLUX FeedForward, IC MLPs)
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
                     n->in_shape[0], &gin[0], &gin[1], n->n_in > 2 && n->needs[2] ? &gin[2] : NULL);
    tensor_release(gh);
}

cm_tensor *op_mlp_gelu(cm_tensor *x, cm_tensor *w1, cm_tensor *b1, cm_tensor *w2, cm_tensor *b2) {
    ops_linear_check("mlp_gelu", x, w1, b1);
    ops_check_same("mlp_gelu", x, w2);
    if (w2->ndim != 2 || w2->shape[1] != w1->shape[0]) ops_die_shapes("mlp_gelu", "w1 [H, K] needs w2 [N, H]", w1, w2);
    if (b2) {
        ops_check_same("mlp_gelu", x, b2);
        if (b2->ndim != 1 || b2->shape[0] != w2->shape[0]) ops_die_shapes("mlp_gelu", "bias b2 must be [N]", b2, w2);
    }
    cm_tensor *ins[5] = {x, w1, b1, w2, b2};
    bool taped = autograd_grad_enabled();
    if (taped) {
        taped = false;
        for (int i = 0; i < 5; i++) taped |= tensor_needs_grad(ins[i]);
    }
    cm_tensor *h = taped ? like_rows(x, w1->shape[0]) : NULL;  // [..., H] gelu's input, for backward
    cm_tensor *y = ops_linear_forward(x, w1, b1, CM_ACT_GELU_TANH, h);  // [..., H]
    cm_tensor *out = ops_linear_forward(y, w2, b2, CM_ACT_NONE, NULL);  // [..., N]
    tensor_release(y);
    if (!taped) return out;
    cm_node *n = autograd_record(&OP_MLP_GELU, out, 5, ins);
    if (n->needs[1]) save_contig(n, 0, x);
    if (n->needs[0]) node_save(n, 1, w1);
    node_save(n, 2, h);
    if (n->needs[0] || n->needs[1] || n->needs[2]) node_save(n, 3, w2);
    tensor_release(h);
    return out;
}

static void mlp_gelu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *gc = ops_contig(g), *h = n->saved[2];  // gc [rows, N], h [rows, H]
    int64_t rows = ops_rows(gc), N = ops_cols(gc), H = ops_cols(h);
    if (n->needs[3] || n->needs[4]) {  // dw2 = g^T @ gelu(h), db2 = sum g
        cm_tensor *y = NULL;
        if (n->needs[3]) {
            y = ops_new(h, h->ndim, h->shape);
            BE(h)->unary_fwd(KC(h), CM_UN_GELU_TANH, h->dtype, tensor_numel(h), tensor_data(y), tensor_data(h));
        }
        ops_linear_grads(gc, NULL, y, 0, NULL, NULL, &gin[3], n->needs[4] ? &gin[4] : NULL);
        tensor_release(y);
    }
    if (n->needs[0] || n->needs[1] || n->needs[2]) {  // dh [rows, H] = (g @ w2) * gelu'(h): one GEMM
        cm_tensor *w2 = ops_contig(n->saved[3]);
        cm_tensor *dh = ops_new(h, h->ndim, h->shape);
        BE(gc)->gemm_ex(KC(gc), gc->dtype, 0, 0, rows, H, N, 1.0, tensor_data(gc), N, 0, tensor_data(w2), H, 0, 0.0,
                        tensor_data(dh), H, 0, 1, NULL, CM_ACT_DGELU_TANH, tensor_data(h));
        tensor_release(w2);
        ops_linear_grads(dh, n->needs[0] ? n->saved[1] : NULL, n->needs[1] ? n->saved[0] : NULL, n->in_ndim[0],
                         n->in_shape[0], &gin[0], &gin[1], n->needs[2] ? &gin[2] : NULL);
        tensor_release(dh);
    }
    tensor_release(gc);
}

const cm_opdef *const ops_mlp_table[] = {&OP_LINEAR_GELU, &OP_MLP_GELU, NULL};
