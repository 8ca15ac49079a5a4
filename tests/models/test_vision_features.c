// test_vision_features.c — InstantCharacter's assembled features (spec §2.4) from the tiny
// SigLIP and DINOv2 fixtures against the PyTorch assembly in scripts/fixtures_vision.py:
// low [2, 3, 30, 30] and high [2, 3, 60, 60] in [0, 1] -> low_res_deep [2, 16, 64],
// low_res_shallow [2, 48, 64] (layers 1, 2, 3 of each), high_res_deep [2, 64, 64] (crops TL, TR,
// BL, BR), and the gradients w.r.t. both images.
#include <string.h>
#include "autograd/autograd.h"
#include "models/safetensors.h"
#include "models/vision_features.h"
#include "fixture.h"
#include "testutil.h"

// the shared error, and INFINITY when the shapes differ (not only the element counts)
static double rel_err(cm_tensor *got, cm_tensor *want) {
    return got && tensor_same_shape(got, want) ? fixture_rel_err(got, want) : INFINITY;
}

int main(void) {
    char err[512];
    TEST_CHECK(VISION_FEAT_IC.n_shallow == 3 && VISION_FEAT_IC.siglip_layers[2] == 26 && VISION_FEAT_IC.dino_layers[0] == 9,
               "InstantCharacter's shallow layers");
    siglip_config sc;
    dino_config dc;
    TEST_CHECK(siglip_detect("tests/fixtures/siglip/weights.safetensors", &sc, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(dino_detect("tests/fixtures/dinov2/weights.safetensors", &dc, err, sizeof err) == 0, "%s", err);
    // one registry per tower: each loads from its own file (strict about missing keys)
    siglip_model sig;
    dino_model dino;
    cm_params pss, psd;
    params_init_registry(&pss, CM_DEV_CPU, CM_F32, false);
    params_init_registry(&psd, CM_DEV_CPU, CM_F32, false);
    siglip_init(&sig, &sc, &pss);
    dino_init(&dino, &dc, &psd);
    TEST_CHECK(params_load(&pss, "tests/fixtures/siglip/weights.safetensors", NULL, false, NULL, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(params_load(&psd, "tests/fixtures/dinov2/weights.safetensors", NULL, false, NULL, err, sizeof err) == 0, "%s", err);

    st_file *io = st_open("tests/fixtures/dinov2/features.safetensors", err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_vision_features");
    cm_tensor *low = fixture_tensor(io, "low"), *high = fixture_tensor(io, "high");
    tensor_set_requires_grad(low, true);
    tensor_set_requires_grad(high, true);
    vision_feat_config fc = {.n_shallow = 3, .siglip_layers = {1, 2, 3}, .dino_layers = {1, 2, 3}};
    vision_features f;
    vision_features_compute(&sig, &dino, &fc, low, high, &f);
    const char *names[3] = {"low_res_deep", "low_res_shallow", "high_res_deep"};
    cm_tensor *got[3] = {f.low_res_deep, f.low_res_shallow, f.high_res_deep};
    cm_tensor *loss = NULL;
    for (int i = 0; i < 3; i++) {
        char wn[64];
        cm_tensor *want = fixture_tensor(io, names[i]);
        snprintf(wn, sizeof wn, "w_%s", names[i]);
        cm_tensor *w = fixture_tensor(io, wn);
        // the towers' own tolerance (f32, ~1e-6), plus per-tower normalisation of [0, 1] pixels
        double e = rel_err(got[i], want);
        printf("%s max rel err %.3g\n", names[i], e);
        TEST_CHECK(e < 1e-5, "%s rel err %.3g", names[i], e);
        cm_tensor *l = fixture_dot(got[i], w);
        if (loss) {
            cm_tensor *s = op_add(loss, l);
            tensor_release(loss);
            tensor_release(l);
            loss = s;
        } else {
            loss = l;
        }
        tensor_release(want);
        tensor_release(w);
    }
    autograd_backward(loss, NULL);
    cm_tensor *gl = fixture_tensor(io, "grad_low"), *gh = fixture_tensor(io, "grad_high");
    double el = low->grad ? rel_err(low->grad, gl) : INFINITY, eh = high->grad ? rel_err(high->grad, gh) : INFINITY;
    printf("d loss / d low max rel err %.3g, d loss / d high max rel err %.3g\n", el, eh);
    // back through both towers: allow 1e-4
    TEST_CHECK(el < 1e-4 && eh < 1e-4, "image gradients rel err %.3g, %.3g", el, eh);
    cm_tensor *tmp[] = {gl, gh, loss, low, high};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    vision_features_release(&f);
    TEST_CHECK(f.low_res_deep == NULL, "release clears");

    // under no-grad (as in training): nothing is recorded
    autograd_no_grad_push();
    low = fixture_tensor(io, "low");
    high = fixture_tensor(io, "high");
    vision_features_compute(&sig, &dino, &fc, low, high, &f);
    TEST_CHECK(autograd_tape_len() == 0 && !tensor_needs_grad(f.high_res_deep), "no-grad forward recorded %lld nodes", (long long)autograd_tape_len());
    vision_features_release(&f);
    tensor_release(low);
    tensor_release(high);
    autograd_no_grad_pop();

    st_close(io);
    siglip_free(&sig);
    dino_free(&dino);
    params_free(&pss);
    params_free(&psd);
    return test_summary("test_vision_features");
}
