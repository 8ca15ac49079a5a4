// ops_image.c — conv2d (im2col + GEMM per image) and PyTorch-exact bicubic resize.
#include "autograd/ops_internal.h"

typedef struct { int64_t N, C, H, W, O, kh, kw, OH, OW, stride, pad; } conv_dims;

static conv_dims conv_dims_of(const cm_tensor *x, const cm_tensor *w, int64_t stride, int64_t pad) {
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3], 0, 0, stride, pad};
    d.OH = (d.H + 2 * pad - d.kh) / stride + 1;
    d.OW = (d.W + 2 * pad - d.kw) / stride + 1;
    return d;
}

static void conv2d_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *w = n->saved[1];
    conv_dims d = conv_dims_of(x, w, n->i[0], n->i[1]);
    int64_t CK = d.C * d.kh * d.kw, P = d.OH * d.OW;
    size_t es = dtype_size(g->dtype);
    const cm_backend *be = BE(g);
    const cm_kctx *k = KC(g);
    cm_tensor *gc = ops_contig(g);
    cm_tensor *col = ops_new(g, 2, (int64_t[]){CK, P});
    cm_tensor *dx = n->needs[0] ? tensor_zeros(g->dtype, 4, x->shape, DEV(g)) : NULL;
    cm_tensor *dw = n->needs[1] ? tensor_zeros(g->dtype, 2, (int64_t[]){d.O, CK}, DEV(g)) : NULL;
    for (int64_t i = 0; i < d.N; i++) {
        const char *gi = (const char *)tensor_data(gc) + (size_t)(i * d.O * P) * es;
        if (dw) {  // dw [O, CK] += g_i [O, P] @ col_i^T
            be->im2col(k, g->dtype, d.C, d.H, d.W, d.kh, d.kw, d.stride, d.pad, d.OH, d.OW, tensor_data(col),
                       (const char *)tensor_data(x) + (size_t)(i * d.C * d.H * d.W) * es);
            be->gemm(k, g->dtype, 0, 1, d.O, CK, P, 1.0, gi, P, 0, tensor_data(col), P, 0, 1.0, tensor_data(dw), CK, 0, 1);
        }
        if (dx) {  // col = w^T [CK, O] @ g_i [O, P]; scatter back
            be->gemm(k, g->dtype, 1, 0, CK, P, d.O, 1.0, tensor_data(w), CK, 0, gi, P, 0, 0.0, tensor_data(col), P, 0, 1);
            be->col2im(k, g->dtype, d.C, d.H, d.W, d.kh, d.kw, d.stride, d.pad, d.OH, d.OW,
                       (char *)tensor_data(dx) + (size_t)(i * d.C * d.H * d.W) * es, tensor_data(col));
        }
    }
    gin[0] = dx;
    if (dw) { gin[1] = op_reshape(dw, 4, n->in_shape[1]); tensor_release(dw); }
    if (n->n_in > 2 && n->needs[2]) {  // db [O] = sum over N and P
        cm_tensor *t = ops_new(g, 2, (int64_t[]){d.N, d.O});
        be->reduce_sum(k, g->dtype, d.N * d.O, P, 1, tensor_data(t), tensor_data(gc));
        cm_tensor *db = ops_new(g, 1, (int64_t[]){d.O});
        be->reduce_sum(k, g->dtype, 1, d.N, d.O, tensor_data(db), tensor_data(t));
        tensor_release(t);
        gin[2] = db;
    }
    tensor_release(col);
    tensor_release(gc);
}
static const cm_opdef OP_CONV2D = {"conv2d", conv2d_backward};

cm_tensor *op_conv2d(cm_tensor *x, cm_tensor *w, cm_tensor *b, int stride, int pad) {
    ops_check_same("conv2d", x, w);
    ops_check_compute("conv2d", x);
    if (x->ndim != 4 || w->ndim != 4 || w->shape[1] != x->shape[1]) ops_die_shapes("conv2d", "x [N, C, H, W] needs w [O, C, kh, kw]", x, w);
    CM_CHECK(stride >= 1 && pad >= 0, "conv2d", "stride %d pad %d", stride, pad);
    conv_dims d = conv_dims_of(x, w, stride, pad);
    if (d.OH <= 0 || d.OW <= 0) ops_die_shapes("conv2d", "kernel larger than the padded input", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != d.O)) ops_die_shapes("conv2d", "bias must be [O]", b, w);
    int64_t CK = d.C * d.kh * d.kw, P = d.OH * d.OW;
    size_t es = dtype_size(x->dtype);
    const cm_backend *be = BE(x);
    const cm_kctx *k = KC(x);
    cm_tensor *xc = ops_contig(x), *wc = ops_contig(w);
    cm_tensor *out = ops_new(x, 4, (int64_t[]){d.N, d.O, d.OH, d.OW});
    // a backend's direct kernel when it takes this case (contiguous f32 bias or none), else im2col + gemm
    int done = be->conv2d_fwd && (!b || (b->dtype == x->dtype && b->stride[0] == 1)) &&
               be->conv2d_fwd(k, x->dtype, d.N, d.C, d.H, d.W, d.O, d.kh, d.kw, d.stride, d.pad, d.OH, d.OW,
                              tensor_data(out), tensor_data(xc), tensor_data(wc), b ? tensor_data(b) : NULL);
    cm_tensor *col = done ? NULL : ops_new(x, 2, (int64_t[]){CK, P});
    for (int64_t i = 0; i < d.N && !done; i++) {
        char *oi = (char *)tensor_data(out) + (size_t)(i * d.O * P) * es;
        double beta = 0.0;
        if (b) {  // each output row starts as its channel's bias
            be->copy_strided(k, 2, (int64_t[]){d.O, P}, x->dtype, oi, (int64_t[]){P, 1}, b->dtype, tensor_data(b), (int64_t[]){b->stride[0], 0});
            beta = 1.0;
        }
        be->im2col(k, x->dtype, d.C, d.H, d.W, d.kh, d.kw, d.stride, d.pad, d.OH, d.OW, tensor_data(col),
                   (const char *)tensor_data(xc) + (size_t)(i * d.C * d.H * d.W) * es);
        be->gemm(k, x->dtype, 0, 0, d.O, P, CK, 1.0, tensor_data(wc), CK, 0, tensor_data(col), P, 0, beta, oi, P, 0, 1);
    }
    if (col) tensor_release(col);
    cm_tensor *ins[3] = {x, w, b};
    cm_node *n = autograd_record(&OP_CONV2D, out, b ? 3 : 2, ins);
    if (n) {
        n->i[0] = stride;
        n->i[1] = pad;
        node_save(n, 0, xc);
        node_save(n, 1, wc);
    }
    tensor_release(xc);
    tensor_release(wc);
    return out;
}

// --- bicubic: x [N, C, H, W] -> [N, C, OH, OW] ---
static void bicubic_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    const int64_t *s = n->in_shape[0];
    cm_tensor *gc = ops_contig(g);
    cm_tensor *dx = tensor_empty(g->dtype, 4, s, DEV(g));
    BE(g)->bicubic_bwd(KC(g), g->dtype, s[0] * s[1], s[2], s[3], g->shape[2], g->shape[3], tensor_data(dx), tensor_data(gc));
    tensor_release(gc);
    gin[0] = dx;
}
static const cm_opdef OP_BICUBIC = {"interp_bicubic", bicubic_backward};

cm_tensor *op_interp_bicubic(cm_tensor *x, int64_t OH, int64_t OW) {
    ops_check_compute("interp_bicubic", x);
    // an empty input plane has no pixels to interpolate from (the kernels read outside it)
    if (x->ndim != 4 || x->shape[2] <= 0 || x->shape[3] <= 0 || OH <= 0 || OW <= 0)
        ops_die_shapes("interp_bicubic", "x must be [N, C, H, W] with H, W > 0 and the size positive", x, NULL);
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = ops_new(x, 4, (int64_t[]){x->shape[0], x->shape[1], OH, OW});
    if (tensor_numel(out))
        BE(x)->bicubic_fwd(KC(x), x->dtype, x->shape[0] * x->shape[1], x->shape[2], x->shape[3], OH, OW, tensor_data(out), tensor_data(xc));
    tensor_release(xc);
    autograd_record(&OP_BICUBIC, out, 1, &x);
    return out;
}

const cm_opdef *const ops_image_table[] = {&OP_CONV2D, &OP_BICUBIC, NULL};
