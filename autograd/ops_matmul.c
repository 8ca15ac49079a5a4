// ops_matmul.c — batched matmul with transposed operands, and linear. A weight that does not
// require a gradient never has its dW formed: that GEMM is simply not issued.
#include "autograd/ops_internal.h"

// how a [..., R, C] view is fed to GEMM without copying: pointer, leading dim, batch stride and
// the effective transpose flag (a view whose rows are strided but columns contiguous is read
// as the transpose of its transpose)
typedef struct { const void *p; int64_t ld, bstride; int trans; cm_tensor *hold; } gemm_arg;

// whether the batch dims address as one: those of size > 1 nest (each stride = the next inner
// one's stride x its size), and batch i starts at i x the innermost one's stride. A size-1 dim's
// stride means nothing (a chunk or a one-head permute leaves any) and is skipped, never read.
static bool batch_uniform(const cm_tensor *t, int64_t *bstride) {
    int64_t in_stride = 0, in_size = 0;  // the inner batch dim of size > 1 seen last
    *bstride = 0;
    for (int d = t->ndim - 3; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (in_size == 0) *bstride = t->stride[d];
        else if (t->stride[d] != in_stride * in_size) return false;
        in_stride = t->stride[d], in_size = t->shape[d];
    }
    return true;
}

static gemm_arg gemm_prepare(cm_tensor *t, int trans) {
    gemm_arg g = {0};
    int64_t bs;
    int64_t r = t->shape[t->ndim - 2], c = t->shape[t->ndim - 1];
    int64_t sr = t->stride[t->ndim - 2], sc = t->stride[t->ndim - 1];
    if (batch_uniform(t, &bs)) {
        if ((sc == 1 || c == 1) && sr >= c) {
            g = (gemm_arg){tensor_data(t), sr < 1 ? 1 : sr, bs, trans, NULL};
            if (r == 1) g.ld = c;
            return g;
        }
        if ((sr == 1 || r == 1) && sc >= r) {
            g = (gemm_arg){tensor_data(t), sc < 1 ? 1 : sc, bs, !trans, NULL};
            if (c == 1) g.ld = r;
            return g;
        }
    }
    cm_tensor *cc = ops_contig(t);
    g = (gemm_arg){tensor_data(cc), c, t->ndim > 2 ? r * c : 0, trans, cc};
    return g;
}

static int64_t batch_count(const cm_tensor *t) {
    int64_t b = 1;
    for (int d = 0; d < t->ndim - 2; d++) b *= t->shape[d];
    return b;
}

static void matmul_backward(cm_node *n, cm_tensor *g, cm_tensor **gin);
static const cm_opdef OP_MATMUL = {"matmul", matmul_backward};

cm_tensor *op_matmul_t(cm_tensor *a, cm_tensor *b, bool ta, bool tb) {
    ops_check_same("matmul", a, b);
    ops_check_compute("matmul", a);
    if (a->ndim < 2 || b->ndim < 2) ops_die_shapes("matmul", "operands need at least 2 dims", a, b);
    int64_t M = ta ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t K = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t Kb = tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t N = tb ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (K != Kb) ops_die_shapes("matmul", "inner dimensions differ", a, b);
    bool b_shared = b->ndim == 2;
    if (!b_shared) {
        bool ok = a->ndim == b->ndim;
        for (int d = 0; ok && d < a->ndim - 2; d++) ok = a->shape[d] == b->shape[d];
        if (!ok) ops_die_shapes("matmul", "batch dimensions differ (b may also be 2-D)", a, b);
    }
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    cm_tensor *out = ops_new(a, a->ndim, shape);
    int64_t batch = batch_count(a);
    if (tensor_numel(out)) {
        gemm_arg A = gemm_prepare(a, ta), B = gemm_prepare(b, tb);
        if (b_shared) B.bstride = 0;
        if (K == 0) BE(a)->fill(KC(a), a->dtype, tensor_data(out), tensor_numel(out), 0.0);
        else BE(a)->gemm(KC(a), a->dtype, A.trans, B.trans, M, N, K, 1.0, A.p, A.ld, A.bstride, B.p, B.ld, B.bstride,
                         0.0, tensor_data(out), N, M * N, batch);
        tensor_release(A.hold);
        tensor_release(B.hold);
    }
    cm_node *n = autograd_record(&OP_MATMUL, out, 2, (cm_tensor *[]){a, b});
    if (n) {
        n->i[0] = ta;
        n->i[1] = tb;
        if (n->needs[1]) node_save(n, 0, a);
        if (n->needs[0]) node_save(n, 1, b);
    }
    return out;
}

cm_tensor *op_matmul(cm_tensor *a, cm_tensor *b) { return op_matmul_t(a, b, false, false); }

static void matmul_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    bool ta = n->i[0], tb = n->i[1];
    cm_tensor *A = n->saved[0], *B = n->saved[1];
    if (n->needs[0]) {
        if (!ta) gin[0] = op_matmul_t(g, B, false, !tb);
        else if (B->ndim == 2 && g->ndim > 2) {  // dA = (g op(B)^T)^T: a shared 2-D B may only come second
            cm_tensor *d = op_matmul_t(g, B, false, !tb), *dt = op_transpose(d, d->ndim - 2, d->ndim - 1);
            gin[0] = op_contiguous(dt);
            tensor_release(d);
            tensor_release(dt);
        } else gin[0] = op_matmul_t(B, g, tb, true);
    }
    if (n->needs[1]) {
        bool b_shared = n->in_ndim[1] == 2 && A->ndim > 2;
        if (b_shared && !ta) {  // fold the batch into the rows: one GEMM over all of them
            cm_tensor *A2 = op_reshape(A, 2, (int64_t[]){-1, A->shape[A->ndim - 1]});
            cm_tensor *g2 = op_reshape(g, 2, (int64_t[]){-1, g->shape[g->ndim - 1]});
            gin[1] = tb ? op_matmul_t(g2, A2, true, false) : op_matmul_t(A2, g2, true, false);
            tensor_release(A2);
            tensor_release(g2);
        } else {
            cm_tensor *d = tb ? op_matmul_t(g, A, true, ta) : op_matmul_t(A, g, !ta, false);
            gin[1] = b_shared ? ops_reduce_to(d, 2, n->in_shape[1]) : d;
            if (b_shared) tensor_release(d);
        }
    }
}

// --- linear: x [..., K] @ w[N, K]^T + b[N] ---
static void linear_backward(cm_node *n, cm_tensor *g, cm_tensor **gin);
static const cm_opdef OP_LINEAR = {"linear", linear_backward};

void ops_linear_check(const char *op, cm_tensor *x, cm_tensor *w, cm_tensor *b) {
    ops_check_same(op, x, w);
    ops_check_compute(op, x);
    if (w->ndim != 2 || x->ndim < 1 || ops_cols(x) != w->shape[1]) ops_die_shapes(op, "x [..., K] needs w [N, K]", x, w);
    if (b) {
        ops_check_same(op, x, b);
        if (b->ndim != 1 || b->shape[0] != w->shape[0]) ops_die_shapes(op, "bias must be [N]", b, w);
    }
}

// out [rows, N] = act(x @ w^T + b): one GEMM whose epilogue adds the bias (kernels/cpu: the bias
// rows are written first and the GEMM accumulates onto them; CUDA: cuBLASLt's BIAS epilogue);
// aux [rows, N] (GELU only, or NULL) receives the pre-activation
cm_tensor *ops_linear_forward(cm_tensor *x, cm_tensor *w, cm_tensor *b, cm_act act, cm_tensor *aux) {
    int64_t N = w->shape[0], K = w->shape[1], rows = ops_rows(x);
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = N;
    cm_tensor *out = ops_new(x, x->ndim, shape);
    if (!tensor_numel(out)) return out;
    if (K) {
        cm_tensor *xc = ops_contig(x), *wc = ops_contig(w), *bc = b ? ops_contig(b) : NULL;
        BE(x)->gemm_ex(KC(x), x->dtype, 0, 1, rows, N, K, 1.0, tensor_data(xc), K, 0, tensor_data(wc), K, 0, 0.0,
                       tensor_data(out), N, 0, 1, bc ? tensor_data(bc) : NULL, act, aux ? tensor_data(aux) : NULL);
        tensor_release(xc);
        tensor_release(wc);
        tensor_release(bc);
        return out;
    }
    if (b)  // an empty product: every row is the bias
        BE(x)->copy_strided(KC(x), 2, (int64_t[]){rows, N}, x->dtype, tensor_data(out), (int64_t[]){N, 1}, b->dtype,
                            tensor_data(b), (int64_t[]){0, b->stride[0]});
    else BE(x)->fill(KC(x), x->dtype, tensor_data(out), rows * N, 0.0);
    if (aux) BE(x)->memcpy_d2d(KC(x), tensor_data(aux), tensor_data(out), (size_t)(rows * N) * dtype_size(x->dtype));
    if (act == CM_ACT_GELU_TANH) BE(x)->unary_fwd(KC(x), CM_UN_GELU_TANH, x->dtype, rows * N, tensor_data(out), tensor_data(out));
    return out;
}

cm_tensor *op_linear(cm_tensor *x, cm_tensor *w, cm_tensor *b) {
    ops_linear_check("linear", x, w, b);
    cm_tensor *out = ops_linear_forward(x, w, b, CM_ACT_NONE, NULL);
    cm_tensor *ins[3] = {x, w, b};
    cm_node *n = autograd_record(&OP_LINEAR, out, b ? 3 : 2, ins);
    if (n) {
        if (n->needs[1]) {
            cm_tensor *xc = ops_contig(x);
            node_save(n, 0, xc);
            tensor_release(xc);
        }
        if (n->needs[0]) node_save(n, 1, w);
    }
    return out;
}

// the gradients of out [rows, N] = x [rows, K] @ w [N, K]^T + b from gc (contiguous [rows, N]):
// *dx (shaped x_ndim / x_shape) when w is given, *dw when x is given, *db when db is not NULL
void ops_linear_grads(cm_tensor *gc, cm_tensor *w, cm_tensor *x, int x_ndim, const int64_t *x_shape, cm_tensor **dx,
                      cm_tensor **dw, cm_tensor **db, cm_tensor *dx_acc, cm_tensor *dw_acc) {
    int64_t N = ops_cols(gc), rows = ops_rows(gc);
    if (w) {  // dx [rows, K] = g [rows, N] @ w [N, K] (+ dx_acc: beta 1 adds into it)
        int64_t K = w->shape[1];
        cm_tensor *wc = ops_contig(w);
        bool into = dx_acc && dx_acc->dtype == gc->dtype;
        cm_tensor *d = into ? tensor_retain(dx_acc) : tensor_empty(gc->dtype, x_ndim, x_shape, DEV(gc));
        BE(gc)->gemm(KC(gc), gc->dtype, 0, 0, rows, K, N, 1.0, tensor_data(gc), N, 0, tensor_data(wc), K, 0, into ? 1.0 : 0.0,
                     tensor_data(d), K, 0, 1);
        tensor_release(wc);
        *dx = d;
    }
    if (x) {  // dw [N, K] = g^T [N, rows] @ x [rows, K] (+ dw_acc)
        int64_t K = ops_cols(x);
        bool into = dw_acc && dw_acc->dtype == gc->dtype;
        cm_tensor *d = into ? tensor_retain(dw_acc) : tensor_empty(gc->dtype, 2, (int64_t[]){N, K}, DEV(gc));
        BE(gc)->gemm(KC(gc), gc->dtype, 1, 0, N, K, rows, 1.0, tensor_data(gc), N, 0, tensor_data(x), K, 0, into ? 1.0 : 0.0,
                     tensor_data(d), K, 0, 1);
        *dw = d;
    }
    if (db) {  // db [N] = sum over rows of g
        cm_tensor *d = tensor_empty(gc->dtype, 1, (int64_t[]){N}, DEV(gc));
        BE(gc)->reduce_sum(KC(gc), gc->dtype, 1, rows, N, tensor_data(d), tensor_data(gc));
        *db = d;
    }
}

static void linear_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *gc = ops_contig(g);
    ops_linear_grads(gc, n->needs[0] ? n->saved[1] : NULL, n->needs[1] ? n->saved[0] : NULL, n->in_ndim[0],
                     n->in_shape[0], &gin[0], &gin[1], n->n_in > 2 && n->needs[2] ? &gin[2] : NULL,
                     autograd_grad_target(n, 0), autograd_grad_target(n, 1));
    tensor_release(gc);
}

const cm_opdef *const ops_matmul_table[] = {&OP_MATMUL, &OP_LINEAR, NULL};
