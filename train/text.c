// text.c — see text.h
#include "train/text.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "models/clip_text.h"
#include "models/t5.h"
#include "models/tok_clip.h"
#include "models/tok_t5.h"
#include "train/paths.h"
#include "train/text_cache.h"

int ic_text_init_tiny(ic_text *t, int64_t joint_dim, int64_t pooled_dim, int t5_len, uint64_t seed, cm_device dev, cm_dtype dt,
                      char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    char p5[PATH_MAX], pc[PATH_MAX];
    if (cameo_asset(p5, sizeof p5, "configs/tiny/t5-tokenizer.json", err, errlen) ||
        cameo_asset(pc, sizeof pc, "configs/tiny/clip-tokenizer.json", err, errlen)) return -1;
    t5_tok *tk5 = t5_tok_load(p5, err, errlen);
    if (!tk5) return -1;
    clip_tok *tkc = clip_tok_load(pc, err, errlen);
    if (!tkc) { t5_tok_free(tk5); return -1; }
    t->t5_tok = tk5;
    t->clip_tok = tkc;
    t->t5_len = t5_len;
    t->clip_len = 16;
    t->joint_dim = joint_dim;
    t->pooled_dim = pooled_dim;
    t5_config c5 = {.vocab = t5_tok_vocab_size(tk5), .d_model = joint_dim, .d_kv = 8, .heads = 2, .d_ff = 2 * joint_dim,
                    .layers = 2, .buckets = 8, .max_distance = 128, .eps = 1e-6};  // 128: T5's, which detection assumes
    clip_text_config cc = {.vocab = clip_tok_vocab_size(tkc), .hidden = pooled_dim, .layers = 2, .heads = 2, .mlp = 2 * pooled_dim,
                           .max_pos = t->clip_len, .eps = 1e-5, .eos_token_id = clip_tok_eos_id(tkc)};
    params_init_registry(&t->ps_t5, dev, dt, false);
    params_init_registry(&t->ps_clip, dev, dt, false);
    t->t5 = calloc(1, sizeof(t5_model));
    t->clip = calloc(1, sizeof(clip_text_model));
    t5_init(t->t5, &c5, &t->ps_t5);
    clip_text_init(t->clip, &cc, &t->ps_clip);
    params_randomize(&t->ps_t5, seed);
    params_randomize(&t->ps_clip, seed + 1);
    return 0;
}

// the tokenizer of a text encoder: its own folder when it holds tokenizer files, else the
// diffusers pipeline's sibling folder (text_encoder_2 -> tokenizer_2, text_encoder -> tokenizer)
const char *ic_text_tokenizer_dir(const char *enc_dir, const char *sibling, char *out, size_t n) {
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/tokenizer.json", enc_dir);
    if (!access(probe, R_OK)) return enc_dir;
    snprintf(probe, sizeof probe, "%s/vocab.json", enc_dir);
    if (!access(probe, R_OK)) return enc_dir;
    snprintf(out, n, "%s/../%s", enc_dir, sibling);
    return out;
}

void ic_text_init_none(ic_text *t, int64_t joint_dim, int64_t pooled_dim, int t5_len) {
    memset(t, 0, sizeof *t);
    t->t5_len = t5_len;
    t->joint_dim = joint_dim;
    t->pooled_dim = pooled_dim;
}

int ic_text_load(ic_text *t, const char *t5_dir, const char *clip_dir, int t5_len, cm_device dev, cm_dtype dt, char *err,
                 size_t errlen) {
    memset(t, 0, sizeof *t);
    t5_config c5;
    clip_text_config cc;
    if (t5_detect(t5_dir, &c5, err, errlen) || clip_text_detect(clip_dir, &cc, err, errlen)) return -1;
    char tk5[PATH_MAX], tkc[PATH_MAX];
    t->t5_tok = t5_tok_load(ic_text_tokenizer_dir(t5_dir, "tokenizer_2", tk5, sizeof tk5), err, errlen);
    if (!t->t5_tok) return -1;
    t->clip_tok = clip_tok_load(ic_text_tokenizer_dir(clip_dir, "tokenizer", tkc, sizeof tkc), err, errlen);
    if (!t->clip_tok) return -1;
    t->t5_len = t5_len;
    t->clip_len = (int)cc.max_pos;
    t->joint_dim = c5.d_model;
    t->pooled_dim = cc.hidden;
    params_init_registry(&t->ps_t5, dev, dt, false);
    params_init_registry(&t->ps_clip, dev, dt, false);
    t->t5 = calloc(1, sizeof(t5_model));
    t->clip = calloc(1, sizeof(clip_text_model));
    t5_init(t->t5, &c5, &t->ps_t5);
    clip_text_init(t->clip, &cc, &t->ps_clip);
    int extra;
    if (params_load(&t->ps_t5, t5_dir, NULL, false, &extra, err, errlen) ||
        params_load(&t->ps_clip, clip_dir, NULL, false, &extra, err, errlen)) return -1;
    return 0;
}

void ic_text_encode(ic_text *t, const char *const *captions, int B, cm_device dev, cm_dtype dt, cm_tensor **txt, cm_tensor **pooled) {
    char err[1024];
    autograd_no_grad_push();
    cm_tensor *h, *p;  // [B, t5_len, joint_dim], [B, pooled_dim]
    if (!t->t5) {
        CM_CHECK(t->cache, "text", "no text encoders and no text cache");
        CM_CHECK(!text_cache_lookup(t->cache, captions, B, &h, &p, err, sizeof err), "text", "%s", err);
    } else {
        h = t5_encode_prompts(t->t5, t->t5_tok, B, captions, t->t5_len, err, sizeof err);
        CM_CHECK(h, "text", "%s", err);
        p = clip_text_encode_prompts(t->clip, t->clip_tok, B, captions, NULL, err, sizeof err);
        CM_CHECK(p, "text", "%s", err);
    }
    cm_tensor *hd = op_to_device(h, dev), *pd = op_to_device(p, dev);
    *txt = op_cast(hd, dt);
    *pooled = op_cast(pd, dt);
    tensor_release(h); tensor_release(p); tensor_release(hd); tensor_release(pd);
    autograd_no_grad_pop();
}

void ic_text_free(ic_text *t) {
    if (t->t5) t5_free(t->t5);
    if (t->clip) clip_text_free(t->clip);
    free(t->t5);
    free(t->clip);
    if (t->t5_tok) t5_tok_free(t->t5_tok);
    if (t->clip_tok) clip_tok_free(t->clip_tok);
    params_free(&t->ps_t5);
    params_free(&t->ps_clip);
    memset(t, 0, sizeof *t);
}
