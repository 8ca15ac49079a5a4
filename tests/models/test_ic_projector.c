// test_ic_projector.c — the tiny InstantCharacter projector against the PyTorch reference
// (scripts/ic_reference.py via scripts/fixtures_ic.py): weights loaded through params_load by
// their published names, forward outputs, and gradients of
// loss = sum(tokens * w_tokens) + sum(temb * w_temb) for every parameter and the three inputs.
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "models/ic_adapter.h"
#include "models/safetensors.h"
#include "fixture.h"
#include "testutil.h"

#define FIX "tests/fixtures/ic/"

// the forward with an input of the wrong width must stop (exit 1) with a message naming the
// input: test_expect_death runs bad_forward in a child, which reads its arguments from bad
static struct {
    const ic_projector *p;
    cm_tensor *sh, *deep, *hi, *t;
} bad;

static void bad_forward(void) {
    cm_tensor *a, *b;
    ic_projector_fwd(bad.p, bad.sh, bad.deep, bad.hi, bad.t, &a, &b);
}

static void check_bad_input(const ic_projector *p, cm_tensor *sh, cm_tensor *deep, cm_tensor *hi, cm_tensor *t,
                            const char *name) {
    bad.p = p, bad.sh = sh, bad.deep = deep, bad.hi = hi, bad.t = t;
    test_expect_death(name, bad_forward, name, NULL);
}

int main(void) {
    char err[1024];
    // size detection from the weights (head splits from the metadata cameo / the script writes)
    ic_adapter_config cfg;
    if (ic_adapter_config_from_weights(FIX "weights.safetensors", &cfg, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    TEST_CHECK(cfg.n_ip == 0, "projector-only fixture, got %d IP modules", cfg.n_ip);
    TEST_CHECK(ic_projector_config_eq(&cfg.proj, &IC_PROJECTOR_TINY), "detected config differs from IC_PROJECTOR_TINY");

    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, true);
    ic_projector p;
    CM_CHECK(!ic_projector_init(&p, &cfg.proj, &ps, "image_proj", err, sizeof err), "test", "%s", err);
    int n_extra = -1;
    TEST_CHECK(!params_load(&ps, FIX "weights.safetensors", NULL, true, &n_extra, err, sizeof err), "load: %s", err);
    TEST_CHECK(n_extra == 0, "%d extra tensors", n_extra);
    TEST_CHECK(params_count(&ps, false) == 118008, "tiny projector has %lld parameters", (long long)params_count(&ps, false));

    st_file *io = st_open(FIX "io.safetensors", err, sizeof err);
    st_file *gr = st_open(FIX "grads.safetensors", err, sizeof err);
    CM_CHECK(io && gr, "test", "%s", err);
    const char *in_names[3] = {"low_res_shallow", "low_res_deep", "high_res_deep"};
    cm_tensor *in[3];
    for (int i = 0; i < 3; i++) {
        in[i] = fixture_tensor(io, in_names[i]);
        tensor_set_requires_grad(in[i], true);
    }
    cm_tensor *t = fixture_tensor(io, "t");
    cm_tensor *tokens, *temb;
    ic_projector_fwd(&p, in[0], in[1], in[2], t, &tokens, &temb);

    // Forward: f32 against a float64 reference through 4 blocks + 2 resampler layers; the
    // timestep sinusoid at t ~ 1000 is f32 in both (diffusers computes it in f32). Measured
    // ~3e-7 of the output's scale; 1e-5 leaves margin for other thread counts / BLAS builds.
    cm_tensor *ref_tokens = fixture_tensor(io, "tokens"), *ref_temb = fixture_tensor(io, "temb");
    double e_tok = fixture_rel_err(tokens, ref_tokens), e_temb = fixture_rel_err(temb, ref_temb);
    printf("forward: tokens rel err %.3g, temb rel err %.3g\n", e_tok, e_temb);
    TEST_CHECK(e_tok < 1e-5, "tokens rel err %.3g", e_tok);
    TEST_CHECK(e_temb < 1e-5, "temb rel err %.3g", e_temb);

    cm_tensor *w_tok = fixture_tensor(io, "w_tokens"), *w_temb = fixture_tensor(io, "w_temb");
    cm_tensor *m1 = op_mul(tokens, w_tok), *m2 = op_mul(temb, w_temb);
    cm_tensor *s1 = op_sum_all(m1), *s2 = op_sum_all(m2);
    cm_tensor *loss = op_add(s1, s2);
    cm_tensor *ref_loss = fixture_tensor(io, "loss");
    TEST_NEAR(tensor_get(loss, 0), tensor_get(ref_loss, 0), 1e-4, 1e-5, "loss");
    autograd_backward(loss, NULL);

    // Backward: each gradient within 1e-5 of its own scale (measured worst ~8e-7: f32
    // accumulation over the same depth as the forward plus the dW reductions over B*L rows).
    double worst = 0;
    const char *worst_name = "";
    int missing = 0;
    for (int i = 0; i < ps.n; i++) {
        cm_tensor *g = ps.items[i].t->grad;
        if (!g) {
            missing++;
            TEST_CHECK(g, "no gradient for %s", ps.items[i].name);
            continue;
        }
        cm_tensor *ref = fixture_tensor(gr, ps.items[i].name);
        double e = fixture_rel_err(g, ref);
        TEST_CHECK(e < 1e-5, "grad %s rel err %.3g", ps.items[i].name, e);
        if (e > worst || e != e) { worst = e; worst_name = ps.items[i].name; }
        tensor_release(ref);
    }
    printf("backward: %d parameter gradients, worst rel err %.3g (%s), %d missing\n", ps.n, worst, worst_name, missing);
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "input.%s", in_names[i]);
        cm_tensor *ref = fixture_tensor(gr, key);
        TEST_CHECK(in[i]->grad, "no gradient for %s", in_names[i]);
        double e = in[i]->grad ? fixture_rel_err(in[i]->grad, ref) : INFINITY;
        printf("backward: d%s rel err %.3g\n", in_names[i], e);
        TEST_CHECK(e < 1e-5, "grad %s rel err %.3g", in_names[i], e);
        tensor_release(ref);
    }

    // bad input: a feature width that is not the projector's, named in the message
    cm_tensor *narrow = tensor_zeros(CM_F32, SHAPE(2, 9, 31), CM_DEV_CPU);
    check_bad_input(&p, in[0], narrow, in[2], t, "low_res_deep");
    check_bad_input(&p, narrow, in[1], in[2], t, "low_res_shallow");
    check_bad_input(&p, in[0], in[1], narrow, t, "high_res_deep");
    tensor_release(narrow);

    tensor_release(m1); tensor_release(m2); tensor_release(s1); tensor_release(s2); tensor_release(loss);
    tensor_release(ref_loss); tensor_release(w_tok); tensor_release(w_temb);
    tensor_release(ref_tokens); tensor_release(ref_temb); tensor_release(tokens); tensor_release(temb);
    tensor_release(t);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    params_free(&ps);
    st_close(io);
    st_close(gr);
    return test_summary("test_ic_projector");
}
