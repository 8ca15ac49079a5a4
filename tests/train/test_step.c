// test_step.c — one InstantCharacter training step on tiny models and a generated dataset:
// the loss is finite, only the adapter receives gradients (FLUX and the encoders none), and
// AdamW on one fixed batch drives the loss down (the overfit test).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "data/build.h"
#include "data/demo.h"
#include "data/loader.h"
#include "testutil.h"
#include "train/config.h"
#include "train/models.h"
#include "train/optim.h"
#include "train/step.h"

static int count_grads(const cm_params *ps) {
    int n = 0;
    for (int i = 0; i < ps->n; i++) n += ps->items[i].t->grad != NULL;
    return n;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// the noise and σ keys of a run whose stages change grad_accum (4, 1, 3, 2; 40 steps each) are all
// distinct, and at grad_accum 1 the key is the step (runs without accumulation keep their noise)
static void test_micro_keys(void) {
    enum { STEPS = 40 };
    const int ga[] = {4, 1, 3, 2};
    uint64_t keys[STEPS * (4 + 1 + 3 + 2)];
    int n = 0;
    uint64_t step = 0;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < STEPS; i++, step++)
            for (int a = 0; a < ga[s]; a++) keys[n++] = step_micro_key(step, a);
    qsort(keys, n, sizeof keys[0], cmp_u64);
    int repeats = 0;
    for (int i = 1; i < n; i++) repeats += keys[i] == keys[i - 1];
    TEST_CHECK(repeats == 0, "%d of %d micro-batch keys repeat across stages of grad_accum 4, 1, 3, 2", repeats, n);
    TEST_CHECK(step_micro_key(123, 0) == 123, "the key at grad_accum 1 is the step");
}

int main(void) {
    test_micro_keys();
    char err[512], dir[] = "/tmp/cameo-test-step-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    demo_options d = demo_options_default();
    d.characters = 4;
    d.per_character = 3;
    d.size = 64;
    build_options bo = build_options_default();
    bo.quiet = 1;
    bo.bucket_resolution = 64;
    bo.bucket_step = 16;
    build_report rep;
    TEST_CHECK(demo_build(data, &d, &bo, &rep, err, sizeof err) == 0, "demo_build: %s", err);

    train_config cfg;
    TEST_CHECK(train_config_parse(&cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "tiny", NULL, 0, err, sizeof err) == 0,
               "config: %s", err);
    ic_models m;
    TEST_CHECK(ic_models_init_tiny(&m, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 1, "default", err, sizeof err) == 0, "models: %s", err);

    loader_config lc = loader_config_default();
    lc.path = data;
    lc.global_batch = 4;
    lc.resolution = 64;
    lc.bucket_step = 16;
    lc.ref_size = m.ref_size;
    lc.caption_drop = lc.ref_drop = 0;
    lc.threads = 1;
    loader *L = loader_open(&lc, NULL);
    TEST_CHECK(L != NULL, "loader_open");
    loader_batch b;
    TEST_CHECK(loader_next(L, &b) == 0, "loader_next");

    step_opts so = {.ip_scale = 1.0, .guidance = 1.0, .tsample = STEP_T_LOGIT_NORMAL, .ln_mean = 0, .ln_std = 1,
                    .weighting = STEP_W_NONE, .recompute = 0, .seed = 7};
    cm_tensor *loss = step_forward(&m, &b, &so, 0, NULL);
    double l0 = tensor_get(loss, 0);
    TEST_CHECK(isfinite(l0) && l0 > 0, "first loss %g", l0);
    autograd_backward(loss, NULL);
    tensor_release(loss);
    TEST_CHECK(count_grads(&m.ps_adapter) == m.ps_adapter.n, "every adapter parameter has a gradient (%d of %d)",
               count_grads(&m.ps_adapter), m.ps_adapter.n);
    TEST_CHECK(count_grads(&m.ps_flux) == 0, "FLUX got %d gradients", count_grads(&m.ps_flux));
    TEST_CHECK(count_grads(&m.ps_vision) + count_grads(&m.ps_dino) + count_grads(&m.ps_vae) == 0, "encoders got gradients");

    // train.vae_sample: the target latent is mean + exp(logvar / 2) · n, n ~ N(0, 1) keyed by (seed,
    // step, sample): the same at the same step, another at another; n recovered from the packed
    // latents is standard normal
    {
        step_batch sb;
        step_batch_upload(&m, &b, &sb);
        step_opts sv = so;
        sv.vae_sample = true;
        step_encoded em, s3, s3b, s4;
        step_encode(&m, &sb, &em, NULL);
        step_encode_at(&m, &sb, &sv, 3, &s3, NULL);
        step_encode_at(&m, &sb, &sv, 3, &s3b, NULL);
        step_encode_at(&m, &sb, &sv, 4, &s4, NULL);
        cm_tensor *lv = NULL, *mean = vae_encode(&m.vae, sb.target, &lv), *lvp = flux_pack_latents(lv);
        int64_t n = tensor_numel(em.x0);
        double sum = 0, sq = 0, same = 0, moved4 = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = tensor_get(s3.x0, i) - tensor_get(em.x0, i);
            double z = d / (m.vae.cfg.scaling * exp(0.5 * tensor_get(lvp, i)));
            sum += z, sq += z * z;
            same += tensor_get(s3.x0, i) == tensor_get(s3b.x0, i);
            moved4 += tensor_get(s3.x0, i) != tensor_get(s4.x0, i);
        }
        double mu = sum / n, sd = sqrt(sq / n - mu * mu);
        printf("vae_sample: the posterior draw's noise over %lld values: mean %.4f, std %.4f\n", (long long)n, mu, sd);
        TEST_CHECK(n >= 4096 && fabs(mu) < 0.05 && fabs(sd - 1) < 0.05, "the draw's noise is N(0, 1): mean %g std %g", mu, sd);
        TEST_CHECK(same == n && moved4 > 0.99 * n, "keyed by the step: %g of %lld equal at step 3 twice, %g moved at step 4",
                   same, (long long)n, moved4);
        tensor_release(lv), tensor_release(mean), tensor_release(lvp);
        step_encoded_release(&em), step_encoded_release(&s3), step_encoded_release(&s3b), step_encoded_release(&s4);
        step_batch_release(&sb);
    }

    // overfit one batch: same step index (same σ and noise), 40 AdamW updates
    optim o;
    optim_config oc = optim_config_default();
    oc.lr = 3e-3;
    oc.weight_decay = 0;
    cm_params *regs[1] = {&m.ps_adapter};
    TEST_CHECK(optim_init(&o, regs, 1, &oc, 0, -1, err, sizeof err) == 0, "optim: %s", err);
    optim_step_info info;
    optim_step(&o, oc.lr, &info);
    double last = l0;
    for (int it = 0; it < 40; it++) {
        cm_tensor *l = step_forward(&m, &b, &so, 0, NULL);
        last = tensor_get(l, 0);
        autograd_backward(l, NULL);
        tensor_release(l);
        optim_step(&o, oc.lr, &info);
    }
    printf("overfit one batch: loss %.5f -> %.5f\n", l0, last);
    TEST_CHECK(last < 0.9 * l0, "loss fell by less than 10%% on a fixed batch: %.5f -> %.5f", l0, last);

    // the frozen weights are unchanged byte for byte: compare with a fresh init from the same seed
    ic_models fresh;
    TEST_CHECK(ic_models_init_tiny(&fresh, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 1, "default", err, sizeof err) == 0, "fresh: %s", err);
    const cm_params *a[] = {&m.ps_flux, &m.ps_vision, &m.ps_dino, &m.ps_vae, &m.text.ps_t5, &m.text.ps_clip};
    const cm_params *f[] = {&fresh.ps_flux, &fresh.ps_vision, &fresh.ps_dino, &fresh.ps_vae, &fresh.text.ps_t5, &fresh.text.ps_clip};
    int changed = 0, compared = 0;
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < a[r]->n; i++, compared++)
            changed += memcmp(tensor_data(a[r]->items[i].t), tensor_data(f[r]->items[i].t), tensor_nbytes(a[r]->items[i].t)) != 0;
    TEST_CHECK(changed == 0 && compared > 50, "%d of %d frozen tensors changed", changed, compared);
    int moved = 0;
    for (int i = 0; i < m.ps_adapter.n; i++)
        moved += memcmp(tensor_data(m.ps_adapter.items[i].t), tensor_data(fresh.ps_adapter.items[i].t), tensor_nbytes(m.ps_adapter.items[i].t)) != 0;
    TEST_CHECK(moved == m.ps_adapter.n, "only %d of %d adapter tensors were updated", moved, m.ps_adapter.n);
    ic_models_free(&fresh);

    optim_free(&o);
    loader_close(L);
    ic_models_free(&m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_CHECK(system(cmd) == 0, "cleanup");
    return test_summary("test_step");
}
