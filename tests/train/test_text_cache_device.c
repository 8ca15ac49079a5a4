// test_text_cache_device.c — the text cache on the training device: tiny T5 + CLIP on cuda:0 in
// bf16 write a batch of captions into a cache (as `cameo cache-text` on a GPU does), and text
// without encoders reading that cache (model.text_cache) hands the step the same rows, bit for bit,
// on cuda:0 in bf16 — through the bf16 host rows, their copy to the device and the cast. Runs where
// the CUDA backend is up (a GPU, or the CUDA emulator's build: label cuda); skips otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "e2e_helpers.h"
#include "testutil.h"
#include "train/config.h"
#include "train/models.h"
#include "train/text_cache.h"

int main(void) {
    if (!cm_cuda_backend) test_skip("no CUDA backend (a GPU, or the CUDA emulator's build)");
    train_config cfg;
    char err[2048], dir[64];
    TEST_CHECK(train_config_load(&cfg, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    snprintf(dir, sizeof dir, "/tmp/cameo-tcd-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    cm_device cuda0 = {CM_CUDA, 0};
    ic_text enc, none;
    TEST_CHECK(ic_models_text(&enc, &cfg.model.tiny_dims, cfg.run.seed, NULL, NULL, 0, IC_TEXT_MODEL, cuda0, CM_BF16, err, sizeof err) == 0,
               "%s", err);
    const char *caps[] = {"a small red fox jumping over the fence in the snow, seen from the side", "", "the character waving", "x"};
    cm_tensor *h, *p, *hc, *pc;
    ic_text_encode(&enc, caps, 4, cuda0, CM_BF16, &h, &p);
    TEST_CHECK(h->dtype == CM_BF16 && h->storage->dev.type == CM_CUDA, "the encoders' rows: bf16 on cuda:0");
    text_cache_id id;
    text_cache tc;
    TEST_CHECK(text_cache_identity(&cfg, &id, err, sizeof err) == 0 && text_cache_open(&tc, dir, &id, true, err, sizeof err) == 0 &&
               text_cache_put(&tc, caps, 4, h, p, err, sizeof err) == 0, "%s", err);
    text_cache_close(&tc);
    TEST_CHECK(text_cache_open(&tc, dir, &id, false, err, sizeof err) == 0, "%s", err);
    ic_text_init_none(&none, enc.joint_dim, enc.pooled_dim, enc.t5_len);
    none.cache = &tc;
    ic_text_encode(&none, caps, 4, cuda0, CM_BF16, &hc, &pc);
    TEST_CHECK(hc->storage->dev.type == CM_CUDA && hc->dtype == CM_BF16 && pc->dtype == CM_BF16, "cached rows: bf16 on cuda:0");
    TEST_CHECK(same_bits(h, hc) && same_bits(p, pc), "the cached rows on cuda:0 are the encoders' own, bit for bit");
    // the same cache read by a run in f32 on the CPU: each bf16 value widened exactly
    cm_tensor *hf, *pf, *hw = op_cast(h, CM_F32), *pw = op_cast(p, CM_F32);
    ic_text_encode(&none, caps, 4, CM_DEV_CPU, CM_F32, &hf, &pf);
    TEST_CHECK(same_bits(hf, hw) && same_bits(pf, pw), "the cached bf16 rows on the CPU in f32: widened exactly");
    cm_tensor *tmp[] = {h, p, hc, pc, hf, pf, hw, pw};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    text_cache_close(&tc);
    ic_text_free(&enc);
    ic_text_free(&none);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_text_cache_device");
}
