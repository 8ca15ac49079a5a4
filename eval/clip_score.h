// clip_score.h — CLIP-I and CLIP-T for evaluation: a full CLIP model (text and vision towers with
// their projections, e.g. openai/clip-vit-large-patch14) loaded beside the adapter's models.
// CLIP-I: cosine of the reference's and the image's image_embeds; CLIP-T: cosine of the image's
// image_embeds and the prompt's text_embeds (CLIPModel.get_image_features / get_text_features).
// Images go through CLIPImageProcessor's PIL backend: shortest edge to the tower's size (Pillow's
// bicubic, bytes as Pillow makes them), centre crop, /255, OpenAI's mean / std.
// defines: eval_clip, eval_clip_* functions
#pragma once
#include "data/image.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "models/params.h"
#include "models/tok_clip.h"

typedef struct eval_clip {
    cm_params ps;
    clip_text_model text;
    clip_vision_model vision;
    cm_tensor *text_proj;  // [proj, text width]
    clip_tok *tok;
    bool open;
} eval_clip;

// path: a folder holding the CLIPModel's safetensors (model.safetensors or shards), its config.json
// and the tokenizer (tokenizer.json, or vocab.json + merges.txt), or the weights file with those
// beside it. 0, or -1 with err naming the file or key.
int eval_clip_open(eval_clip *c, const char *path, cm_device dev, cm_dtype dt, char *err, size_t errlen);
int eval_clip_dim(const eval_clip *c);  // the projection width
// CLIPImageProcessor (PIL backend) of im at side S into out [3, S, S]. 0, or -1 (out of memory).
int eval_clip_pixels(const image *im, int S, float *out);
// image_embeds [proj] of im; text_embeds [proj] of a prompt. 0, or -1 with err.
int eval_clip_image(eval_clip *c, const image *im, float *out, char *err, size_t errlen);
int eval_clip_text(eval_clip *c, const char *prompt, float *out, char *err, size_t errlen);
void eval_clip_close(eval_clip *c);
