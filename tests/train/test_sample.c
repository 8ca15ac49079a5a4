// test_sample.c — the flow-matching sampler: its sigma schedule equals diffusers' (numbers from
// FlowMatchEulerDiscreteScheduler with FLUX.1-dev's scheduler config and the pipeline's mu), it is
// the times each step hands the projector and the transformer round as the pipeline's do, it is
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

    // the times of FLUX.1-dev's 28 steps at 1024^2 in bf16, from FlowMatchEulerDiscreteScheduler and
    // the pipeline's loop: t = timesteps[i].to(bf16) (the projector's), t / 1000 in bf16 (the
    // transformer's sigma). Rounding sigma to bf16 and scaling it by 1000 puts 7 of the 28 (904,
    // 868, 760, 600, 408, 344, 274) a bf16 step away, and those steps' velocities 10x further from
    // diffusers' (lab/bf16_vs_diffusers.py).
    static const double t_bf16[28] = {1000, 988, 976, 964, 948, 936, 920, 904, 888, 868, 852, 828, 808, 784,
                                      760,  732, 704, 672, 636, 600, 560, 512, 462, 408, 344, 274, 195, 104.5};
    static const double s_bf16[28] = {1,          0.98828125, 0.9765625,   0.96484375,  0.94921875, 0.9375,
                                      0.921875,   0.90234375, 0.88671875,  0.8671875,   0.8515625,  0.828125,
                                      0.80859375, 0.78515625, 0.76171875,  0.73046875,  0.703125,   0.671875,
                                      0.63671875, 0.6015625,  0.55859375,  0.51171875,  0.462890625, 0.408203125,
                                      0.34375,    0.2734375,  0.1953125,   0.1044921875};
    double sig28[29];
    eval_sigmas(28, 4096, sig28);
    int t_off = 0;
    for (int i = 0; i < 28; i++) {
        double tv, sv;
        eval_step_times(sig28[i], CM_BF16, &tv, &sv);
        t_off += tv != t_bf16[i] || sv != s_bf16[i];
        if (tv != t_bf16[i] || sv != s_bf16[i])
            printf("step %d (sigma %.7f): t %g sigma %.9g, want %g %.9g\n", i, sig28[i], tv, sv, t_bf16[i], s_bf16[i]);
    }
    TEST_CHECK(t_off == 0, "bf16: %d of 28 steps' times differ from the FLUX pipeline's", t_off);
    // f32: timesteps[i] = f32 sigma * 1000 and t / 1000 in f32 (to an f32 step: the scheduler
    // shifts the sigmas in f32, eval_sigmas in f64)
    static const double t_f32[4] = {1000, 988.40863, 976.222473, 963.394409},
                        s_f32[4] = {1, 0.988408625, 0.976222456, 0.963394403};
    for (int i = 0; i < 4; i++) {
        double tv, sv;
        eval_step_times(sig28[i], CM_F32, &tv, &sv);
        TEST_NEAR(tv, t_f32[i], 0, 1.5e-7, "f32 t");
        TEST_NEAR(sv, s_f32[i], 0, 1.5e-7, "f32 sigma");
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
