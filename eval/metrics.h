// metrics.h — character-consistency scores of a generated image against its reference, from the
// adapter's own frozen towers: DINO-I, the cosine of DINOv2's CLS embeddings (last layer, after
// the final layernorm), and SigLIP-I, the cosine of SigLIP's mean-pooled last hidden states. Both
// images go through the same view the adapter sees (eval_reference_views' full view: the image
// stretched square to the towers' side, each tower's normalisation).
// defines: eval_embedding, eval_embed, eval_cosine, eval_embedding_free
#pragma once
#include "train/models.h"

typedef struct eval_embedding {
    float *dino;    // [Dd] DINOv2 CLS
    float *siglip;  // [Ds] SigLIP mean over tokens
    int dd, ds;
} eval_embedding;

// the embeddings of one image's full views (sig_full, dino_full: [3, R, R], R = m->ref_size, as
// eval_reference_views writes them first). 0, or -1 with err (out of host memory).
int eval_embed(ic_models *m, const float *sig_full, const float *dino_full, eval_embedding *out, char *err, size_t errlen);
// cos(a, b) in f64; 0 when either is all zeros
double eval_cosine(const float *a, const float *b, int n);
void eval_embedding_free(eval_embedding *e);
