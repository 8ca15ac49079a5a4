// vae.h — the FLUX VAE (diffusers AutoencoderKL, spec §5.7): encoder (training) and decoder
// (evaluation), each registered on its own so training loads only "encoder.*".
// Levels of 2 ResNet blocks (decoder: 3), GroupNorm eps 1e-6, SiLU, a mid block with one
// single-head attention, no quant convs. Downsample: pad (0,1,0,1) then a 3x3 stride-2 conv;
// upsample: nearest 2x then a 3x3 conv. Latents: z' = (z - shift) * scale.
// Key names as diffusers: "encoder.conv_in.weight", "encoder.down_blocks.I.resnets.J.norm1.weight",
// "encoder.down_blocks.I.downsamplers.0.conv.weight", "encoder.mid_block.attentions.0.to_q.weight",
// "decoder.up_blocks.I.upsamplers.0.conv.weight", ...
// defines: vae_config, VAE_FLUX, vae_resnet, vae_attn, vae_mid, vae_encoder, vae_decoder, vae_*.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "models/layers.h"

#define VAE_MAX_LEVELS 6

typedef struct vae_config {
    int64_t in_channels, out_channels;   // 3, 3
    int64_t latent;                      // latent channels (FLUX: 16)
    int nlevels;
    int64_t ch[VAE_MAX_LEVELS];          // block_out_channels
    int layers_per_block;                // 2
    int64_t groups;                      // norm_num_groups (32)
    bool mid_attn;                       // mid_block_add_attention
    double scaling, shift;               // scaling_factor, shift_factor
} vae_config;

// black-forest-labs/FLUX.1-dev vae: 16 latents, (128, 256, 512, 512), 2 per block, 32 groups
extern const vae_config VAE_FLUX;

typedef struct vae_resnet {   // norm1 -> silu -> conv1 -> norm2 -> silu -> conv2, + shortcut
    cm_tensor *n1w, *n1b, *c1w, *c1b, *n2w, *n2b, *c2w, *c2b;
    cm_tensor *scw, *scb;     // conv_shortcut (1x1) when in != out, else NULL
    int64_t groups;
} vae_resnet;

typedef struct vae_attn {     // GroupNorm, one head over the H*W tokens, residual
    cm_tensor *gnw, *gnb;
    cm_linear q, k, v, o;
    int64_t groups;
} vae_attn;

typedef struct vae_mid {
    vae_resnet r0, r1;
    vae_attn attn;
    bool has_attn;
} vae_mid;

typedef struct vae_encoder {
    vae_config cfg;
    cm_tensor *conv_in_w, *conv_in_b;
    vae_resnet *res;                              // [nlevels * layers_per_block]
    cm_tensor *down_w[VAE_MAX_LEVELS], *down_b[VAE_MAX_LEVELS];  // [nlevels - 1]
    vae_mid mid;
    cm_tensor *norm_out_w, *norm_out_b, *conv_out_w, *conv_out_b;  // conv_out: 2 * latent (mean, logvar)
} vae_encoder;

typedef struct vae_decoder {
    vae_config cfg;
    cm_tensor *conv_in_w, *conv_in_b;
    vae_mid mid;
    vae_resnet *res;                              // [nlevels * (layers_per_block + 1)]
    cm_tensor *up_w[VAE_MAX_LEVELS], *up_b[VAE_MAX_LEVELS];      // [nlevels - 1]
    cm_tensor *norm_out_w, *norm_out_b, *conv_out_w, *conv_out_b;
} vae_decoder;

// parameter counts without allocating (FLUX: encoder 34,274,208, decoder 49,545,475)
int64_t vae_encoder_param_count(const vae_config *c);
int64_t vae_decoder_param_count(const vae_config *c);
// the config from a weights file or folder's shapes; norm groups from a config.json beside the
// weights, else the "norm_num_groups" metadata, else 32; scaling / shift likewise (else FLUX's)
int vae_detect(const char *path, vae_config *c, char *err, size_t errlen);

void vae_encoder_init(vae_encoder *e, const vae_config *c, cm_params *ps);
void vae_encoder_free(vae_encoder *e);  // the tensors belong to ps
void vae_decoder_init(vae_decoder *d, const vae_config *c, cm_params *ps);
void vae_decoder_free(vae_decoder *d);

// x [B, in, H, W] in [-1, 1], H and W multiples of 2^(nlevels-1) -> the mean of the latent
// distribution [B, latent, H/f, W/f] (unscaled). logvar: when not NULL gets the log-variance,
// clamped to [-30, 20] as diffusers does.
cm_tensor *vae_encode(const vae_encoder *e, cm_tensor *x, cm_tensor **logvar);
// a sample of the latent distribution: mean + exp(logvar / 2) * noise, noise [B, latent, h, w]
cm_tensor *vae_encode_sample(const vae_encoder *e, cm_tensor *x, cm_tensor *noise);
// the same draw from the distribution's mean and (clamped) logvar, as vae_encode gives them (the
// latent cache stores both): mean + exp(logvar / 2) * noise
cm_tensor *vae_posterior_sample(cm_tensor *mean, cm_tensor *logvar, cm_tensor *noise);
// z' = (z - shift) * scale (what FLUX sees) and back
cm_tensor *vae_scale_latent(const vae_config *c, cm_tensor *z);
cm_tensor *vae_unscale_latent(const vae_config *c, cm_tensor *zs);
// z [B, latent, h, w] (unscaled) -> image [B, out, h*f, w*f]
cm_tensor *vae_decode(const vae_decoder *d, cm_tensor *z);

// --- blocks shared by the encoder and the decoder (vae_encoder.c) ---
// prefix e.g. "encoder.down_blocks.0.resnets.1"
vae_resnet vae_resnet_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, int64_t groups);
cm_tensor *vae_resnet_fwd(const vae_resnet *r, cm_tensor *x);
void vae_mid_init(vae_mid *m, cm_params *ps, const char *prefix, int64_t ch, int64_t groups, bool attn);
cm_tensor *vae_mid_fwd(const vae_mid *m, cm_tensor *x);
// 3x3 conv weights "<prefix>.weight" [out, in, 3, 3] and bias
void vae_conv_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, int64_t k, cm_tensor **w, cm_tensor **b);
// GroupNorm (eps 1e-6) then SiLU
cm_tensor *vae_norm_silu(cm_tensor *x, int64_t groups, cm_tensor *w, cm_tensor *b);
