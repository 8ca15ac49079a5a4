// test_t5.c — the T5 v1.1 encoder against transformers' T5EncoderModel (tiny random fixture from
// scripts/fixtures_text.py): shape detection, loading by published names (strict), the relative
// position buckets against torch's over -600..600, last_hidden_state from ids and from embeddings,
// the gradient of sum(hidden * w) w.r.t. the input embeddings, the full-size parameter count.
#include <string.h>
#include "autograd/autograd.h"
#include "models/safetensors.h"
#include "models/t5.h"
#include "fixture.h"
#include "testutil.h"

#define WEIGHTS "tests/fixtures/t5/weights.safetensors"
#define IO "tests/fixtures/t5/io.safetensors"

int main(void) {
    char err[512];
    // full size (google/t5-v1_1-xxl encoder), never allocated: 4,762,310,656 as transformers counts it
    TEST_CHECK(t5_param_count(&T5_V11_XXL) == 4762310656LL, "T5 XXL encoder params %lld", (long long)t5_param_count(&T5_V11_XXL));

    t5_config c;
    TEST_CHECK(t5_detect(WEIGHTS, &c, err, sizeof err) == 0, "detect: %s", err);
    TEST_CHECK(c.vocab == 96 && c.d_model == 32 && c.d_kv == 8 && c.heads == 4 && c.d_ff == 48 && c.layers == 2 &&
               c.buckets == 32 && c.max_distance == 128, "detected vocab %lld D %lld dkv %lld H %lld F %lld layers %lld",
               (long long)c.vocab, (long long)c.d_model, (long long)c.d_kv, (long long)c.heads, (long long)c.d_ff, (long long)c.layers);
    TEST_CHECK(t5_detect("tests/fixtures/clip/weights.safetensors", &c, err, sizeof err) == -1 && strstr(err, "shared.weight"),
               "T5 in a CLIP file: %s", err);
    t5_detect(WEIGHTS, &c, err, sizeof err);

    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
    t5_model m;
    t5_init(&m, &c, &ps);
    TEST_CHECK(params_count(&ps, false) == t5_param_count(&c), "registered %lld, counted %lld",
               (long long)params_count(&ps, false), (long long)t5_param_count(&c));
    int n_extra = -1;
    TEST_CHECK(params_load(&ps, WEIGHTS, NULL, true, &n_extra, err, sizeof err) == 0, "load: %s", err);
    TEST_CHECK(n_extra == 0, "extra keys %d", n_extra);

    st_file *io = st_open(IO, err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_t5");

    // buckets: exact integer rule vs torch's f32 log formula, relative positions -600..600
    cm_tensor *bk = fixture_tensor(io, "buckets");
    int bad = 0;
    for (int r = -600; r <= 600; r++) bad += t5_bucket(r, 32, 128) != (int)tensor_get(bk, r + 600);
    TEST_CHECK(bad == 0, "%d relative positions bucketed differently from torch", bad);
    tensor_release(bk);

    cm_tensor *ids = fixture_tensor(io, "ids");                      // [2, 40] i32, </s> and a <pad> tail
    cm_tensor *want = fixture_tensor(io, "hidden"), *w = fixture_tensor(io, "w_hidden");
    cm_tensor *h_ids = t5_forward(&m, ids);
    // f32 on both sides, 2 layers: ~1e-6 expected
    double e = fixture_rel_err(h_ids, want);
    printf("t5 hidden (from ids) max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-5, "hidden from ids rel err %.3g", e);

    cm_tensor *x = fixture_tensor(io, "embeds");                     // [2, 40, 32] = shared[ids]
    tensor_set_requires_grad(x, true);
    cm_tensor *h = t5_forward_embeds(&m, x);
    e = fixture_rel_err(h, want);
    printf("t5 hidden (from embeds) max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-5, "hidden from embeds rel err %.3g", e);
    cm_tensor *prod = op_mul(h, w), *loss = op_sum_all(prod);
    autograd_backward(loss, NULL);
    cm_tensor *gw = fixture_tensor(io, "grad_embeds");
    // back through 2 layers of attention and gated GELU: allow 1e-4
    e = x->grad ? fixture_rel_err(x->grad, gw) : INFINITY;
    printf("t5 d loss / d embeds max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-4, "grad embeds rel err %.3g", e);
    for (int i = 0; i < ps.n; i++) TEST_CHECK(ps.items[i].t->grad == NULL, "frozen %s got a gradient", ps.items[i].name);

    // prompts through the tiny tokenizer: "a photo of a cat" maps inside the 96-id vocabulary; the
    // result equals the forward of the padded ids; a text with larger ids is a clear error
    {
        t5_tok *tok = t5_tok_load("tests/fixtures/t5/tokenizer.json", err, sizeof err);
        TEST_CHECK(tok != NULL, "%s", err);
        const char *texts[1] = {"a photo of a cat"};
        cm_tensor *pe = tok ? t5_encode_prompts(&m, tok, 1, texts, 24, err, sizeof err) : NULL;
        TEST_CHECK(pe && pe->shape[0] == 1 && pe->shape[1] == 24 && pe->shape[2] == 32, "prompt embeds: %s", err);
        if (pe) {
            int32_t pid[24];
            t5_tok_encode_padded(tok, texts[0], 24, pid, NULL);
            TEST_CHECK(pid[5] == 1 && pid[6] == 0, "</s> then <pad>");
            cm_tensor *it = tensor_from_host(CM_I32, SHAPE(1, 24), pid, CM_DEV_CPU), *ref = t5_forward(&m, it);
            TEST_CHECK(fixture_rel_err(pe, ref) == 0, "prompt embeds differ from the forward of the same ids");
            tensor_release(it);
            tensor_release(ref);
        }
        const char *big[1] = {"Café naïve résumé"};
        TEST_CHECK(tok && t5_encode_prompts(&m, tok, 1, big, 24, err, sizeof err) == NULL && strstr(err, "outside the T5 vocabulary"),
                   "out-of-vocabulary ids: %s", err);
        tensor_release(pe);
        t5_tok_free(tok);
    }

    tensor_release(gw);
    tensor_release(loss);
    tensor_release(prod);
    tensor_release(h);
    tensor_release(x);
    tensor_release(h_ids);
    tensor_release(want);
    tensor_release(w);
    tensor_release(ids);
    st_close(io);
    t5_free(&m);
    params_free(&ps);
    return test_summary("test_t5");
}
