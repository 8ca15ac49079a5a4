// ops_attention.c — fused scaled-dot-product attention. Saves the output and the log-sum-exp
// of each query row, never the probability matrix.
#include <math.h>
#include "autograd/ops_internal.h"

static void strides3(const cm_tensor *t, int64_t *s) { s[0] = t->stride[0]; s[1] = t->stride[1]; s[2] = t->stride[2]; }

// a head-major operand the kernel can read: D contiguous; otherwise a copy
static cm_tensor *attn_operand(cm_tensor *t) {
    if (t->stride[3] == 1 || t->shape[3] == 1) return tensor_retain(t);
    return ops_contig(t);
}

// mask as f32 [B|1, H|1, Lq, Lk] rows with batch / head strides
static cm_tensor *mask_prepare(const cm_tensor *m, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t *mb, int64_t *mh) {
    if (!m) { *mb = *mh = 0; return NULL; }
    if (m->dtype != CM_F32) ops_die_shapes("sdpa", "mask must be f32", m, NULL);
    bool ok = m->ndim == 2 || m->ndim == 4;
    int off = m->ndim - 2;
    ok = ok && m->shape[off] == Lq && m->shape[off + 1] == Lk;
    if (ok && m->ndim == 4) ok = (m->shape[0] == 1 || m->shape[0] == B) && (m->shape[1] == 1 || m->shape[1] == H);
    if (!ok) ops_die_shapes("sdpa", "mask must be [Lq, Lk] or [B|1, H|1, Lq, Lk]", m, NULL);
    cm_tensor *mc = ops_contig((cm_tensor *)m);
    *mb = m->ndim == 4 && m->shape[0] == B && B > 1 ? m->shape[1] * Lq * Lk : 0;
    *mh = m->ndim == 4 && m->shape[1] == H && H > 1 ? Lq * Lk : 0;
    return mc;
}

// strides {b, h, row} of an output [B, H, Lq, D] stored token-major ([B, Lq, H, D]) or head-major
static void out_strides(bool tokens, int64_t H, int64_t Lq, int64_t D, int64_t *s) {
    s[0] = H * Lq * D;
    s[1] = tokens ? D : Lq * D;
    s[2] = tokens ? H * D : D;
}

// i: [0] mb, [1] mh, [2] token-major output; f: [0] scale
static void sdpa_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *q = n->saved[0], *k = n->saved[1], *v = n->saved[2], *o = n->saved[3], *lse = n->saved[4], *mask = n->saved[5];
    int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], Lk = k->shape[2], D = q->shape[3];
    int64_t qs[3], ks[3], vs[3], os[3];
    strides3(q, qs); strides3(k, ks); strides3(v, vs);
    out_strides(n->i[2] != 0, H, Lq, D, os);
    cm_tensor *gc = ops_contig(g);  // laid out as the output
    cm_tensor *dq = ops_new(q, 4, (int64_t[]){B, H, Lq, D});
    cm_tensor *dk = ops_new(q, 4, (int64_t[]){B, H, Lk, D});
    cm_tensor *dv = ops_new(q, 4, (int64_t[]){B, H, Lk, D});
    BE(q)->attn_bwd(KC(q), q->dtype, B, H, Lq, Lk, D, n->f[0], tensor_data(dq), tensor_data(dk), tensor_data(dv),
                    tensor_data(gc), os, tensor_data(o), os, tensor_data(lse), tensor_data(q), qs, tensor_data(k), ks,
                    tensor_data(v), vs, mask ? tensor_data(mask) : NULL, n->i[0], n->i[1]);
    tensor_release(gc);
    cm_tensor *d[3] = {dq, dk, dv};
    for (int i = 0; i < 3; i++) {
        if (n->needs[i]) gin[i] = d[i];
        else tensor_release(d[i]);
    }
}
static const cm_opdef OP_SDPA = {"sdpa", sdpa_backward};

static cm_tensor *sdpa(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *mask, double scale, bool tokens) {
    ops_check_same("sdpa", q, k);
    ops_check_same("sdpa", q, v);
    ops_check_compute("sdpa", q);
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) ops_die_shapes("sdpa", "q, k, v must be [B, H, L, D]", q, k);
    int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], D = q->shape[3], Lk = k->shape[2];
    if (k->shape[0] != B || k->shape[1] != H || k->shape[3] != D) ops_die_shapes("sdpa", "k must be [B, H, Lk, D] like q", q, k);
    if (!tensor_same_shape(k, v)) ops_die_shapes("sdpa", "k and v shapes differ", k, v);
    if (scale <= 0) scale = 1.0 / sqrt((double)D);
    int64_t mb, mh;
    cm_tensor *mc = mask_prepare(mask, B, H, Lq, Lk, &mb, &mh);
    cm_tensor *qa = attn_operand(q), *ka = attn_operand(k), *va = attn_operand(v);
    int64_t qs[3], ks[3], vs[3], os[3];
    strides3(qa, qs); strides3(ka, ks); strides3(va, vs);
    out_strides(tokens, H, Lq, D, os);
    cm_tensor *out = ops_new(q, 4, tokens ? (int64_t[]){B, Lq, H, D} : (int64_t[]){B, H, Lq, D});
    cm_tensor *lse = tensor_empty(CM_F32, 3, (int64_t[]){B, H, Lq}, DEV(q));
    if (tensor_numel(out))
        BE(q)->attn_fwd(KC(q), q->dtype, B, H, Lq, Lk, D, scale, tensor_data(out), os, tensor_data(lse),
                        tensor_data(qa), qs, tensor_data(ka), ks, tensor_data(va), vs, mc ? tensor_data(mc) : NULL, mb, mh);
    cm_node *n = autograd_record(&OP_SDPA, out, 3, (cm_tensor *[]){q, k, v});
    if (n) {
        n->f[0] = scale;
        n->i[0] = mb;
        n->i[1] = mh;
        n->i[2] = tokens;
        node_save(n, 0, qa); node_save(n, 1, ka); node_save(n, 2, va);
        node_save(n, 3, out); node_save(n, 4, lse);
        if (mc) node_save(n, 5, mc);
    }
    tensor_release(qa); tensor_release(ka); tensor_release(va); tensor_release(lse); tensor_release(mc);
    return out;
}

cm_tensor *op_sdpa(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *mask, double scale) {
    return sdpa(q, k, v, mask, scale, false);
}
cm_tensor *op_sdpa_tokens(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *mask, double scale) {
    return sdpa(q, k, v, mask, scale, true);
}

const cm_opdef *const ops_attention_table[] = {&OP_SDPA, NULL};
