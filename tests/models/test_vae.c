// test_vae.c — the VAE against diffusers' AutoencoderKL (tiny random fixture from
// scripts/fixtures_vae.py: 2 levels (8, 16), 2 resnets per level, mid attention, 4 groups,
// 4 latents): shape detection, loading the encoder and the decoder separately, the latent mean
// and log-variance, a sample from given noise, latent scaling, the decoded image, gradients
// w.r.t. the image and the latent, the full-size parameter counts.
#include <string.h>
#include "autograd/autograd.h"
#include "models/safetensors.h"
#include "models/vae.h"
#include "fixture.h"
#include "testutil.h"

#define WEIGHTS "tests/fixtures/vae/weights.safetensors"

static void report(const char *what, double e, double tol) {
    printf("vae %s max rel err %.3g\n", what, e);
    TEST_CHECK(e < tol, "%s rel err %.3g (tolerance %.g)", what, e, tol);
}

int main(void) {
    char err[512];
    // full size without allocating: diffusers AutoencoderKL(FLUX config) encoder / decoder
    TEST_CHECK(vae_encoder_param_count(&VAE_FLUX) == 34274208, "FLUX encoder %lld", (long long)vae_encoder_param_count(&VAE_FLUX));
    TEST_CHECK(vae_decoder_param_count(&VAE_FLUX) == 49545475, "FLUX decoder %lld", (long long)vae_decoder_param_count(&VAE_FLUX));
    cm_params meta;
    params_init_meta(&meta, CM_BF16);
    vae_encoder fe;
    vae_decoder fd;
    vae_encoder_init(&fe, &VAE_FLUX, &meta);
    vae_decoder_init(&fd, &VAE_FLUX, &meta);
    TEST_CHECK(params_count(&meta, false) == 34274208 + 49545475, "FLUX VAE registered %lld", (long long)params_count(&meta, false));
    TEST_CHECK(params_find(&meta, "encoder.down_blocks.2.downsamplers.0.conv.weight") && !params_find(&meta, "encoder.down_blocks.3.downsamplers.0.conv.weight") &&
               params_find(&meta, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight") && params_find(&meta, "encoder.mid_block.attentions.0.to_out.0.weight"),
               "FLUX VAE key names");
    vae_encoder_free(&fe);
    vae_decoder_free(&fd);
    params_free(&meta);

    vae_config c;
    TEST_CHECK(vae_detect(WEIGHTS, &c, err, sizeof err) == 0, "detect: %s", err);
    TEST_CHECK(c.nlevels == 2 && c.ch[0] == 8 && c.ch[1] == 16 && c.latent == 4 && c.layers_per_block == 2 && c.groups == 4 &&
               c.mid_attn && c.in_channels == 3 && c.out_channels == 3 && fabs(c.scaling - 0.3611) < 1e-12 && fabs(c.shift - 0.1159) < 1e-12,
               "detected levels %d ch %lld,%lld latent %lld lpb %d groups %lld", c.nlevels, (long long)c.ch[0], (long long)c.ch[1],
               (long long)c.latent, c.layers_per_block, (long long)c.groups);
    TEST_CHECK(vae_detect("tests/fixtures/siglip/weights.safetensors", &c, err, sizeof err) == -1 && strstr(err, "AutoencoderKL"),
               "detecting a VAE in a SigLIP file: %s", err);
    vae_detect(WEIGHTS, &c, err, sizeof err);

    // the encoder alone (training): the decoder's keys are extra
    cm_params pe, pd;
    params_init_registry(&pe, CM_DEV_CPU, CM_F32, false);
    params_init_registry(&pd, CM_DEV_CPU, CM_F32, false);
    vae_encoder enc;
    vae_decoder dec;
    vae_encoder_init(&enc, &c, &pe);
    vae_decoder_init(&dec, &c, &pd);
    TEST_CHECK(params_count(&pe, false) == vae_encoder_param_count(&c), "encoder registered %lld counted %lld",
               (long long)params_count(&pe, false), (long long)vae_encoder_param_count(&c));
    TEST_CHECK(params_count(&pd, false) == vae_decoder_param_count(&c), "decoder registered %lld counted %lld",
               (long long)params_count(&pd, false), (long long)vae_decoder_param_count(&c));
    int ne = -1, nd = -1;
    TEST_CHECK(params_load(&pe, WEIGHTS, NULL, false, &ne, err, sizeof err) == 0, "encoder load: %s", err);
    TEST_CHECK(params_load(&pd, WEIGHTS, NULL, false, &nd, err, sizeof err) == 0, "decoder load: %s", err);
    TEST_CHECK(ne == pd.n && nd == pe.n, "extra keys: encoder load %d (want %d), decoder load %d (want %d)", ne, pd.n, nd, pe.n);

    st_file *io = st_open("tests/fixtures/vae/io.safetensors", err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_vae");

    // --- encoder: mean, logvar, sample, scaled latent, d/dx
    cm_tensor *x = fixture_tensor(io, "x");  // [1, 3, 16, 16]
    tensor_set_requires_grad(x, true);
    cm_tensor *noise = fixture_tensor(io, "noise");
    cm_tensor *logvar = NULL;
    cm_tensor *mean = vae_encode(&enc, x, &logvar);  // [1, 4, 8, 8]
    cm_tensor *sample = vae_encode_sample(&enc, x, noise);
    // f32 on both sides through ~10 convs, GroupNorms and one attention: ~1e-6 expected
    cm_tensor *want = fixture_tensor(io, "mean");
    report("latent mean", fixture_rel_err(mean, want), 1e-5);
    tensor_release(want);
    want = fixture_tensor(io, "logvar");
    report("latent logvar", fixture_rel_err(logvar, want), 1e-5);
    tensor_release(want);
    want = fixture_tensor(io, "sample");
    report("latent sample", fixture_rel_err(sample, want), 1e-5);
    tensor_release(want);
    cm_tensor *lat = vae_scale_latent(&c, mean);
    want = fixture_tensor(io, "latent");
    report("scaled latent (z - 0.1159) * 0.3611", fixture_rel_err(lat, want), 1e-5);
    tensor_release(want);
    cm_tensor *wm = fixture_tensor(io, "w_mean"), *ws = fixture_tensor(io, "w_sample");
    cm_tensor *l1 = fixture_dot(mean, wm), *l2 = fixture_dot(sample, ws), *loss = op_add(l1, l2);
    autograd_backward(loss, NULL);
    want = fixture_tensor(io, "grad_x");
    // back through the whole encoder: allow 1e-4
    report("d loss / d image", x->grad ? fixture_rel_err(x->grad, want) : INFINITY, 1e-4);
    for (int i = 0; i < pe.n; i++) TEST_CHECK(pe.items[i].t->grad == NULL, "frozen %s got a gradient", pe.items[i].name);
    cm_tensor *tmp[] = {want, wm, ws, l1, l2, loss, lat, mean, logvar, sample, noise, x};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);

    // --- decoder: decode(latent / scale + shift), d/d latent
    cm_tensor *zs = fixture_tensor(io, "latent");
    tensor_set_requires_grad(zs, true);
    cm_tensor *z = vae_unscale_latent(&c, zs);
    cm_tensor *img = vae_decode(&dec, z);  // [1, 3, 16, 16]
    want = fixture_tensor(io, "decoded");
    report("decoded image", fixture_rel_err(img, want), 1e-5);
    tensor_release(want);
    cm_tensor *wd = fixture_tensor(io, "w_decoded");
    loss = fixture_dot(img, wd);
    autograd_backward(loss, NULL);
    want = fixture_tensor(io, "grad_latent");
    report("d loss / d latent", zs->grad ? fixture_rel_err(zs->grad, want) : INFINITY, 1e-4);
    TEST_CHECK(autograd_tape_len() == 0, "tape not empty: %lld", (long long)autograd_tape_len());
    cm_tensor *tmp2[] = {want, wd, loss, img, z, zs};
    for (size_t i = 0; i < sizeof tmp2 / sizeof *tmp2; i++) tensor_release(tmp2[i]);

    st_close(io);
    vae_encoder_free(&enc);
    vae_decoder_free(&dec);
    params_free(&pe);
    params_free(&pd);
    return test_summary("test_vae");
}
