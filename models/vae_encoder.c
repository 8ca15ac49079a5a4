// vae_encoder.c — the VAE's shared blocks (ResNet, mid-block attention), the encoder, latent
// scaling, and the config: counts and detection.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "models/attention.h"
#include "models/config_json.h"
#include "models/safetensors.h"
#include "models/vae.h"

#define VAE_EPS 1e-6

const vae_config VAE_FLUX = {
    .in_channels = 3, .out_channels = 3, .latent = 16, .nlevels = 4, .ch = {128, 256, 512, 512},
    .layers_per_block = 2, .groups = 32, .mid_attn = true, .scaling = 0.3611, .shift = 0.1159,
};

// --- counts ---

static int64_t conv_count(int64_t in, int64_t out, int64_t k) { return out * in * k * k + out; }
static int64_t resnet_count(int64_t in, int64_t out) {
    return 2 * in + conv_count(in, out, 3) + 2 * out + conv_count(out, out, 3) + (in != out ? conv_count(in, out, 1) : 0);
}
static int64_t mid_count(int64_t ch, bool attn) {
    return 2 * resnet_count(ch, ch) + (attn ? 2 * ch + 4 * (ch * ch + ch) : 0);
}

int64_t vae_encoder_param_count(const vae_config *c) {
    int64_t n = conv_count(c->in_channels, c->ch[0], 3), prev = c->ch[0];
    for (int i = 0; i < c->nlevels; i++) {
        for (int j = 0; j < c->layers_per_block; j++) {
            n += resnet_count(j == 0 ? prev : c->ch[i], c->ch[i]);
        }
        prev = c->ch[i];
        if (i < c->nlevels - 1) n += conv_count(prev, prev, 3);
    }
    n += mid_count(prev, c->mid_attn) + 2 * prev + conv_count(prev, 2 * c->latent, 3);
    return n;
}

int64_t vae_decoder_param_count(const vae_config *c) {
    int64_t top = c->ch[c->nlevels - 1];
    int64_t n = conv_count(c->latent, top, 3) + mid_count(top, c->mid_attn), prev = top;
    for (int i = 0; i < c->nlevels; i++) {
        int64_t out = c->ch[c->nlevels - 1 - i];
        for (int j = 0; j <= c->layers_per_block; j++) n += resnet_count(j == 0 ? prev : out, out);
        prev = out;
        if (i < c->nlevels - 1) n += conv_count(out, out, 3);
    }
    return n + 2 * c->ch[0] + conv_count(c->ch[0], c->out_channels, 3);
}

// --- detection ---

// a number from config.json, else from the file's metadata, else def
static double cfg_number(cJSON *j, const st_file *f, const char *key, double def) {
    const char *m = f ? st_meta(f, key) : NULL;
    return cjson_number(j, NULL, key, m ? atof(m) : def);
}

int vae_detect(const char *path, vae_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    *c = VAE_FLUX;
    const st_entry *cin = st_index_find(ix, "encoder.conv_in.weight");
    const st_entry *dcin = st_index_find(ix, "decoder.conv_in.weight");
    const st_entry *cout = st_index_find(ix, "encoder.conv_out.weight");
    const st_entry *dout = st_index_find(ix, "decoder.conv_out.weight");
    if (!(cin && cout) && !(dcin && dout)) {
        snprintf(err, errlen, "not an AutoencoderKL: no \"encoder.conv_in.weight\" / \"encoder.conv_out.weight\" "
                              "nor \"decoder.conv_in.weight\" / \"decoder.conv_out.weight\"");
        goto done;
    }
    const char *side = cin ? "encoder.down_blocks" : "decoder.up_blocks";
    c->nlevels = 0;
    while (c->nlevels < VAE_MAX_LEVELS &&
           st_index_find(ix, name_fmt(p, "%s.%d.resnets.0.conv1.weight", side, c->nlevels))) c->nlevels++;
    if (c->nlevels == 0 || st_index_find(ix, name_fmt(p, "%s.%d.resnets.0.conv1.weight", side, c->nlevels))) {
        snprintf(err, errlen, "%s: found %d levels (1..%d supported)", side, c->nlevels, VAE_MAX_LEVELS);
        goto done;
    }
    c->layers_per_block = 0;
    while (st_index_find(ix, name_fmt(p, "%s.0.resnets.%d.conv1.weight", side, c->layers_per_block))) c->layers_per_block++;
    if (!cin) c->layers_per_block--;  // the decoder has one more per level
    for (int i = 0; i < c->nlevels; i++) {
        int lvl = cin ? i : c->nlevels - 1 - i;
        const st_entry *e = st_index_find(ix, name_fmt(p, "%s.%d.resnets.0.conv1.weight", side, lvl));
        c->ch[i] = e->shape[0];
    }
    if (cin) {
        c->in_channels = cin->shape[1];
        c->latent = cout->shape[0] / 2;
    }
    if (dout) {
        c->out_channels = dout->shape[0];
        c->latent = dcin->shape[1];
    } else {
        c->out_channels = c->in_channels;
    }
    if (!cin) c->in_channels = c->out_channels;
    c->mid_attn = st_index_find(ix, cin ? "encoder.mid_block.attentions.0.to_q.weight" : "decoder.mid_block.attentions.0.to_q.weight") != NULL;
    cJSON *j = cjson_beside(path);
    const st_file *f = st_index_shard_of(ix, cin ? "encoder.conv_in.weight" : "decoder.conv_in.weight");
    c->groups = (int64_t)cfg_number(j, f, "norm_num_groups", 32);
    c->scaling = cfg_number(j, f, "scaling_factor", VAE_FLUX.scaling);
    c->shift = cfg_number(j, f, "shift_factor", VAE_FLUX.shift);
    cJSON_Delete(j);
    for (int i = 0; i < c->nlevels; i++)
        if (c->groups <= 0 || c->ch[i] % c->groups) {
            snprintf(err, errlen, "VAE level %d: %lld channels do not split into %lld groups", i, (long long)c->ch[i], (long long)c->groups);
            goto done;
        }
    rc = 0;
done:
    st_index_close(ix);
    return rc;
}

// --- shared blocks ---

void vae_conv_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, int64_t k, cm_tensor **w, cm_tensor **b) {
    *w = params_new(ps, prefix, "weight", SHAPE(out, in, k, k), CM_INIT_LINEAR_DEFAULT);
    *b = params_new(ps, prefix, "bias", SHAPE(out), CM_INIT_ZEROS);
}

static void norm_init(cm_params *ps, const char *prefix, int64_t ch, cm_tensor **w, cm_tensor **b) {
    *w = params_new(ps, prefix, "weight", SHAPE(ch), CM_INIT_ONES);
    *b = params_new(ps, prefix, "bias", SHAPE(ch), CM_INIT_ZEROS);
}

cm_tensor *vae_norm_silu(cm_tensor *x, int64_t groups, cm_tensor *w, cm_tensor *b) {
    cm_tensor *n = op_groupnorm(x, (int)groups, w, b, VAE_EPS);
    cm_tensor *s = op_silu(n);
    tensor_release(n);
    return s;
}

vae_resnet vae_resnet_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, int64_t groups) {
    char p[NAME_MAX_LEN];
    vae_resnet r = {.groups = groups};
    norm_init(ps, name_fmt(p, "%s.norm1", prefix), in, &r.n1w, &r.n1b);
    vae_conv_init(ps, name_fmt(p, "%s.conv1", prefix), in, out, 3, &r.c1w, &r.c1b);
    norm_init(ps, name_fmt(p, "%s.norm2", prefix), out, &r.n2w, &r.n2b);
    vae_conv_init(ps, name_fmt(p, "%s.conv2", prefix), out, out, 3, &r.c2w, &r.c2b);
    if (in != out) vae_conv_init(ps, name_fmt(p, "%s.conv_shortcut", prefix), in, out, 1, &r.scw, &r.scb);
    return r;
}

// x [B, in, H, W] -> [B, out, H, W]
cm_tensor *vae_resnet_fwd(const vae_resnet *r, cm_tensor *x) {
    cm_tensor *a = vae_norm_silu(x, r->groups, r->n1w, r->n1b);
    cm_tensor *h1 = op_conv2d(a, r->c1w, r->c1b, 1, 1);
    cm_tensor *b = vae_norm_silu(h1, r->groups, r->n2w, r->n2b);
    cm_tensor *h2 = op_conv2d(b, r->c2w, r->c2b, 1, 1);
    cm_tensor *sc = r->scw ? op_conv2d(x, r->scw, r->scb, 1, 0) : tensor_retain(x);
    cm_tensor *out = op_add(sc, h2);  // output_scale_factor 1
    tensor_release(a);
    tensor_release(h1);
    tensor_release(b);
    tensor_release(h2);
    tensor_release(sc);
    return out;
}

static vae_attn attn_init(cm_params *ps, const char *prefix, int64_t ch, int64_t groups) {
    char p[NAME_MAX_LEN];
    vae_attn a = {.groups = groups};
    norm_init(ps, name_fmt(p, "%s.group_norm", prefix), ch, &a.gnw, &a.gnb);
    a.q = linear_init(ps, name_fmt(p, "%s.to_q", prefix), ch, ch, true);
    a.k = linear_init(ps, name_fmt(p, "%s.to_k", prefix), ch, ch, true);
    a.v = linear_init(ps, name_fmt(p, "%s.to_v", prefix), ch, ch, true);
    a.o = linear_init(ps, name_fmt(p, "%s.to_out.0", prefix), ch, ch, true);
    return a;
}

// x [B, C, H, W] -> x + to_out(attention(group_norm(x))) over the H*W tokens, one head of width C
static cm_tensor *attn_fwd(const vae_attn *a, cm_tensor *x) {
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], L = H * W;
    cm_tensor *n = op_groupnorm(x, (int)a->groups, a->gnw, a->gnb, VAE_EPS);
    cm_tensor *nr = op_reshape(n, SHAPE(B, C, L));
    cm_tensor *nt = op_transpose(nr, 1, 2);                  // [B, L, C]
    cm_tensor *tok = op_contiguous(nt);
    cm_tensor *p = attention_self(&a->q, &a->k, &a->v, &a->o, tok, 1, NULL, 0.0);  // [B, L, C], scale 1/sqrt(C)
    cm_tensor *pt = op_transpose(p, 1, 2);                   // [B, C, L]
    cm_tensor *pc = op_contiguous(pt);
    cm_tensor *pr = op_reshape(pc, SHAPE(B, C, H, W));
    cm_tensor *out = op_add(pr, x);                          // residual, rescale 1
    cm_tensor *tmp[] = {n, nr, nt, tok, p, pt, pc, pr};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

void vae_mid_init(vae_mid *m, cm_params *ps, const char *prefix, int64_t ch, int64_t groups, bool attn) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->r0 = vae_resnet_init(ps, name_fmt(p, "%s.resnets.0", prefix), ch, ch, groups);
    m->has_attn = attn;
    if (attn) m->attn = attn_init(ps, name_fmt(p, "%s.attentions.0", prefix), ch, groups);
    m->r1 = vae_resnet_init(ps, name_fmt(p, "%s.resnets.1", prefix), ch, ch, groups);
}

cm_tensor *vae_mid_fwd(const vae_mid *m, cm_tensor *x) {
    cm_tensor *h = vae_resnet_fwd(&m->r0, x);
    if (m->has_attn) {
        cm_tensor *a = attn_fwd(&m->attn, h);
        tensor_release(h);
        h = a;
    }
    cm_tensor *out = vae_resnet_fwd(&m->r1, h);
    tensor_release(h);
    return out;
}

// --- encoder ---

void vae_encoder_init(vae_encoder *e, const vae_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    CM_CHECK(c->nlevels >= 1 && c->nlevels <= VAE_MAX_LEVELS, "vae_encoder_init", "%d levels (1..%d)", c->nlevels, VAE_MAX_LEVELS);
    memset(e, 0, sizeof *e);
    e->cfg = *c;
    vae_conv_init(ps, "encoder.conv_in", c->in_channels, c->ch[0], 3, &e->conv_in_w, &e->conv_in_b);
    e->res = calloc((size_t)(c->nlevels * c->layers_per_block), sizeof *e->res);
    CM_CHECK(e->res, "vae_encoder_init", "out of memory");
    int64_t prev = c->ch[0];
    for (int i = 0; i < c->nlevels; i++) {
        for (int j = 0; j < c->layers_per_block; j++)
            e->res[i * c->layers_per_block + j] = vae_resnet_init(ps, name_fmt(p, "encoder.down_blocks.%d.resnets.%d", i, j),
                                                                  j == 0 ? prev : c->ch[i], c->ch[i], c->groups);
        prev = c->ch[i];
        if (i < c->nlevels - 1)
            vae_conv_init(ps, name_fmt(p, "encoder.down_blocks.%d.downsamplers.0.conv", i), prev, prev, 3, &e->down_w[i], &e->down_b[i]);
    }
    vae_mid_init(&e->mid, ps, "encoder.mid_block", prev, c->groups, c->mid_attn);
    norm_init(ps, "encoder.conv_norm_out", prev, &e->norm_out_w, &e->norm_out_b);
    vae_conv_init(ps, "encoder.conv_out", prev, 2 * c->latent, 3, &e->conv_out_w, &e->conv_out_b);
}

void vae_encoder_free(vae_encoder *e) {
    free(e->res);
    memset(e, 0, sizeof *e);
}

// diffusers Downsample2D(padding=0): zero-pad right and bottom by one, 3x3 conv stride 2
static cm_tensor *downsample(cm_tensor *x, cm_tensor *w, cm_tensor *b) {
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    cm_tensor *zc = tensor_zeros(x->dtype, SHAPE(B, C, H, 1), x->storage->dev);
    cm_tensor *x1 = op_concat(2, (cm_tensor *[]){x, zc}, 3);      // [B, C, H, W+1]
    cm_tensor *zr = tensor_zeros(x->dtype, SHAPE(B, C, 1, W + 1), x->storage->dev);
    cm_tensor *x2 = op_concat(2, (cm_tensor *[]){x1, zr}, 2);     // [B, C, H+1, W+1]
    cm_tensor *out = op_conv2d(x2, w, b, 2, 0);                   // [B, C, H/2, W/2]
    tensor_release(zc);
    tensor_release(x1);
    tensor_release(zr);
    tensor_release(x2);
    return out;
}

// the encoder's moments [B, 2*latent, h, w]
static cm_tensor *encode_moments(const vae_encoder *e, cm_tensor *x) {
    const vae_config *c = &e->cfg;
    char buf[96];
    int64_t f = (int64_t)1 << (c->nlevels - 1);
    CM_CHECK(x->ndim == 4 && x->shape[1] == c->in_channels && x->shape[2] % f == 0 && x->shape[3] % f == 0,
             "vae_encode", "image must be [B, %lld, H, W] with H, W multiples of %lld, got %s",
             (long long)c->in_channels, (long long)f, tensor_shape_str(x, buf, sizeof buf));
    cm_tensor *h = op_conv2d(x, e->conv_in_w, e->conv_in_b, 1, 1);
    for (int i = 0; i < c->nlevels; i++) {
        for (int j = 0; j < c->layers_per_block; j++) {
            cm_tensor *n = vae_resnet_fwd(&e->res[i * c->layers_per_block + j], h);
            tensor_release(h);
            h = n;
        }
        if (i < c->nlevels - 1) {
            cm_tensor *n = downsample(h, e->down_w[i], e->down_b[i]);
            tensor_release(h);
            h = n;
        }
    }
    cm_tensor *m = vae_mid_fwd(&e->mid, h);
    cm_tensor *a = vae_norm_silu(m, c->groups, e->norm_out_w, e->norm_out_b);
    cm_tensor *out = op_conv2d(a, e->conv_out_w, e->conv_out_b, 1, 1);  // [B, 2L, h, w]
    tensor_release(h);
    tensor_release(m);
    tensor_release(a);
    return out;
}

// clamp(logvar, -30, 20): the ops have no clamp, so values are checked on the host; inside the
// range (any sane encoder) it is the identity with its gradient; outside, the clamped values
// are a constant (no gradient flows to them, as in PyTorch, nor here to the rest of logvar).
static cm_tensor *clamp_logvar(cm_tensor *lv) {
    int64_t n = tensor_numel(lv);
    float *h = malloc((size_t)n * sizeof *h);
    CM_CHECK(h, "vae_encode", "out of memory");
    tensor_copy_to_host(lv, CM_F32, h);
    bool out_of_range = false;
    for (int64_t i = 0; i < n; i++) {
        if (h[i] < -30.0f || h[i] > 20.0f) {
            out_of_range = true;
            h[i] = h[i] < -30.0f ? -30.0f : 20.0f;
        }
    }
    cm_tensor *r;
    if (!out_of_range) {
        r = tensor_retain(lv);
    } else {
        cm_tensor *t = tensor_from_host(CM_F32, lv->ndim, lv->shape, h, lv->storage->dev);
        r = op_cast(t, lv->dtype);
        tensor_release(t);
    }
    free(h);
    return r;
}

cm_tensor *vae_encode(const vae_encoder *e, cm_tensor *x, cm_tensor **logvar) {
    cm_tensor *mom = encode_moments(e, x);
    cm_tensor *mean = op_chunk(mom, 2, 1, 0);                 // [B, L, h, w]
    if (logvar) {
        cm_tensor *lv = op_chunk(mom, 2, 1, 1);
        *logvar = clamp_logvar(lv);
        tensor_release(lv);
    }
    tensor_release(mom);
    return mean;
}

cm_tensor *vae_posterior_sample(cm_tensor *mean, cm_tensor *lv, cm_tensor *noise) {
    char b1[96], b2[96];
    CM_CHECK(tensor_same_shape(mean, noise) && tensor_same_shape(mean, lv), "vae_encode_sample",
             "noise %s does not match the latent %s", tensor_shape_str(noise, b1, sizeof b1), tensor_shape_str(mean, b2, sizeof b2));
    cm_tensor *half = op_scale(lv, 0.5);
    cm_tensor *sd = op_unary(half, CM_UN_EXP);                // std = exp(logvar / 2)
    cm_tensor *eps = op_mul(sd, noise);
    cm_tensor *out = op_add(mean, eps);
    tensor_release(half);
    tensor_release(sd);
    tensor_release(eps);
    return out;
}

cm_tensor *vae_encode_sample(const vae_encoder *e, cm_tensor *x, cm_tensor *noise) {
    cm_tensor *lv = NULL;
    cm_tensor *mean = vae_encode(e, x, &lv);
    cm_tensor *out = vae_posterior_sample(mean, lv, noise);
    tensor_release(lv);
    tensor_release(mean);
    return out;
}

cm_tensor *vae_scale_latent(const vae_config *c, cm_tensor *z) {
    cm_tensor *s = op_add_scalar(z, -c->shift);
    cm_tensor *out = op_scale(s, c->scaling);
    tensor_release(s);
    return out;
}

cm_tensor *vae_unscale_latent(const vae_config *c, cm_tensor *zs) {
    cm_tensor *s = op_scale(zs, 1.0 / c->scaling);
    cm_tensor *out = op_add_scalar(s, c->shift);
    tensor_release(s);
    return out;
}
