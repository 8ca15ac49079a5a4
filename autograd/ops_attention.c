// ops_attention.c — fused scaled-dot-product attention. Saves the output and the log-sum-exp
// of each query row, never the probability matrix.
#include <math.h>
#include <string.h>
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

// --- two attentions in one op: [B, Lq1 + Lq2, H, D] token-major, problem 1's rows first ---
// (the FLUX blocks' joint attention and the IP attention, which reads the same raw query: one
// launch where the backend can, attn_fwd_group). Saved: the six operands, the output, both lse in
// one buffer [B H Lq1 + B H Lq2].
static void pair_problems(cm_tensor *const *qkv, const cm_tensor *out, const cm_tensor *lse, double scale,
                          cm_attn_problem *p, int64_t st[6][3], int64_t *os) {
    const int64_t B = qkv[0]->shape[0], H = qkv[0]->shape[1], D = qkv[0]->shape[3];
    const int64_t L1 = qkv[0]->shape[2], L2 = qkv[3]->shape[2], es = (int64_t)dtype_size(out->dtype);
    os[0] = (L1 + L2) * H * D, os[1] = D, os[2] = H * D;
    for (int i = 0; i < 6; i++) strides3(qkv[i], st[i]);
    for (int w = 0; w < 2; w++) {
        cm_tensor *const *t = qkv + 3 * w;
        memset(&p[w], 0, sizeof p[w]);
        p[w].B = B, p[w].H = H, p[w].Lq = t[0]->shape[2], p[w].Lk = t[1]->shape[2], p[w].D = D, p[w].scale = scale;
        p[w].O = (char *)tensor_data((cm_tensor *)out) + (w ? L1 * H * D * es : 0);
        p[w].os = os, p[w].gs = os;
        p[w].lse = (float *)tensor_data((cm_tensor *)lse) + (w ? B * H * L1 : 0);
        p[w].Q = tensor_data(t[0]), p[w].K = tensor_data(t[1]), p[w].V = tensor_data(t[2]);
        p[w].qs = st[3 * w], p[w].ks = st[3 * w + 1], p[w].vs = st[3 * w + 2];
    }
}

static void sdpa_pair_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    cm_tensor *qkv[6], *out = n->saved[6], *lse = n->saved[7];
    for (int i = 0; i < 6; i++) qkv[i] = n->saved[i];
    cm_attn_problem p[2];
    int64_t st[6][3], os[3];
    pair_problems(qkv, out, lse, n->f[0], p, st, os);
    cm_tensor *gc = ops_contig(g);  // laid out as the output
    const int64_t es = (int64_t)dtype_size(g->dtype), L1 = qkv[0]->shape[2], H = qkv[0]->shape[1], D = qkv[0]->shape[3];
    cm_tensor *d[6];
    for (int i = 0; i < 6; i++) d[i] = ops_new(qkv[i], 4, qkv[i]->shape);
    for (int w = 0; w < 2; w++) {
        p[w].dQ = tensor_data(d[3 * w]), p[w].dK = tensor_data(d[3 * w + 1]), p[w].dV = tensor_data(d[3 * w + 2]);
        p[w].dO = (const char *)tensor_data(gc) + (w ? L1 * H * D * es : 0);
    }
    const cm_backend *be = BE(qkv[0]);
    if (be->attn_bwd_group) be->attn_bwd_group(KC(qkv[0]), g->dtype, 2, p);
    else
        for (int w = 0; w < 2; w++)
            be->attn_bwd(KC(qkv[0]), g->dtype, p[w].B, p[w].H, p[w].Lq, p[w].Lk, p[w].D, p[w].scale, p[w].dQ, p[w].dK,
                         p[w].dV, p[w].dO, os, p[w].O, os, p[w].lse, p[w].Q, p[w].qs, p[w].K, p[w].ks, p[w].V, p[w].vs,
                         NULL, 0, 0);
    tensor_release(gc);
    for (int i = 0; i < 6; i++) {
        if (n->needs[i]) gin[i] = d[i];
        else tensor_release(d[i]);
    }
}
static const cm_opdef OP_SDPA_PAIR = {"sdpa_pair", sdpa_pair_backward};

cm_tensor *op_sdpa_tokens_pair(cm_tensor *q1, cm_tensor *k1, cm_tensor *v1, cm_tensor *q2, cm_tensor *k2, cm_tensor *v2,
                               double scale) {
    cm_tensor *in[6] = {q1, k1, v1, q2, k2, v2};
    for (int i = 1; i < 6; i++) ops_check_same("sdpa_pair", q1, in[i]);
    ops_check_compute("sdpa_pair", q1);
    for (int i = 0; i < 6; i++)
        if (in[i]->ndim != 4) ops_die_shapes("sdpa_pair", "q, k, v of both problems must be [B, H, L, D]", in[i], NULL);
    const int64_t B = q1->shape[0], H = q1->shape[1], D = q1->shape[3];
    for (int w = 0; w < 2; w++) {
        cm_tensor *q = in[3 * w], *k = in[3 * w + 1], *v = in[3 * w + 2];
        if (q->shape[0] != B || q->shape[1] != H || q->shape[3] != D)
            ops_die_shapes("sdpa_pair", "the second problem's q must be [B, H, Lq2, D] with the first's B, H, D", q1, q);
        if (k->shape[0] != B || k->shape[1] != H || k->shape[3] != D) ops_die_shapes("sdpa_pair", "k must be [B, H, Lk, D] like q", q, k);
        if (!tensor_same_shape(k, v)) ops_die_shapes("sdpa_pair", "k and v shapes differ", k, v);
        if (k->shape[2] == 0 && q->shape[2] > 0) ops_die_shapes("sdpa_pair", "a problem with queries and no keys", q, k);
    }
    if (scale <= 0) scale = 1.0 / sqrt((double)D);
    cm_tensor *qkv[6];
    for (int i = 0; i < 6; i++) qkv[i] = attn_operand(in[i]);
    const int64_t L1 = q1->shape[2], L2 = q2->shape[2];
    cm_tensor *out = ops_new(q1, 4, (int64_t[]){B, L1 + L2, H, D});
    cm_tensor *lse = tensor_empty(CM_F32, 1, (int64_t[]){B * H * (L1 + L2)}, DEV(q1));
    cm_attn_problem p[2];
    int64_t st[6][3], os[3];
    pair_problems(qkv, out, lse, scale, p, st, os);
    const cm_backend *be = BE(q1);
    if (tensor_numel(out)) {
        if (be->attn_fwd_group) be->attn_fwd_group(KC(q1), q1->dtype, 2, p);
        else
            for (int w = 0; w < 2; w++)
                if (p[w].Lq > 0)
                    be->attn_fwd(KC(q1), q1->dtype, B, H, p[w].Lq, p[w].Lk, D, scale, p[w].O, os, p[w].lse, p[w].Q,
                                 p[w].qs, p[w].K, p[w].ks, p[w].V, p[w].vs, NULL, 0, 0);
    }
    cm_node *n = autograd_record(&OP_SDPA_PAIR, out, 6, in);
    if (n) {
        n->f[0] = scale;
        for (int i = 0; i < 6; i++) node_save(n, i, qkv[i]);
        node_save(n, 6, out);
        node_save(n, 7, lse);
    }
    for (int i = 0; i < 6; i++) tensor_release(qkv[i]);
    tensor_release(lse);
    return out;
}

const cm_opdef *const ops_attention_table[] = {&OP_SDPA, &OP_SDPA_PAIR, NULL};
