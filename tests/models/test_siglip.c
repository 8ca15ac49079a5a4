// test_siglip.c — the SigLIP tower against transformers' SiglipVisionModel (tiny random fixture
// from scripts/fixtures_vision.py): shape detection, loading by published names (the pooling
// head counted as extra keys), the deep output, hidden states 1..3, the gradient w.r.t. pixels,
// the full-size parameter count, and a wrong image size.
#include <string.h>
#include "autograd/autograd.h"
#include "models/safetensors.h"
#include "models/siglip.h"
#include "fixture.h"
#include "testutil.h"

#define WEIGHTS "tests/fixtures/siglip/weights.safetensors"
#define IO "tests/fixtures/siglip/io.safetensors"

int main(void) {
    char err[512];
    // full size, no allocation
    TEST_CHECK(siglip_param_count(&SIGLIP_SO400M_P14_384) == 412987248, "so400m tower params %lld (transformers: 412,987,248 without the head)",
               (long long)siglip_param_count(&SIGLIP_SO400M_P14_384));

    siglip_config c;
    TEST_CHECK(siglip_detect(WEIGHTS, &c, err, sizeof err) == 0, "detect: %s", err);
    TEST_CHECK(c.hidden == 32 && c.layers == 4 && c.heads == 4 && c.mlp == 48 && c.patch == 7 && c.image_size == 28 && c.channels == 3,
               "detected %lld/%lld/%lld/%lld patch %lld image %lld", (long long)c.hidden, (long long)c.layers,
               (long long)c.heads, (long long)c.mlp, (long long)c.patch, (long long)c.image_size);
    TEST_CHECK(siglip_detect("tests/fixtures/dinov2/weights.safetensors", &c, err, sizeof err) == -1 && strstr(err, "patch_embedding"),
               "detecting SigLIP in a DINOv2 file: %s", err);
    siglip_detect(WEIGHTS, &c, err, sizeof err);

    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
    siglip_model m;
    siglip_init(&m, &c, &ps);
    TEST_CHECK(params_count(&ps, false) == siglip_param_count(&c), "registered %lld, counted %lld",
               (long long)params_count(&ps, false), (long long)siglip_param_count(&c));
    int n_extra = -1;
    TEST_CHECK(params_load(&ps, WEIGHTS, NULL, true, &n_extra, err, sizeof err) == -1 && strstr(err, "vision_model.head"),
               "strict load must name the head's extra keys: %s", err);
    TEST_CHECK(params_load(&ps, WEIGHTS, NULL, false, &n_extra, err, sizeof err) == 0, "load: %s", err);
    TEST_CHECK(n_extra == 11, "extra keys (pooling head) %d, want 11", n_extra);

    st_file *io = st_open(IO, err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_siglip");
    cm_tensor *x = fixture_tensor(io, "pixels");  // [2, 3, 30, 30]: 2 px unused by the valid patch conv
    tensor_set_requires_grad(x, true);
    const int idx[3] = {1, 2, 3};
    cm_tensor *hid[3];
    cm_tensor *deep = siglip_forward(&m, x, 3, idx, hid);  // [2, 16, 32]
    cm_tensor *want = fixture_tensor(io, "deep"), *w = fixture_tensor(io, "w_deep");
    // f32 throughout on both sides; 4 layers of LN / attention / tanh-GELU: ~1e-6 expected
    double e = fixture_rel_err(deep, want);
    printf("siglip deep max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-5, "deep rel err %.3g", e);
    cm_tensor *loss = fixture_dot(deep, w);
    tensor_release(want);
    tensor_release(w);
    for (int i = 0; i < 3; i++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "hidden.%d", idx[i]);
        snprintf(n2, sizeof n2, "w_hidden.%d", idx[i]);
        want = fixture_tensor(io, n1);
        w = fixture_tensor(io, n2);
        e = fixture_rel_err(hid[i], want);
        printf("siglip hidden_states[%d] max rel err %.3g\n", idx[i], e);
        TEST_CHECK(e < 1e-5, "hidden %d rel err %.3g", idx[i], e);
        cm_tensor *l2 = fixture_dot(hid[i], w), *s = op_add(loss, l2);
        tensor_release(loss);
        tensor_release(l2);
        loss = s;
        tensor_release(want);
        tensor_release(w);
        tensor_release(hid[i]);
    }
    autograd_backward(loss, NULL);
    want = fixture_tensor(io, "grad_pixels");
    // the gradient runs back through every layer: allow 1e-4
    e = x->grad ? fixture_rel_err(x->grad, want) : INFINITY;
    printf("siglip d loss / d pixels max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-4, "grad pixels rel err %.3g", e);
    for (int i = 0; i < ps.n; i++) TEST_CHECK(ps.items[i].t->grad == NULL, "frozen %s got a gradient", ps.items[i].name);
    tensor_release(want);
    tensor_release(loss);
    tensor_release(deep);

    // an image whose patch grid is not the trained one: a message naming the sizes (the forward
    // stops with it); a 30x30 image uses the 4x4 grid like 28x28 (as 384 -> 27x27 with patch 14)
    cm_tensor *big = tensor_zeros(CM_F32, SHAPE(1, 3, 40, 40), CM_DEV_CPU);
    TEST_CHECK(siglip_check_pixels(&m, big, err, sizeof err) == -1 && strstr(err, "40x40") && strstr(err, "28x28"), "wrong size: %s", err);
    printf("expected error: %s\n", err);
    TEST_CHECK(siglip_check_pixels(&m, x, err, sizeof err) == 0, "30x30: %s", err);
    tensor_release(big);

    tensor_release(x);
    st_close(io);
    siglip_free(&m);
    params_free(&ps);
    return test_summary("test_siglip");
}
