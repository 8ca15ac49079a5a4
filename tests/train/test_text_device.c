// test_text_device.c — the text encoders on the training device: tiny T5 + CLIP on cuda:0 in bf16
// against the same encoders on the CPU in f32 (same seed: the same weights up to bf16 rounding),
// for captions of every length up to the padded one and the empty caption of caption dropout.
// The sequence states and the pooled vector must agree to bf16 precision (relative RMS error
// below 2e-2, stated from the f32 result). Runs where the CUDA backend is up (a GPU, or the CUDA
// emulator's build: label cuda); skips otherwise.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "autograd/autograd.h"
#include "kernels/backend.h"
#include "testutil.h"
#include "train/config.h"
#include "train/text.h"

// relative RMS error of b against a (both copied to the host as f32)
static double rel_rms(const cm_tensor *a, const cm_tensor *b) {
    int64_t n = tensor_numel(a);
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    tensor_copy_to_host(a, CM_F32, x);
    tensor_copy_to_host(b, CM_F32, y);
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), den += (double)x[i] * x[i];
    free(x), free(y);
    return sqrt(num / den);
}

int main(void) {
    if (!cm_cuda_backend) test_skip("no CUDA backend (a GPU, or the CUDA emulator's build)");
    train_config cfg;
    char err[1024];
    TEST_CHECK(train_config_load(&cfg, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    const train_tiny_dims *d = &cfg.model.tiny_dims;
    ic_text cpu, gpu;
    cm_device cuda0 = {CM_CUDA, 0};
    TEST_CHECK(ic_text_init_tiny(&cpu, d->text_dim, d->pooled_dim, d->text_len, 7, CM_DEV_CPU, CM_F32, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(ic_text_init_tiny(&gpu, d->text_dim, d->pooled_dim, d->text_len, 7, cuda0, CM_BF16, err, sizeof err) == 0, "%s", err);
    const char *caps[] = {"a small red fox jumping over the fence in the snow, seen from the side, very detailed", "",
                          "the character waving", "x"};
    int B = 4;
    cm_tensor *tc, *pc, *tg, *pg;
    ic_text_encode(&cpu, caps, B, CM_DEV_CPU, CM_F32, &tc, &pc);
    ic_text_encode(&gpu, caps, B, cuda0, CM_BF16, &tg, &pg);
    TEST_CHECK(tg->storage->dev.type == CM_CUDA && tg->dtype == CM_BF16 && pg->dtype == CM_BF16, "results on cuda:0 in bf16");
    TEST_CHECK(tensor_same_shape(tc, tg) && tensor_same_shape(pc, pg), "shapes");
    double et = rel_rms(tc, tg), ep = rel_rms(pc, pg);
    printf("text encoders, cuda:0 bf16 against cpu f32: T5 states %.3g, CLIP pooled %.3g (relative RMS)\n", et, ep);
    TEST_CHECK(et < 2e-2 && ep < 2e-2, "T5 %.3g, CLIP %.3g (limit 2e-2)", et, ep);
    // the CPU-placed encoders hand their results to the device (model.text_device: cpu)
    cm_tensor *tx, *px;
    ic_text_encode(&cpu, caps, B, cuda0, CM_BF16, &tx, &px);
    TEST_CHECK(tx->storage->dev.type == CM_CUDA && rel_rms(tc, tx) < 1e-2, "CPU encoders, results moved to cuda:0");
    cm_tensor *tmp[] = {tc, pc, tg, pg, tx, px};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    ic_text_free(&cpu);
    ic_text_free(&gpu);
    return test_summary("test_text_device");
}
