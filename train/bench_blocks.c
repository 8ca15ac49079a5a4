// bench_blocks.c — `cameo bench blocks` (see bench_blocks.h): the FLUX double and single block with
// the IP branch at real shapes, their MFU, the PyTorch eager twin (scripts/bench_blocks_torch.py),
// the whole 512² adapter step projected from the blocks (time, FLOPs, MFU, memory on one card),
// and with --full-step one real step (random weights, random encoder features) measured beside it.
#define _GNU_SOURCE  // popen
#include "train/bench_blocks.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "kernels/profile.h"
#include "models/clip_text.h"
#include "models/dinov2.h"
#include "models/ic_adapter.h"
#include "models/siglip.h"
#include "models/t5.h"
#include "models/vae.h"
#include "train/bench.h"
#include "train/bench_encoders.h"
#include "train/optim.h"
#include "train/paths.h"
#include "train/progress.h"
#include "train/recompute_auto.h"
#ifdef CAMEO_HAVE_CUDA
#include <cuda_runtime_api.h>  // the card's name and total memory for the report
#endif

// ============================================================================================
// FLOP model (per pass over B samples)
//
// Every GEMM M x N x K costs 2·M·N·K. Attention softmax(Q Kᵀ) V over Lq queries and Lk keys costs
// 4·Lq·Lk·D·H forward (Q Kᵀ and P V) and 2.5x that backward (the usual 5-matmul count, as
// `cameo bench gpu` counts it; cameo's kernels run 7 matmuls: the extra two are not counted).
// The backward of a linear costs 1x its forward for dX when its input needs a gradient, and 1x
// for dW when its weight does:
//   frozen FLUX linears on the block's activations: dX only            → 1x
//   the AdaLayerNorm linears read silu(temb), which needs no gradient  → 0x
//   the IP K/V linears (trainable, on the projector's tokens)          → 2x
// Norms, RoPE, GELU, gates, residuals: not counted (memory-bound, < 1% of the FLOPs).
//
// double block, L = Lt + N:
//   adaLN   2 x 2·B·C·6C                        norm1, norm1_context (forward only)
//   image   2·B·N·(4·C·C + 2·C·F)               to_q, to_k, to_v, to_out; ff.net.0, ff.net.2
//   text    2·B·Lt·(4·C·C + 2·C·F)              add_{q,k,v}_proj, to_add_out; ff_context
//   attn    4·B·L·L·C                           joint attention (H heads x D = C)
//   IP      2 x 2·B·Li·Ci·C + 4·B·N·Li·C        to_k_ip, to_v_ip; attention of the N image queries
// single block:
//   adaLN   2·B·C·3C
//   linear  2·B·L·(3·C·C + C·F + (C + F)·C)     to_q, to_k, to_v; proj_mlp; proj_out
//   attn, IP as in the double block
// ============================================================================================

blocks_dims blocks_dims_flux_dev(void) {
    return (blocks_dims){.B = 1, .Lt = 512, .N = 1024, .C = 3072, .H = 24, .D = 128, .F = 4 * 3072, .Li = 1024, .Ci = 4096};
}

bool blocks_dims_eq(const blocks_dims *a, const blocks_dims *b) {
    return a->B == b->B && a->Lt == b->Lt && a->N == b->N && a->C == b->C && a->H == b->H && a->D == b->D &&
           a->F == b->F && a->Li == b->Li && a->Ci == b->Ci;
}

static void ip_flops(const blocks_dims *d, blocks_flops *f) {
    double B = (double)d->B, lin = 2.0 * 2.0 * B * d->Li * d->Ci * d->C, att = 4.0 * B * d->N * d->Li * d->C;
    f->fwd += lin + att;
    f->attn_fwd += att;
    f->bwd += 2.0 * lin + 2.5 * att;
    f->gemm_fwd += 2;  // to_k_ip, to_v_ip
    f->gemm_bwd += 4;  // their dX and dW
}

blocks_flops blocks_flops_double(const blocks_dims *d) {
    const double B = (double)d->B, C = (double)d->C, F = (double)d->F, L = (double)(d->Lt + d->N);
    blocks_flops f = {0};
    double ada = 2.0 * 2.0 * B * C * 6.0 * C;
    double img = 2.0 * B * d->N * (4.0 * C * C + 2.0 * C * F), txt = 2.0 * B * d->Lt * (4.0 * C * C + 2.0 * C * F);
    double att = 4.0 * B * L * L * C;
    f.fwd = ada + img + txt + att;
    f.attn_fwd = att;
    f.bwd = img + txt + 2.5 * att;
    f.gemm_fwd = 2 + 12;  // 2 adaLN + 6 per stream
    f.gemm_bwd = 12;      // dX of the 12 stream linears
    ip_flops(d, &f);
    return f;
}

blocks_flops blocks_flops_single(const blocks_dims *d) {
    const double B = (double)d->B, C = (double)d->C, F = (double)d->F, L = (double)(d->Lt + d->N);
    blocks_flops f = {0};
    double ada = 2.0 * B * C * 3.0 * C;
    double lin = 2.0 * B * L * (3.0 * C * C + C * F + (C + F) * C);
    double att = 4.0 * B * L * L * C;
    f.fwd = ada + lin + att;
    f.attn_fwd = att;
    f.bwd = lin + 2.5 * att;
    f.gemm_fwd = 1 + 6;  // adaLN; q, k, v, proj_mlp, proj_out as two (attention part, MLP part: no concat)
    f.gemm_bwd = 6;
    ip_flops(d, &f);
    return f;
}

// projector, B samples of L feature tokens, C = inner_dim, Cc = cross_dim, Fb = block_ff_mult·C:
//   block on L tokens with context S (cross-layer: the 3L shallow tokens; cross-scale: the 4L crop
//   tokens):  attn1 2·L·4·C·C + 4·L·L·C;  attn2 2·L·2·C·C + 2 x 2·S·Cc·C + 4·L·S·C;
//             GEGLU FF 2·L·C·2Fb + 2·L·Fb·C
//   3 MLPs (proj, proj_cross_layer, proj_cross_scale): 2 x 2·L·C·2C each
//   resampler (Q queries of width d, inner = r_heads·r_head_dim, S' = 2L tokens): proj_in 2·S'·C·d;
//     per layer to_q 2·Q·d·inner, to_kv 2·(S'+Q)·d·2inner, attention 4·Q·(S'+Q)·inner,
//     to_out 2·Q·inner·d, FF 2 x 2·Q·d·(m·d); proj_out 2·Q·d·out; time and adaLN linears on B rows
// backward: everything trains → 2x the linears, except those reading the frozen features directly
// (the cross-attention K/V on the raw context, proj.fc1 on low_res_deep): dW only → 1x.
blocks_flops blocks_flops_projector(const ic_projector_config *c, int64_t Bs, int64_t Ls) {
    const double B = (double)Bs, L = (double)Ls, C = (double)c->inner_dim, Cc = (double)c->cross_dim;
    const double Fb = (double)c->block_ff_mult * C;
    double lin = 0, lin_in = 0, att = 0;  // lin_in: linears on the frozen inputs (dW only)
    for (int kind = 0; kind < 2; kind++) {
        double S = kind == 0 ? 3.0 * L : 4.0 * L;
        for (int j = 0; j < c->num_layers; j++) {
            lin += 2.0 * B * L * 4.0 * C * C + 2.0 * B * L * 2.0 * C * C + 2.0 * B * L * C * 2.0 * Fb + 2.0 * B * L * Fb * C;
            lin_in += 2.0 * 2.0 * B * S * Cc * C;
            att += 4.0 * B * L * L * C + 4.0 * B * L * S * C;
        }
    }
    lin += 2.0 * (2.0 * 2.0 * B * L * C * 2.0 * C);  // proj_cross_layer, proj_cross_scale
    lin += 2.0 * B * L * 2.0 * C * C;                 // proj.fc2
    lin_in += 2.0 * B * L * C * 2.0 * C;              // proj.fc1 on low_res_deep
    const double d = (double)c->dim, inner = (double)c->r_heads * c->r_head_dim, Q = (double)c->num_queries;
    const double S2 = 2.0 * L, m = (double)c->ff_mult;
    lin += 2.0 * B * S2 * C * d + 2.0 * B * Q * d * c->output_dim;
    lin += 2.0 * B * (c->timestep_in * d + d * d);
    for (int j = 0; j < c->depth; j++) {
        lin += 2.0 * B * Q * d * inner + 2.0 * B * (S2 + Q) * d * 2.0 * inner + 2.0 * B * Q * inner * d +
               2.0 * 2.0 * B * Q * d * m * d + 2.0 * B * d * 4.0 * d;
        att += 4.0 * B * Q * (S2 + Q) * inner;
    }
    blocks_flops f = {0};
    f.fwd = lin + lin_in + att;
    f.attn_fwd = att;
    f.bwd = 2.0 * lin + lin_in + 2.5 * att;
    return f;
}

// --- frozen encoders, forward only (estimates for the step; the same counting rules) ---
static double flops_siglip(const siglip_config *c, double views) {
    double T = (double)(c->image_size / c->patch) * (double)(c->image_size / c->patch), h = (double)c->hidden;
    double per = 2.0 * T * (4.0 * h * h + 2.0 * h * c->mlp) + 4.0 * T * T * h;
    return views * (2.0 * T * c->channels * c->patch * c->patch * h + c->layers * per);
}
static double flops_dino(const dino_config *c, int64_t image, double views) {
    double g = (double)(image / c->patch), T = g * g + 1.0, h = (double)c->hidden, H = (double)c->mlp_hidden;
    double ffn = c->swiglu ? 2.0 * T * (h * 2.0 * H + H * h) : 2.0 * T * 2.0 * h * H;
    double per = 2.0 * T * 4.0 * h * h + ffn + 4.0 * T * T * h;
    return views * (2.0 * (T - 1.0) * c->channels * c->patch * c->patch * h + c->layers * per);
}
static double conv_flops(double hw_out, double cin, double cout, double k) { return 2.0 * hw_out * cin * cout * k * k; }
static double flops_vae_encoder(const vae_config *c, int64_t H, int64_t W, double B) {
    double hw = (double)H * W, f = conv_flops(hw, c->in_channels, c->ch[0], 3);
    int64_t cin = c->ch[0];
    for (int i = 0; i < c->nlevels; i++) {
        for (int j = 0; j < c->layers_per_block; j++) {
            double co = (double)c->ch[i];
            f += conv_flops(hw, cin, co, 3) + conv_flops(hw, co, co, 3) + (cin != c->ch[i] ? conv_flops(hw, cin, co, 1) : 0);
            cin = c->ch[i];
        }
        if (i < c->nlevels - 1) {
            hw /= 4.0;
            f += conv_flops(hw, cin, cin, 3);
        }
    }
    double Cm = (double)cin;
    f += 4.0 * conv_flops(hw, Cm, Cm, 3);                                     // mid: two resnets
    if (c->mid_attn) f += 4.0 * 2.0 * hw * Cm * Cm + 4.0 * hw * hw * Cm;     // one head over h·w tokens
    f += conv_flops(hw, Cm, 2.0 * c->latent, 3);                             // conv_out: mean, logvar
    return B * f;
}
static double flops_t5(const t5_config *c, double T, double B) {
    double D = (double)c->d_model, inner = (double)c->heads * c->d_kv;
    double per = 2.0 * T * 4.0 * D * inner + 2.0 * T * 3.0 * D * c->d_ff + 4.0 * T * T * inner;
    return B * c->layers * per;
}
static double flops_clip_text(const clip_text_config *c, double T, double B) {
    double h = (double)c->hidden, per = 2.0 * T * (4.0 * h * h + 2.0 * h * c->mlp) + 4.0 * T * T * h;
    return B * c->layers * per;
}
// FLUX outside the blocks: x_embedder, context_embedder, the time/guidance/text embedders,
// norm_out, proj_out. Backward: only proj_out's dX (the prediction depends on the adapter).
static void flops_flux_outer(const flux_config *c, double B, double Lt, double N, double *fwd, double *bwd) {
    double C = (double)flux_config_hidden(c);
    double pf = 2.0 * B * N * C * c->out_channels;
    *fwd = 2.0 * B * N * c->in_channels * C + 2.0 * B * Lt * c->joint_dim * C +
           2.0 * B * ((256.0 * C + C * C) * (c->guidance_embeds ? 2.0 : 1.0) + c->pooled_dim * C + C * C) +
           2.0 * B * C * 2.0 * C + pf;
    *bwd = pf;
}

// ============================================================================================
// the rig: one double + one single block with their IP modules
// ============================================================================================

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static uint64_t name_hash(const char *s, uint64_t seed) {
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return mix64(h);
}

// copies the pool around t (starting at a position from h) and scales it: t = scale * pool[...]
static void fill_from_pool(cm_tensor *t, const cm_tensor *pool, uint64_t h, double scale) {
    CM_CHECK(t->dtype == pool->dtype && tensor_is_contiguous(t), "blocks_fill", "tensor must be contiguous %s",
             dtype_name(pool->dtype));
    const cm_device dev = t->storage->dev;
    const cm_backend *be = backend_get(dev.type);
    const cm_kctx *k = backend_ctx(dev);
    const int64_t n = tensor_numel(t), P = tensor_numel(pool);
    const size_t es = dtype_size(t->dtype);
    char *dst = tensor_data(t);
    const char *src = tensor_data(pool);
    int64_t pos = (int64_t)(h % (uint64_t)P);
    for (int64_t done = 0; done < n;) {
        int64_t len = n - done < P - pos ? n - done : P - pos;
        be->memcpy_d2d(k, dst + (size_t)done * es, src + (size_t)pos * es, (size_t)len * es);
        done += len;
        pos = (pos + len) % P;
    }
    be->axpby(k, t->dtype, n, scale, dst, 0.0, dst);  // y = scale·y
}

static cm_tensor *make_pool(cm_dtype dt, cm_device dev, int64_t n, uint64_t seed) {
    const int64_t P = n < (1 << 20) ? (n > 0 ? n : 1) : (1 << 20);  // 1M values: period of the pattern
    cm_tensor *pool = tensor_empty(dt, SHAPE(P), dev);
    tensor_fill_uniform(pool, seed, -1.0, 1.0);
    return pool;
}

void blocks_fill_params(cm_params *ps, uint64_t seed) {
    if (ps->meta || ps->n == 0) return;
    int64_t maxn = 0;
    for (int i = 0; i < ps->n; i++)
        if (tensor_numel(ps->items[i].t) > maxn) maxn = tensor_numel(ps->items[i].t);
    cm_tensor *pool = make_pool(ps->dtype, ps->dev, maxn, seed);
    const cm_backend *be = backend_get(ps->dev.type);
    for (int i = 0; i < ps->n; i++) {
        cm_param *p = &ps->items[i];
        cm_tensor *t = p->t;
        switch (p->init) {
        case CM_INIT_ZEROS:
        case CM_INIT_ONES:
            be->fill(backend_ctx(ps->dev), t->dtype, tensor_data(t), tensor_numel(t), p->init == CM_INIT_ONES ? 1.0 : 0.0);
            break;
        case CM_INIT_NORMAL:  // U(-1, 1) has std 1/sqrt(3)
            fill_from_pool(t, pool, name_hash(p->name, seed), p->init_std * sqrt(3.0));
            break;
        case CM_INIT_LINEAR_DEFAULT: {  // nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            int64_t fan_in = t->ndim >= 2 ? tensor_numel(t) / t->shape[0] : t->shape[0];
            fill_from_pool(t, pool, name_hash(p->name, seed), 1.0 / sqrt((double)(fan_in > 0 ? fan_in : 1)));
            break;
        }
        }
    }
    tensor_release(pool);
}

// a random N(0, std)-like tensor: small ones exactly (host counter RNG), big ones from a pool
static cm_tensor *rand_tensor(cm_dtype dt, int nd, const int64_t *shape, cm_device dev, uint64_t seed, double std,
                              bool grad) {
    cm_tensor *t = tensor_empty(dt, nd, shape, dev);
    if (tensor_numel(t) <= (1 << 22)) tensor_fill_randn(t, seed, std);
    else {
        cm_tensor *pool = make_pool(dt, dev, tensor_numel(t), seed);
        fill_from_pool(t, pool, seed, std * sqrt(3.0));
        tensor_release(pool);
    }
    if (grad) tensor_set_requires_grad(t, true);
    return t;
}

// the 2-D patch grid of N image tokens: as square as N allows (RoPE needs gh·gw = N)
static void grid_of(int64_t N, int *gh, int *gw) {
    int64_t h = (int64_t)sqrt((double)N);
    while (h > 1 && N % h) h--;
    *gh = (int)h;
    *gw = (int)(N / h);
}

static flux_config rig_flux_config(const blocks_dims *d, int n_double, int n_single) {
    flux_config fc = flux_config_dev();
    fc.num_layers = n_double;
    fc.num_single_layers = n_single;
    fc.heads = (int)d->H;
    fc.head_dim = (int)d->D;
    if (d->D != 128) flux_default_axes((int)d->D, fc.axes_dim);
    fc.mlp_ratio = (int)(d->F / d->C);
    return fc;
}

static cm_tensor *rig_fwd(blocks_rig *r, int single, cm_tensor *h, cm_tensor *temb, cm_tensor *tok) {
    const int Lt = (int)r->d.Lt;
    return single ? flux_single_fwd(&r->m, 0, h, Lt, temb, r->cos, r->sin, &r->ip, tok, 1.0)
                  : flux_double_fwd(&r->m, 0, h, Lt, temb, r->cos, r->sin, &r->ip, tok, 1.0);
}

// the block inside a recompute scope, as flux_forward runs it in the step; inputs: h, temb_act, tok
static cm_tensor *rig_rc_fn(void *vctx, int n, cm_tensor **in) {
    const blocks_rc_ctx *c = vctx;
    return rig_fwd(c->r, c->single, in[0], in[1], in[2]);
}

int blocks_rig_init(blocks_rig *r, const blocks_dims *d, cm_device dev, cm_dtype dt, uint64_t seed, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    if (d->B < 1 || d->Lt < 1 || d->N < 1 || d->Li < 1 || d->Ci < 1 || d->H < 1 || d->D < 2 || d->D % 2 ||
        d->C != d->H * d->D || d->F < 1 || d->F % d->C) {
        cm_seterr(err, errlen, "bad dims (B %lld, txt %lld, img %lld, hidden %lld = heads %lld x %lld, "
                  "mlp %lld, ip %lld x %lld): all > 0, an even head dim, hidden = heads x head dim, mlp a multiple of hidden",
                  (long long)d->B, (long long)d->Lt, (long long)d->N, (long long)d->C, (long long)d->H, (long long)d->D,
                  (long long)d->F, (long long)d->Li, (long long)d->Ci);
        return -1;
    }
    if (dev.type == CM_CPU && dt != CM_F32) {
        cm_seterr(err, errlen, "the CPU computes in f32 only (--dtype f32)");
        return -1;
    }
    r->d = *d;
    r->dev = dev;
    r->dt = dt;
    flux_config fc = rig_flux_config(d, 1, 1);
    params_init_registry(&r->ps_flux, dev, dt, false);
    if (flux_init(&r->m, &fc, &r->ps_flux, err, errlen)) return -1;
    blocks_fill_params(&r->ps_flux, seed ^ 0xf1);
    ip_attn_config ic = {.n_modules = 2, .heads = (int)d->H, .head_dim = (int)d->D, .ip_dim = (int)d->Ci};
    params_init_registry(&r->ps_ip, dev, dt, true);
    ip_attn_init(&r->ip, &ic, &r->ps_ip, "ip_adapter");
    blocks_fill_params(&r->ps_ip, seed ^ 0x1a);

    const int64_t L = d->Lt + d->N;
    r->h = rand_tensor(dt, SHAPE(d->B, L, d->C), dev, seed ^ 1, 1.0, true);
    r->temb_act = rand_tensor(dt, SHAPE(d->B, d->C), dev, seed ^ 2, 1.0, false);
    r->tok = rand_tensor(dt, SHAPE(d->B, d->Li, d->Ci), dev, seed ^ 3, 1.0, true);
    r->gout = rand_tensor(dt, SHAPE(d->B, L, d->C), dev, seed ^ 4, 1e-3, false);
    int gh, gw;
    grid_of(d->N, &gh, &gw);
    flux_rope_tables(&fc, (int)d->Lt, gh, gw, dt, dev, &r->cos, &r->sin);
    for (int s = 0; s < 2; s++) {
        r->rc[s].r = r;
        r->rc[s].single = s;
    }
    return 0;
}

void blocks_rig_free(blocks_rig *r) {
    autograd_tape_reset();
    cm_tensor *t[] = {r->h, r->temb_act, r->cos, r->sin, r->tok, r->gout};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) tensor_release(t[i]);
    flux_free(&r->m);
    ip_attn_free(&r->ip);
    params_free(&r->ps_flux);
    params_free(&r->ps_ip);
    memset(r, 0, sizeof *r);
}

void blocks_rig_run(blocks_rig *r, int single, blocks_mode mode) {
    cm_tensor *out;
    if (mode == BLOCKS_RECOMPUTE) {
        cm_tensor *in[3] = {r->h, r->temb_act, r->tok};
        out = autograd_recompute(rig_rc_fn, &r->rc[single], 3, in);
    } else out = rig_fwd(r, single, r->h, r->temb_act, r->tok);
    if (mode != BLOCKS_FWD) autograd_backward(out, r->gout);
    tensor_release(out);
}

void blocks_rig_reset(blocks_rig *r) {
    autograd_tape_reset();
    tensor_zero_grad(r->h);
    tensor_zero_grad(r->tok);
    for (int i = 0; i < r->ps_ip.n; i++) tensor_zero_grad(r->ps_ip.items[i].t);
}

// ============================================================================================
// timing, peak, output
// ============================================================================================

static void dev_sync(cm_device dev) { backend_get(dev.type)->sync(backend_ctx(dev)); }

// median seconds; max allocator peak above the start; bytes of the tensors the pass allocated;
// median host seconds until the pass's work was issued (before the sync; on a GPU, issue ≈ wall
// means the pass is bound by the host, not the device); device launches (kernels + GEMMs) per pass
typedef struct pass_stats { double s, peak, fresh, issue; int64_t launches; } pass_stats;

static pass_stats time_pass(blocks_rig *r, int single, blocks_mode mode, int warm, int iters) {
    double t[64], ti[64];
    double peak = 0, fresh = 0;
    int64_t launches = 0;
    for (int i = 0; i < warm + iters; i++) {
        dev_sync(r->dev);
        alloc_reset_peak(r->dev);
        cm_alloc_stats st = alloc_stats(r->dev);
        int64_t l0 = cm_dev_launches;
        double base = (double)st.current, t0 = progress_now();
        blocks_rig_run(r, single, mode);
        double issued = progress_now() - t0;
        dev_sync(r->dev);
        double dt = progress_now() - t0, pk = (double)alloc_stats(r->dev).peak - base;
        if (i >= warm) {
            ti[i - warm] = issued;
            launches = cm_dev_launches - l0;
        }
        double fr = (double)(alloc_stats(r->dev).allocated - st.allocated);
        blocks_rig_reset(r);
        if (i >= warm) {
            t[i - warm] = dt;
            if (pk > peak) peak = pk;
            if (fr > fresh) fresh = fr;
        }
    }
    return (pass_stats){bench_median(t, iters), peak, fresh, bench_median(ti, iters), launches};
}

// --profile: device time per backend call over one more pass (warm by now), as a markdown table
// in buf
static void profile_pass(blocks_rig *r, int single, blocks_mode mode, const char *title, char *buf, size_t n) {
    dev_sync(r->dev);
    prof_start();
    double t0 = progress_now();
    blocks_rig_run(r, single, mode);
    dev_sync(r->dev);
    double wall = progress_now() - t0;
    prof_stop_format(buf, n, title, wall * 1e3, 20);
    blocks_rig_reset(r);
}

static FILE *g_md;  // --md: every table also appended there
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (g_md) {
        va_start(ap, fmt);
        vfprintf(g_md, fmt, ap);
        va_end(ap);
    }
}
static int g_md_errno;  // the first failed write to --md (a full disk): its tables would be lost unsaid
static void out_flush(void) {
    fflush(stdout);
    if (g_md && (fflush(g_md) || ferror(g_md)) && !g_md_errno) g_md_errno = errno ? errno : EIO;
}
// closes --md; 0, or 1 with a message naming the file and the cause when a write to it failed
static int md_close(const char *path) {
    if (!g_md) return 0;
    out_flush();
    if (fclose(g_md) && !g_md_errno) g_md_errno = errno;
    g_md = NULL;
    if (!g_md_errno) return 0;
    fprintf(stderr, "cameo bench blocks: --md %s: cannot write the tables (%s)\n", path, strerror(g_md_errno));
    return 1;
}

// "2,794,932,864"
static const char *commas(double v, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", v);
    int len = (int)strlen(raw);
    size_t at = 0;
    for (int i = 0; i < len && at + 1 < n; i++) {
        buf[at++] = raw[i];
        int left = len - 1 - i;
        if (left > 0 && left % 3 == 0 && at + 1 < n && raw[i] != '-') buf[at++] = ',';
    }
    buf[at] = 0;
    return buf;
}

static const double GiB = 1024.0 * 1024.0 * 1024.0, MiB = 1024.0 * 1024.0;
// the target is one 80 GB card (an H100 80GB's cudaDeviceProp total), whatever card this runs on:
// an H200's 141 GB would call fitting what an H100 cannot hold
static const double CARD_80GB = 81559.0 * 1024.0 * 1024.0;
// whether x bytes fit that card, allowing for what a sum leaves out: the caching allocator's size
// classes (up to 1/16 per block) and the CUDA context + cuBLAS workspaces (~1 GiB)
static const char *card_verdict(double x) {
    return x * 17.0 / 16.0 + GiB < CARD_80GB ? "fits, with room for allocator rounding"
           : x + GiB < CARD_80GB          ? "fits only if the allocator's rounding stays small"
                                           : "does NOT fit";
}

// a real GPU behind this device (not the tests' emulated cuda:0, which runs the CPU kernels)
static bool real_cuda(cm_device dev) {
#ifdef CAMEO_HAVE_CUDA
    return dev.type == CM_CUDA && cuda_device_count() > 0 && backend_ctx(dev) == cuda_backend_ctx(dev.index);
#else
    (void)dev;
    return false;
#endif
}

// --- the matrix peak measured in this run (TFLOP/s) ---
static double measure_peak(cm_device dev, cm_dtype dt, int iters, char *how, size_t hn) {
    if (dev.type == CM_CPU) {
        snprintf(how, hn, "OpenBLAS SGEMM 2048^3, best of 3 (as `cameo bench ops`)");
        return bench_sgemm_peak(2048, 3) / 1e3;
    }
    const cm_kctx *k = backend_ctx(dev);
#ifdef CAMEO_CUDA_EMU  // the test build running kernels/cuda on the CPU: a peak of no meaning, kept small
    const int64_t n = 256;
#else
    const int64_t n = !real_cuda(dev) ? 1024 : dt == CM_BF16 ? 8192 : 4096;
#endif
    cm_tensor *a = rand_tensor(dt, SHAPE(n, n), dev, 11, 1.0, false), *b = rand_tensor(dt, SHAPE(n, n), dev, 12, 1.0, false);
    cm_tensor *c = tensor_empty(dt, SHAPE(n, n), dev);
    double ms = 1e30;
#ifdef CAMEO_HAVE_CUDA
    if (dt == CM_BF16 && real_cuda(dev)) {
        snprintf(how, hn, "cuBLASLt best of its top 8 algorithms and cuBLAS default, bf16 %lld^3 (as `cameo bench gpu`)", (long long)n);
        ms = cuda_gemm_best_ms(k, n, n, n, tensor_data(a), tensor_data(b), tensor_data(c), 8, iters);
    }
#endif
    if (ms >= 1e30) {  // cuda_gemm_best_ms is bf16 only: cameo's own GEMM, best of iters
        snprintf(how, hn, "cameo's %s GEMM %lld^3 (no TF32), best of %d", dtype_name(dt), (long long)n, iters);
        const cm_backend *be = backend_get(dev.type);
        for (int i = 0; i < iters + 1; i++) {
            dev_sync(dev);
            double t0 = progress_now();
            be->gemm(k, dt, 0, 0, n, n, n, 1.0, tensor_data(a), n, 0, tensor_data(b), n, 0, 0.0, tensor_data(c), n, 0, 1);
            dev_sync(dev);
            double t = (progress_now() - t0) * 1e3;
            if (i && t < ms) ms = t;
        }
    }
    tensor_release(a);
    tensor_release(b);
    tensor_release(c);
    return 2.0 * (double)n * n * n / (ms * 1e-3) / 1e12;
}

// ============================================================================================
// the PyTorch twin
// ============================================================================================

typedef struct torch_block { double fwd, fwdbwd, rc, peak_fb, peak_rc; } torch_block;  // seconds, bytes
typedef struct torch_figs {
    bool ok;
    char version[96];
    torch_block blk[2];
} torch_figs;

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static void run_torch(const blocks_dims *d, cm_device dev, cm_dtype dt, int warm, int iters, torch_figs *f) {
    memset(f, 0, sizeof *f);
    if (system("python3 -c 'import torch, diffusers' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "cameo bench blocks: no PyTorch figures (python3 with torch and diffusers not found)\n");
        return;
    }
    char script[4096], err[512];
    if (cameo_asset(script, sizeof script, "scripts/bench_blocks_torch.py", err, sizeof err)) {
        fprintf(stderr, "cameo bench blocks: no PyTorch figures: %s\n", err);
        return;
    }
    char devs[16], cmd[8192];
    snprintf(cmd, sizeof cmd,
             "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT -u OMP_NUM_THREADS python3 '%s' --device %s "
             "--dtype %s --threads %d --warmup %d --iters %d --batch %lld --tokens-txt %lld --tokens-img %lld --hidden %lld "
             "--heads %lld --mlp %lld --ip-tokens %lld --ip-dim %lld",
             script, device_name(dev, devs, sizeof devs), dt == CM_BF16 ? "bf16" : "f32", omp_get_max_threads(), warm, iters,
             (long long)d->B, (long long)d->Lt, (long long)d->N, (long long)d->C, (long long)d->H, (long long)d->F,
             (long long)d->Li, (long long)d->Ci);
    fprintf(stderr, "cameo bench blocks: running the PyTorch twin: %s\n", cmd);
    int rc;
    cJSON *j = bench_python_json(cmd, &rc);
    if (rc == -1) {
        fprintf(stderr, "cameo bench blocks: no PyTorch figures: cannot run python3\n");
        return;
    }
    if (!j) {
        fprintf(stderr, "cameo bench blocks: no PyTorch figures (python3 exit %d)\n", rc);
        return;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    snprintf(f->version, sizeof f->version, "%s", cJSON_IsString(v) ? v->valuestring : "?");
    const char *names[2] = {"double", "single"};
    for (int s = 0; s < 2; s++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, names[s]);
        f->blk[s] = (torch_block){jnum(b, "fwd_ms") * 1e-3, jnum(b, "fwdbwd_ms") * 1e-3, jnum(b, "recompute_ms") * 1e-3,
                                  jnum(b, "fwdbwd_peak_bytes"), jnum(b, "recompute_peak_bytes")};
    }
    f->ok = true;
    cJSON_Delete(j);
}

// ============================================================================================
// options
// ============================================================================================

typedef enum { PROJ_FULL = 0, PROJ_TINY = 1, PROJ_OFF = 2 } proj_kind;

typedef struct bench_opts {
    cm_device dev;
    cm_dtype dt;
    blocks_dims d;
    int warm, iters;
    bool torch, full_step;
    int nd, ns;  // --blocks D+S of the full step
    int rc2;     // --recompute: the full step's second run (-1 auto: as few as fit; -2 off; N the first N)
    cm_dtype moments;  // --moments: AdamW's m, v (optimizer.state_dtype)
    proj_kind proj;
    int enc;  // --encoders (an enc_size; -1 until chosen): the frozen encoders measured at full size, tiny, or estimated
    const char *md;
    uint64_t seed;
    bool profile;  // --profile: one pass of each block and one step timed per backend call
} bench_opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo bench blocks [options]\n"
            "  One FLUX double block and one single block with the InstantCharacter IP branch (frozen FLUX\n"
            "  weights: dX only; trainable IP weights), timed forward, forward+backward and forward+backward\n"
            "  under a recompute scope; MFU against the matrix peak measured in the same run; the whole 512^2\n"
            "  adapter step (19 double + 38 single blocks, projector, encoders, AdamW) projected from them,\n"
            "  with its memory on one card; PyTorch eager on the same blocks (scripts/bench_blocks_torch.py).\n"
            "  --device D        cpu (default) or cuda[:N]\n"
            "  --dtype T        f32 | bf16 (default: bf16 on cuda, f32 on the cpu)\n"
            "  --tokens-txt N   text tokens (512)          --tokens-img N  image tokens (1024 = 512^2)\n"
            "  --hidden C       width (3072)               --heads H       heads (24; head dim = C/H)\n"
            "  --ip-tokens N    IP tokens (1024)           --ip-dim N      IP token width (4096)\n"
            "  --batch B        samples (1)\n"
            "  --warmup N       untimed passes (3 on cuda, 1 on the cpu)   --iters N  timed passes, median (10 / 3)\n"
            "  --projector K    full (measure the full-size projector, default), tiny, off (estimate it)\n"
            "  --encoders K     the frozen encoders (SigLIP + DINOv2 on 5 views, VAE, T5 + CLIP): full (measure them\n"
            "                   at full size, random weights; default on cuda), tiny (small towers through the same\n"
            "                   calls: the code path), off (estimate them at the blocks' forward rate; default on the cpu)\n"
            "  --full-step      also run whole adapter training steps (FLUX with per-block recompute, adapter,\n"
            "                   projector, AdamW; random weights, random encoder features) when memory allows\n"
            "  --blocks D+S     FLUX depth of --full-step (19+38; e.g. 1+1 at full width, then extrapolated)\n"
            "  --recompute R    --full-step also runs the step with only the first R blocks recomputed, the\n"
            "                   rest keeping their activations: auto (default: as few as fit in memory), off, N\n"
            "  --moments T      AdamW's m and v in f32 (default) or bf16 (optimizer.state_dtype)\n"
            "  --no-torch       skip the PyTorch twin\n"
            "  --profile        also one fwd+bwd pass of each block and one step (--full-step) timed per op: where the\n"
            "                   device time goes (kernels/profile.h; CAMEO_PROFILE=1 does it for any command)\n"
            "  --md FILE        also append the tables to FILE (markdown)\n"
            "  --seed N         weights and inputs (1)\n");
}

static int parse_device(const char *s, cm_device *d) {
    if (!strcmp(s, "cpu")) { *d = CM_DEV_CPU; return 0; }
    if (!strcmp(s, "cuda")) { *d = (cm_device){CM_CUDA, 0}; return 0; }
    if (!strncmp(s, "cuda:", 5) && s[5]) {
        char *end;
        long i = strtol(s + 5, &end, 10);
        if (*end || i < 0 || i > 15) return -1;
        *d = (cm_device){CM_CUDA, (int)i};
        return 0;
    }
    return -1;
}

static int parse_opts(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->dev = CM_DEV_CPU;
    o->dt = CM_NDTYPES;  // = the device's default
    o->d = blocks_dims_flux_dev();
    o->warm = o->iters = -1;
    o->torch = true;
    o->nd = 19;
    o->ns = 38;
    o->rc2 = -1;
    o->moments = CM_F32;
    o->enc = -1;
    o->seed = 1;
    int64_t heads = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(name, dst) else if (!strcmp(a, name) && v) { dst = atoll(v); i++; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 1; }
        else if (!strcmp(a, "--device") && v) {
            if (parse_device(v, &o->dev)) { fprintf(stderr, "cameo bench blocks: --device '%s' (allowed: cpu, cuda, cuda:N)\n", v); return 2; }
            i++;
        } else if (!strcmp(a, "--dtype") && v) {
            if (!strcmp(v, "f32")) o->dt = CM_F32;
            else if (!strcmp(v, "bf16")) o->dt = CM_BF16;
            else { fprintf(stderr, "cameo bench blocks: --dtype '%s' (allowed: f32, bf16)\n", v); return 2; }
            i++;
        } else if (!strcmp(a, "--projector") && v) {
            if (!strcmp(v, "full")) o->proj = PROJ_FULL;
            else if (!strcmp(v, "tiny")) o->proj = PROJ_TINY;
            else if (!strcmp(v, "off")) o->proj = PROJ_OFF;
            else { fprintf(stderr, "cameo bench blocks: --projector '%s' (allowed: full, tiny, off)\n", v); return 2; }
            i++;
        } else if (!strcmp(a, "--encoders") && v) {
            if (!strcmp(v, "full")) o->enc = ENC_FULL;
            else if (!strcmp(v, "tiny")) o->enc = ENC_TINY;
            else if (!strcmp(v, "off")) o->enc = ENC_OFF;
            else { fprintf(stderr, "cameo bench blocks: --encoders '%s' (allowed: full, tiny, off)\n", v); return 2; }
            i++;
        } else if (!strcmp(a, "--blocks") && v) {
            if (sscanf(v, "%d+%d", &o->nd, &o->ns) != 2 || o->nd < 0 || o->ns < 0 || o->nd + o->ns < 1) {
                fprintf(stderr, "cameo bench blocks: --blocks '%s' (want D+S, e.g. 19+38 or 1+1)\n", v);
                return 2;
            }
            i++;
        }
        NUM("--tokens-txt", o->d.Lt) NUM("--tokens-img", o->d.N) NUM("--hidden", o->d.C) NUM("--heads", heads)
        NUM("--ip-tokens", o->d.Li) NUM("--ip-dim", o->d.Ci) NUM("--batch", o->d.B) NUM("--warmup", o->warm)
        NUM("--iters", o->iters)
        else if (!strcmp(a, "--seed") && v) { o->seed = strtoull(v, NULL, 10); i++; }
        else if (!strcmp(a, "--no-torch")) o->torch = false;
        else if (!strcmp(a, "--profile")) o->profile = true;
        else if (!strcmp(a, "--full-step")) o->full_step = true;
        else if (!strcmp(a, "--moments") && v) {
            if (!strcmp(v, "f32")) o->moments = CM_F32;
            else if (!strcmp(v, "bf16")) o->moments = CM_BF16;
            else { fprintf(stderr, "cameo bench blocks: --moments '%s' (allowed: f32, bf16)\n", v); return 2; }
            i++;
        } else if (!strcmp(a, "--recompute") && v) {
            char *end;
            long x = strtol(v, &end, 10);
            if (!strcmp(v, "auto")) o->rc2 = -1;
            else if (!strcmp(v, "off")) o->rc2 = -2;
            else if (*v && !*end && x >= 0 && x <= 100000) o->rc2 = (int)x;
            else { fprintf(stderr, "cameo bench blocks: --recompute '%s' (allowed: auto, off, a number of blocks)\n", v); return 2; }
            i++;
        }
        else if (!strcmp(a, "--md") && v) { o->md = v; i++; }
        else { fprintf(stderr, "cameo bench blocks: unknown argument '%s'\n", a); usage(stderr); return 2; }
#undef NUM
    }
    if (heads > 0) o->d.H = heads;
    else if (o->d.C != 3072) o->d.H = o->d.C / 128 > 0 ? o->d.C / 128 : 1;  // head dim 128 where it fits
    o->d.D = o->d.H > 0 ? o->d.C / o->d.H : 0;
    o->d.F = 4 * o->d.C;
    if (o->dt == CM_NDTYPES) o->dt = o->dev.type == CM_CUDA ? CM_BF16 : CM_F32;
    if (o->warm < 0) o->warm = o->dev.type == CM_CUDA ? 3 : 1;
    if (o->iters < 0) o->iters = o->dev.type == CM_CUDA ? 10 : 3;
    if (o->enc < 0) o->enc = o->dev.type == CM_CUDA ? ENC_FULL : ENC_OFF;  // full size on the CPU: 24 GiB of f32 weights
    if (o->iters < 1 || o->iters > 64 || o->warm > 64) { fprintf(stderr, "cameo bench blocks: --iters in 1..64, --warmup in 0..64\n"); return 2; }
    if (o->dev.type == CM_CPU && o->dt != CM_F32) { fprintf(stderr, "cameo bench blocks: the CPU computes in f32 only (--dtype f32)\n"); return 2; }
    if (o->d.H < 1 || o->d.C % o->d.H) {
        fprintf(stderr, "cameo bench blocks: --hidden %lld must be a multiple of --heads %lld\n", (long long)o->d.C, (long long)o->d.H);
        return 2;
    }
    return 0;
}

static void device_desc(cm_device dev, char *buf, size_t n, double *total) {
    *total = 0;
    if (dev.type == CM_CPU) {
        snprintf(buf, n, "CPU (%d threads)", omp_get_max_threads());
        FILE *f = fopen("/proc/cpuinfo", "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
                char *c = strchr(line, ':') + 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, n, "%s, %d threads", c, omp_get_max_threads());
                break;
            }
        if (f) fclose(f);
        return;
    }
#ifdef CAMEO_HAVE_CUDA
    struct cudaDeviceProp p;
    size_t fr = 0, tot = 0;
    if (real_cuda(dev) && cudaGetDeviceProperties(&p, dev.index) == cudaSuccess) {
        cudaMemGetInfo(&fr, &tot);
        snprintf(buf, n, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor, p.multiProcessorCount, tot / GiB);
        *total = (double)tot;
        return;
    }
#endif
    snprintf(buf, n, "cuda:%d (%s backend)", dev.index, cm_cuda_backend ? cm_cuda_backend->name : "?");
}

static void tf_str(double tflops, char *buf, size_t n) { snprintf(buf, n, tflops >= 10 ? "%.1f" : tflops >= 1 ? "%.2f" : "%.3f", tflops); }

// ============================================================================================
// the projector and AdamW, measured
// ============================================================================================

typedef struct proj_meas {
    bool measured;
    double s, peak, saved;  // fwd+bwd seconds, allocator peak above the start, live after forward (its tape)
    double params;
} proj_meas;

static ic_projector_config proj_config(proj_kind k, int64_t Ci) {
    ic_projector_config c = k == PROJ_TINY ? IC_PROJECTOR_TINY : IC_PROJECTOR_FULL;
    c.output_dim = Ci;
    return c;
}
static int64_t feature_tokens(proj_kind k) {  // per view: SigLIP 384/14 = 27 → 27² (tiny: 16)
    return k == PROJ_TINY ? 16 : (SIGLIP_SO400M_P14_384.image_size / SIGLIP_SO400M_P14_384.patch) *
                                     (SIGLIP_SO400M_P14_384.image_size / SIGLIP_SO400M_P14_384.patch);
}

typedef struct proj_inputs { cm_tensor *shallow, *deep, *high, *t; } proj_inputs;
static proj_inputs proj_inputs_make(const ic_projector_config *c, int64_t B, int64_t Lf, cm_dtype dt, cm_device dev,
                                    uint64_t seed) {
    proj_inputs p;
    p.shallow = rand_tensor(dt, SHAPE(B, 3 * Lf, c->cross_dim), dev, seed ^ 21, 1.0, false);  // [B, 3L, 2688]
    p.deep = rand_tensor(dt, SHAPE(B, Lf, c->inner_dim), dev, seed ^ 22, 1.0, false);         // [B, L, 2688]
    p.high = rand_tensor(dt, SHAPE(B, 4 * Lf, c->cross_dim), dev, seed ^ 23, 1.0, false);     // [B, 4L, 2688]
    p.t = tensor_full(dt, SHAPE(B), 500.0, dev);                                             // 1000·σ
    return p;
}
static void proj_inputs_free(proj_inputs *p) {
    tensor_release(p->shallow);
    tensor_release(p->deep);
    tensor_release(p->high);
    tensor_release(p->t);
}

// projector bytes in use for fwd+bwd: weights + grads + 1.5x a rough count of the saved
// activations (~16 [L, C] and 4 [L, Fb] tensors per block, ~24 [Q, dim] per resampler layer)
static double proj_need_bytes(const ic_projector_config *c, int64_t B, int64_t Lf, double params, size_t es) {
    double act = (double)B * (2.0 * c->num_layers * Lf * (16.0 * c->inner_dim + 4.0 * c->block_ff_mult * c->inner_dim) +
                              c->depth * c->num_queries * 24.0 * c->dim) * (double)es;
    return 2.0 * params * (double)es + 1.5 * act + 256.0 * MiB;
}

static void measure_projector(const bench_opts *o, proj_meas *pm) {
    memset(pm, 0, sizeof *pm);
    if (o->proj == PROJ_OFF) return;
    ic_projector_config c = proj_config(o->proj, o->d.Ci);
    const int64_t Lf = feature_tokens(o->proj);
    cm_params ps;
    params_init_meta(&ps, o->dt);
    ic_projector pr;
    char err[512];
    if (ic_projector_init(&pr, &c, &ps, "image_proj", err, sizeof err)) {
        fprintf(stderr, "cameo bench blocks: %s\n", err);
        return;
    }
    pm->params = (double)params_count(&ps, false);
    params_free(&ps);
    size_t fr = backend_get(o->dev.type)->mem_free(backend_ctx(o->dev));
    double need = proj_need_bytes(&c, o->d.B, Lf, pm->params, dtype_size(o->dt));
    if (fr && (double)fr < need) {
        fprintf(stderr, "cameo bench blocks: the projector is not measured: it needs ~%.1f GiB, %.1f GiB free (estimated instead)\n",
                need / GiB, fr / GiB);
        return;
    }
    params_init_registry(&ps, o->dev, o->dt, true);
    if (ic_projector_init(&pr, &c, &ps, "image_proj", err, sizeof err)) return;
    blocks_fill_params(&ps, o->seed ^ 0x9e0);
    proj_inputs in = proj_inputs_make(&c, o->d.B, Lf, o->dt, o->dev, o->seed);
    cm_tensor *gtok = rand_tensor(o->dt, SHAPE(o->d.B, c.num_queries, c.output_dim), o->dev, o->seed ^ 24, 1e-3, false);
    double t[64], peak = 0, saved = 0;
    // one warm-up at most; on the CPU at most 2 timed passes (a full-size pass takes ~a minute there)
    int warm = o->warm > 1 ? 1 : o->warm, iters = o->dev.type == CM_CPU && o->iters > 2 ? 2 : o->iters;
    for (int i = 0; i < warm + iters; i++) {
        dev_sync(o->dev);
        alloc_reset_peak(o->dev);
        double base = (double)alloc_stats(o->dev).current, t0 = progress_now();
        cm_tensor *tok = NULL, *temb = NULL;
        ic_projector_fwd(&pr, in.shallow, in.deep, in.high, in.t, &tok, &temb);
        double live = (double)alloc_stats(o->dev).current - base;
        tensor_release(temb);  // the resampler's temb is not used downstream (FLUX has its own)
        autograd_backward(tok, gtok);
        tensor_release(tok);
        dev_sync(o->dev);
        double dt = progress_now() - t0, pk = (double)alloc_stats(o->dev).peak - base;
        autograd_tape_reset();
        for (int k = 0; k < ps.n; k++) tensor_zero_grad(ps.items[k].t);
        if (i >= warm) {
            t[i - warm] = dt;
            if (pk > peak) peak = pk;
            if (live > saved) saved = live;
        }
    }
    pm->s = bench_median(t, iters);
    pm->peak = peak;
    pm->saved = saved;
    pm->measured = true;
    tensor_release(gtok);
    proj_inputs_free(&in);
    params_free(&ps);
    alloc_empty_cache(o->dev);
}

// AdamW as optim_step runs it (adamw_multi: f32 master, m and v in --moments' dtype, gradient of
// the parameter dtype, a bf16 parameter written by the update itself), on a slab of n elements:
// seconds per element. ema: 0 none; 1 optimizer.ema's average made by the update (as optim_apply
// does); 2 the same average as a separate axpby pass after it (what the update saves)
static double measure_adamw(const bench_opts *o, int ema) {
    const int64_t n = o->dev.type == CM_CPU ? (int64_t)16 << 20 : real_cuda(o->dev) ? (int64_t)64 << 20 : (int64_t)1 << 20;
    const cm_backend *be = backend_get(o->dev.type);
    const cm_kctx *k = backend_ctx(o->dev);
    cm_tensor *p = tensor_zeros(CM_F32, SHAPE(n), o->dev), *m = tensor_zeros(o->moments, SHAPE(n), o->dev);
    cm_tensor *v = tensor_zeros(o->moments, SHAPE(n), o->dev), *g = rand_tensor(o->dt, SHAPE(n), o->dev, 31, 1e-3, false);
    cm_tensor *pb = o->dt != CM_F32 ? tensor_zeros(o->dt, SHAPE(n), o->dev) : NULL;
    cm_tensor *e = ema ? tensor_zeros(CM_F32, SHAPE(n), o->dev) : NULL;
    const int64_t one = 1;
    double t[16];
    for (int i = 0; i < 5; i++) {
        dev_sync(o->dev);
        double t0 = progress_now();
        cm_adamw_tensor slab = {tensor_data(p), tensor_data(g), tensor_data(m), tensor_data(v), n, 0,
                                pb && o->dt == CM_BF16 ? tensor_data(pb) : NULL, ema == 1 ? tensor_data(e) : NULL};
        be->adamw_multi(k, 1, &slab, o->dt, o->moments, 1e-4, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.001, 1.0, 0.9999);
        if (pb && o->dt != CM_BF16) be->copy_strided(k, 1, &n, o->dt, tensor_data(pb), &one, CM_F32, tensor_data(p), &one);
        if (ema == 2) be->axpby(k, CM_F32, n, 1e-4, tensor_data(p), 0.9999, tensor_data(e));
        dev_sync(o->dev);
        t[i] = progress_now() - t0;
    }
    cm_tensor *all[] = {p, m, v, g, pb, e};
    for (int i = 0; i < 6; i++) tensor_release(all[i]);
    alloc_empty_cache(o->dev);
    return bench_median(t + 1, 4) / (double)n;
}

// ============================================================================================
// the full step
// ============================================================================================

// one configuration of the step: its first `rc` blocks under recompute scopes (FLUX_RECOMPUTE_ALL: all)
typedef struct full_run {
    bool ran;
    int rc;
    double fwd, bwd, opt, step;  // seconds, median over the timed steps
    double fwd_issue, bwd_issue; // host seconds until the forward's / backward's work was issued (median)
    double peak, loss;           // allocator peak during a step (weights and state included); last loss
    char *prof;                  // --profile: one more step, timed per backend call (a markdown table; free it)
} full_run;

typedef struct full_result {
    bool ran, optim;
    int nd, ns;
    double fwd, bwd, opt, step;        // seconds, median over the timed steps (per-block recompute: run[0])
    double peak, live0;                // allocator peak during a step; live before it (weights + state)
    double w_flux, w_ad, n_ad, state;  // bytes: FLUX weights, adapter weights; adapter params; master + m + v
    double saved_inputs;               // bytes: the blocks' kept inputs (recompute)
    double loss;                       // of the last step
    double budget;                     // bytes the allocator may reach on this device (0: unknown)
    full_run run[2];                   // [0] every block recomputes; [1] the first run[1].rc (if ran)
    char note[1024], note2[512];
} full_result;

// the timed steps of one configuration on the built step (warm-up first)
typedef struct full_ctx {
    const bench_opts *o;
    flux_model *fm;
    ic_adapter *ad;
    optim *opt;
    bool optim;
    cm_params *psa;
    proj_inputs *pin;
    cm_tensor *xt, *target, *txt, *pooled, *sigma, *guid;
    int gh, gw;
} full_ctx;

// one training step; t[0..5]: forward, backward, optimizer, step, forward issue, backward issue (s)
static double full_one(const full_ctx *c, int rc, double t[6]) {
    const bench_opts *o = c->o;
    dev_sync(o->dev);
    double t0 = progress_now();
    cm_tensor *tok = NULL, *temb = NULL;
    ic_projector_fwd(&c->ad->proj, c->pin->shallow, c->pin->deep, c->pin->high, c->pin->t, &tok, &temb);
    cm_tensor *pred = flux_forward(c->fm, c->xt, c->txt, c->pooled, c->sigma, c->guid, c->gh, c->gw, c->ad->ip, tok, 1.0, rc);
    cm_tensor *loss = op_mse(pred, c->target);
    tensor_release(pred);
    tensor_release(tok);
    tensor_release(temb);
    double t1i = progress_now();
    dev_sync(o->dev);
    double t1 = progress_now();
    autograd_backward(loss, NULL);
    double t2i = progress_now();
    double l = tensor_get(loss, 0);  // random weights: a finite number is all it says
    tensor_release(loss);
    dev_sync(o->dev);
    double t2 = progress_now();
    if (c->optim) {
        for (int k = 0; k < optim_n_params(c->opt); k++) optim_grad_ready(c->opt, k);
        optim_step_info info;
        optim_step(c->opt, optim_config_default().lr, &info);
    } else
        for (int k = 0; k < c->psa->n; k++) tensor_zero_grad(c->psa->items[k].t);
    dev_sync(o->dev);
    double t3 = progress_now();
    t[0] = t1 - t0, t[1] = t2 - t1, t[2] = t3 - t2, t[3] = t3 - t0, t[4] = t1i - t0, t[5] = t2i - t1;
    return l;
}

static void full_steps(const full_ctx *c, int rc, full_run *r) {
    const bench_opts *o = c->o;
    const int warm = 1, iters = o->dev.type == CM_CUDA ? 3 : 1;
    double tm[8][6];
    memset(r, 0, sizeof *r);
    r->rc = rc;
    for (int i = 0; i < warm + iters; i++) {
        alloc_reset_peak(o->dev);
        double t[6];
        r->loss = full_one(c, rc, t);
        if (i >= warm) {
            memcpy(tm[i - warm], t, sizeof t);
            double pk = (double)alloc_stats(o->dev).peak;
            if (pk > r->peak) r->peak = pk;
        }
    }
    double col[8];
    double *dst[6] = {&r->fwd, &r->bwd, &r->opt, &r->step, &r->fwd_issue, &r->bwd_issue};
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < iters; i++) col[i] = tm[i][k];
        *dst[k] = bench_median(col, iters);
    }
    r->ran = true;
    if (o->profile) {  // one more step, timed per backend call (after the figures above: it perturbs them)
        enum { TXT = 32768 };
        double t[6];
        prof_start();
        full_one(c, rc, t);
        char title[160];
        snprintf(title, sizeof title, "#### One step, %s (`--profile`)",
                 rc == FLUX_RECOMPUTE_ALL ? "every block recomputed" : "fewer blocks recomputed");
        r->prof = malloc(TXT);
        if (r->prof) prof_stop_format(r->prof, TXT, title, t[3] * 1e3, 25);
        else (void)prof_stop(NULL, 0);
    }
}

// builds the step (FLUX, adapter, AdamW, inputs) and times it with the first `rc` blocks under
// recompute scopes into fr->run[slot]; slot 0 (FLUX_RECOMPUTE_ALL) also fills the rest of *fr.
// Each call builds and frees its own step, so slot 0's figures are printed before slot 1 runs.
static void run_full_step(const bench_opts *o, double block_peak, double proj_saved, int rc, int slot, full_result *fr) {
    if (slot == 0) memset(fr, 0, sizeof *fr);
    alloc_empty_cache(o->dev);
    fr->nd = o->nd;
    fr->ns = o->ns;
    const blocks_dims *d = &o->d;
    const size_t es = dtype_size(o->dt);
    flux_config fc = rig_flux_config(d, o->nd, o->ns);
    ic_adapter_config ac = o->proj == PROJ_TINY ? IC_ADAPTER_TINY : IC_ADAPTER_FULL;
    ac.proj = proj_config(o->proj == PROJ_TINY ? PROJ_TINY : PROJ_FULL, d->Ci);
    ac.n_ip = o->nd + o->ns;
    ac.ip_heads = (int)d->H;
    ac.ip_head_dim = (int)d->D;
    const int64_t Lf = feature_tokens(o->proj == PROJ_TINY ? PROJ_TINY : PROJ_FULL), L = d->Lt + d->N;

    // memory first: what the step needs by arithmetic, against what the device has free
    char err[512];
    cm_params meta;
    params_init_meta(&meta, o->dt);
    if (ic_adapter_describe(&ac, &meta, err, sizeof err)) {
        snprintf(fr->note, sizeof fr->note, "adapter config: %s", err);
        params_free(&meta);
        return;
    }
    fr->n_ad = (double)params_count(&meta, false);
    params_free(&meta);
    fr->w_flux = (double)flux_param_count(&fc) * es;
    fr->w_ad = fr->n_ad * es;
    double master = o->dt == CM_F32 ? 0 : 4.0 * fr->n_ad;  // f32 parameters are their own masters
    fr->state = master + (o->moments == CM_BF16 ? 4.0 : 8.0) * fr->n_ad;
    fr->saved_inputs = (double)(o->nd + o->ns) * d->B * L * d->C * es;
    double acts = fr->saved_inputs + block_peak + proj_saved + 512.0 * MiB;
    double need_opt = fr->w_flux + fr->w_ad * 2.0 + fr->state + acts, need_no = need_opt - fr->state;
    size_t free_b = backend_get(o->dev.type)->mem_free(backend_ctx(o->dev));
    // what the allocator may reach: what is live now plus the free bytes, less a margin for the
    // allocator's rounding and fragmentation and the library workspaces (1 GiB + 3 %)
    if (free_b && slot == 0) fr->budget = recompute_budget(o->dev);
    fr->optim = !free_b || (double)free_b > need_opt * 1.03;
    if (!fr->optim && (double)free_b < need_no * 1.03) {
        snprintf(fr->note, sizeof fr->note, "not run: needs ~%.1f GiB (%.1f without AdamW state), %.1f GiB free", need_opt / GiB,
                 need_no / GiB, free_b / GiB);
        return;
    }
    if (!fr->optim)
        snprintf(fr->note, sizeof fr->note, "run without AdamW state (needs ~%.1f GiB with it, %.1f GiB free): optimizer time "
                 "from the AdamW slab", need_opt / GiB, free_b / GiB);

    cm_params psf, psa;
    flux_model fm;
    ic_adapter ad;
    params_init_registry(&psf, o->dev, o->dt, false);
    if (flux_init(&fm, &fc, &psf, err, sizeof err)) { snprintf(fr->note, sizeof fr->note, "%s", err); params_free(&psf); return; }
    blocks_fill_params(&psf, o->seed ^ 0xf1);
    params_init_registry(&psa, o->dev, o->dt, true);
    if (ic_adapter_init(&ad, &ac, &psa, err, sizeof err)) {
        snprintf(fr->note, sizeof fr->note, "%s", err);
        flux_free(&fm);
        params_free(&psf);
        params_free(&psa);
        return;
    }
    blocks_fill_params(&psa, o->seed ^ 0xada);
    optim opt;
    cm_params *regs[1] = {&psa};
    optim_config oc = optim_config_default();
    oc.state_dtype = o->moments;
    if (fr->optim && optim_init(&opt, regs, 1, &oc, 0, -1, err, sizeof err)) {
        snprintf(fr->note, sizeof fr->note, "optimizer: %s", err);
        fr->optim = false;
    }

    // inputs: the frozen encoders' outputs as random tensors of their shapes
    int gh, gw;
    grid_of(d->N, &gh, &gw);
    proj_inputs pin = proj_inputs_make(&ac.proj, d->B, Lf, o->dt, o->dev, o->seed);
    cm_tensor *xt = rand_tensor(o->dt, SHAPE(d->B, d->N, fc.in_channels), o->dev, o->seed ^ 41, 1.0, false);  // noised latents
    cm_tensor *target = rand_tensor(o->dt, SHAPE(d->B, d->N, fc.out_channels), o->dev, o->seed ^ 42, 1.0, false);
    cm_tensor *txt = rand_tensor(o->dt, SHAPE(d->B, d->Lt, fc.joint_dim), o->dev, o->seed ^ 43, 1.0, false);  // T5
    cm_tensor *pooled = rand_tensor(o->dt, SHAPE(d->B, fc.pooled_dim), o->dev, o->seed ^ 44, 1.0, false);    // CLIP
    cm_tensor *sigma = tensor_full(o->dt, SHAPE(d->B), 0.5, o->dev), *guid = tensor_full(o->dt, SHAPE(d->B), 1.0, o->dev);

    dev_sync(o->dev);
    fr->live0 = (double)alloc_stats(o->dev).current;
    full_ctx fc_ = {o, &fm, &ad, &opt, fr->optim, &psa, &pin, xt, target, txt, pooled, sigma, guid, gh, gw};
    full_steps(&fc_, rc, &fr->run[slot]);
    if (slot == 0) {
        const full_run *r0 = &fr->run[0];
        fr->fwd = r0->fwd, fr->bwd = r0->bwd, fr->opt = r0->opt, fr->step = r0->step, fr->peak = r0->peak, fr->loss = r0->loss;
        fr->ran = true;
    }

    cm_tensor *all[] = {xt, target, txt, pooled, sigma, guid};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_release(all[i]);
    proj_inputs_free(&pin);
    if (fr->optim) optim_free(&opt);
    ic_adapter_free(&ad);
    flux_free(&fm);
    params_free(&psa);
    params_free(&psf);
    alloc_empty_cache(o->dev);
}

// ============================================================================================
// main
// ============================================================================================

// parameters of an adapter config by cameo's own registration code (a meta registry: nothing
// allocated); *n_proj: those of the projector
static double adapter_params(const ic_adapter_config *c, double *n_proj) {
    cm_params meta;
    char err[512];
    double n = 0;
    params_init_meta(&meta, CM_BF16);
    if (!ic_adapter_describe(c, &meta, err, sizeof err)) {
        n = (double)params_count(&meta, false);
        if (n_proj) *n_proj = (double)ic_params_count_prefix(&meta, "image_proj.");
    } else fprintf(stderr, "cameo bench blocks: %s\n", err);
    params_free(&meta);
    return n;
}

int bench_blocks_main(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    const blocks_dims *d = &o.d;
    if (o.dev.type == CM_CUDA && !cm_cuda_backend) {
        const char *why = "this cameo was built without CUDA";
#ifdef CAMEO_HAVE_CUDA
        why = cuda_unavailable_reason() ? cuda_unavailable_reason() : "no GPU found";
#endif
        fprintf(stderr, "cameo bench blocks: cuda: %s\n", why);
        return 2;
    }
    if (o.dev.type == CM_CUDA) (void)backend_ctx(o.dev);  // stops naming the device when it is not there
    if (o.md) {
        g_md = fopen(o.md, "a");
        if (!g_md) { fprintf(stderr, "cameo bench blocks: --md %s: cannot open to append (%s)\n", o.md, strerror(errno)); return 1; }
        g_md_errno = 0;
    }
    blocks_dims dev_dims = blocks_dims_flux_dev();
    dev_dims.B = d->B;  // FLUX.1-dev's 512² shapes at any batch (the paper's config: 8 a card)
    const bool real_shapes = blocks_dims_eq(d, &dev_dims);
    char devname[512], date[32], cmd[1024] = "cameo bench blocks";
    double dev_total = 0;
    device_desc(o.dev, devname, sizeof devname, &dev_total);
    time_t tnow = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&tnow));
    for (int i = 0; i < argc; i++) {
        size_t at = strlen(cmd);
        snprintf(cmd + at, sizeof cmd - at, " %s", argv[i]);
    }

    out("\n## cameo bench blocks — %s, %s, %s\n\n", devname, dtype_name(o.dt), date);
    out("Command: `%s`. Shapes: batch %lld, %lld text + %lld image tokens (L = %lld), hidden %lld = %lld heads x %lld, MLP %lld, "
        "IP %lld tokens x %lld%s.\n\n",
        cmd, (long long)d->B, (long long)d->Lt, (long long)d->N, (long long)(d->Lt + d->N), (long long)d->C, (long long)d->H,
        (long long)d->D, (long long)d->F, (long long)d->Li, (long long)d->Ci,
        real_shapes ? " (FLUX.1-dev at 512², InstantCharacter's projector tokens)" : " (NOT the real 512² shapes)");
    out_flush();
    if (g_md_errno) return md_close(o.md);  // before minutes of timing whose tables it would not keep

    // 1. the peak
    char how[160];
    double peak = measure_peak(o.dev, o.dt, o.dev.type == CM_CUDA ? 10 : 3, how, sizeof how);
    out("Measured matrix peak: **%.2f TFLOP/s** (%s).\n\n", peak, how);
    out_flush();

    // 2. the blocks
    blocks_rig r;
    char err[1024];
    if (blocks_rig_init(&r, d, o.dev, o.dt, o.seed, err, sizeof err)) {
        fprintf(stderr, "cameo bench blocks: %s\n", err);
        if (g_md) fclose(g_md);
        g_md = NULL;
        return 2;
    }
    fprintf(stderr, "cameo bench blocks: timing the blocks (%d warm-up + %d timed passes each)\n", o.warm, o.iters);
    pass_stats ps[2][3];
    for (int s = 0; s < 2; s++)
        for (int m = 0; m < 3; m++) ps[s][m] = time_pass(&r, s, (blocks_mode)m, o.warm, o.iters);
    static char prof_txt[2][20000];
    if (o.profile)
        for (int s = 0; s < 2; s++)
            profile_pass(&r, s, BLOCKS_FWDBWD, s ? "#### single + IP, fwd+bwd (`--profile`)" : "#### double + IP, fwd+bwd (`--profile`)",
                         prof_txt[s], sizeof prof_txt[s]);
    blocks_rig_free(&r);
    alloc_empty_cache(o.dev);  // the PyTorch twin runs next, in its own process, on the same device
    blocks_flops bf[2] = {blocks_flops_double(d), blocks_flops_single(d)};
    if (o.dev.type == CM_CPU) {  // a shared CPU's peak varies with its neighbours: measured again, the best kept
        double p2 = measure_peak(o.dev, o.dt, 3, how, sizeof how);
        if (p2 > peak) peak = p2;
        double la[3] = {0};
        if (getloadavg(la, 3) < 1) la[0] = -1;
        out("Peak measured again after the blocks: the higher kept, %.3f TFLOP/s. Load average after the blocks: %.2f "
            "(%d threads here; above that, other processes shared the cores and the figures are disturbed).\n\n",
            peak, la[0], omp_get_max_threads());
    }

    torch_figs tf = {0};
    if (o.torch) run_torch(d, o.dev, o.dt, o.warm, o.iters, &tf);

    out("| block | pass | ms | host ms | launches | model TFLOP | TFLOP/s | MFU | peak MiB | new MiB | PyTorch %s ms | PyTorch peak MiB | speed-up |\n",
        tf.ok ? tf.version : "(not run)");
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const char *bname[2] = {"double + IP", "single + IP"}, *pname[3] = {"fwd", "fwd+bwd", "fwd+bwd, recompute"};
    for (int s = 0; s < 2; s++)
        for (int m = 0; m < 3; m++) {
            double fl = m == 0 ? bf[s].fwd : bf[s].fwd + bf[s].bwd, t = ps[s][m].s, tfl = fl / t / 1e12;
            double tt = !tf.ok ? 0 : m == 0 ? tf.blk[s].fwd : m == 1 ? tf.blk[s].fwdbwd : tf.blk[s].rc;
            double tpk = !tf.ok || m == 0 ? 0 : m == 1 ? tf.blk[s].peak_fb : tf.blk[s].peak_rc;
            char a[32], b[32] = "n/a", c[32] = "n/a", e[32] = "n/a";
            tf_str(tfl, a, sizeof a);
            if (tt > 0) {
                snprintf(b, sizeof b, "%.2f", tt * 1e3);
                snprintf(e, sizeof e, "%.2fx", tt / t);
            }
            if (tpk > 0) snprintf(c, sizeof c, "%.0f", tpk / MiB);
            out("| %s | %s | %.2f | %.2f | %lld | %.3f | %s | %.1f%% | %.0f | %.0f | %s | %s | %s |\n", bname[s], pname[m],
                t * 1e3, ps[s][m].issue * 1e3, (long long)ps[s][m].launches, fl / 1e12, a, 100.0 * tfl / peak,
                ps[s][m].peak / MiB, ps[s][m].fresh / MiB, b, c, e);
        }
    out("\nModel FLOPs (bench_blocks.c): every GEMM 2·M·N·K; attention 4·Lq·Lk·D·H forward, 2.5x that backward; frozen FLUX "
        "linears dX only (1x), AdaLayerNorm linears no backward (silu(temb) needs no gradient), IP K/V linears dX + dW (2x); "
        "the recompute row counts the same model FLOPs (its replayed forward is extra work, not counted). Forward: double "
        "%.3f, single %.3f TFLOP; backward: %.3f, %.3f. MFU = TFLOP/s / measured peak. Host ms: the time until the "
        "pass's last launch returned, before the sync (on a GPU, host ms close to ms means the host's op dispatch, not the "
        "device, sets the pace); launches: the CUDA backend's kernels and GEMMs per pass (0 on the CPU). Peak MiB: the allocator's peak above "
        "the weights and inputs during the pass. New MiB: the bytes of every tensor the pass allocated — all an op writes "
        "except in-place gradient sums and GEMMs adding into a gradient; on a GPU, what the memory-bound passes cost "
        "scales with it (about 3 us per 10 MiB written at 3.35 TB/s, before the reads). Speed-up = PyTorch eager time / cameo time (PyTorch: same blocks from "
        "diffusers with the InstantCharacter IP processor, same dims, dtype and device; recompute = torch.utils.checkpoint).\n\n",
        bf[0].fwd / 1e12, bf[1].fwd / 1e12, bf[0].bwd / 1e12, bf[1].bwd / 1e12);
    if (o.profile) {
        out("### Where the time goes (`--profile`: one more pass, each backend call between two marks on the compute "
            "stream; the marks' own cost is in the wall time)\n\n");
        for (int s = 0; s < 2; s++) out("%s\n", prof_txt[s]);
    }
    out_flush();

    // 3. the rest of the step: projector (measured), AdamW (measured slab), encoders (estimated)
    proj_meas pm;
    fprintf(stderr, "cameo bench blocks: the projector (%s)\n", o.proj == PROJ_OFF ? "off" : o.proj == PROJ_TINY ? "tiny" : "full size");
    measure_projector(&o, &pm);
    enc_meas em;
    const int64_t img_side = (int64_t)(16.0 * sqrt((double)d->N) + 0.5);  // pixels: 16 per 2 x 2 latent patch
    if (o.enc != ENC_OFF)
        fprintf(stderr, "cameo bench blocks: the frozen encoders (%s)\n", o.enc == ENC_TINY ? "tiny" : "full size");
    bench_encoders(o.dev, o.dt, (enc_size)o.enc, d->B, SIGLIP_SO400M_P14_384.image_size, img_side, d->Lt,
                   o.warm > 1 ? 1 : o.warm, o.iters > 3 ? 3 : o.iters, o.seed, &em);  // forward only, long: 3 timed at most
    const bool enc_full = em.measured && em.size == ENC_FULL;
    double adamw_per = measure_adamw(&o, 0);
    double ema_fused = measure_adamw(&o, 1) - adamw_per, ema_pass = measure_adamw(&o, 2) - adamw_per;

    flux_config fdev = rig_flux_config(d, 19, 38);
    const int nd = fdev.num_layers, ns = fdev.num_single_layers;
    ic_adapter_config afull = IC_ADAPTER_FULL;
    afull.proj.output_dim = d->Ci;
    afull.n_ip = nd + ns;
    afull.ip_heads = (int)d->H;
    afull.ip_head_dim = (int)d->D;
    double n_proj = 0, n_ad = adapter_params(&afull, &n_proj), n_ad_full = adapter_params(&IC_ADAPTER_FULL, NULL);
    const double B = (double)d->B, Lf = (double)feature_tokens(PROJ_FULL), img = 16.0 * sqrt((double)d->N);  // pixels per side
    blocks_flops pf = blocks_flops_projector(&afull.proj, d->B, (int64_t)Lf);
    double outer_f, outer_b;
    flops_flux_outer(&fdev, B, (double)d->Lt, (double)d->N, &outer_f, &outer_b);
    const double views = 5.0 * B;
    double f_vis = flops_siglip(&SIGLIP_SO400M_P14_384, views) + flops_dino(&DINOV2_GIANT, SIGLIP_SO400M_P14_384.image_size, views);
    double f_vae = flops_vae_encoder(&VAE_FLUX, (int64_t)img, (int64_t)img, B);
    double f_txt = flops_t5(&T5_V11_XXL, (double)d->Lt, B) + flops_clip_text(&CLIP_VIT_L14_TEXT, 77.0, B);
    // frozen parts run forward only, under no-grad: estimated at the rate of the blocks' forward
    const double fwd_rate = (bf[0].fwd + bf[1].fwd) / (ps[0][0].s + ps[1][0].s);
    double t_blocks_rc = nd * ps[0][2].s + ns * ps[1][2].s, t_blocks_fb = nd * ps[0][1].s + ns * ps[1][1].s;
    double f_blocks = nd * (bf[0].fwd + bf[0].bwd) + ns * (bf[1].fwd + bf[1].bwd);
    double f_rc = nd * bf[0].fwd + ns * bf[1].fwd;  // the replayed forward
    // not measured: at the blocks' fwd+bwd rate
    double t_proj = pm.measured && o.proj == PROJ_FULL ? pm.s : (pf.fwd + pf.bwd) / (f_blocks / t_blocks_fb);
    double t_outer = (outer_f + outer_b) / fwd_rate, t_vis = f_vis / fwd_rate, t_vae = f_vae / fwd_rate, t_txt = f_txt / fwd_rate;
    if (enc_full) t_vis = em.vision, t_vae = em.vae, t_txt = em.text;  // --encoders full: measured
    const char *enc_how = enc_full ? "measured at full size (random weights, no-grad)" : "estimated at the blocks' forward rate (no-grad)";
    double t_opt = adamw_per * n_ad;
    double f_step = f_blocks + pf.fwd + pf.bwd + outer_f + outer_b + f_vis + f_vae + f_txt;
    double t_step = t_blocks_rc + t_proj + t_outer + t_vis + t_vae + t_txt + t_opt;
    double f_step_nt = f_step - f_txt, t_step_nt = t_step - t_txt;
    char tps[32], nb[64];
    out("### The whole adapter training step at 512², projected from the blocks\n\n");
    if (!real_shapes) out("**The block dims are not FLUX.1-dev's 512² shapes: this projection is for the reduced blocks.**\n\n");
    out("| part | model TFLOP | ms | how |\n|---|---:|---:|---|\n");
    out("| %d double blocks + IP: fwd, recompute fwd, bwd | %.2f | %.1f | measured block x %d (recompute: +%.2f TFLOP not counted) |\n",
        nd, nd * (bf[0].fwd + bf[0].bwd) / 1e12, nd * ps[0][2].s * 1e3, nd, nd * bf[0].fwd / 1e12);
    out("| %d single blocks + IP: fwd, recompute fwd, bwd | %.2f | %.1f | measured block x %d (recompute: +%.2f TFLOP not counted) |\n",
        ns, ns * (bf[1].fwd + bf[1].bwd) / 1e12, ns * ps[1][2].s * 1e3, ns, ns * bf[1].fwd / 1e12);
    out("| projector fwd + bwd (%s params, trainable) | %.2f | %.1f | %s |\n", commas(n_proj, nb, sizeof nb), (pf.fwd + pf.bwd) / 1e12,
        t_proj * 1e3, pm.measured && o.proj == PROJ_FULL ? "measured at full size" : "estimated at the blocks' fwd+bwd rate");
    out("| FLUX embedders, norm_out, proj_out, loss | %.3f | %.2f | estimated at the blocks' forward rate |\n", (outer_f + outer_b) / 1e12,
        t_outer * 1e3);
    out("| frozen SigLIP so400m + DINOv2-g, 5 views of 384² | %.2f | %.1f | %s; not run with model.ref_cache |\n", f_vis / 1e12,
        t_vis * 1e3, enc_how);
    out("| frozen VAE encoder, %.0f² target | %.2f | %.1f | %s |\n", img, f_vae / 1e12, t_vae * 1e3, enc_how);
    out("| frozen T5-XXL (%lld tokens) + CLIP-L text | %.2f | %.1f | %s; on the training device every step (model.text_device: model; not run with model.text_cache) |\n",
        (long long)d->Lt, f_txt / 1e12, t_txt * 1e3, enc_full ? "measured at full size" : "estimated");
    // the cast to the parameters' dtype is part of the update only where they are not f32 (measure_adamw)
    char cast[32] = "";
    if (o.dt != CM_F32) snprintf(cast, sizeof cast, " (+ %s cast)", dtype_name(o.dt));
    out("| AdamW on %s adapter params%s | — | %.1f | measured on a %s-element slab, scaled |\n", commas(n_ad, nb, sizeof nb), cast,
        t_opt * 1e3, o.dev.type == CM_CPU ? "16M" : real_cuda(o.dev) ? "64M" : "1M");
    out("| (optimizer.ema: its average made by the update, not counted above) | — | +%.1f | the same slab; as a separate pass "
        "after the update: +%.1f |\n", ema_fused * n_ad * 1e3, ema_pass * n_ad * 1e3);
    tf_str(f_step / t_step / 1e12, tps, sizeof tps);
    out("| **step, per-block recompute** | **%.2f** | **%.1f** | **%s TFLOP/s, MFU %.1f%%** (HFU with the recompute %.1f%%) |\n",
        f_step / 1e12, t_step * 1e3, tps, 100.0 * f_step / t_step / 1e12 / peak, 100.0 * (f_step + f_rc) / t_step / 1e12 / peak);
    tf_str(f_step_nt / t_step_nt / 1e12, tps, sizeof tps);
    out("| step without the text encoders (their work elsewhere) | %.2f | %.1f | %s TFLOP/s, MFU %.1f%% |\n", f_step_nt / 1e12, t_step_nt * 1e3, tps,
        100.0 * f_step_nt / t_step_nt / 1e12 / peak);
    out("| step without recompute (if it fit) | %.2f | %.1f | MFU %.1f%% |\n", f_step / 1e12,
        (t_step - t_blocks_rc + t_blocks_fb) * 1e3, 100.0 * f_step / (t_step - t_blocks_rc + t_blocks_fb) / 1e12 / peak);
    if (tf.ok && tf.blk[0].rc > 0 && tf.blk[1].rc > 0) {
        double tt = nd * tf.blk[0].rc + ns * tf.blk[1].rc;
        out("| the 57 blocks in PyTorch eager (torch.utils.checkpoint), for comparison | | %.1f | PyTorch time / cameo time: "
            "%.2fx |\n", tt * 1e3, tt / t_blocks_rc);
    }
    if (em.measured) {  // the measured set's own FLOPs (the tiny towers' for --encoders tiny)
        const enc_set es = enc_configs(em.size);
        const double ev = 5.0 * B, ef[3] = {flops_siglip(&es.sc, ev) + flops_dino(&es.dc, em.ref_side, ev),
                                           flops_vae_encoder(&es.vc, em.img_side, em.img_side, B),
                                           flops_t5(&es.tc, (double)em.t5_len, B) + flops_clip_text(&es.cc, 77.0, B)};
        const double et[3] = {em.vision, em.vae, em.text};
        out("\nThe frozen encoders, measured (`--encoders %s`: random weights, %s, batch %lld, no-grad; each part between "
            "two device syncs)%s: weights %.3f GiB, activations' peak %.3f GiB.\n\n| part | model TFLOP | ms | TFLOP/s | MFU |\n"
            "|---|---:|---:|---:|---:|\n", enc_full ? "full" : "tiny", dtype_name(o.dt), (long long)d->B,
            enc_full ? "" : " — small towers, the code path only: the table above keeps its estimates", em.weights / GiB, em.peak / GiB);
        char pn[3][96];
        snprintf(pn[0], sizeof pn[0], "SigLIP + DINOv2, 5 views of %lld²", (long long)em.ref_side);
        snprintf(pn[1], sizeof pn[1], "VAE encoder, %lld² target", (long long)em.img_side);
        snprintf(pn[2], sizeof pn[2], "T5 (%lld tokens) + CLIP (77)", (long long)em.t5_len);
        for (int k = 0; k < 3; k++) {
            tf_str(ef[k] / et[k] / 1e12, tps, sizeof tps);
            out("| %s | %.4f | %.2f | %s | %.1f%% |\n", pn[k], ef[k] / 1e12, et[k] * 1e3, tps, 100.0 * ef[k] / et[k] / 1e12 / peak);
        }
    } else if (em.note[0])
        out("\nThe frozen encoders: %s; the table keeps its estimates.\n", em.note);
    // a verdict only where the target applies: reduced dims or a CPU run say so instead of "met"
    const bool target_setting = real_shapes && o.dev.type == CM_CUDA;
    const double mfu_step = 100.0 * f_step / t_step / 1e12 / peak;
    out("\nTargets (the CUDA issue; they apply to an H100 at the real shapes): the whole step at >= 45%% MFU: %s "
        "(%.1f%%); faster than PyTorch eager on the same blocks: %s.\n",
        !target_setting ? (real_shapes ? "not judged (a CPU run)" : "not judged (reduced dims)")
        : mfu_step >= 45.0 ? "met" : "not met", mfu_step,
        !(tf.ok && tf.blk[0].rc > 0 && tf.blk[1].rc > 0) ? "not compared (no PyTorch run)"
        : nd * tf.blk[0].rc + ns * tf.blk[1].rc > t_blocks_rc ? "met" : "not met");
    out("\n");
    out_flush();

    // 4. memory of the full-size step on one card (bf16 weights, f32 master + AdamW, per-block recompute):
    //    always FLUX.1-dev and the released adapter at 512², whatever dims the blocks ran at
    {
        const double bs = 2.0;  // bf16
        const double es_ratio = bs / (double)dtype_size(o.dt);  // measured in f32 on the cpu: halved for bf16
        const flux_config fd = flux_config_dev();
        double n_flux = (double)flux_param_count(&fd), n_sig = (double)siglip_param_count(&SIGLIP_SO400M_P14_384);
        double n_dino = (double)dino_param_count(&DINOV2_GIANT), n_vae = (double)vae_encoder_param_count(&VAE_FLUX);
        double n_t5 = (double)t5_param_count(&T5_V11_XXL), n_clip = (double)clip_text_param_count(&CLIP_VIT_L14_TEXT);
        const int nblk = fd.num_layers + fd.num_single_layers;
        const int64_t Lfull = dev_dims.Lt + dev_dims.N;
        double saved = nblk * B * (double)Lfull * dev_dims.C * bs;
        double blk = (ps[0][2].peak > ps[1][2].peak ? ps[0][2].peak : ps[1][2].peak) * es_ratio;
        const bool pfull = pm.measured && o.proj == PROJ_FULL;
        double proj_act = pfull ? pm.saved * es_ratio : 0;
        const double n_ad = n_ad_full;
        double rows[] = {n_flux * bs, n_sig * bs, n_dino * bs, n_vae * bs, n_t5 * bs, n_clip * bs, n_ad * bs, n_ad * 4.0,
                         n_ad * 8.0, n_ad * bs, saved, proj_act, blk};
        const char *what[] = {"frozen FLUX.1-dev", "frozen SigLIP so400m (0 with model.ref_cache, no eval)",
                              "frozen DINOv2-giant (0 with model.ref_cache, no eval)", "frozen VAE encoder",
                              "frozen T5-XXL encoder (0 with model.text_cache or text_device: cpu)", "frozen CLIP-L text",
                              "adapter weights (bf16)", "adapter f32 master weights", "AdamW m + v (f32)",
                              "adapter gradients (bf16)", "", "projector saved activations", "peak of one block's recompute + backward"};
        double params[] = {n_flux, n_sig, n_dino, n_vae, n_t5, n_clip, n_ad, n_ad, n_ad, n_ad, 0, 0, 0};
        out("### Memory of the full-size 512² step on one card (bf16, per-block recompute%s)\n\n| | params | GiB | source |\n|---|---:|---:|---|\n",
            d->B > 1 ? ", the batch above" : "");
        double total = 0;
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
            char pbuf[64] = "";
            if (params[i] > 0) commas(params[i], pbuf, sizeof pbuf);
            const char *src = i < 6 ? "parameter count from cameo's model code x 2 B"
                              : i < 10 ? "adapter parameter count (ic_adapter_describe)"
                              : i == 10 ? "blocks x B x L x C x 2 B"
                              : i == 11 ? (pfull ? "measured: live after the projector forward" : "not measured (--projector tiny / off)")
                                        : real_shapes ? "measured above (max of the double and single block)"
                                              : "measured above at REDUCED dims: not the 512² figure";
            char w[160];
            if (i == 10) snprintf(w, sizeof w, "saved block inputs (%d x %lld x %lld x %lld x 2 B)", nblk, (long long)d->B,
                                  (long long)Lfull, (long long)dev_dims.C);
            else snprintf(w, sizeof w, "%s", what[i]);
            out("| %s | %s | %.2f | %s%s |\n", w, pbuf, rows[i] / GiB, src,
                (i >= 11 && o.dt != CM_BF16) ? ", measured in f32: x 0.5 for bf16" : "");
            total += rows[i];
        }
        out("| **total, everything resident** | | **%.2f** | %s |\n", total / GiB, card_verdict(total));
        out("| **total, T5 off the card (model.text_cache, or text_device: cpu)** | | **%.2f** | %s |\n", (total - rows[4]) / GiB,
            card_verdict(total - rows[4]));
        const double cached = total - rows[4] - rows[1] - rows[2];  // model.ref_cache without an evaluation: no towers loaded
        out("| **total, T5 and the towers off the card (model.text_cache + model.ref_cache, no evaluation)** | | **%.2f** | %s |\n",
            cached / GiB, card_verdict(cached));
        // ZeRO-1 (optimizer.shard_state) over 8 ranks: each keeps 1/8 of the f32 masters and moments
        double zero8 = total - (rows[7] + rows[8]) * 7.0 / 8.0;
        out("| **total per card, AdamW state sharded over 8 ranks (ZeRO-1)** | | **%.2f** | %s |\n", zero8 / GiB, card_verdict(zero8));
        // optimizer.state_dtype: bf16 — the moments in 4 instead of 8 bytes per parameter
        double sbf = total - rows[8] / 2;
        out("| **total, AdamW moments in bf16 (optimizer.state_dtype: bf16)** | | **%.2f** | %s |\n", sbf / GiB, card_verdict(sbf));
        out("| **total, bf16 moments and T5 on the CPU** | | **%.2f** | %s |\n", (sbf - rows[4]) / GiB, card_verdict(sbf - rows[4]));
        // optimizer.ema: an f32 weight average beside each master (sharded with it)
        out("| **the same, with a weight average (optimizer.ema: + %.2f GiB of f32)** | | **%.2f** | %s |\n", rows[7] / GiB,
            (sbf - rows[4] + rows[7]) / GiB, card_verdict(sbf - rows[4] + rows[7]));
        out("| the card the verdicts are for | | %.2f | an 80 GB card (H100: 81,559 MiB), the target |\n", CARD_80GB / GiB);
        if (dev_total > 0 && fabs(dev_total - CARD_80GB) > 512.0 * MiB)
            out("| this device | | %.2f | its total memory; not the card the verdicts are for |\n", dev_total / GiB);
        out("\n");
        out("Saved activations are the blocks' inputs only: per-block recompute keeps one [B, L, C] tensor per block (the "
            "IP tokens, silu(temb) and the RoPE tables are shared by all blocks); a block's own activations exist only while "
            "it is recomputed in backward. The caching allocator rounds blocks up by at most 1/16.\n\n");
        out_flush();
    }

    // 5. one real step
    if (o.full_step) {
        full_result fr;
        fprintf(stderr, "cameo bench blocks: the full step (%d double + %d single blocks)\n", o.nd, o.ns);
        double blk = ps[0][2].peak > ps[1][2].peak ? ps[0][2].peak : ps[1][2].peak;
        run_full_step(&o, blk, pm.measured ? pm.saved : 0, FLUX_RECOMPUTE_ALL, 0, &fr);
        out("### One adapter training step, measured (`--full-step`)\n\n");
        out("FLUX %d double + %d single blocks at width %lld with per-block recompute, the %s projector and %d IP modules "
            "(%s adapter params), MSE loss, %s; random weights; the frozen encoders replaced by random tensors of their "
            "output shapes (T5 [B, %lld, 4096], CLIP pooled, SigLIP + DINOv2 features [B, %lld x (1 + 3 + 4), %lld]), so their "
            "time is not in these figures.%s%s\n\n",
            o.nd, o.ns, (long long)d->C, o.proj == PROJ_TINY ? "tiny" : "full-size", o.nd + o.ns, commas(fr.n_ad, nb, sizeof nb),
            !fr.optim ? "no optimizer" : o.moments == CM_BF16 ? "AdamW (f32 master, bf16 moments)" : "AdamW (f32 master and moments)", (long long)d->Lt, (long long)feature_tokens(o.proj == PROJ_TINY ? PROJ_TINY : PROJ_FULL),
            (long long)proj_config(o.proj == PROJ_TINY ? PROJ_TINY : PROJ_FULL, d->Ci).inner_dim, fr.note[0] ? " " : "", fr.note);
        if (fr.ran) {
            char topt[32] = "— (not run)";
            if (fr.optim) snprintf(topt, sizeof topt, "%.1f", fr.opt * 1e3);
            out("| measured | ms |\n|---|---:|\n| forward: projector + FLUX (recompute) + loss | %.1f |\n| backward | %.1f |\n"
                "| optimizer | %s |\n| **step** | **%.1f** |\n| loss (random weights and data: only its finiteness means anything) | %.4g%s |\n",
                fr.fwd * 1e3, fr.bwd * 1e3, topt, fr.step * 1e3, fr.loss, isfinite(fr.loss) ? "" : " **NOT FINITE**");
            double f_run = (double)o.nd * (bf[0].fwd + bf[0].bwd) + (double)o.ns * (bf[1].fwd + bf[1].bwd) + pf.fwd + pf.bwd + outer_f + outer_b;
            if (o.proj == PROJ_TINY) {
                ic_projector_config ct = proj_config(PROJ_TINY, d->Ci);
                blocks_flops pt = blocks_flops_projector(&ct, d->B, feature_tokens(PROJ_TINY));
                f_run += pt.fwd + pt.bwd - pf.fwd - pf.bwd;
            }
            // like for like: this run's parts projected from the block table, and the run extrapolated to full size
            double t_opt_run = fr.optim ? fr.opt : adamw_per * fr.n_ad, t_run = fr.fwd + fr.bwd + t_opt_run;
            out("| model FLOPs of this step (TFLOP) / MFU | %.2f / %.1f%% |\n", f_run / 1e12, 100.0 * f_run / t_run / 1e12 / peak);
            double t_proj_run = t_proj;
            if (o.proj == PROJ_TINY) {
                ic_projector_config ct = proj_config(PROJ_TINY, d->Ci);
                blocks_flops pt = blocks_flops_projector(&ct, d->B, feature_tokens(PROJ_TINY));
                t_proj_run = pm.measured ? pm.s : (pt.fwd + pt.bwd) / (f_blocks / t_blocks_fb);
            }
            out("| projected from the tables above for the same parts (%d + %d blocks with recompute, projector, FLUX outer, "
                "AdamW) | %.1f |\n", o.nd, o.ns, (o.nd * ps[0][2].s + o.ns * ps[1][2].s + t_proj_run + t_outer + adamw_per * fr.n_ad) * 1e3);
            if (o.nd != nd || o.ns != ns || o.proj == PROJ_TINY) {
                double ext = t_run + (nd - o.nd) * ps[0][2].s + (ns - o.ns) * ps[1][2].s + (t_proj - t_proj_run) + adamw_per * (n_ad - fr.n_ad);
                out("| extrapolated to %d + %d blocks and the full adapter: measured + (%d - %d) double + (%d - %d) single "
                    "(recompute rows) + the projector and AdamW differences | %.1f |\n", nd, ns, nd, o.nd, ns, o.ns, ext * 1e3);
            }
            out("\n");
            double arith = fr.w_flux + fr.w_ad * 2.0 + (fr.optim ? fr.state : 0) + fr.saved_inputs + blk + (pm.measured ? pm.saved : 0);
            out("| memory of this step (allocator) | GiB |\n|---|---:|\n");
            out("| FLUX weights (%s) | %.2f |\n| adapter weights + gradients | %.2f |\n| AdamW state (master + m + v) | %.2f |\n",
                dtype_name(o.dt), fr.w_flux / GiB, 2.0 * fr.w_ad / GiB, fr.optim ? fr.state / GiB : 0.0);
            out("| saved block inputs | %.2f |\n| one block's recompute + backward (measured above) | %.2f |\n| projector saved activations (measured above) | %.2f |\n",
                fr.saved_inputs / GiB, blk / GiB, pm.measured ? pm.saved / GiB : 0.0);
            out("| **sum (arithmetic)** | **%.2f** |\n| **measured peak (alloc_stats)** | **%.2f** |\n| live before the step (weights + state) | %.2f |\n\n",
                arith / GiB, fr.peak / GiB, fr.live0 / GiB);
            if (fr.run[0].prof) out("%s\n", fr.run[0].prof);
            out_flush();
            // the same step with only the first blocks recomputed (train.recompute: N): as many
            // blocks keep their activations as fit (the last ones), or --recompute N
            const int nbk = o.nd + o.ns;
            const double keep_cost[2] = {ps[0][1].peak, ps[1][1].peak};  // a kept block: its fwd+bwd peak
            int rc2 = o.rc2;
            if (rc2 == -1) {
                if (fr.budget > 0) rc2 = recompute_to_fit(o.nd, o.ns, fr.run[0].peak, keep_cost, fr.budget);
                else snprintf(fr.note2, sizeof fr.note2, "the device's free memory is unknown: give --recompute N");
            }
            if (rc2 >= nbk && !fr.note2[0])
                snprintf(fr.note2, sizeof fr.note2, "no block can keep its activations within %.2f GiB", fr.budget / GiB);
            if (rc2 >= 0 && rc2 < nbk) {
                fprintf(stderr, "cameo bench blocks: the full step with the first %d of %d blocks recomputed\n", rc2, nbk);
                run_full_step(&o, blk, pm.measured ? pm.saved : 0, rc2, 1, &fr);
            }
            const full_run *r1 = &fr.run[1];
            out("#### Fewer blocks recomputed (`train.recompute: N`, `--recompute`)\n\n");
            if (r1->ran) {
                int kept = nbk - r1->rc;
                out("The first %d of the %d blocks under recompute scopes, the last %d keeping their activations (%s; "
                    "memory the allocator may reach: %.2f GiB — free + the allocator's own, less 1 GiB and 3 %% of the total (train/recompute_auto.c) — against the "
                    "all-recompute peak plus each kept block's fwd+bwd peak from the table above).\n\n",
                    r1->rc, nbk, kept, o.rc2 == -1 ? "chosen to fit" : "--recompute", fr.budget / GiB);
                out("| recompute | forward ms (host) | backward ms (host) | optimizer ms | step ms | MFU | peak GiB |\n"
                    "|---|---:|---:|---:|---:|---:|---:|\n");
                for (int k = 0; k < 2; k++) {
                    const full_run *r = &fr.run[k];
                    double t = r->fwd + r->bwd + (fr.optim ? r->opt : adamw_per * fr.n_ad);
                    char what[48];
                    if (k == 0) snprintf(what, sizeof what, "all %d blocks", nbk);
                    else snprintf(what, sizeof what, "first %d of %d", r->rc, nbk);
                    out("| %s | %.1f (%.1f) | %.1f (%.1f) | %s%.1f | %.1f | %.1f%% | %.2f |\n", what, r->fwd * 1e3,
                        r->fwd_issue * 1e3, r->bwd * 1e3, r->bwd_issue * 1e3,
                        fr.optim ? "" : "(slab) ", (fr.optim ? r->opt : adamw_per * fr.n_ad) * 1e3, r->step * 1e3,
                        100.0 * f_run / t / 1e12 / peak, r->peak / GiB);
                }
                // both runs start from the same weights and inputs and take the same updates: the losses
                // differ by summation order only (a leaf read by several blocks sums its parts differently)
                double l0 = fr.run[0].loss, rel = fabs(r1->loss - l0) / fmax(fabs(l0), 1e-30);
                out("\n(host): the time until the last launch of the pass returned, before the sync — close to the "
                    "pass's time, the host's dispatch sets the pace.\n");
                out("\nLoss of the last step: %.6g, all recompute %.6g (relative difference %.2g: the same weights, "
                    "inputs and updates, so only summation order separates them)%s\n\n", r1->loss, l0, rel,
                    isfinite(r1->loss) && rel <= 1e-2 ? "" : " **DIFFERS**");
                if (r1->prof) out("%s\n", r1->prof);
            } else
                out("Not run: %s.\n\n", fr.note2[0] ? fr.note2 : "--recompute off");
            // the realistic job: 8 ranks with ZeRO-1 (optimizer.shard_state), each keeping 1/8 of the
            // AdamW state — this run's measured peak less the 7/8 it would not hold, against 80 GB
            if (fr.optim) {
                out("Per card on 8 ranks with the AdamW state sharded (ZeRO-1: this run's peak less 7/8 of its %.2f GiB of "
                    "state), against an 80 GB card's %.2f GiB:", fr.state / GiB, CARD_80GB / GiB);
                for (int k = 0; k < 2; k++) {
                    const full_run *r = &fr.run[k];
                    if (!r->ran) continue;
                    const double z = r->peak - fr.state * 7.0 / 8.0;
                    out("%s %s %.2f GiB (%s)", k ? ";" : "", k ? "fewer blocks recomputed" : "every block recomputed", z / GiB,
                        card_verdict(z));
                }
                out(".\n\n");
            }
            // the whole step: these runs' random features replaced by the encoders measured apart
            if (enc_full && o.nd == nd && o.ns == ns && o.proj == PROJ_FULL) {
                // then model.text_cache (T5 / CLIP read, cameo cache-text), model.ref_cache too (SigLIP /
                // DINOv2 read, cameo cache-refs) and model.latent_cache (the VAE's, cameo cache-latents):
                // their time and FLOPs out of the step
                char head[4][400];
                snprintf(head[0], sizeof head[0], "The whole step with its frozen encoders (measured apart above, %.1f ms and %.2f "
                         "TFLOP a step; model.text_device: model):", (em.vision + em.vae + em.text) * 1e3, (f_vis + f_vae + f_txt) / 1e12);
                snprintf(head[1], sizeof head[1], "The same with the text cached (model.text_cache: T5 / CLIP outputs read, not run; "
                         "%.1f ms and %.2f TFLOP less, 8.9 GiB of T5 weights off the card):", em.text * 1e3, f_txt / 1e12);
                snprintf(head[2], sizeof head[2], "With the references cached too (model.ref_cache: SigLIP / DINOv2 features read, "
                         "not run; %.1f ms and %.2f TFLOP less again; the VAE alone runs; the caches' reads, `bench text-cache` / "
                         "`ref-cache`, overlap the step before and are not counted):", em.vision * 1e3, f_vis / 1e12);
                snprintf(head[3], sizeof head[3], "With the latents cached too (model.latent_cache: the VAE's moments read, not run; "
                         "%.1f ms and %.2f TFLOP less again; no frozen encoder runs, the steps above):", em.vae * 1e3, f_vae / 1e12);
                const double te[4] = {em.vision + em.vae + em.text, em.vision + em.vae, em.vae, 0},
                             fe[4] = {f_vis + f_vae + f_txt, f_vis + f_vae, f_vae, 0};
                for (int v = 0; v < 4; v++) {
                    out("%s", head[v]);
                    for (int k = 0; k < 2; k++) {
                        const full_run *r = &fr.run[k];
                        if (!r->ran) continue;
                        double t = r->fwd + r->bwd + (fr.optim ? r->opt : adamw_per * fr.n_ad) + te[v];
                        out("%s %s %.1f ms, MFU %.1f%%", k ? ";" : "", k ? "fewer blocks recomputed" : "every block recomputed",
                            t * 1e3, 100.0 * (f_run + fe[v]) / t / 1e12 / peak);
                    }
                    out(".\n\n");
                }
            }
        }
        free(fr.run[0].prof);
        free(fr.run[1].prof);
        out_flush();
    }
    return md_close(o.md);
}
