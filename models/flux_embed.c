// flux_embed.c — FLUX inputs: latent packing (2x2 patches -> tokens) and unpacking, the RoPE
// tables over (0, row, col) ids, and the timestep + guidance + pooled-text conditioning.
#include <math.h>
#include <stdlib.h>
#include "models/flux.h"

cm_tensor *flux_pack_latents(cm_tensor *z) {
    char zs[96];
    CM_CHECK(z->ndim == 4 && z->shape[2] % 2 == 0 && z->shape[3] % 2 == 0, "flux_pack_latents",
             "want [B, C, H, W] with even H, W (2x2 patches: image sides multiples of 16); got %s",
             tensor_shape_str(z, zs, sizeof zs));
    int64_t B = z->shape[0], C = z->shape[1], h = z->shape[2] / 2, w = z->shape[3] / 2;
    cm_tensor *a = op_reshape(z, 6, (int64_t[]){B, C, h, 2, w, 2});       // [B, C, h, dy, w, dx]
    cm_tensor *p = op_permute(a, (int[]){0, 2, 4, 1, 3, 5});              // [B, h, w, C, dy, dx]
    cm_tensor *x = op_reshape(p, 3, (int64_t[]){B, h * w, C * 4});        // [B, h*w, 4C]
    tensor_release(a);
    tensor_release(p);
    return x;
}

cm_tensor *flux_unpack_latents(cm_tensor *x, int H, int W) {
    CM_CHECK(x->ndim == 3 && H % 2 == 0 && W % 2 == 0 && x->shape[1] == (int64_t)(H / 2) * (W / 2) &&
             x->shape[2] % 4 == 0, "flux_unpack_latents", "tokens [%lld, %lld, %lld] do not fit a %dx%d latent",
             (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2], H, W);
    int64_t B = x->shape[0], C = x->shape[2] / 4, h = H / 2, w = W / 2;
    cm_tensor *a = op_reshape(x, 6, (int64_t[]){B, h, w, C, 2, 2});       // [B, h, w, C, dy, dx]
    cm_tensor *p = op_permute(a, (int[]){0, 3, 1, 4, 2, 5});              // [B, C, h, dy, w, dx]
    cm_tensor *z = op_reshape(p, 4, (int64_t[]){B, C, H, W});
    tensor_release(a);
    tensor_release(p);
    return z;
}

// As diffusers FluxPosEmbed: per axis, freqs = 1 / theta^(arange(0, d, 2) / d) and the angles
// pos * freqs in f64, cos / sin repeat-interleaved (each value twice), axes concatenated, then
// converted to f32. Text ids are all zero (cos 1, sin 0). The tables stay f32 under a bf16 model,
// as diffusers keeps them: rounded to bf16 they moved about 1 in 9 rotated q / k values by a bf16
// step (the rope ops take f32 tables with a bf16 x); an f64 model gets f64 tables.
void flux_rope_tables(const flux_config *c, int Lt, int gh, int gw, cm_dtype dt, cm_device dev,
                      cm_tensor **cos_out, cm_tensor **sin_out) {
    const int D = c->head_dim;
    const int64_t L = (int64_t)Lt + (int64_t)gh * gw;
    float *cs = malloc(sizeof(float) * (size_t)(L * D)), *sn = malloc(sizeof(float) * (size_t)(L * D));
    CM_CHECK(cs && sn, "flux_rope_tables", "out of memory for [%lld, %d]", (long long)L, D);
    double *freq = malloc(sizeof(double) * (size_t)D);  // freq per (axis, pair), in table order
    CM_CHECK(freq, "flux_rope_tables", "out of memory");
    for (int a = 0, off = 0; a < 3; off += c->axes_dim[a], a++)
        for (int j = 0; j < c->axes_dim[a] / 2; j++)
            freq[off / 2 + j] = 1.0 / pow(c->theta, (double)(2 * j) / (double)c->axes_dim[a]);
    for (int64_t l = 0; l < L; l++) {
        double pos[3] = {0, 0, 0};
        if (l >= Lt) {
            pos[1] = (double)((l - Lt) / gw);
            pos[2] = (double)((l - Lt) % gw);
        }
        for (int a = 0, off = 0; a < 3; off += c->axes_dim[a], a++) {
            for (int j = 0; j < c->axes_dim[a] / 2; j++) {
                double ang = pos[a] * freq[off / 2 + j];
                float cv = (float)cos(ang), sv = (float)sin(ang);
                cs[l * D + off + 2 * j] = cs[l * D + off + 2 * j + 1] = cv;
                sn[l * D + off + 2 * j] = sn[l * D + off + 2 * j + 1] = sv;
            }
        }
    }
    free(freq);
    cm_tensor *c32 = tensor_from_host(CM_F32, 2, (int64_t[]){L, D}, cs, dev);
    cm_tensor *s32 = tensor_from_host(CM_F32, 2, (int64_t[]){L, D}, sn, dev);
    free(cs);
    free(sn);
    dt = dt == CM_F64 ? CM_F64 : CM_F32;
    if (dt == CM_F32) {
        *cos_out = c32;
        *sin_out = s32;
        return;
    }
    autograd_no_grad_push();
    *cos_out = op_cast(c32, dt);
    *sin_out = op_cast(s32, dt);
    autograd_no_grad_pop();
    tensor_release(c32);
    tensor_release(s32);
}

// Linear -> SiLU -> Linear (diffusers TimestepEmbedding / PixArtAlphaTextProjection)
static cm_tensor *mlp2(const cm_linear *l1, const cm_linear *l2, cm_tensor *x) {
    cm_tensor *a = linear_fwd(l1, x);
    cm_tensor *b = op_silu(a);
    cm_tensor *y = linear_fwd(l2, b);
    tensor_release(a);
    tensor_release(b);
    return y;
}

// Timesteps(256, flip_sin_to_cos=True, shift 0) of 1000 * s, then the embedder MLP
static cm_tensor *time_mlp(const cm_linear *l1, const cm_linear *l2, cm_tensor *s) {
    cm_tensor *t = op_scale(s, 1000.0);                       // [B]
    cm_tensor *e = op_timestep_embedding(t, 256, true, 0.0);  // [B, 256] = [cos, sin]
    cm_tensor *y = mlp2(l1, l2, e);                           // [B, C]
    tensor_release(t);
    tensor_release(e);
    return y;
}

cm_tensor *flux_conditioning(const flux_model *m, cm_tensor *sigma, cm_tensor *guidance, cm_tensor *pooled) {
    CM_CHECK(sigma->ndim == 1 && pooled->ndim == 2 && pooled->shape[0] == sigma->shape[0] &&
             pooled->shape[1] == m->cfg.pooled_dim, "flux_conditioning",
             "sigma [B] and pooled [B, %d] expected", m->cfg.pooled_dim);
    cm_tensor *temb = time_mlp(&m->time1, &m->time2, sigma);  // [B, C]
    if (m->cfg.guidance_embeds) {
        CM_CHECK(guidance && guidance->ndim == 1 && guidance->shape[0] == sigma->shape[0], "flux_conditioning",
                 "this FLUX has a guidance embedder: guidance [B] is required");
        cm_tensor *g = time_mlp(&m->guid1, &m->guid2, guidance);
        cm_tensor *s = op_add(temb, g);
        tensor_release(temb);
        tensor_release(g);
        temb = s;
    }
    cm_tensor *p = mlp2(&m->text1, &m->text2, pooled);
    cm_tensor *out = op_add(temb, p);
    tensor_release(temb);
    tensor_release(p);
    return out;
}
