// test_dinov2.c — the DINOv2 tower against transformers' Dinov2Model (tiny random fixtures from
// scripts/fixtures_vision.py): (1) SwiGLU with the 6x6 position table resized bicubically to the
// 4x4 grid of a 30-px input (as 37x37 -> 27x27 at full size); (2) the plain GELU MLP at the
// trained size; (3) the full-size grids, 37x37 -> 27x27, at a tiny width. Deep output, hidden
// states, the gradient w.r.t. pixels, shape detection, loading by published names, the full-size
// parameter count; a DINOv2 with register tokens refused at detection.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "models/dinov2.h"
#include "models/safetensors.h"
#include "fixture.h"
#include "testutil.h"

// loads weights, runs the fixture's pixels, compares deep / hidden / d loss / d pixels
static void check(const char *what, const char *weights, const char *iopath, const dino_config *want_cfg, int n_idx, const int *idx) {
    char err[512];
    dino_config c;
    TEST_CHECK(dino_detect(weights, &c, err, sizeof err) == 0, "%s: detect: %s", what, err);
    TEST_CHECK(c.hidden == want_cfg->hidden && c.layers == want_cfg->layers && c.heads == want_cfg->heads &&
               c.mlp_hidden == want_cfg->mlp_hidden && c.patch == want_cfg->patch && c.image_size == want_cfg->image_size &&
               c.swiglu == want_cfg->swiglu,
               "%s: detected %lld/%lld/%lld mlp %lld patch %lld image %lld swiglu %d", what, (long long)c.hidden,
               (long long)c.layers, (long long)c.heads, (long long)c.mlp_hidden, (long long)c.patch, (long long)c.image_size, c.swiglu);
    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
    dino_model m;
    dino_init(&m, &c, &ps);
    TEST_CHECK(params_count(&ps, false) == dino_param_count(&c), "%s: registered %lld, counted %lld", what,
               (long long)params_count(&ps, false), (long long)dino_param_count(&c));
    int n_extra = -1;
    TEST_CHECK(params_load(&ps, weights, NULL, true, &n_extra, err, sizeof err) == 0, "%s: load: %s", what, err);
    TEST_CHECK(n_extra == 0, "%s: %d extra keys", what, n_extra);

    st_file *io = st_open(iopath, err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) exit(test_summary("test_dinov2"));
    cm_tensor *x = fixture_tensor(io, "pixels");
    tensor_set_requires_grad(x, true);
    cm_tensor *hid[4];
    cm_tensor *deep = dino_forward(&m, x, n_idx, idx, hid);  // [B, 1 + N, D]
    cm_tensor *want = fixture_tensor(io, "deep"), *w = fixture_tensor(io, "w_deep");
    // f32 on both sides: ~1e-6 expected (the resized position table adds a bicubic stencil)
    double e = fixture_rel_err(deep, want);
    printf("%s: deep max rel err %.3g\n", what, e);
    TEST_CHECK(e < 1e-5, "%s: deep rel err %.3g", what, e);
    cm_tensor *loss = fixture_dot(deep, w);
    tensor_release(want);
    tensor_release(w);
    for (int i = 0; i < n_idx; i++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "hidden.%d", idx[i]);
        snprintf(n2, sizeof n2, "w_hidden.%d", idx[i]);
        want = fixture_tensor(io, n1);
        w = fixture_tensor(io, n2);
        e = fixture_rel_err(hid[i], want);
        printf("%s: hidden_states[%d] max rel err %.3g\n", what, idx[i], e);
        TEST_CHECK(e < 1e-5, "%s: hidden %d rel err %.3g", what, idx[i], e);
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
    // back through every layer and the patch conv: allow 1e-4
    e = x->grad ? fixture_rel_err(x->grad, want) : INFINITY;
    printf("%s: d loss / d pixels max rel err %.3g\n", what, e);
    TEST_CHECK(e < 1e-4, "%s: grad pixels rel err %.3g", what, e);
    for (int i = 0; i < ps.n; i++) TEST_CHECK(ps.items[i].t->grad == NULL, "frozen %s got a gradient", ps.items[i].name);
    TEST_CHECK(autograd_tape_len() == 0, "tape not empty after backward: %lld", (long long)autograd_tape_len());
    tensor_release(want);
    tensor_release(loss);
    tensor_release(deep);
    tensor_release(x);
    st_close(io);
    dino_free(&m);
    params_free(&ps);
}

int main(void) {
    char err[512];
    // full size, no allocation: transformers Dinov2Model(dinov2-giant config) has 1,136,480,768
    TEST_CHECK(dino_param_count(&DINOV2_GIANT) == 1136480768, "giant params %lld", (long long)dino_param_count(&DINOV2_GIANT));
    TEST_CHECK(dino_swiglu_hidden(1536, 4.0) == 4096, "giant SwiGLU width %lld", (long long)dino_swiglu_hidden(1536, 4.0));
    TEST_CHECK(dino_swiglu_hidden(32, 4.0) == 88, "tiny SwiGLU width %lld", (long long)dino_swiglu_hidden(32, 4.0));
    // the same names at full size through a meta registry (no memory)
    cm_params meta;
    params_init_meta(&meta, CM_BF16);
    dino_model g;
    dino_init(&g, &DINOV2_GIANT, &meta);
    TEST_CHECK(params_count(&meta, false) == 1136480768, "giant registered %lld", (long long)params_count(&meta, false));
    TEST_CHECK(params_find(&meta, "encoder.layer.39.mlp.weights_in.weight") && params_find(&meta, "encoder.layer.0.attention.attention.query.bias") &&
               params_find(&meta, "embeddings.position_embeddings") && params_find(&meta, "layernorm.weight"), "giant key names");
    cm_tensor *pos = params_find(&meta, "embeddings.position_embeddings");
    TEST_CHECK(pos && pos->shape[1] == 1370 && pos->shape[2] == 1536, "giant position table (37x37 + CLS)");
    dino_free(&g);
    params_free(&meta);

    dino_config sw = {.hidden = 32, .layers = 4, .heads = 4, .mlp_hidden = 88, .patch = 7, .image_size = 42,
                      .channels = 3, .swiglu = true, .eps = 1e-6};
    check("dinov2 swiglu (6x6 -> 4x4 positions)", "tests/fixtures/dinov2/weights.safetensors",
          "tests/fixtures/dinov2/io.safetensors", &sw, 3, (const int[]){1, 2, 3});
    dino_config mlp = sw;
    mlp.layers = 2;
    mlp.mlp_hidden = 64;
    mlp.swiglu = false;
    check("dinov2 gelu mlp", "tests/fixtures/dinov2/weights_mlp.safetensors", "tests/fixtures/dinov2/io_mlp.safetensors",
          &mlp, 1, (const int[]){1});
    // the full-size grids: the 37x37 table resized to 27x27 (giant at 384 px), with 2-px patches
    dino_config grid = {.hidden = 8, .layers = 1, .heads = 2, .mlp_hidden = 24, .patch = 2, .image_size = 74,
                        .channels = 3, .swiglu = true, .eps = 1e-6};
    check("dinov2 37x37 -> 27x27 positions", "tests/fixtures/dinov2/weights_grid.safetensors",
          "tests/fixtures/dinov2/io_grid.safetensors", &grid, 1, (const int[]){1});

    // a file of another model: a message naming the missing key
    dino_config c;
    TEST_CHECK(dino_detect("tests/fixtures/siglip/weights.safetensors", &c, err, sizeof err) == -1 && strstr(err, "embeddings"),
               "detecting DINOv2 in a SigLIP file: %s", err);
    {  // a DINOv2 with registers has the same names plus embeddings.register_tokens: refused, named
        char err2[256];
        st_file *f = st_open("tests/fixtures/dinov2/weights.safetensors", err2, sizeof err2);
        TEST_CHECK(f != NULL, "%s", err2);
        char dir[] = "/tmp/cameo_dino_reg_XXXXXX", path[64];
        TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st_writer *w = st_writer_new();
        for (int i = 0; f && i < st_count(f); i++) {
            const st_entry *e = st_at(f, i);
            st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, e->data);
        }
        float reg[4 * 32] = {0};  // [1, 4, D]
        st_writer_add(w, "embeddings.register_tokens", CM_F32, 3, (const int64_t[]){1, 4, 32}, reg);
        st_writer_meta(w, "num_attention_heads", "4");
        TEST_CHECK(st_writer_save(w, path, err2, sizeof err2) == 0, "%s", err2);
        st_writer_free(w);
        st_close(f);
        TEST_CHECK(dino_detect(path, &c, err, sizeof err) == -1 && strstr(err, "register_tokens") && strstr(err, "4 register"),
                   "a DINOv2 with registers is refused, named: %s", err);
        printf("expected detect error: %s\n", err);
        remove(path);
        rmdir(dir);
    }
    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
    dino_model m;
    dino_init(&m, &sw, &ps);
    TEST_CHECK(params_load(&ps, "tests/fixtures/dinov2/weights_mlp.safetensors", NULL, false, NULL, err, sizeof err) == -1 &&
               strstr(err, "encoder.layer.0.mlp.weights_in"), "SwiGLU model from a GELU-MLP file: %s", err);
    printf("expected load error: %s\n", err);
    dino_free(&m);
    params_free(&ps);
    return test_summary("test_dinov2");
}
