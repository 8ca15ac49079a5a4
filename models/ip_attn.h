// ip_attn.h — InstantCharacter's IP attention (FluxIPAttnProcessor, spec §2.7, §3.1): one module
// per FLUX attention layer (57 for FLUX.1-dev: 0..18 double blocks, 19..56 single blocks), each
// with to_k_ip, to_v_ip (Linear ip_dim -> hidden, with bias) and RMSNorm(head_dim) on the IP query
// and key (InstantCharacter's RMSNorm: y = scale * x / (rms(x) + eps), weight named "scale").
// Keys: ip_adapter.{i}.to_k_ip.weight / .bias, ip_adapter.{i}.to_v_ip.weight / .bias,
//       ip_adapter.{i}.norm_ip_q.scale, ip_adapter.{i}.norm_ip_k.scale.
// defines: ip_attn_config, ip_attn_block, ip_attn and the ip_attn_* functions.
#pragma once
#include "models/layers.h"

typedef struct ip_attn_config {
    int n_modules;  // FLUX num_layers + num_single_layers (57)
    int heads;      // 24
    int head_dim;   // 128
    int ip_dim;     // width of the projector's tokens (T5 d_model, 4096)
} ip_attn_config;

typedef struct ip_attn_block {
    cm_linear to_k_ip, to_v_ip;   // [hidden, ip_dim] + [hidden]
    cm_rms norm_ip_q, norm_ip_k;  // [head_dim], eps 1e-6, CM_RMS_IC
} ip_attn_block;

typedef struct ip_attn {
    ip_attn_config cfg;
    ip_attn_block *blk;  // [n_modules]
} ip_attn;

ip_attn_config ip_attn_config_ic(void);  // the released InstantCharacter adapter (57 x 3072, ip 4096)
int64_t ip_attn_param_count(const ip_attn_config *c);  // 1,434,816,768 for ip_attn_config_ic
// registers "<prefix>.{i}.*" (prefix "ip_adapter" for the published layout)
void ip_attn_init(ip_attn *ip, const ip_attn_config *c, cm_params *ps, const char *prefix);
void ip_attn_free(ip_attn *ip);

// The IP branch of module i:
//   img_q  [B, N, hidden]    the block's RAW to_q output for the image tokens (before its
//                            q-norm and RoPE)
//   tokens [B, Lip, ip_dim]  the projector output
// returns SDPA(norm_ip_q(q), norm_ip_k(to_k_ip(tokens)), to_v_ip(tokens)) [B, N, hidden]
// (no RoPE, scale 1/sqrt(head_dim)); the caller adds scale * it to the image tokens' attention
// output before the output projection.
cm_tensor *ip_attn_fwd(const ip_attn *ip, int i, cm_tensor *img_q, cm_tensor *tokens);
// its attention's operands alone: q [B, H, N, D] (normed), k, v [B, H, Lip, D] — for the blocks'
// op_sdpa_tokens_pair, which runs it beside the joint attention
void ip_attn_qkv(const ip_attn *ip, int i, cm_tensor *img_q, cm_tensor *tokens, cm_tensor **q, cm_tensor **k,
                 cm_tensor **v);
