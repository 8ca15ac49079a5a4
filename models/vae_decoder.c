// vae_decoder.c — the VAE decoder: latent -> image (evaluation and previews).
#include <stdlib.h>
#include <string.h>
#include "models/vae.h"

void vae_decoder_init(vae_decoder *d, const vae_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    CM_CHECK(c->nlevels >= 1 && c->nlevels <= VAE_MAX_LEVELS, "vae_decoder_init", "%d levels (1..%d)", c->nlevels, VAE_MAX_LEVELS);
    memset(d, 0, sizeof *d);
    d->cfg = *c;
    int per = c->layers_per_block + 1;
    int64_t top = c->ch[c->nlevels - 1];
    vae_conv_init(ps, "decoder.conv_in", c->latent, top, 3, &d->conv_in_w, &d->conv_in_b);
    vae_mid_init(&d->mid, ps, "decoder.mid_block", top, c->groups, c->mid_attn);
    d->res = calloc((size_t)(c->nlevels * per), sizeof *d->res);
    CM_CHECK(d->res, "vae_decoder_init", "out of memory");
    int64_t prev = top;
    for (int i = 0; i < c->nlevels; i++) {
        int64_t out = c->ch[c->nlevels - 1 - i];  // reversed block_out_channels
        for (int j = 0; j < per; j++)
            d->res[i * per + j] = vae_resnet_init(ps, name_fmt(p, "decoder.up_blocks.%d.resnets.%d", i, j),
                                                  j == 0 ? prev : out, out, c->groups);
        prev = out;
        if (i < c->nlevels - 1)
            vae_conv_init(ps, name_fmt(p, "decoder.up_blocks.%d.upsamplers.0.conv", i), out, out, 3, &d->up_w[i], &d->up_b[i]);
    }
    d->norm_out_w = params_new(ps, "decoder.conv_norm_out", "weight", SHAPE(c->ch[0]), CM_INIT_ONES);
    d->norm_out_b = params_new(ps, "decoder.conv_norm_out", "bias", SHAPE(c->ch[0]), CM_INIT_ZEROS);
    vae_conv_init(ps, "decoder.conv_out", c->ch[0], c->out_channels, 3, &d->conv_out_w, &d->conv_out_b);
}

void vae_decoder_free(vae_decoder *d) {
    free(d->res);
    memset(d, 0, sizeof *d);
}

// diffusers Upsample2D: nearest 2x (a broadcast view made contiguous), then a 3x3 conv
static cm_tensor *upsample(cm_tensor *x, cm_tensor *w, cm_tensor *b) {
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    cm_tensor *r = op_reshape(x, SHAPE(B, C, H, 1, W, 1));
    cm_tensor *e = op_expand(r, SHAPE(B, C, H, 2, W, 2));
    cm_tensor *c = op_contiguous(e);
    cm_tensor *u = op_reshape(c, SHAPE(B, C, 2 * H, 2 * W));     // [B, C, 2H, 2W]
    cm_tensor *out = op_conv2d(u, w, b, 1, 1);
    tensor_release(r);
    tensor_release(e);
    tensor_release(c);
    tensor_release(u);
    return out;
}

cm_tensor *vae_decode(const vae_decoder *d, cm_tensor *z) {
    const vae_config *c = &d->cfg;
    char buf[96];
    CM_CHECK(z->ndim == 4 && z->shape[1] == c->latent, "vae_decode", "latent must be [B, %lld, h, w], got %s",
             (long long)c->latent, tensor_shape_str(z, buf, sizeof buf));
    int per = c->layers_per_block + 1;
    cm_tensor *h = op_conv2d(z, d->conv_in_w, d->conv_in_b, 1, 1);
    cm_tensor *m = vae_mid_fwd(&d->mid, h);
    tensor_release(h);
    h = m;
    for (int i = 0; i < c->nlevels; i++) {
        for (int j = 0; j < per; j++) {
            cm_tensor *n = vae_resnet_fwd(&d->res[i * per + j], h);
            tensor_release(h);
            h = n;
        }
        if (i < c->nlevels - 1) {
            cm_tensor *n = upsample(h, d->up_w[i], d->up_b[i]);
            tensor_release(h);
            h = n;
        }
    }
    cm_tensor *a = vae_norm_silu(h, c->groups, d->norm_out_w, d->norm_out_b);
    cm_tensor *out = op_conv2d(a, d->conv_out_w, d->conv_out_b, 1, 1);  // [B, out, H, W]
    tensor_release(h);
    tensor_release(a);
    return out;
}
