// ic_projector.h — InstantCharacter's image projector, CrossLayerCrossScaleProjector with its
// TimeResampler (spec §2.4–2.6), keyed like the published checkpoint (spec §3.2, prefix
// "image_proj"). Same code at full size (IC_PROJECTOR_FULL) and tiny size (IC_PROJECTOR_TINY).
//
//   cl = low_res_deep;  4x cl = block(cl, ctx = low_res_shallow);  cl = proj_cross_layer(cl)
//   cs = low_res_deep;  4x cs = block(cs, ctx = high_res_deep);    cs = proj_cross_scale(cs)
//   h  = cat([proj(low_res_deep) + cs, cl], dim 1)                  // [B, 2L, C]
//   tokens, temb = resampler(h, t)                                  // [B, Q, out], [B, dim]
//
// Built into a cm_params registry; a meta registry (params_init_meta) records names and shapes
// only, so `cameo inspect --arch instantcharacter` lists the full 2.8B-parameter adapter with
// the very code that builds it, without allocating.
// defines: ic_projector_config, ic_attn, ic_block, ic_mlp,
//          ic_perceiver, ic_rlayer, ic_resampler, ic_projector and the ic_* functions.
#pragma once
#include <stdbool.h>
#include "models/layers.h"

#define IC_MAX_BLOCKS 16  // per kind (cross-layer, cross-scale)
#define IC_MAX_DEPTH 16   // resampler layers

typedef struct ic_projector_config {
    // transformer blocks (diffusers BasicTransformerBlock, layer_norm eps 1e-6, GEGLU FF)
    int64_t inner_dim;      // 2688 = SigLIP 1152 + DINOv2 1536
    int heads, head_dim;    // 42 x 64; heads * head_dim = inner_dim
    int64_t cross_dim;      // 2688: width of the context tokens
    int num_layers;         // 4 cross-layer + 4 cross-scale blocks
    int block_ff_mult;      // 4: GEGLU inner width = 4 * inner_dim
    // TimeResampler (timestep-aware Perceiver / Q-Former)
    int64_t dim;            // 1280
    int depth;              // 4
    int r_heads, r_head_dim;  // 20 x 64
    int64_t num_queries;    // 1024 learned latents
    int64_t embedding_dim;  // 2688 (= inner_dim)
    int64_t output_dim;     // 4096 (= FLUX joint_attention_dim, the IP modules' ip_dim)
    int ff_mult;            // 4
    int timestep_in;        // 320: Timesteps(320, flip_sin_to_cos=True, shift 0)
    bool flip_sin_to_cos;   // true
    double freq_shift;      // 0
} ic_projector_config;

extern const ic_projector_config IC_PROJECTOR_FULL;  // 1,360,116,096 parameters
extern const ic_projector_config IC_PROJECTOR_TINY;  // scripts/ic_reference.py IC_TINY (118,008)
// 0, or -1 with a message naming the field that is wrong
int ic_projector_config_check(const ic_projector_config *c, char *err, size_t errlen);
bool ic_projector_config_eq(const ic_projector_config *a, const ic_projector_config *b);  // field by field

// params_new with CM_INIT_NORMAL and the given std (params_new itself defaults to 0.02)
cm_tensor *ic_param_normal(cm_params *ps, const char *prefix, const char *name, int ndim, const int64_t *shape,
                           double std);

// --- transformer block and MLP (ic_blocks.c) ---
typedef struct ic_attn {   // diffusers Attention: q, k, v without bias, to_out.0 with bias
    cm_linear to_q, to_k, to_v, to_out;
    int heads, head_dim;
} ic_attn;
typedef struct ic_block {  // BasicTransformerBlock
    cm_lnorm norm1, norm2, norm3;  // eps 1e-6
    ic_attn attn1, attn2;          // self-attention; cross-attention on the raw context
    cm_linear ff_in, ff_out;       // ff.net.0.proj [2F, C] (GEGLU), ff.net.2 [C, F]
} ic_block;
typedef struct ic_mlp {    // timm Mlp: fc1 -> GELU(tanh) -> fc2
    cm_linear fc1, fc2;
} ic_mlp;

void ic_block_init(ic_block *b, cm_params *ps, const char *prefix, int64_t dim, int64_t cross_dim,
                   int heads, int head_dim, int ff_mult);
// x [B, L, C], ctx [B, S, Cc] -> [B, L, C]
cm_tensor *ic_block_fwd(const ic_block *b, cm_tensor *x, cm_tensor *ctx);
void ic_mlp_init(ic_mlp *m, cm_params *ps, const char *prefix, int64_t dim, int64_t hidden);
cm_tensor *ic_mlp_fwd(const ic_mlp *m, cm_tensor *x);  // [..., C] -> [..., C]

// --- TimeResampler (ic_resampler.c) ---
typedef struct ic_perceiver {  // layers.j.0
    cm_lnorm norm1, norm2;       // on x, on latents (eps 1e-5)
    cm_linear to_q, to_kv, to_out;  // no bias
} ic_perceiver;
typedef struct ic_rlayer {
    ic_perceiver attn;           // layers.j.0
    cm_lnorm ff_norm;            // layers.j.1.0
    cm_linear ff1, ff2;          // layers.j.1.1 [mult*dim, dim], layers.j.1.3 [dim, mult*dim], no bias
    cm_linear ada;               // layers.j.2.1 [4*dim, dim] + bias: shift/scale for attn and FF
} ic_rlayer;
typedef struct ic_resampler {
    cm_tensor *latents;          // [1, Q, dim]
    cm_linear proj_in, proj_out; // [dim, emb], [out, dim]
    cm_lnorm norm_out;           // [out], eps 1e-5
    cm_linear time1, time2;      // time_embedding.linear_1 [dim, tin], linear_2 [dim, dim]
    ic_rlayer layers[IC_MAX_DEPTH];
    int depth, heads, head_dim, timestep_in;
    bool flip_sin_to_cos;
    double freq_shift;
} ic_resampler;

void ic_resampler_init(ic_resampler *rs, cm_params *ps, const char *prefix, const ic_projector_config *c);
// h [B, S, emb], t [B] (f32, the pipeline's timestep 1000*sigma) -> *out [B, Q, out], *temb [B, dim]
void ic_resampler_fwd(const ic_resampler *rs, cm_tensor *h, cm_tensor *t, cm_tensor **out, cm_tensor **temb);

// --- the projector (ic_projector.c) ---
typedef struct ic_projector {
    ic_projector_config cfg;
    ic_block cross_layer[IC_MAX_BLOCKS], cross_scale[IC_MAX_BLOCKS];
    ic_mlp proj, proj_cross_layer, proj_cross_scale;
    ic_resampler resampler;
} ic_projector;

// registers "<prefix>.cross_layer_blocks.*", ..., "<prefix>.resampler.*" (prefix "image_proj");
// returns 0, or -1 with err set for a bad config
int ic_projector_init(ic_projector *p, const ic_projector_config *c, cm_params *ps, const char *prefix,
                      char *err, size_t errlen);
// low_shallow [B, 3L, C] (ctx of the cross-layer blocks), low_deep [B, L, C],
// high_deep [B, 4L, C] (ctx of the cross-scale blocks; any length), t [B] f32
// -> *tokens [B, Q, out], *temb [B, dim]. Wrong shapes stop with a message naming the input.
void ic_projector_fwd(const ic_projector *p, cm_tensor *low_shallow, cm_tensor *low_deep, cm_tensor *high_deep,
                      cm_tensor *t, cm_tensor **tokens, cm_tensor **temb);
