// test_ref_cache_device.c — the reference cache on the training device: the tiny towers on cuda:0 in
// bf16 write a batch of references' features into a cache (as `cameo cache-refs` on a GPU does), and
// the step's read of that cache (model.ref_cache) hands it the same features, bit for bit, on cuda:0
// in bf16 — through the bf16 host rows, their copy to the device and the cast (step_batch_upload's
// path); read by a run in f32 on the CPU, each bf16 value widened exactly. Runs where the CUDA backend
// is up (a GPU, or the CUDA emulator's build: label cuda); skips otherwise.
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
#include "train/ref_cache.h"
#include "train/step.h"

int main(void) {
    if (!cm_cuda_backend) test_skip("no CUDA backend (a GPU, or the CUDA emulator's build)");
    train_config cfg;
    char err[2048], dir[64];
    TEST_CHECK(train_config_load(&cfg, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    snprintf(dir, sizeof dir, "/tmp/cameo-rcd-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    cm_device cuda0 = {CM_CUDA, 0};
    ic_models m;
    TEST_CHECK(ic_models_vision(&m, &cfg.model.tiny_dims, cfg.run.seed, NULL, NULL, 0, cuda0, CM_BF16, err, sizeof err) == 0, "%s", err);
    int R = m.ref_size, B = 3;
    size_t v = (size_t)5 * 3 * R * R;
    float *sig = malloc((size_t)B * v * sizeof(float)), *dino = malloc((size_t)B * v * sizeof(float));
    for (size_t i = 0; i < (size_t)B * v; i++) sig[i] = (float)((i * 37 % 101) / 50.0 - 1.0), dino[i] = (float)((i * 53 % 97) / 40.0 - 1.2);
    autograd_no_grad_push();
    vision_features f, g;  // the towers' on cuda:0 in bf16; the cache's, read back
    step_reference_features(&m, sig, dino, B, R, &f);
    TEST_CHECK(f.low_res_deep->dtype == CM_BF16 && f.low_res_deep->storage->dev.type == CM_CUDA, "the towers' features: bf16 on cuda:0");
    fstore_id id;
    ref_cache rc;
    const uint64_t ids[3] = {4, 7, 9};
    const int64_t rid[3] = {4, 7, 9};
    TEST_CHECK(ref_cache_identity(&cfg, &id, err, sizeof err) == 0 && ref_cache_open(&rc, dir, &id, true, err, sizeof err) == 0 &&
               ref_cache_put(&rc, 0x1234, ids, B, &f, err, sizeof err) == 0, "%s", err);
    ref_cache_close(&rc);
    TEST_CHECK(ref_cache_open(&rc, dir, &id, false, err, sizeof err) == 0 &&
               ref_cache_lookup(&rc, 0x1234, rid, rid, NULL, B, &g, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(g.low_res_deep->dtype == CM_BF16 && g.high_res_deep->dtype == CM_BF16, "bf16 entries read as bf16");
    const cm_tensor *fa[3] = {f.low_res_deep, f.low_res_shallow, f.high_res_deep};
    cm_tensor *ga[3] = {g.low_res_deep, g.low_res_shallow, g.high_res_deep};
    for (int k = 0; k < 3; k++) {
        cm_tensor *d = op_to_device(ga[k], cuda0), *c = op_cast(d, CM_BF16);  // step_batch_upload's path on a GPU run
        TEST_CHECK(c->storage->dev.type == CM_CUDA && same_bits(fa[k], c), "feature set %d on cuda:0: the towers' own, bit for bit", k);
        cm_tensor *w = op_cast(ga[k], CM_F32), *fw = op_cast((cm_tensor *)fa[k], CM_F32), *fh = op_to_device(fw, CM_DEV_CPU);
        TEST_CHECK(same_bits(w, fh), "feature set %d on the CPU in f32: widened exactly", k);
        cm_tensor *tmp[] = {d, c, w, fw, fh};
        for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    }
    autograd_no_grad_pop();
    vision_features_release(&f), vision_features_release(&g);
    ref_cache_close(&rc);
    ic_models_free(&m);
    free(sig), free(dino);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_ref_cache_device");
}
