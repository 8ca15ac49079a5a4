// flux_internal.h — helpers shared by the FLUX block files (not part of the public API).
// defines: flux_qk, flux_v, flux_joint_attention, flux_joint_ip_attention, flux_gated_add, flux_adanorm, flux_ff
#pragma once
#include "models/flux.h"

// q or k of the joint sequence: the n streams' projections xs[s] [B, Ls, H*D] (text first), each
// RMS-normalised per head by norms[s], rotated (RoPE, cos / sin [L, D]) -> [B, H, L, D], one op
cm_tensor *flux_qk(int n, cm_tensor **xs, const cm_rms *const *norms, int H, cm_tensor *cos, cm_tensor *sin);
// v of the joint sequence: xs[s] [B, Ls, H*D] -> [B, H, L, D] (a head-major view of [B, L, H, D])
cm_tensor *flux_v(int n, cm_tensor **xs, int H);
// prepared q, k, v [B, H, L, D] -> SDPA -> [B, L, H*D]
cm_tensor *flux_joint_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v);
// the joint attention with module `module`'s IP attention beside it (one op, op_sdpa_tokens_pair:
// one launch where the backend can), ip_scale times the IP output added to rows Lt.. (the image
// tokens'): [B, L, C]. img_q: the image tokens' raw to_q output [B, N, C].
struct ip_attn;
cm_tensor *flux_joint_ip_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v, const struct ip_attn *ip, int module,
                                   cm_tensor *img_q, cm_tensor *ip_tokens, double ip_scale, int64_t Lt);
// res + gate[:, None, :] * y; gate [B, C], y and res [B, L, C] (one pass: op_gated_add)
cm_tensor *flux_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y);
// LayerNorm(x, no affine, eps 1e-6) * (1 + scale) + shift, fused (op_layernorm_modulate)
cm_tensor *flux_adanorm(cm_tensor *x, cm_tensor *scale, cm_tensor *shift);
// Linear -> GELU(tanh) -> Linear
cm_tensor *flux_ff(const cm_linear *l0, const cm_linear *l2, cm_tensor *x);
