// test_step_parity.c — one whole training step against PyTorch (scripts/fixtures_step.py): a tiny
// FLUX pipeline, SigLIP, DINOv2 and an adapter in their published layouts are loaded through
// ic_models_load, the fixture's loader batch goes through step_forward_with with the fixture's σ and
// ε, and the loss and the gradient of every adapter parameter must equal the diffusers +
// transformers reference (FLUX with the InstantCharacter IP processors, the projector
// transcription, SiglipVisionModel, Dinov2Model, AutoencoderKL, T5EncoderModel, CLIPTextModel).
// Every component is proven on its own elsewhere; this proves the assembly: view order, feature
// concatenation and shallow layers, latent scale / shift / packing, text padding and CLIP pooling,
// x_t and the target, t = 1000 σ for the projector, σ and guidance for FLUX, the IP scale, the loss.
// Before the step, the same parts are compared one by one (text, features, latents, projector,
// FLUX) so that a failure names the part.
//
// Tolerance: the reference runs in float64 on the stored (bf16-exact) weights and f32 inputs, so
// it is exact to ~1e-15; cameo runs in f32. The measured normalised errors max|a-b|/max|b| are
// ~6e-9 for the loss, 1e-7..1e-6 for the parts (T5 the largest) and ≤ 2e-6 for the gradients
// (worst: an IP RMSNorm scale; -O2 and the -O1 sanitizer build differ there). TOL = 1e-5 keeps
// 5x headroom for other BLAS builds and thread counts, while each assembly mistake tried (projector
// t = σ instead of 1000 σ, target x0 - ε, guidance 1, IP scale 1, views or crops reordered,
// shallow layers shifted) gives gradient errors of 0.15 or more.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "models/ic_projector.h"
#include "models/safetensors.h"
#include "models/tok_clip.h"
#include "models/tok_t5.h"
#include "testutil.h"
#include "train/models.h"
#include "train/paths.h"
#include "train/step.h"

#define FX "tests/fixtures/step"
#define TOL 1e-5

static st_file *batch_f, *grads_f;

static cm_tensor *fx(const st_file *f, const char *name) {
    char err[256];
    const st_entry *e = st_find(f, name);
    if (!e) cm_die("test_step_parity", "%s: no tensor %s (run scripts/fixtures_step.py)", st_path(f), name);
    cm_tensor *t = st_to_tensor(e, CM_DEV_CPU, err, sizeof err);
    if (!t) cm_die("test_step_parity", "%s: %s", st_path(f), err);
    return t;
}

// the fixture tensor as a malloc'd f32 array (bf16 entries converted exactly)
static float *fx_f32(const char *name, int64_t *n) {
    cm_tensor *t = fx(batch_f, name);
    *n = tensor_numel(t);
    float *v = malloc((size_t)*n * sizeof *v);
    for (int64_t i = 0; i < *n; i++) v[i] = (float)tensor_get(t, i);
    tensor_release(t);
    return v;
}

// max |got - want| / max |want|; INFINITY when the sizes differ, NaN propagates
static double rel_err(const cm_tensor *got, const cm_tensor *want) {
    int64_t n = tensor_numel(want);
    if (!got || tensor_numel(got) != n) return INFINITY;
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double a = tensor_get(got, i), b = tensor_get(want, i), d = fabs(a - b);
        if (!(d <= num)) num = d;
        if (fabs(b) > den) den = fabs(b);
    }
    return num / den;
}

static double check(const char *what, const cm_tensor *got, const char *name) {
    cm_tensor *want = fx(batch_f, name);
    double e = rel_err(got, want);
    printf("  %-28s %.3e\n", what, e);
    TEST_CHECK(e <= TOL, "%s differs from PyTorch: normalised error %.3e (tolerance %.0e)", what, e, TOL);
    tensor_release(want);
    return e;
}

static void copy_in(const char *dir, const char *sub, const char *src_files) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && cp %s %s/%s/", dir, sub, src_files, dir, sub);
    TEST_CHECK(system(cmd) == 0, "%s", cmd);
}

static void copy_tokenizer(const char *dir, const char *asset, const char *sub) {
    char src[1024], err[256], cmd[2048];
    TEST_CHECK(cameo_asset(src, sizeof src, asset, err, sizeof err) == 0, "%s", err);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && cp %s %s/%s/tokenizer.json", dir, sub, src, dir, sub);
    TEST_CHECK(system(cmd) == 0, "%s", cmd);
}

// [B, 5, 3, R, R] -> [5B, 3, R, R]: the full views, then sample b's crops at B + 4b + i (the
// reference's separate low / '(b n)' crop batches, as one batch)
static cm_tensor *views(const float *v, int B, int R) {
    cm_tensor *h = tensor_wrap_host(CM_F32, SHAPE(B, 5, 3, R, R), (void *)v);
    cm_tensor *full = op_slice(h, 1, 0, 1), *crops = op_slice(h, 1, 1, 5);
    cm_tensor *f = op_reshape(full, SHAPE(B, 3, R, R)), *c = op_reshape(crops, SHAPE(4 * B, 3, R, R));
    cm_tensor *all = op_concat(2, (cm_tensor *[]){f, c}, 0);
    cm_tensor *tmp[] = {h, full, crops, f, c};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return all;
}

static int count_grads(const cm_params *ps) {
    int n = 0;
    for (int i = 0; i < ps->n; i++) n += ps->items[i].t->grad != NULL;
    return n;
}

int main(void) {
    char err[1024];
    batch_f = st_open(FX "/batch.safetensors", err, sizeof err);
    grads_f = st_open(FX "/grads.safetensors", err, sizeof err);
    TEST_CHECK(batch_f && grads_f, "%s (run scripts/fixtures_step.py)", err);
    if (!batch_f || !grads_f) return test_summary("test_step_parity");

    // the pipeline folder as published: the fixture's weights + the tiny tokenizers
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/cameo-stepfx-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    copy_in(dir, "transformer", FX "/transformer/*");
    copy_in(dir, "vae", FX "/vae/*");
    copy_in(dir, "text_encoder", FX "/text_encoder/*");
    copy_in(dir, "text_encoder_2", FX "/text_encoder_2/*");
    copy_in(dir, "siglip", FX "/siglip/*");
    copy_in(dir, "dinov2", FX "/dinov2/*");
    copy_tokenizer(dir, "configs/tiny/t5-tokenizer.json", "tokenizer_2");
    copy_tokenizer(dir, "configs/tiny/clip-tokenizer.json", "tokenizer");

    const char *t5_len_s = st_meta(batch_f, "t5_len");
    TEST_CHECK(t5_len_s != NULL, "batch metadata t5_len");
    int t5_len = t5_len_s ? atoi(t5_len_s) : 0;
    char p[6][128];
    const char *subs[6] = {"transformer", "siglip", "dinov2", "vae", "text_encoder_2", "text_encoder"};
    for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, subs[i]);
    ic_model_paths mp = {p[0], p[1], p[2], p[3], p[4], p[5], FX "/adapter.safetensors", t5_len, 0, false};
    ic_models m;
    int rc = ic_models_load(&m, &mp, CM_DEV_CPU, CM_F32, false, "default", 0, err, sizeof err);
    TEST_CHECK(rc == 0, "ic_models_load: %s", err);
    if (rc) return test_summary("test_step_parity");

    // --- the batch, as the loader hands it ---
    int64_t n_tgt, n_vs, n_vd, n_eps, n_sig, n1;
    float *target = fx_f32("target", &n_tgt), *ref_s = fx_f32("ref_siglip", &n_vs), *ref_d = fx_f32("ref_dino", &n_vd);
    float *eps = fx_f32("eps", &n_eps), *sigma = fx_f32("sigma", &n_sig);
    float *guid = fx_f32("guidance", &n1), *ips = fx_f32("ip_scale", &n1);
    const st_entry *te = st_find(batch_f, "target"), *ve = st_find(batch_f, "ref_siglip");
    int B = (int)te->shape[0], H = (int)te->shape[2], W = (int)te->shape[3], R = (int)ve->shape[3];
    char *captions[8];
    int64_t ids[8];
    TEST_CHECK(B <= 8 && n_sig == B, "batch of %d", B);
    for (int b = 0; b < B; b++) {
        char key[32];
        snprintf(key, sizeof key, "caption.%d", b);
        const char *c = st_meta(batch_f, key);
        TEST_CHECK(c != NULL, "batch metadata %s", key);
        captions[b] = (char *)(c ? c : "");
        ids[b] = b;
    }
    loader_batch batch = {.B = B, .H = H, .W = W, .R = R, .target = target, .ref_siglip = ref_s, .ref_dino = ref_d,
                          .captions = captions, .sample_ids = ids, .ref_ids = ids};
    TEST_CHECK(m.ref_size == R, "reference size %d, views %d", m.ref_size, R);
    printf("fixture: B %d, target %dx%d, views %d, T5 %d tokens, CLIP %d positions, sigma (%g, %g), guidance %g, "
           "IP scale %g\n", B, H, W, R, m.text.t5_len, m.text.clip_len, sigma[0], sigma[B - 1], guid[0], ips[0]);
    // the shallow layers C picks for 3 and 4 layers (the fixture computed with the same)
    TEST_CHECK(m.vfc.n_shallow == 3 && m.vfc.siglip_layers[0] == 1 && m.vfc.siglip_layers[1] == 2 &&
               m.vfc.siglip_layers[2] == 3 && m.vfc.dino_layers[0] == 1 && m.vfc.dino_layers[1] == 2 &&
               m.vfc.dino_layers[2] == 4, "shallow layers (%d %d %d) (%d %d %d)", m.vfc.siglip_layers[0],
               m.vfc.siglip_layers[1], m.vfc.siglip_layers[2], m.vfc.dino_layers[0], m.vfc.dino_layers[1],
               m.vfc.dino_layers[2]);

    // --- the parts, one by one (no tape) ---
    printf("normalised error max|C - PyTorch| / max|PyTorch|:\n");
    autograd_no_grad_push();
    {  // token ids: FLUX's padding and truncation
        cm_tensor *t5w = fx(batch_f, "t5_ids"), *clw = fx(batch_f, "clip_ids");
        int L5 = (int)t5w->shape[1], Lc = (int)clw->shape[1], bad5 = 0, badc = 0;
        TEST_CHECK(L5 == m.text.t5_len && Lc == m.text.clip_len, "padded lengths %d/%d vs %d/%d", m.text.t5_len,
                   m.text.clip_len, L5, Lc);
        int32_t buf[512];
        for (int b = 0; b < B && L5 <= 512 && Lc <= 512; b++) {
            t5_tok_encode_padded(m.text.t5_tok, captions[b], L5, buf, NULL);
            for (int j = 0; j < L5; j++) bad5 += buf[j] != (int32_t)tensor_get(t5w, (int64_t)b * L5 + j);
            clip_tok_encode_padded(m.text.clip_tok, captions[b], Lc, buf, NULL);
            for (int j = 0; j < Lc; j++) badc += buf[j] != (int32_t)tensor_get(clw, (int64_t)b * Lc + j);
        }
        TEST_CHECK(bad5 == 0 && badc == 0, "token ids differ: T5 %d, CLIP %d", bad5, badc);
        tensor_release(t5w);
        tensor_release(clw);
    }
    cm_tensor *txt = NULL, *pooled = NULL;
    ic_text_encode(&m.text, (const char *const *)captions, B, m.dev, m.dtype, &txt, &pooled);
    check("T5 states", txt, "txt");
    check("CLIP pooled", pooled, "pooled");
    cm_tensor *vs = views(ref_s, B, R), *vd = views(ref_d, B, R);
    vision_features f = {0};
    vision_features_from_views(&m.sig, &m.dino, &m.vfc, B, vs, vd, &f);
    check("low_res_deep", f.low_res_deep, "low_res_deep");
    check("low_res_shallow", f.low_res_shallow, "low_res_shallow");
    check("high_res_deep", f.high_res_deep, "high_res_deep");
    cm_tensor *img = tensor_wrap_host(CM_F32, SHAPE(B, 3, H, W), target);
    cm_tensor *z = vae_encode(&m.vae, img, NULL), *zs = vae_scale_latent(&m.vae.cfg, z), *x0 = flux_pack_latents(zs);
    check("x0 (packed latents)", x0, "x0");
    cm_tensor *sig_t = tensor_wrap_host(CM_F32, SHAPE(B), sigma), *t1000 = op_scale(sig_t, 1000.0);
    cm_tensor *tokens = NULL, *temb = NULL;
    ic_projector_fwd(&m.adapter.proj, f.low_res_shallow, f.low_res_deep, f.high_res_deep, t1000, &tokens, &temb);
    check("projector tokens", tokens, "tokens");
    check("projector temb", temb, "temb");
    {  // FLUX on the reference's own inputs
        cm_tensor *xw = fx(batch_f, "x0"), *tw = fx(batch_f, "txt"), *pw = fx(batch_f, "pooled"), *kw = fx(batch_f, "tokens");
        int64_t N = xw->shape[1], C = xw->shape[2];
        float *xt = malloc((size_t)(B * N * C) * sizeof *xt);
        for (int64_t i = 0; i < B * N * C; i++) {
            double s = sigma[i / (N * C)];
            xt[i] = (float)((1 - s) * tensor_get(xw, i) + s * eps[i]);
        }
        cm_tensor *xth = tensor_wrap_host(CM_F32, SHAPE(B, N, C), xt);
        cm_tensor *g = tensor_full(CM_F32, SHAPE(B), guid[0], m.dev);
        int gh = H / m.vae_factor / 2, gw = W / m.vae_factor / 2;
        cm_tensor *pred = flux_forward(&m.flux, xth, tw, pw, sig_t, g, gh, gw, m.adapter.ip, kw, ips[0], 0);
        check("FLUX prediction", pred, "pred");
        cm_tensor *tmp[] = {xw, tw, pw, kw, xth, g, pred};
        for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
        free(xt);
    }
    cm_tensor *tmp[] = {txt, pooled, vs, vd, img, z, zs, x0, sig_t, t1000, tokens, temb};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    vision_features_release(&f);
    autograd_no_grad_pop();
    for (int i = 0; i < m.ps_adapter.n; i++) TEST_CHECK(m.ps_adapter.items[i].t->grad == NULL, "grad before the step");

    // --- the step ---
    step_opts so = {.ip_scale = ips[0], .guidance = guid[0], .tsample = STEP_T_LOGIT_NORMAL, .ln_std = 1.0,
                    .weighting = STEP_W_NONE, .recompute = 0, .seed = 1};
    TEST_CHECK(n_eps == (int64_t)B * (H / m.vae_factor / 2) * (W / m.vae_factor / 2) * m.flux_cfg.in_channels,
               "eps has %lld values", (long long)n_eps);
    cm_tensor *loss = step_forward_with(&m, &batch, &so, sigma, eps, 0, NULL);
    double lc = tensor_get(loss, 0);
    const char *lref = st_meta(batch_f, "loss_f64");
    double lp = lref ? atof(lref) : NAN, le = fabs(lc - lp) / fabs(lp);
    printf("  %-28s %.3e   (C %.9g, PyTorch %.9g)\n", "loss", le, lc, lp);
    TEST_CHECK(le <= TOL, "loss %.9g vs PyTorch %.9g: relative error %.3e", lc, lp, le);
    autograd_backward(loss, NULL);
    tensor_release(loss);

    double worst = 0;
    const char *worst_name = "";
    int compared = 0;
    for (int i = 0; i < m.ps_adapter.n; i++) {
        const cm_param *q = &m.ps_adapter.items[i];
        const st_entry *e = st_find(grads_f, q->name);
        TEST_CHECK(e != NULL, "no reference gradient for %s", q->name);
        TEST_CHECK(q->t->grad != NULL, "no gradient for %s", q->name);
        if (!e || !q->t->grad) continue;
        cm_tensor *want = st_to_tensor(e, CM_DEV_CPU, err, sizeof err);
        double ge = rel_err(q->t->grad, want);
        TEST_CHECK(ge <= TOL, "d loss / d %s: normalised error %.3e", q->name, ge);
        if (!(ge <= worst)) worst = ge, worst_name = q->name;
        compared++;
        tensor_release(want);
    }
    printf("  %-28s %.3e   (worst of %d tensors: %s)\n", "adapter gradients", worst, compared, worst_name);
    TEST_CHECK(compared == m.ps_adapter.n && compared == st_count(grads_f), "%d of %d adapter gradients compared (%d in the fixture)",
               compared, m.ps_adapter.n, st_count(grads_f));
    int frozen = count_grads(&m.ps_flux) + count_grads(&m.ps_vision) + count_grads(&m.ps_dino) + count_grads(&m.ps_vae) +
                 count_grads(&m.text.ps_t5) + count_grads(&m.text.ps_clip);
    TEST_CHECK(frozen == 0, "%d frozen weights got a gradient", frozen);

    free(target), free(ref_s), free(ref_d), free(eps), free(sigma), free(guid), free(ips);
    ic_models_free(&m);
    st_close(batch_f);
    st_close(grads_f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_CHECK(system(cmd) == 0, "cleanup");
    return test_summary("test_step_parity");
}
