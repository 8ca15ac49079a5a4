// vision_features.c — InstantCharacter's assembled SigLIP + DINOv2 features (spec §2.4).
#include "models/vision_features.h"
#include <string.h>

const vision_feat_config VISION_FEAT_IC = {
    .n_shallow = 3, .siglip_layers = {7, 13, 26}, .dino_layers = {9, 19, 29},
};

static const double IMAGENET_MEAN[3] = {0.485, 0.456, 0.406};
static const double IMAGENET_STD[3] = {0.229, 0.224, 0.225};

// (x - mean[c]) / std[c] per channel: x [N, 3, H, W]
static cm_tensor *normalize(cm_tensor *x, const double *mean, const double *std) {
    float m[3], s[3];
    for (int i = 0; i < 3; i++) {
        m[i] = (float)mean[i];
        s[i] = (float)std[i];
    }
    cm_tensor *mt = tensor_from_host(CM_F32, SHAPE(1, 3, 1, 1), m, x->storage->dev);
    cm_tensor *st = tensor_from_host(CM_F32, SHAPE(1, 3, 1, 1), s, x->storage->dev);
    cm_tensor *mc = op_cast(mt, x->dtype), *sc = op_cast(st, x->dtype);
    cm_tensor *d = op_sub(x, mc);
    cm_tensor *out = op_div(d, sc);
    cm_tensor *tmp[] = {mt, st, mc, sc, d};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

// [low; crops of high] as one batch [5B, 3, S, S]: rows 0..B-1 the low views, then sample b's
// crops at B + 4b + (TL, TR, BL, BR) — the '(b n)' order of the reference
static cm_tensor *views(cm_tensor *low, cm_tensor *high) {
    int64_t B = low->shape[0], S = low->shape[2];
    cm_tensor *c[4];
    for (int i = 0; i < 4; i++) {
        int64_t r0 = (i / 2) * S, c0 = (i % 2) * S;
        cm_tensor *rows = op_slice(high, 2, r0, r0 + S);
        cm_tensor *crop = op_slice(rows, 3, c0, c0 + S);   // [B, 3, S, S]
        c[i] = op_unsqueeze(crop, 1);                       // [B, 1, 3, S, S]
        tensor_release(rows);
        tensor_release(crop);
    }
    cm_tensor *st = op_concat(4, c, 1);                     // [B, 4, 3, S, S]
    cm_tensor *cr = op_reshape(st, SHAPE(4 * B, 3, S, S));
    cm_tensor *all = op_concat(2, (cm_tensor *[]){low, cr}, 0);  // [5B, 3, S, S]
    for (int i = 0; i < 4; i++) tensor_release(c[i]);
    tensor_release(st);
    tensor_release(cr);
    return all;
}

// rows [b0, b1) of x [5B, L, D], the first `skip` tokens dropped, as [B', (b1-b0)/B' * (L-skip), D]
static cm_tensor *take(cm_tensor *x, int64_t b0, int64_t b1, int64_t skip, int64_t B) {
    cm_tensor *r = op_slice(x, 0, b0, b1);
    cm_tensor *t = op_slice(r, 1, skip, x->shape[1]);
    cm_tensor *c = op_contiguous(t);
    cm_tensor *out = op_reshape(c, SHAPE(B, -1, x->shape[2]));
    tensor_release(r);
    tensor_release(t);
    tensor_release(c);
    return out;
}

void vision_features_compute(const siglip_model *sig, const dino_model *dino, const vision_feat_config *fc,
                             cm_tensor *low, cm_tensor *high, vision_features *out) {
    char b1[96], b2[96];
    CM_CHECK(low->ndim == 4 && high->ndim == 4 && low->shape[1] == 3 && high->shape[1] == 3 &&
             low->shape[0] == high->shape[0] && low->shape[2] == low->shape[3] &&
             high->shape[2] == 2 * low->shape[2] && high->shape[3] == 2 * low->shape[3],
             "vision_features_compute", "want low [B, 3, S, S] and high [B, 3, 2S, 2S], got %s and %s",
             tensor_shape_str(low, b1, sizeof b1), tensor_shape_str(high, b2, sizeof b2));
    int64_t B = low->shape[0];
    cm_tensor *v = views(low, high);                          // [5B, 3, S, S]
    cm_tensor *v2 = op_scale(v, 2.0);
    cm_tensor *vs = op_add_scalar(v2, -1.0);                  // SigLIP: (x - 0.5) / 0.5
    cm_tensor *vd = normalize(v, IMAGENET_MEAN, IMAGENET_STD);
    vision_features_from_views(sig, dino, fc, B, vs, vd, out);
    tensor_release(v);
    tensor_release(v2);
    tensor_release(vs);
    tensor_release(vd);
}

void vision_features_from_views(const siglip_model *sig, const dino_model *dino, const vision_feat_config *fc,
                                int64_t B, cm_tensor *vs, cm_tensor *vd, vision_features *out) {
    CM_CHECK(fc->n_shallow >= 1 && fc->n_shallow <= VISION_MAX_SHALLOW, "vision_features",
             "%d shallow layers (1..%d)", fc->n_shallow, VISION_MAX_SHALLOW);
    CM_CHECK(vs->ndim == 4 && vs->shape[0] == 5 * B && tensor_same_shape(vs, vd), "vision_features",
             "want two [5B, 3, S, S] view batches for B = %lld", (long long)B);
    int ns = fc->n_shallow;
    cm_tensor *sh[VISION_MAX_SHALLOW];
    cm_tensor *sd = siglip_forward(sig, vs, ns, fc->siglip_layers, sh);  // [5B, N, Ds]
    cm_tensor *dh[VISION_MAX_SHALLOW];
    cm_tensor *dd = dino_forward(dino, vd, ns, fc->dino_layers, dh);    // [5B, 1+N, Dd]
    CM_CHECK(sd->shape[1] + 1 == dd->shape[1], "vision_features_compute",
             "SigLIP gives %lld tokens per view but DINOv2 %lld (+ CLS): the patch grids differ",
             (long long)sd->shape[1], (long long)dd->shape[1] - 1);

    cm_tensor *s_low = take(sd, 0, B, 0, B), *d_low = take(dd, 0, B, 1, B);         // [B, N, .]
    out->low_res_deep = op_concat(2, (cm_tensor *[]){s_low, d_low}, 2);
    cm_tensor *s_hi = take(sd, B, 5 * B, 0, B), *d_hi = take(dd, B, 5 * B, 1, B);  // [B, 4N, .]
    out->high_res_deep = op_concat(2, (cm_tensor *[]){s_hi, d_hi}, 2);
    cm_tensor *ss[VISION_MAX_SHALLOW], *ds[VISION_MAX_SHALLOW];
    for (int i = 0; i < ns; i++) {
        ss[i] = take(sh[i], 0, B, 0, B);
        ds[i] = take(dh[i], 0, B, 1, B);
    }
    cm_tensor *s_sh = op_concat(ns, ss, 1), *d_sh = op_concat(ns, ds, 1);          // [B, nsN, .]
    out->low_res_shallow = op_concat(2, (cm_tensor *[]){s_sh, d_sh}, 2);
    for (int i = 0; i < ns; i++) {
        tensor_release(sh[i]);
        tensor_release(dh[i]);
        tensor_release(ss[i]);
        tensor_release(ds[i]);
    }
    cm_tensor *tmp[] = {sd, dd, s_low, d_low, s_hi, d_hi, s_sh, d_sh};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
}

void vision_features_release(vision_features *f) {
    TENSOR_DROP(f->low_res_deep);
    TENSOR_DROP(f->low_res_shallow);
    TENSOR_DROP(f->high_res_deep);
}
