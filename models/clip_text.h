// clip_text.h — the CLIP text transformer (transformers CLIPTextModel, spec §5.7), FLUX's
// text_encoder: token + learned position embeddings, causal pre-LN layers (attention with biases,
// scale 1/sqrt(dh); MLP fc1 -> quick_gelu -> fc2), final_layer_norm. The pooled output is the
// final hidden state at the EOS position by the transformers rule: with eos_token_id == 2 in the
// config (CLIP ViT-L/14's, FLUX's) the legacy rule, the first argmax of the ids (the eos id 49407
// is the largest); otherwise the first position whose id equals eos_token_id (0 when none).
// Weights by the published keys: "text_model.embeddings.token_embedding.weight",
// "text_model.embeddings.position_embedding.weight", "text_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.*",
// "text_model.encoder.layers.N.{layer_norm1,layer_norm2,mlp.fc1,mlp.fc2}.*", "text_model.final_layer_norm.*"
// ("text_model.embeddings.position_ids" and a projection head, where present, are extra keys).
// defines: clip_text_config, clip_text_layer, clip_text_model, CLIP_VIT_L14_TEXT, clip_text_* functions.
#pragma once
#include <stddef.h>
#include "models/encoder_layer.h"
#include "models/layers.h"
#include "models/tok_clip.h"

typedef struct clip_text_config {
    int64_t vocab;         // 49408
    int64_t hidden;        // D
    int64_t layers;
    int64_t heads;
    int64_t mlp;           // intermediate size
    int64_t max_pos;       // position table rows (77)
    double eps;            // LayerNorm eps
    int64_t eos_token_id;  // the config's (2 in CLIP ViT-L/14: the legacy argmax pooling)
} clip_text_config;

// openai/clip-vit-large-patch14 text tower: 768 / 12 layers / 12 heads / 3072 / 77 positions / vocab 49408
extern const clip_text_config CLIP_VIT_L14_TEXT;
#define CLIP_MAX_LEN 77

typedef encoder_layer clip_text_layer;  // layer_norm1/2, self_attn.{q,k,v,out}_proj, mlp.fc1/2

typedef struct clip_text_model {
    clip_text_config cfg;
    cm_tensor *tok_emb;     // [vocab, D]
    cm_tensor *pos_emb;     // [max_pos, D]
    clip_text_layer *layer; // [layers]
    cm_lnorm final_ln;
} clip_text_model;

int64_t clip_text_param_count(const clip_text_config *c);  // ViT-L/14 text: 123,060,480
void clip_text_init(clip_text_model *m, const clip_text_config *c, cm_params *ps);
void clip_text_free(clip_text_model *m);
// the config from a weights file / folder's shapes: vocab, D, max_pos from the embeddings, mlp from
// fc1, layers by counting; heads and eos_token_id from a config.json beside the weights (a full
// CLIPModel's "text_config" too), else D/64 heads and eos_token_id 2 (the published CLIP-L's)
int clip_text_detect(const char *path, clip_text_config *c, char *err, size_t errlen);

// the pooled position of row b of ids [B, L] (i32, host-readable) by the rule above
int64_t clip_text_eos_index(const clip_text_config *c, const cm_tensor *ids, int64_t b);
cm_tensor *clip_text_embed_tokens(const clip_text_model *m, cm_tensor *ids);  // ids i32 [B, L] -> [B, L, D]
// tok [B, L, D] token embeddings (positions are added here); ids [B, L] pick the pooled rows.
// Returns last_hidden_state [B, L, D]; *pooled (if not NULL) gets pooler_output [B, D].
cm_tensor *clip_text_forward_embeds(const clip_text_model *m, cm_tensor *tok, const cm_tensor *ids, cm_tensor **pooled);
cm_tensor *clip_text_forward(const clip_text_model *m, cm_tensor *ids, cm_tensor **pooled);
// FLUX's pooled_prompt_embeds: n prompts tokenized (padding="max_length", truncation, max_len =
// the position table, 77) and encoded; returns pooler_output [n, D] and, if hidden is not NULL,
// last_hidden_state there. NULL and err when an id falls outside the model's vocabulary.
cm_tensor *clip_text_encode_prompts(const clip_text_model *m, clip_tok *tok, int n, const char *const *texts,
                                    cm_tensor **hidden, char *err, size_t errlen);
