// t5.h — the T5 v1.1 encoder (transformers T5EncoderModel, spec §5.7), FLUX's text_encoder_2:
// shared token embedding (not scaled), pre-RMSNorm layers of self-attention with T5's relative
// position bias (bidirectional buckets, computed once from layer 0's table and added in every
// layer; no 1/sqrt(d) scaling) and a gated-GELU feed-forward wo(gelu_tanh(wi_0 x) * wi_1 x),
// final RMSNorm. No biases anywhere; no attention mask (FLUX passes none).
// Weights by the published keys: "shared.weight", "encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.weight",
// "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "encoder.block.N.layer.0.layer_norm.weight",
// "encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight", "encoder.block.N.layer.1.layer_norm.weight",
// "encoder.final_layer_norm.weight" ("encoder.embed_tokens.weight", tied to shared, is an extra key).
// defines: t5_config, t5_layer, t5_model, T5_V11_XXL, t5_* functions.
#pragma once
#include <stddef.h>
#include "models/layers.h"
#include "models/tok_t5.h"

typedef struct t5_config {
    int64_t vocab;         // 32128
    int64_t d_model;       // D
    int64_t d_kv;          // per-head width
    int64_t heads;
    int64_t d_ff;
    int64_t layers;
    int64_t buckets;       // relative_attention_num_buckets
    int64_t max_distance;  // relative_attention_max_distance
    double eps;            // layer_norm_epsilon
} t5_config;

// google/t5-v1_1-xxl encoder: 4096 / 64 heads x 64 / 10240 / 24 layers / vocab 32128, 32 buckets, 128
extern const t5_config T5_V11_XXL;
#define T5_FLUX_MAX_LEN 512  // FLUX pads / truncates prompts to 512 tokens

typedef struct t5_layer {
    cm_rms ln_attn;              // layer.0.layer_norm
    cm_linear q, k, v, o;        // layer.0.SelfAttention.* (no bias)
    cm_rms ln_ff;                // layer.1.layer_norm
    cm_linear wi0, wi1, wo;      // layer.1.DenseReluDense.* (no bias)
} t5_layer;

typedef struct t5_model {
    t5_config cfg;
    cm_tensor *shared;     // [vocab, D]
    cm_tensor *rel_bias;   // [buckets, heads] (block 0 only)
    t5_layer *layer;       // [layers]
    cm_rms final_ln;
} t5_model;

int64_t t5_param_count(const t5_config *c);  // without allocating (XXL encoder: 4,762,310,656)
void t5_init(t5_model *m, const t5_config *c, cm_params *ps);
void t5_free(t5_model *m);  // the tensors belong to ps
// the config from a weights file / folder / index: vocab and D from shared.weight, heads and buckets
// from the relative bias table, d_ff from wi_0, layers by counting blocks; max_distance 128, eps 1e-6
int t5_detect(const char *path, t5_config *c, char *err, size_t errlen);

// T5's bucket of a relative position (key - query), bidirectional (encoder)
int t5_bucket(int64_t rel, int64_t buckets, int64_t max_distance);
// the additive position bias [1, H, L, L] (f32) from the relative bias table
cm_tensor *t5_position_bias(const t5_model *m, int64_t L);

cm_tensor *t5_embed(const t5_model *m, cm_tensor *ids);        // ids i32 [B, L] -> [B, L, D]
cm_tensor *t5_forward_embeds(const t5_model *m, cm_tensor *x); // x [B, L, D] -> last_hidden_state [B, L, D]
cm_tensor *t5_forward(const t5_model *m, cm_tensor *ids);      // ids i32 [B, L] -> [B, L, D]
// FLUX's prompt_embeds: n prompts tokenized (truncated / padded to max_len, T5_FLUX_MAX_LEN) and
// encoded -> [n, max_len, D]. NULL and err when an id falls outside the model's vocabulary (a
// tokenizer that does not belong to these weights). Grad mode is the caller's (no_grad to train).
cm_tensor *t5_encode_prompts(const t5_model *m, t5_tok *tok, int n, const char *const *texts, int max_len,
                             char *err, size_t errlen);
