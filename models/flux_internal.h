// flux_internal.h — helpers shared by the FLUX block files (not part of the public API).
// defines: flux_heads, flux_joint_attention, flux_gated_add, flux_adanorm, flux_ff
#pragma once
#include "models/flux.h"

// [B, L, H*D] -> per-head RMSNorm'd [B, L, H, D] (norm NULL: plain reshape)
cm_tensor *flux_heads(cm_tensor *x, int H, int D, const cm_rms *norm);
// Q, K, V [B, L, H, D] (Q, K already q/k-normed) -> RoPE on Q, K -> SDPA -> [B, L, H*D]
cm_tensor *flux_joint_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *cos, cm_tensor *sin);
// res + gate[:, None, :] * y; gate [B, C], y and res [B, L, C]
cm_tensor *flux_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y);
// LayerNorm(x, no affine, eps 1e-6) * (1 + scale) + shift, fused (op_layernorm_modulate)
cm_tensor *flux_adanorm(cm_tensor *x, cm_tensor *scale, cm_tensor *shift);
// Linear -> GELU(tanh) -> Linear
cm_tensor *flux_ff(const cm_linear *l0, const cm_linear *l2, cm_tensor *x);
