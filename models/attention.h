// attention.h — multi-head attention as the transformer models share it: heads split out of
// projected q, k, v, one op_sdpa, heads merged back; and self-attention with its four linears
// (SigLIP, DINOv2, CLIP text, T5, the VAE's mid-block). FLUX's joint attention (RoPE, q/k norms)
// and the IP attention live with FLUX (flux_attn.c, ip_attn.c).
// defines: attention_mha, attention_self.
#pragma once
#include "models/layers.h"

// q [B, Lq, H*D], k, v [B, Lk, H*D] -> [B, Lq, H*D]. mask: NULL or additive, broadcast to
// [B, H, Lq, Lk]; scale: the softmax scale (0: 1/sqrt(D)).
cm_tensor *attention_mha(cm_tensor *q, cm_tensor *k, cm_tensor *v, int64_t heads, cm_tensor *mask, double scale);
// x [B, L, C] -> o(attention_mha(q(x), k(x), v(x))) [B, L, C']
cm_tensor *attention_self(const cm_linear *q, const cm_linear *k, const cm_linear *v, const cm_linear *o, cm_tensor *x,
                          int64_t heads, cm_tensor *mask, double scale);
