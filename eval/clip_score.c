// clip_score.c — see clip_score.h
#include "eval/clip_score.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "data/preprocess.h"
#include "data/resize.h"
#include "models/config_json.h"

int eval_clip_open(eval_clip *c, const char *path, cm_device dev, cm_dtype dt, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    clip_text_config tc;
    clip_vision_config vc;
    if (clip_text_detect(path, &tc, err, errlen) || clip_vision_detect(path, &vc, err, errlen))
        return -1;
    params_init_registry(&c->ps, dev, dt, false);
    clip_text_init(&c->text, &tc, &c->ps);
    clip_vision_init(&c->vision, &vc, &c->ps);
    c->text_proj = clip_text_projection_init(&c->ps, tc.hidden, vc.proj);
    c->open = true;
    int n_extra;
    if (params_load(&c->ps, path, NULL, false, &n_extra, err, errlen)) return -1;
    char tp[4096];  // the tokenizer: in the folder, or beside the weights file
    snprintf(tp, sizeof tp, "%s", path);
    struct stat st;
    const char *td = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? dirname(tp) : path;
    c->tok = clip_tok_load(td, err, errlen);
    return c->tok ? 0 : -1;
}

int eval_clip_dim(const eval_clip *c) { return (int)c->vision.cfg.proj; }

int eval_clip_pixels(const image *im, int S, float *out) {
    // resize: the shortest edge to S, the other int(S * long / short) (transformers'
    // get_resize_output_image_size); then the centre S x S window, top-left at ((h - S) / 2, (w - S) / 2)
    int w = im->w, h = im->h, rw, rh;
    if (w <= h) rw = S, rh = (int)((int64_t)S * h / w);
    else rh = S, rw = (int)((int64_t)S * w / h);
    int x0 = (rw - S) / 2, y0 = (rh - S) / 2;
    uint8_t *dst = malloc((size_t)S * S * 3);
    const uint8_t *src = im->px;
    // RGBA on white, as the adapter and DINO-I / SigLIP-I see a reference (transformers' convert_rgb
    // would drop the alpha: a cut-out on black, scored against images of it on white)
    preprocess_scratch ps = {0};
    if (im->c == 4) src = preprocess_load(im, &ps) ? NULL : ps.src;
    resize_scratch rs = {0};
    int rc = (!dst || !src || resize_u8(src, w, h, 3, rw, rh, x0, y0, S, S, dst, &rs)) ? -1 : 0;
    for (int ch = 0; ch < 3 && !rc; ch++)
        for (int i = 0; i < S * S; i++)
            out[ch * S * S + i] = ((float)dst[i * 3 + ch] / 255.0f - CLIP_IMAGE_MEAN[ch]) / CLIP_IMAGE_STD[ch];
    resize_scratch_free(&rs);
    preprocess_scratch_free(&ps);
    free(dst);
    return rc;
}

// a [1, P] device tensor into host floats
static void to_host(cm_tensor *t, float *out) {
    cm_tensor *f = op_cast(t, CM_F32), *h = op_to_device(f, CM_DEV_CPU);
    tensor_copy_to_host(h, CM_F32, out);
    tensor_release(f);
    tensor_release(h);
}

int eval_clip_image(eval_clip *c, const image *im, float *out, char *err, size_t errlen) {
    int S = (int)c->vision.cfg.image_size;
    float *px = malloc(sizeof(float) * 3 * (size_t)S * S);
    if (!px || eval_clip_pixels(im, S, px)) {
        free(px);
        snprintf(err, errlen, "out of host memory for CLIP's view of a %dx%d image", im->w, im->h);
        return -1;
    }
    autograd_no_grad_push();
    cm_tensor *h = tensor_from_host(CM_F32, SHAPE(1, 3, S, S), px, c->ps.dev), *x = op_cast(h, c->ps.dtype);
    cm_tensor *e = clip_vision_image_embeds(&c->vision, x);
    to_host(e, out);
    tensor_release(h), tensor_release(x), tensor_release(e);
    autograd_no_grad_pop();
    free(px);
    return 0;
}

int eval_clip_text(eval_clip *c, const char *prompt, float *out, char *err, size_t errlen) {
    autograd_no_grad_push();
    const char *texts[1] = {prompt};
    cm_tensor *pooled = clip_text_encode_prompts(&c->text, c->tok, 1, texts, NULL, err, errlen);
    cm_tensor *e = pooled ? op_linear(pooled, c->text_proj, NULL) : NULL;
    if (e) to_host(e, out);
    tensor_release(pooled), tensor_release(e);
    autograd_no_grad_pop();
    return e ? 0 : -1;
}

void eval_clip_close(eval_clip *c) {
    if (c->open) {
        clip_text_free(&c->text);
        clip_vision_free(&c->vision);
        params_free(&c->ps);
    }
    if (c->tok) clip_tok_free(c->tok);
    memset(c, 0, sizeof *c);
}
