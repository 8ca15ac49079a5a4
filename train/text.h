// text.h — the frozen text side of a step: T5 (sequence states) and CLIP (pooled), with their
// tokenizers, behind one call.
// defines: ic_text, ic_text_* functions.
#pragma once
#include <stdbool.h>
#include "autograd/tensor.h"
#include "models/params.h"

struct fstore;
typedef struct ic_text {
    void *t5, *clip, *t5_tok, *clip_tok;  // models/t5.h, clip_text.h, tok_t5.h, tok_clip.h; NULL: no encoders
    struct fstore *cache;                 // no encoders: their outputs come from here (train/text_cache.h; not owned)
    cm_params ps_t5, ps_clip;             // frozen
    int t5_len, clip_len;                 // padded lengths (FLUX: 512 and 77)
    int64_t joint_dim, pooled_dim;
} ic_text;

// The encoders live and run on (dev, dt): the training device in bf16 by default — on a GPU, T5-XXL
// on the CPU would take longer than the rest of the step — or the CPU in f32 (model.text_device:
// cpu: 9 GB less GPU memory at full size, for a much slower step).
// tiny random encoders of the given widths with the small tokenizers shipped in configs/tiny/
int ic_text_init_tiny(ic_text *t, int64_t joint_dim, int64_t pooled_dim, int t5_len, uint64_t seed, cm_device dev, cm_dtype dt,
                      char *err, size_t errlen);
// no encoders, only their widths and lengths: ic_text_encode reads t->cache (model.text_cache)
void ic_text_init_none(ic_text *t, int64_t joint_dim, int64_t pooled_dim, int t5_len);
// published T5 v1.1 XXL encoder + CLIP ViT-L/14 text folders (weights + tokenizer.json each)
int ic_text_load(ic_text *t, const char *t5_dir, const char *clip_dir, int t5_len, cm_device dev, cm_dtype dt, char *err,
                 size_t errlen);
// captions [B] -> *txt [B, t5_len, joint_dim], *pooled [B, pooled_dim] on dev as dtype dt (no tape;
// moved there when the encoders live elsewhere). Without encoders, from t->cache: a caption it
// does not hold stops the process with a message naming the caption and the cache
void ic_text_encode(ic_text *t, const char *const *captions, int B, cm_device dev, cm_dtype dt, cm_tensor **txt, cm_tensor **pooled);
void ic_text_free(ic_text *t);
// the folder of an encoder's tokenizer: enc_dir when it holds tokenizer files, else the diffusers
// pipeline's sibling (text_encoder_2 -> tokenizer_2, text_encoder -> tokenizer) in out
const char *ic_text_tokenizer_dir(const char *enc_dir, const char *sibling, char *out, size_t n);
