// flux.h — the FLUX.1 transformer (diffusers FluxTransformer2DModel, spec §5) with optional
// InstantCharacter IP attention in every block (ip_attn.h, spec §2.7).
// defines: flux_config, flux_model, flux_double_block, flux_single_block, flux_layout and the
//          flux_* functions (config, init, load, forward, packing, RoPE, conditioning).
//
// Weights are registered under the diffusers key names (transformer_blocks.N.attn.to_q.weight,
// single_transformer_blocks.N.proj_mlp.weight, x_embedder.weight, ...). The single-file BFL
// release (double_blocks.N.img_attn.qkv.weight, ...) is mapped onto them by flux_names.c.
// FLUX is frozen in InstantCharacter training: register it in a registry made with
// trainable = false, so no weight gradient (dW) is ever formed for it.
#pragma once
#include <stdbool.h>
#include "autograd/autograd.h"
#include "models/layers.h"

struct ip_attn;

typedef struct flux_config {
    int in_channels;        // packed latent channels (64 = 16 latent channels x 2x2)
    int out_channels;       // 64
    int num_layers;         // double-stream blocks (19)
    int num_single_layers;  // single-stream blocks (38)
    int heads;              // 24
    int head_dim;           // 128; hidden = heads * head_dim
    int joint_dim;          // T5 width (4096)
    int pooled_dim;         // CLIP pooled width (768)
    bool guidance_embeds;   // FLUX.1-dev: true
    int axes_dim[3];        // RoPE dims over ids (0, row, col): (16, 56, 56); sum = head_dim
    double theta;           // RoPE base, 10000
    int mlp_ratio;          // 4
} flux_config;

flux_config flux_config_dev(void);   // FLUX.1-dev at full size (11,901,408,320 parameters)
flux_config flux_config_tiny(void);  // 2 double + 2 single blocks, 2 heads x 16, for tests
int64_t flux_config_hidden(const flux_config *c);
// RoPE axes for a head size when nothing says otherwise: FLUX's (16, 56, 56) at 128, scaled —
// two equal even spatial axes of 2*floor(7D/32), the rest for axis 0 ((4, 6, 6) at 16)
void flux_default_axes(int head_dim, int axes[3]);
// parameters of the architecture, computed without allocating anything
int64_t flux_param_count(const flux_config *c);
// 0, or -1 with a message naming the bad field
int flux_config_check(const flux_config *c, char *err, size_t errlen);

typedef struct flux_double_block {
    cm_linear norm1, norm1_context;                 // AdaLayerNormZero: C -> 6C
    cm_linear to_q, to_k, to_v, to_out;             // image stream
    cm_linear add_q, add_k, add_v, to_add_out;      // text stream
    cm_rms norm_q, norm_k, norm_added_q, norm_added_k;  // per-head RMSNorm (diffusers, eps 1e-6)
    cm_linear ff0, ff2, ffc0, ffc2;                 // ff.net.0.proj, ff.net.2, ff_context.*
} flux_double_block;

typedef struct flux_single_block {
    cm_linear norm;                                 // AdaLayerNormZeroSingle: C -> 3C
    cm_linear to_q, to_k, to_v;
    cm_rms norm_q, norm_k;
    cm_linear proj_mlp, proj_out;                   // C -> 4C; 5C -> C
} flux_single_block;

#define FLUX_RECOMPUTE_ALL (-1)  // flux_forward: every block under a recompute scope
struct flux_fwd_state;  // per-forward state the recompute replays read (flux_model.c)

typedef struct flux_model {
    flux_config cfg;
    cm_linear x_embedder, context_embedder;
    cm_linear time1, time2;      // time_text_embed.timestep_embedder.linear_{1,2}
    cm_linear guid1, guid2;      // time_text_embed.guidance_embedder.linear_{1,2} (guidance_embeds)
    cm_linear text1, text2;      // time_text_embed.text_embedder.linear_{1,2}
    flux_double_block *dbl;      // [num_layers]
    flux_single_block *sgl;      // [num_single_layers]
    cm_linear norm_out, proj_out;
    struct flux_fwd_state *states;  // kept until the tape is empty (see flux_forward)
} flux_model;

// Registers every weight in ps under its diffusers name; returns 0 or -1 (bad config, err set).
int flux_init(flux_model *m, const flux_config *c, cm_params *ps, char *err, size_t errlen);
void flux_free(flux_model *m);  // the weights belong to ps (params_free)
// every key and shape of an architecture in a meta registry (params_init_meta): nothing allocated
int flux_describe(const flux_config *c, cm_params *meta, char *err, size_t errlen);

// Forward pass (diffusers FluxTransformer2DModel.forward).
//   x        [B, N, Cin]  packed latents, N = gh * gw (image grid of 2x2 patches, row-major)
//   txt      [B, Lt, joint]   T5 states (text ids are all zero)
//   pooled   [B, P]           CLIP pooled
//   sigma    [B]              sigma in [0, 1]; multiplied by 1000 inside, as diffusers does
//   guidance [B] or NULL      guidance scale as the pipeline passes it (e.g. 3.5); also x1000
//                             inside; required when cfg.guidance_embeds
//   ip, ip_tokens [B, Lip, ip_dim], ip_scale: the InstantCharacter branch (NULL = plain FLUX)
//   recompute: how many blocks, from the first, run in an autograd_recompute scope (each keeps
//            only its inputs and replays its forward in backward): 0 none, FLUX_RECOMPUTE_ALL
//            (or the block count) every one. The first ones, because backward reaches them last:
//            by their replay the kept blocks' activations are freed, so the peak is the larger
//            of the kept activations and one replay, not their sum.
// returns [B, N, Cout]. With recompute, the replay reads per-forward state kept in the model,
// freed at the next flux_forward that finds the tape empty, or by flux_free.
cm_tensor *flux_forward(flux_model *m, cm_tensor *x, cm_tensor *txt, cm_tensor *pooled,
                        cm_tensor *sigma, cm_tensor *guidance, int gh, int gw,
                        const struct ip_attn *ip, cm_tensor *ip_tokens, double ip_scale,
                        int recompute);

// --- pieces (flux_embed.c), exposed for tests and for the trainer ---
// [B, C, H, W] -> [B, (H/2)(W/2), 4C]; channel index c*4 + dy*2 + dx
cm_tensor *flux_pack_latents(cm_tensor *z);
// [B, (H/2)(W/2), 4C] -> [B, C, H, W]
cm_tensor *flux_unpack_latents(cm_tensor *x, int H, int W);
// cos, sin [Lt + gh*gw, head_dim] over ids (0,0,0) x Lt then (0, r, c) for a model computing in
// dt; f64 math, stored f32 (f64 when dt is f64: a bf16 model keeps f32 tables, as diffusers)
void flux_rope_tables(const flux_config *c, int Lt, int gh, int gw, cm_dtype dt, cm_device dev,
                      cm_tensor **cos, cm_tensor **sin);
// temb [B, C] = timestep_emb(1000 sigma) + guidance_emb(1000 g) + text_emb(pooled)
cm_tensor *flux_conditioning(const flux_model *m, cm_tensor *sigma, cm_tensor *guidance, cm_tensor *pooled);

// blocks on the joint stream h = [txt; img] [B, Lt + N, C]; temb_act = silu(temb) [B, C];
// ip_idx: the IP module of this block (0..n_double-1 double, then single), ignored without ip
cm_tensor *flux_double_fwd(const flux_model *m, int i, cm_tensor *h, int Lt, cm_tensor *temb_act,
                           cm_tensor *cos, cm_tensor *sin,
                           const struct ip_attn *ip, cm_tensor *ip_tokens, double ip_scale);
cm_tensor *flux_single_fwd(const flux_model *m, int i, cm_tensor *h, int Lt, cm_tensor *temb_act,
                           cm_tensor *cos, cm_tensor *sin,
                           const struct ip_attn *ip, cm_tensor *ip_tokens, double ip_scale);

// --- weights (flux_names.c) ---
typedef enum { FLUX_LAYOUT_DIFFUSERS = 0, FLUX_LAYOUT_BFL = 1 } flux_layout;
// Detects the layout and the size from tensor shapes in a safetensors file, folder or index.
// axes_dim is not stored in the weights: (16,56,56) scaled to head_dim (see flux_names.c).
int flux_config_from_weights(const char *path, flux_config *c, flux_layout *layout, char *err, size_t errlen);
// Loads either layout into a model made by flux_init (BFL: fused qkv / linear1 split, final
// shift/scale halves swapped). Returns 0, or -1 naming the key and shapes.
int flux_load(flux_model *m, cm_params *ps, const char *path, char *err, size_t errlen);
// the BFL name for a diffusers key and the row range of the BFL tensor it occupies
// (rows [*r0, *r0 + rows of the diffusers tensor)); swap: 1 when the two halves are exchanged
// (norm_out.linear). Returns 0, or -1 when the key has no BFL counterpart.
int flux_bfl_name(const flux_config *c, const char *diffusers_key, char *bfl, size_t n, int64_t *r0, int *swap);
