// attention.c — multi-head attention on projected q, k, v, and self-attention with its linears.
#include "models/attention.h"

cm_tensor *attention_mha(cm_tensor *q, cm_tensor *k, cm_tensor *v, int64_t heads, cm_tensor *mask, double scale) {
    int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], HD = q->shape[2];
    CM_CHECK(heads > 0 && HD % heads == 0 && k->shape[2] == HD && v->shape[2] == HD && v->shape[1] == Lk, "attention_mha",
             "q width %lld, k width %lld, v width %lld, %lld heads", (long long)HD, (long long)k->shape[2],
             (long long)v->shape[2], (long long)heads);
    int64_t D = HD / heads;
    const int to_heads[4] = {0, 2, 1, 3};
    cm_tensor *q4 = op_reshape(q, SHAPE(B, Lq, heads, D));  // [B, Lq, H, D]
    cm_tensor *k4 = op_reshape(k, SHAPE(B, Lk, heads, D));
    cm_tensor *v4 = op_reshape(v, SHAPE(B, Lk, heads, D));
    cm_tensor *qh = op_permute(q4, to_heads);  // [B, H, Lq, D] views, D contiguous
    cm_tensor *kh = op_permute(k4, to_heads);
    cm_tensor *vh = op_permute(v4, to_heads);
    cm_tensor *o = op_sdpa_tokens(qh, kh, vh, mask, scale);  // [B, Lq, H, D], written so by the kernel
    cm_tensor *out = op_reshape(o, SHAPE(B, Lq, HD));        // [B, Lq, H*D]: a view
    cm_tensor *tmp[] = {q4, k4, v4, qh, kh, vh, o};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

cm_tensor *attention_self(const cm_linear *q, const cm_linear *k, const cm_linear *v, const cm_linear *o, cm_tensor *x,
                          int64_t heads, cm_tensor *mask, double scale) {
    cm_tensor *qp = linear_fwd(q, x);  // [B, L, H*D]
    cm_tensor *kp = linear_fwd(k, x);
    cm_tensor *vp = linear_fwd(v, x);
    cm_tensor *a = attention_mha(qp, kp, vp, heads, mask, scale);
    cm_tensor *out = linear_fwd(o, a);  // [B, L, C']
    tensor_release(qp);
    tensor_release(kp);
    tensor_release(vp);
    tensor_release(a);
    return out;
}
