// ops_elementwise.c — broadcasting arithmetic, activations and gated units, forward and backward.
#include "autograd/ops_internal.h"

// --- binary: out = a op b with numpy broadcasting ---
static cm_tensor *binary_raw(cm_binop op, const char *name, cm_tensor *a, cm_tensor *b) {
    ops_check_same(name, a, b);
    ops_check_compute(name, a);
    int64_t shape[CM_MAX_DIMS], sa[CM_MAX_DIMS], sb[CM_MAX_DIMS];
    int nd = ops_broadcast_shape(name, a, b, shape);
    ops_broadcast_strides(a, nd, shape, sa);
    ops_broadcast_strides(b, nd, shape, sb);
    cm_tensor *out = ops_new(a, nd, shape);
    if (tensor_numel(out)) BE(a)->binary(KC(a), op, a->dtype, nd, shape, tensor_data(out), tensor_data(a), sa, tensor_data(b), sb);
    return out;
}

static void add_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    if (n->needs[0]) gin[0] = ops_reduce_to(g, n->in_ndim[0], n->in_shape[0]);
    if (n->needs[1]) {
        cm_tensor *r = ops_reduce_to(g, n->in_ndim[1], n->in_shape[1]);
        if (n->i[0]) {  // subtraction
            gin[1] = op_scale(r, -1.0);
            tensor_release(r);
        } else gin[1] = r;
    }
}
static const cm_opdef OP_ADD = {"add", add_backward};
static const cm_opdef OP_SUB = {"sub", add_backward};

cm_tensor *op_add(cm_tensor *a, cm_tensor *b) {
    cm_tensor *out = binary_raw(CM_BIN_ADD, "add", a, b);
    autograd_record(&OP_ADD, out, 2, (cm_tensor *[]){a, b});
    return out;
}
cm_tensor *op_sub(cm_tensor *a, cm_tensor *b) {
    cm_tensor *out = binary_raw(CM_BIN_SUB, "sub", a, b);
    cm_node *n = autograd_record(&OP_SUB, out, 2, (cm_tensor *[]){a, b});
    if (n) n->i[0] = 1;
    return out;
}

static void mul_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    for (int i = 0; i < 2; i++) {
        if (!n->needs[i]) continue;
        cm_tensor *p = op_mul(g, n->saved[1 - i]);
        gin[i] = ops_reduce_to(p, n->in_ndim[i], n->in_shape[i]);
        tensor_release(p);
    }
}
static const cm_opdef OP_MUL = {"mul", mul_backward};

cm_tensor *op_mul(cm_tensor *a, cm_tensor *b) {
    cm_tensor *out = binary_raw(CM_BIN_MUL, "mul", a, b);
    cm_node *n = autograd_record(&OP_MUL, out, 2, (cm_tensor *[]){a, b});
    if (n) {
        if (n->needs[1]) node_save(n, 0, a);
        if (n->needs[0]) node_save(n, 1, b);
    }
    return out;
}

// y = a / b: da = g / b; db = -g * y / b
static void div_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *gb = op_div(g, n->saved[1]);
    if (n->needs[0]) gin[0] = ops_reduce_to(gb, n->in_ndim[0], n->in_shape[0]);
    if (n->needs[1]) {
        cm_tensor *p = op_mul(gb, n->saved[2]);
        cm_tensor *q = op_scale(p, -1.0);
        gin[1] = ops_reduce_to(q, n->in_ndim[1], n->in_shape[1]);
        tensor_release(p);
        tensor_release(q);
    }
    tensor_release(gb);
}
static const cm_opdef OP_DIV = {"div", div_backward};

cm_tensor *op_div(cm_tensor *a, cm_tensor *b) {
    cm_tensor *out = binary_raw(CM_BIN_DIV, "div", a, b);
    cm_node *n = autograd_record(&OP_DIV, out, 2, (cm_tensor *[]){a, b});
    if (n) {
        node_save(n, 1, b);
        if (n->needs[1]) node_save(n, 2, out);
    }
    return out;
}

// --- scalar forms: a broadcast 0-dim constant on the same device ---
static cm_tensor *scalar_like(const cm_tensor *x, double v) { return tensor_full(x->dtype, 0, NULL, v, DEV(x)); }

static void scale_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = op_scale(g, n->f[0]); }
static const cm_opdef OP_SCALE = {"scale", scale_backward};

cm_tensor *op_scale(cm_tensor *x, double s) {
    cm_tensor *c = scalar_like(x, s);
    cm_tensor *out = binary_raw(CM_BIN_MUL, "scale", x, c);
    tensor_release(c);
    cm_node *n = autograd_record(&OP_SCALE, out, 1, &x);
    if (n) n->f[0] = s;
    return out;
}

static void add_scalar_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) { gin[0] = tensor_retain(g); }
static const cm_opdef OP_ADD_SCALAR = {"add_scalar", add_scalar_backward};

cm_tensor *op_add_scalar(cm_tensor *x, double s) {
    cm_tensor *c = scalar_like(x, s);
    cm_tensor *out = binary_raw(CM_BIN_ADD, "add_scalar", x, c);
    tensor_release(c);
    autograd_record(&OP_ADD_SCALAR, out, 1, &x);
    return out;
}

// --- unary activations ---
static void unary_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *gc = ops_contig(g);
    cm_tensor *dx = ops_new(x, x->ndim, x->shape);
    if (tensor_numel(x)) BE(x)->unary_bwd(KC(x), (cm_unop)n->i[0], x->dtype, tensor_numel(x), tensor_data(dx), tensor_data(x), tensor_data(gc));
    tensor_release(gc);
    gin[0] = dx;
}
static const cm_opdef OP_UNARY = {"unary", unary_backward};

cm_tensor *op_unary(cm_tensor *x, cm_unop u) {
    ops_check_compute("unary", x);
    cm_tensor *xc = ops_contig(x);
    cm_tensor *out = ops_new(x, x->ndim, x->shape);
    if (tensor_numel(x)) BE(x)->unary_fwd(KC(x), u, x->dtype, tensor_numel(x), tensor_data(out), tensor_data(xc));
    cm_node *n = autograd_record(&OP_UNARY, out, 1, &x);
    if (n) {
        n->i[0] = u;
        node_save(n, 0, xc);
    }
    tensor_release(xc);
    return out;
}
cm_tensor *op_gelu(cm_tensor *x, bool tanh_approx) { return op_unary(x, tanh_approx ? CM_UN_GELU_TANH : CM_UN_GELU_ERF); }
cm_tensor *op_silu(cm_tensor *x) { return op_unary(x, CM_UN_SILU); }

// --- gated units: x [..., 2H] -> [..., H] ---
static void glu_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *x = n->saved[0], *gc = ops_contig(g);
    cm_tensor *dx = ops_new(x, x->ndim, x->shape);
    int64_t half = ops_cols(x) / 2;
    if (tensor_numel(x)) BE(x)->glu_bwd(KC(x), (cm_gluop)n->i[0], x->dtype, ops_rows(x), half, tensor_data(dx), tensor_data(x), tensor_data(gc));
    tensor_release(gc);
    gin[0] = dx;
}
static const cm_opdef OP_GLU = {"glu", glu_backward};

static cm_tensor *glu(cm_tensor *x, cm_gluop op, const char *name) {
    ops_check_compute(name, x);
    if (x->ndim < 1 || ops_cols(x) % 2) ops_die_shapes(name, "last dim must be even", x, NULL);
    cm_tensor *xc = ops_contig(x);
    int64_t shape[CM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] /= 2;
    cm_tensor *out = ops_new(x, x->ndim, shape);
    if (tensor_numel(out)) BE(x)->glu_fwd(KC(x), op, x->dtype, ops_rows(x), shape[x->ndim - 1], tensor_data(out), tensor_data(xc));
    cm_node *n = autograd_record(&OP_GLU, out, 1, &x);
    if (n) {
        n->i[0] = op;
        node_save(n, 0, xc);
    }
    tensor_release(xc);
    return out;
}
cm_tensor *op_geglu(cm_tensor *x) { return glu(x, CM_GLU_GEGLU, "geglu"); }
cm_tensor *op_swiglu(cm_tensor *x) { return glu(x, CM_GLU_SWIGLU, "swiglu"); }

const cm_opdef *const ops_elementwise_table[] = {&OP_ADD, &OP_SUB, &OP_MUL, &OP_DIV, &OP_SCALE, &OP_ADD_SCALAR, &OP_UNARY, &OP_GLU, NULL};
