// encoder_layer.h — the pre-LN transformer layer of the CLIP family (transformers CLIPEncoderLayer;
// SiglipEncoderLayer is the same module): h = x + out_proj(attention(layer_norm1(x))), then
// h + fc2(act(fc1(layer_norm2(h)))). The models choose the activation (CLIP quick_gelu, SigLIP
// gelu_pytorch_tanh) and the attention mask (CLIP's causal one).
// defines: encoder_layer, encoder_layer_init, encoder_layer_fwd.
#pragma once
#include "models/layers.h"

typedef struct encoder_layer {
    cm_lnorm ln1, ln2;      // layer_norm1, layer_norm2
    cm_linear q, k, v, o;   // self_attn.{q,k,v,out}_proj
    cm_linear fc1, fc2;     // mlp
} encoder_layer;

// registers "<prefix>.layer_norm1", "<prefix>.self_attn.{q,k,v,out}_proj", "<prefix>.layer_norm2",
// "<prefix>.mlp.fc1", "<prefix>.mlp.fc2" (weights and biases), in that order
void encoder_layer_init(encoder_layer *l, cm_params *ps, const char *prefix, int64_t dim, int64_t mlp, double eps);
// x [B, L, D] -> [B, L, D]; mask NULL or additive [L, L]; act: the MLP's activation
cm_tensor *encoder_layer_fwd(const encoder_layer *l, cm_tensor *x, int64_t heads, cm_tensor *mask,
                             cm_tensor *(*act)(cm_tensor *));
// CLIP's activation: quick_gelu(x) = x * sigmoid(1.702 x) = silu(1.702 x) / 1.702
cm_tensor *encoder_quick_gelu(cm_tensor *x);
