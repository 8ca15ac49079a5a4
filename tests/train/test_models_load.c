// test_models_load.c — the published-weights path of the trainer: the tiny preset is written out
// in the published layouts (a diffusers FLUX pipeline folder with transformer/, vae/,
// text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, plus SigLIP and DINOv2 folders and an
// adapter file), read back through ic_models_load (size detection, name mapping, tokenizer
// lookup), and must give the very same training loss on the same batch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "autograd/autograd.h"
#include "data/build.h"
#include "data/demo.h"
#include "data/loader.h"
#include "testutil.h"
#include "models/clip_text.h"
#include "train/ref_cache.h"
#include "train/text_cache.h"
#include "models/safetensors.h"
#include "train/config.h"
#include "train/models.h"
#include "train/paths.h"
#include "train/step.h"

static char dir[64];

static void save(const cm_params *ps, const char *sub, const char *file, const char *config_json) {
    char d[256], p[320], err[512];
    snprintf(d, sizeof d, "%s/%s", dir, sub);
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/%s", d, file);
    TEST_CHECK(params_save(ps, p, false, CM_F32, err, sizeof err) == 0, "save %s: %s", p, err);
    // the run's adapter.safetensors is written so: marked as PyTorch's, as export and checkpoints are
    st_file *sf = st_open(p, err, sizeof err);
    TEST_CHECK(sf && st_meta(sf, "format") && !strcmp(st_meta(sf, "format"), "pt"), "%s: metadata format 'pt'", p);
    st_close(sf);
    if (config_json) {
        snprintf(p, sizeof p, "%s/config.json", d);
        FILE *f = fopen(p, "w");
        fputs(config_json, f);
        fclose(f);
    }
}

static void copy_file(const char *asset, const char *sub) {
    char src[1024], d[256], err[256], cmd[1600];
    TEST_CHECK(cameo_asset(src, sizeof src, asset, err, sizeof err) == 0, "%s", err);
    snprintf(d, sizeof d, "%s/%s", dir, sub);
    mkdir(d, 0755);
    snprintf(cmd, sizeof cmd, "cp %s %s/tokenizer.json", src, d);
    TEST_CHECK(system(cmd) == 0, "%s", cmd);
}

int main(void) {
    char err[1024];
    snprintf(dir, sizeof dir, "/tmp/cameo-load-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    train_config cfg;
    TEST_CHECK(train_config_parse(&cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "tiny", NULL, 0, err, sizeof err) == 0, "%s", err);
    ic_models a;
    TEST_CHECK(ic_models_init_tiny(&a, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 3, "default", err, sizeof err) == 0, "%s", err);

    // the published layouts; config.json only where the shapes cannot tell (heads, norm groups)
    char js[256];
    snprintf(js, sizeof js, "{\"num_attention_heads\": %d}", cfg.model.tiny_dims.vision_heads);
    save(&a.ps_flux, "transformer", "diffusion_pytorch_model.safetensors", NULL);
    save(&a.ps_vae, "vae", "diffusion_pytorch_model.safetensors", "{\"norm_num_groups\": 4, \"scaling_factor\": 0.3611, \"shift_factor\": 0.1159}");
    save(&a.ps_vision, "siglip", "model.safetensors", js);
    save(&a.ps_dino, "dinov2", "model.safetensors", js);
    save(&a.text.ps_t5, "text_encoder_2", "model.safetensors", NULL);
    const clip_text_model *cm = a.text.clip;
    snprintf(js, sizeof js, "{\"num_attention_heads\": %lld, \"eos_token_id\": %lld}", (long long)cm->cfg.heads,
             (long long)cm->cfg.eos_token_id);
    save(&a.text.ps_clip, "text_encoder", "model.safetensors", js);
    copy_file("configs/tiny/t5-tokenizer.json", "tokenizer_2");
    copy_file("configs/tiny/clip-tokenizer.json", "tokenizer");
    save(&a.ps_adapter, "adapter", "adapter.safetensors", NULL);

    char p[7][256];
    const char *subs[7] = {"transformer", "siglip", "dinov2", "vae", "text_encoder_2", "text_encoder", "adapter/adapter.safetensors"};
    for (int i = 0; i < 7; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, subs[i]);
    ic_model_paths mp = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], cfg.model.tiny_dims.text_len, 0, false};
    ic_models b;
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err) == 0, "load: %s", err);
    TEST_CHECK(params_count(&b.ps_flux, false) == params_count(&a.ps_flux, false), "FLUX size detected");
    TEST_CHECK(params_count(&b.ps_adapter, false) == params_count(&a.ps_adapter, false), "adapter size detected");
    TEST_CHECK(b.ref_size == a.ref_size, "reference size %d vs %d", b.ref_size, a.ref_size);

    // the same batch through both: the same loss to the last bit
    char data[128];
    snprintf(data, sizeof data, "%s/data", dir);
    demo_options d = demo_options_default();
    d.characters = 2, d.per_character = 2, d.size = 64;
    build_options bo = build_options_default();
    bo.quiet = 1, bo.bucket_resolution = 64, bo.bucket_step = 16;
    build_report rep;
    TEST_CHECK(demo_build(data, &d, &bo, &rep, err, sizeof err) == 0, "demo: %s", err);
    loader_config lc = loader_config_default();
    lc.path = data, lc.global_batch = 2, lc.resolution = 64, lc.bucket_step = 16, lc.ref_size = a.ref_size, lc.threads = 1;
    loader *L = loader_open(&lc, NULL);
    loader_batch batch;
    TEST_CHECK(L && loader_next(L, &batch) == 0, "a batch");
    step_opts so = {.ip_scale = 1.0, .guidance = 1.0, .ln_std = 1.0, .seed = 5};
    autograd_no_grad_push();
    cm_tensor *la = step_forward(&a, &batch, &so, 0, NULL), *lb = step_forward(&b, &batch, &so, 0, NULL);
    autograd_no_grad_pop();
    double va = tensor_get(la, 0), vb = tensor_get(lb, 0);
    printf("loss: preset %.9g, loaded %.9g\n", va, vb);
    TEST_CHECK(isfinite(va) && va == vb, "losses differ: %.9g vs %.9g", va, vb);
    // the towers alone from the same files (what `cameo cache-refs` loads): the batch's features
    // are the whole bundle's, bit for bit
    ic_models v;
    TEST_CHECK(ic_models_vision(&v, NULL, 3, p[1], p[2], 0, CM_DEV_CPU, CM_F32, err, sizeof err) == 0 && ic_models_towers(&v) &&
               v.ref_size == b.ref_size && !v.ps_flux.n && !v.text.t5, "the towers alone: %s", err);
    vision_features fb, fv;
    autograd_no_grad_push();
    step_reference_features(&b, batch.ref_siglip, batch.ref_dino, batch.B, batch.R, &fb);
    step_reference_features(&v, batch.ref_siglip, batch.ref_dino, batch.B, batch.R, &fv);
    autograd_no_grad_pop();
    int64_t nf = tensor_numel(fb.high_res_deep);
    float *xb = malloc((size_t)nf * 4), *xv = malloc((size_t)nf * 4);
    tensor_copy_to_host(fb.high_res_deep, CM_F32, xb);
    tensor_copy_to_host(fv.high_res_deep, CM_F32, xv);
    TEST_CHECK(nf == tensor_numel(fv.high_res_deep) && !memcmp(xb, xv, (size_t)nf * 4), "the towers alone give the bundle's features");
    free(xb), free(xv);
    vision_features_release(&fb), vision_features_release(&fv);
    ic_models_free(&v);
    tensor_release(la);
    tensor_release(lb);
    loader_close(L);
    ic_models_free(&b);

    // model.text_cache's side of the published folders: the encoders' identity from their files (a
    // changed byte of T5's weights changes it), and the bundle loaded without text encoders
    train_config cf = cfg;
    cf.model.tiny = false;
    snprintf(cf.model.t5, sizeof cf.model.t5, "%s", p[4]);
    snprintf(cf.model.clip, sizeof cf.model.clip, "%s", p[5]);
    text_cache_id id1, id2;
    TEST_CHECK(text_cache_identity(&cf, &id1, err, sizeof err) == 0 && id1.dim[0] == 512 &&
               id1.dim[1] == cfg.model.tiny_dims.text_dim && id1.dim[2] == cfg.model.tiny_dims.pooled_dim &&
               strstr(id1.encoders, p[4]), "identity of the published folders: %s", err);
    char wf[300];
    snprintf(wf, sizeof wf, "%s/model.safetensors", p[4]);
    FILE *f = fopen(wf, "r+b");
    TEST_CHECK(f && !fseek(f, -5, SEEK_END), "%s", wf);
    int byte = fgetc(f);
    fseek(f, -5, SEEK_END), fputc(byte ^ 1, f), fflush(f);
    TEST_CHECK(text_cache_identity(&cf, &id2, err, sizeof err) == 0 && id2.fingerprint != id1.fingerprint,
               "a changed weight changes the identity");
    fseek(f, -5, SEEK_END), fputc(byte, f), fclose(f);
    TEST_CHECK(text_cache_identity(&cf, &id2, err, sizeof err) == 0 && id2.fingerprint == id1.fingerprint, "restored: the same identity");
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, IC_TEXT_NONE, "default", 3, err, sizeof err) == 0 && !b.text.t5 &&
               b.text.joint_dim == cfg.model.tiny_dims.text_dim && b.text.t5_len == cfg.model.tiny_dims.text_len,
               "IC_TEXT_NONE: no encoders, their widths: %s", err);
    ic_models_free(&b);

    // model.ref_cache's side: the towers' identity from their files and the views' side, and the
    // bundle loaded without their weights (sizes, shallow layers and side kept)
    snprintf(cf.model.siglip, sizeof cf.model.siglip, "%s", p[1]);
    snprintf(cf.model.dinov2, sizeof cf.model.dinov2, "%s", p[2]);
    fstore_id r1;
    int64_t g = cfg.model.tiny_dims.vision_image / cfg.model.tiny_dims.vision_patch;
    TEST_CHECK(ref_cache_identity(&cf, &r1, err, sizeof err) == 0 && r1.dim[0] == g * g && r1.dim[1] == 2 * cfg.model.tiny_dims.vision_hidden &&
               r1.dim[2] == 3 && strstr(r1.encoders, p[1]) && strstr(r1.encoders, "28 px views"), "towers' identity: %s", err);
    cf.data.ref_size = 30;
    fstore_id r2;
    TEST_CHECK(ref_cache_identity(&cf, &r2, err, sizeof err) == 0 && r2.fingerprint != r1.fingerprint, "the views' side changes it");
    mp.no_towers = true;
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err) == 0 && !ic_models_towers(&b) &&
               b.ps_vision.n == 0 && b.ps_dino.n == 0 && b.vfc.n_shallow == 3 && b.ref_size == 28, "no_towers: %s", err);
    ic_models_free(&b);
    mp.no_towers = false;

    // the reference views' side (data.ref_size): any the SigLIP tower's 4 x 4 grid of 7 px patches
    // takes (28..34) — 30 is used —, 35 refused naming the key and the range; a config.json's
    // image_size is the tower's own side (the published so400m says 384 for a 27 x 27 grid of 14)
    mp.ref_size = 30;
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err) == 0 && b.ref_size == 30,
               "data.ref_size 30 on a 28 px tower: %s (%d)", err, b.ref_size);
    ic_models_free(&b);
    mp.ref_size = 35;
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err) != 0 &&
                   strstr(err, "data.ref_size 35") && strstr(err, "28..34"), "data.ref_size 35 refused: %s", err);
    ic_models_free(&b);
    // parts that do not fit one another are refused from their headers, naming both files: a T5 of
    // another width, an adapter made for another FLUX (one IP module per block), a VAE of other
    // latents, towers of another width than the adapter's projector reads
    train_tiny_dims d2 = cfg.model.tiny_dims;
    d2.text_dim *= 2, d2.latent_channels *= 2, d2.vision_hidden *= 2;
    train_tiny_dims d3 = cfg.model.tiny_dims;
    d3.flux_single += 1;
    ic_models o, o3;
    TEST_CHECK(ic_models_init_tiny(&o, &d2, CM_DEV_CPU, CM_F32, false, 4, "default", err, sizeof err) == 0, "%s", err);
    TEST_CHECK(ic_models_init_tiny(&o3, &d3, CM_DEV_CPU, CM_F32, false, 4, "default", err, sizeof err) == 0, "%s", err);
    char bak[320], cmd[1024];
    struct { const cm_params *ps; const char *sub, *file, *js, *want1, *want2; } mis[] = {
        {&o.text.ps_t5, "text_encoder_2", "model.safetensors", NULL, "T5 encoder", "context_embedder"},
        {&o3.ps_adapter, "adapter", "adapter.safetensors", NULL, "IP modules", "one module per block"},
        {&o.ps_vae, "vae", "diffusion_pytorch_model.safetensors", "{\"norm_num_groups\": 4}", "latent channels", "input channels"},
        {&o.ps_vision, "siglip", "model.safetensors", NULL, "vision features", "DINOv2"},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(bak, sizeof bak, "%s/%s.bak", dir, mis[i].sub);
        snprintf(cmd, sizeof cmd, "cp -r %s/%s %s", dir, mis[i].sub, bak);
        TEST_CHECK(system(cmd) == 0, "%s", cmd);
        if (mis[i].ps == &o.ps_vision) snprintf(js, sizeof js, "{\"num_attention_heads\": %d}", d2.vision_heads);
        save(mis[i].ps, mis[i].sub, mis[i].file, mis[i].ps == &o.ps_vision ? js : mis[i].js);
        mp.ref_size = 0;
        int rc = ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err);
        printf("%s of another size: %s\n", mis[i].sub, err);
        TEST_CHECK(rc != 0 && strstr(err, mis[i].want1) && strstr(err, mis[i].want2) && strstr(err, dir),
                   "%s of another size refused naming it: %s", mis[i].sub, err);
        ic_models_free(&b);
        snprintf(cmd, sizeof cmd, "rm -rf %s/%s && mv %s %s/%s", dir, mis[i].sub, bak, dir, mis[i].sub);
        TEST_CHECK(system(cmd) == 0, "%s", cmd);
    }
    ic_models_free(&o);
    ic_models_free(&o3);
    TEST_CHECK(ic_models_load(&b, &mp, CM_DEV_CPU, CM_F32, false, "default", 3, err, sizeof err) == 0, "restored: %s", err);
    ic_models_free(&b);

    siglip_config sc;
    snprintf(js, sizeof js, "{\"vision_config\": {\"num_attention_heads\": %d, \"image_size\": 31}}", cfg.model.tiny_dims.vision_heads);
    save(&a.ps_vision, "siglip", "model.safetensors", js);
    TEST_CHECK(siglip_detect(p[1], &sc, err, sizeof err) == 0 && sc.image_size == 31, "config.json's image_size: %lld (%s)",
               (long long)sc.image_size, err);
    ic_models_free(&a);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_CHECK(system(cmd) == 0, "cleanup");
    return test_summary("test_models_load");
}
