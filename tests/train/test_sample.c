// test_sample.c — the flow-matching sampler: its sigma schedule equals diffusers' (numbers from
// FlowMatchEulerDiscreteScheduler with FLUX.1-dev's scheduler config and the pipeline's mu), it is
// deterministic by seed, the subject scale 0 ignores the reference, and a nonzero one uses it.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval/sample.h"
#include "testutil.h"
#include "train/config.h"

static bool same(const cm_tensor *a, const cm_tensor *b) {
    return tensor_numel(a) == tensor_numel(b) && !memcmp(tensor_data(a), tensor_data(b), tensor_nbytes(a));
}

int main(void) {
    // diffusers 0.33+: s.set_timesteps(sigmas=np.linspace(1, 1/n, n), mu=calculate_shift(L, 256, 4096, 0.5, 1.15))
    const struct { int n; int64_t L; double want[7]; } cases[] = {
        {4, 256, {1.0, 0.8318243, 0.6224594, 0.3546612, 0.0}},
        {6, 64, {1.0, 0.8886414, 0.7614503, 0.6147919, 0.4438263, 0.2419647, 0.0}},
        {5, 1024, {1.0, 0.8824973, 0.737974, 0.555899, 0.3194513, 0.0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double s[8];
        eval_sigmas(cases[c].n, cases[c].L, s);
        for (int i = 0; i <= cases[c].n; i++) TEST_NEAR(s[i], cases[c].want[i], 1e-7, 0, "sigma");
    }

    char err[512];
    train_config cfg;
    TEST_CHECK(train_config_parse(&cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "tiny", NULL, 0, err, sizeof err) == 0, "%s", err);
    ic_models m;
    TEST_CHECK(ic_models_init_tiny(&m, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 4, "default", err, sizeof err) == 0, "%s", err);
    cm_params pd;
    params_init_registry(&pd, CM_DEV_CPU, CM_F32, false);
    vae_decoder dec;
    vae_decoder_init(&dec, &m.vae.cfg, &pd);
    params_randomize(&pd, 9);

    int R = m.ref_size;
    size_t nv = 5 * 3 * (size_t)R * R;
    float *s1 = malloc(nv * 4), *d1 = malloc(nv * 4), *s2 = malloc(nv * 4), *d2 = malloc(nv * 4);
    for (size_t i = 0; i < nv; i++) {  // two different references
        s1[i] = d1[i] = sinf(0.01f * (float)i);
        s2[i] = d2[i] = cosf(0.037f * (float)i);
    }
    const char *prompts[1] = {"a small red character waving"};
    eval_sample_opts o = {.steps = 3, .guidance = 3.5, .ip_scale = 0.9, .width = 32, .height = 32, .seed = 11};
    cm_tensor *a = eval_sample(&m, &dec, 1, prompts, s1, d1, &o), *a2 = eval_sample(&m, &dec, 1, prompts, s1, d1, &o);
    TEST_CHECK(a->ndim == 4 && a->shape[1] == 3 && a->shape[2] == 32 && a->shape[3] == 32, "image [1, 3, 32, 32]");
    bool finite = true;
    for (int64_t i = 0; i < tensor_numel(a); i++) finite &= isfinite(((float *)tensor_data(a))[i]);
    TEST_CHECK(finite, "finite pixels");
    TEST_CHECK(same(a, a2), "same seed, same image");
    cm_tensor *b = eval_sample(&m, &dec, 1, prompts, s2, d2, &o);
    TEST_CHECK(!same(a, b), "the reference changes the image at scale 0.9");
    o.ip_scale = 0;
    cm_tensor *c0 = eval_sample(&m, &dec, 1, prompts, s1, d1, &o), *c1 = eval_sample(&m, &dec, 1, prompts, s2, d2, &o);
    TEST_CHECK(same(c0, c1), "scale 0: the reference is ignored (plain FLUX)");
    o.seed = 12;
    cm_tensor *d = eval_sample(&m, &dec, 1, prompts, s1, d1, &o);
    TEST_CHECK(!same(c0, d), "another seed, another image");
    cm_tensor *all[] = {a, a2, b, c0, c1, d};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_release(all[i]);
    free(s1); free(d1); free(s2); free(d2);
    vae_decoder_free(&dec);
    params_free(&pd);
    ic_models_free(&m);
    return test_summary("test_sample");
}
