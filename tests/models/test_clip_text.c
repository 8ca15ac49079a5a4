// test_clip_text.c — the CLIP text transformer against transformers' CLIPTextModel (tiny random
// fixture from scripts/fixtures_text.py): detection, loading by published names ("text_model."),
// last_hidden_state, pooler_output by the legacy argmax-of-ids rule (eos_token_id 2, FLUX's CLIP-L)
// and by the first-eos rule, the gradient of sum(hidden * wh) + sum(pooled * wp) w.r.t. the token
// embeddings, the full-size parameter count.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "models/clip_text.h"
#include "models/safetensors.h"
#include "fixture.h"
#include "testutil.h"

#define WEIGHTS "tests/fixtures/clip/weights.safetensors"
#define IO "tests/fixtures/clip/io.safetensors"

int main(void) {
    char err[512];
    // openai/clip-vit-large-patch14 text tower, never allocated: 123,060,480 as transformers counts it
    TEST_CHECK(clip_text_param_count(&CLIP_VIT_L14_TEXT) == 123060480LL, "CLIP-L text params %lld",
               (long long)clip_text_param_count(&CLIP_VIT_L14_TEXT));

    clip_text_config c;
    TEST_CHECK(clip_text_detect(WEIGHTS, &c, err, sizeof err) == 0, "detect: %s", err);
    TEST_CHECK(c.vocab == 100 && c.hidden == 32 && c.layers == 2 && c.mlp == 64 && c.max_pos == 16 && c.eos_token_id == 2,
               "detected vocab %lld D %lld layers %lld mlp %lld pos %lld", (long long)c.vocab, (long long)c.hidden,
               (long long)c.layers, (long long)c.mlp, (long long)c.max_pos);
    TEST_CHECK(clip_text_detect("tests/fixtures/t5/weights.safetensors", &c, err, sizeof err) == -1 && strstr(err, "token_embedding"),
               "CLIP in a T5 file: %s", err);
    clip_text_detect(WEIGHTS, &c, err, sizeof err);
    TEST_CHECK(c.heads == 4, "heads %lld from config.json", (long long)c.heads);
    // a text encoder of another activation (config.json's flat hidden_act, as FLUX's text_encoder/
    // has it) is refused: it loaded and computed quick_gelu without a word
    char tmp[] = "/tmp/cameo-clipact-XXXXXX", path[600], src[4200];
    TEST_CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/weights.safetensors", tmp);
    TEST_CHECK(realpath(WEIGHTS, src) && symlink(src, path) == 0, "symlink %s", path);
    snprintf(src, sizeof src, "%s/config.json", tmp);
    FILE *f = fopen(src, "w");
    TEST_CHECK(f && fputs("{\"hidden_size\": 32, \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}\n", f) >= 0 && !fclose(f),
               "write %s", src);
    TEST_CHECK(clip_text_detect(path, &c, err, sizeof err) == -1 && strstr(err, "hidden_act is \"gelu\""), "a gelu text encoder: %s", err);
    unlink(path), unlink(src), rmdir(tmp);
    clip_text_detect(WEIGHTS, &c, err, sizeof err);

    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
    clip_text_model m;
    clip_text_init(&m, &c, &ps);
    TEST_CHECK(params_count(&ps, false) == clip_text_param_count(&c), "registered %lld, counted %lld",
               (long long)params_count(&ps, false), (long long)clip_text_param_count(&c));
    int n_extra = -1;
    TEST_CHECK(params_load(&ps, WEIGHTS, NULL, false, &n_extra, err, sizeof err) == 0, "load: %s", err);
    TEST_CHECK(n_extra == 0, "extra keys %d", n_extra);

    st_file *io = st_open(IO, err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_clip_text");
    cm_tensor *ids = fixture_tensor(io, "ids");  // [2, 16]: bos 98 ... eos 99 (then eos padding in row 0)
    TEST_CHECK(clip_text_eos_index(&c, ids, 0) == 9 && clip_text_eos_index(&c, ids, 1) == 15, "legacy eos positions %lld %lld",
               (long long)clip_text_eos_index(&c, ids, 0), (long long)clip_text_eos_index(&c, ids, 1));

    cm_tensor *tok = clip_text_embed_tokens(&m, ids);
    cm_tensor *x = op_detach(tok);
    tensor_set_requires_grad(x, true);
    cm_tensor *pooled = NULL;
    cm_tensor *h = clip_text_forward_embeds(&m, x, ids, &pooled);
    cm_tensor *wh = fixture_tensor(io, "hidden"), *wp = fixture_tensor(io, "pooled");
    // f32 on both sides, 2 layers: ~1e-6 expected
    double e = fixture_rel_err(h, wh);
    printf("clip last_hidden_state max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-5, "hidden rel err %.3g", e);
    e = fixture_rel_err(pooled, wp);
    printf("clip pooler_output (argmax rule) max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-5, "pooled rel err %.3g", e);
    tensor_release(wh);
    tensor_release(wp);

    wh = fixture_tensor(io, "w_hidden");
    wp = fixture_tensor(io, "w_pooled");
    cm_tensor *l1 = fixture_dot(h, wh), *l2 = fixture_dot(pooled, wp), *loss = op_add(l1, l2);
    autograd_backward(loss, NULL);
    cm_tensor *g = fixture_tensor(io, "grad_embeds");
    // back through 2 causal layers: allow 1e-4
    e = x->grad ? fixture_rel_err(x->grad, g) : INFINITY;
    printf("clip d loss / d token embeddings max rel err %.3g\n", e);
    TEST_CHECK(e < 1e-4, "grad rel err %.3g", e);
    for (int i = 0; i < ps.n; i++) TEST_CHECK(ps.items[i].t->grad == NULL, "frozen %s got a gradient", ps.items[i].name);
    tensor_release(g);
    tensor_release(l1);
    tensor_release(l2);
    tensor_release(loss);
    tensor_release(wh);
    tensor_release(wp);
    tensor_release(h);
    tensor_release(pooled);

    // the first-eos rule (a config with a real eos_token_id): id 5 plays eos here
    {
        autograd_no_grad_push();
        clip_text_model m2 = m;
        m2.cfg.eos_token_id = 5;
        TEST_CHECK(clip_text_eos_index(&m2.cfg, ids, 0) == 6 && clip_text_eos_index(&m2.cfg, ids, 1) == 4, "first-eos positions");
        cm_tensor *p2 = NULL, *h2 = clip_text_forward(&m2, ids, &p2), *want = fixture_tensor(io, "pooled_eos");
        e = fixture_rel_err(p2, want);
        printf("clip pooler_output (first-eos rule) max rel err %.3g\n", e);
        TEST_CHECK(e < 1e-5, "pooled_eos rel err %.3g", e);
        tensor_release(h2);
        tensor_release(p2);
        tensor_release(want);
        autograd_no_grad_pop();
    }

    // a batch above the 8 inputs an op takes (the pooled rows are one gather, not a B-way concat):
    // 11 rows alternating the fixture's two, each pooled row the fixture's
    {
        autograd_no_grad_push();
        enum { NB = 11, L = 16 };
        int32_t two[2 * L], many[NB * L];
        tensor_copy_to_host(ids, CM_I32, two);
        for (int b = 0; b < NB; b++) memcpy(many + b * L, two + (b % 2) * L, sizeof(int32_t) * L);
        cm_tensor *ids11 = tensor_from_host(CM_I32, SHAPE(NB, L), many, CM_DEV_CPU);
        cm_tensor *p11 = NULL, *h11 = clip_text_forward(&m, ids11, &p11), *want = fixture_tensor(io, "pooled");
        float got[NB * 32], ref[2 * 32];
        tensor_copy_to_host(p11, CM_F32, got);
        tensor_copy_to_host(want, CM_F32, ref);
        double worst = 0;
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < 32; j++) worst = fmax(worst, fabs(got[b * 32 + j] - ref[(b % 2) * 32 + j]));
        TEST_CHECK(p11->ndim == 2 && p11->shape[0] == NB && worst < 1e-5, "a batch of %d: pooled rows within %.3g of the fixture's",
                   NB, worst);
        tensor_release(ids11);
        tensor_release(p11);
        tensor_release(h11);
        tensor_release(want);
        autograd_no_grad_pop();
    }

    // the tiny tokenizer's ids (714) do not fit this 100-id model: a clear error, nothing computed
    {
        clip_tok *ct = clip_tok_load("tests/fixtures/clip", err, sizeof err);
        TEST_CHECK(ct != NULL, "%s", err);
        const char *texts[1] = {"a photo of a cat"};
        TEST_CHECK(ct && clip_text_encode_prompts(&m, ct, 1, texts, NULL, err, sizeof err) == NULL &&
                   strstr(err, "outside the CLIP vocabulary"), "out-of-vocabulary ids: %s", err);
        clip_tok_free(ct);
    }

    tensor_release(x);
    tensor_release(tok);
    tensor_release(ids);
    st_close(io);
    clip_text_free(&m);
    params_free(&ps);
    return test_summary("test_clip_text");
}
