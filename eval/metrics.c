// metrics.c — see metrics.h
#include "eval/metrics.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"

// [1, 3, R, R] host f32 -> the models' device and dtype
static cm_tensor *upload(const ic_models *m, const float *v, int R) {
    cm_tensor *h = tensor_from_host(CM_F32, SHAPE(1, 3, R, R), v, m->dev), *c = op_cast(h, m->dtype);
    tensor_release(h);
    return c;
}

// a [1, T, D] tensor's row `row` (or the mean over rows when row < 0) into a host float [D]
static float *pool(cm_tensor *t, int row) {
    int64_t T = t->shape[1], D = t->shape[2];
    cm_tensor *f = op_cast(t, CM_F32), *h = op_to_device(f, CM_DEV_CPU);
    float *out = calloc((size_t)D, sizeof *out), *x = malloc(sizeof(float) * (size_t)(T * D));
    if (out && x) {
        tensor_copy_to_host(h, CM_F32, x);
        if (row >= 0)
            for (int64_t d = 0; d < D; d++) out[d] = x[row * D + d];
        else
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t i = 0; i < T; i++) s += x[i * D + d];
                out[d] = (float)(s / (double)T);
            }
    } else {
        free(out);
        out = NULL;
    }
    free(x);
    tensor_release(f);
    tensor_release(h);
    return out;
}

int eval_embed(ic_models *m, const float *sig_full, const float *dino_full, eval_embedding *out, char *err, size_t errlen) {
    int R = m->ref_size;
    autograd_no_grad_push();
    cm_tensor *xs = upload(m, sig_full, R), *xd = upload(m, dino_full, R);
    cm_tensor *hs = siglip_forward(&m->sig, xs, 0, NULL, NULL);  // [1, N, Ds]
    cm_tensor *hd = dino_forward(&m->dino, xd, 0, NULL, NULL);   // [1, 1 + N, Dd]: CLS first
    out->ds = (int)hs->shape[2];
    out->dd = (int)hd->shape[2];
    out->siglip = pool(hs, -1);
    out->dino = pool(hd, 0);
    cm_tensor *tmp[] = {xs, xd, hs, hd};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    autograd_no_grad_pop();
    if (!out->siglip || !out->dino) {
        eval_embedding_free(out);
        snprintf(err, errlen, "out of host memory for an embedding");
        return -1;
    }
    return 0;
}

double eval_cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

void eval_embedding_free(eval_embedding *e) {
    free(e->dino);
    free(e->siglip);
    e->dino = e->siglip = NULL;
}
