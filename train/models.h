// models.h — the model bundle one training step touches: frozen FLUX, vision towers, VAE
// encoder and text encoders, and the trainable InstantCharacter adapter.
// defines: ic_models, ic_model_paths, ic_models_* functions.
#pragma once
#include "models/flux.h"
#include "models/ic_adapter.h"
#include "models/ip_attn.h"
#include "models/vae.h"
#include "models/vision_features.h"
#include "train/config.h"
#include "train/text.h"

// where real weights come from (NULL / "" = the tiny random preset for that part)
typedef struct ic_model_paths {
    const char *flux, *siglip, *dinov2, *vae, *t5, *clip;  // tokenizers: beside t5/clip or in tokenizer_2/, tokenizer/
    const char *adapter_init;  // released / previous adapter to start from (fine-tuning)
    int t5_len;                // T5 tokens per caption (0 = FLUX's 512)
    int ref_size;              // the reference views' side (data.ref_size; 0 = the SigLIP tower's own)
    bool no_towers;            // SigLIP / DINOv2: their sizes only, no weights (a reference cache holds their
                               // features and no evaluation runs them): 2.9 GiB of bf16 off the card
} ic_model_paths;

typedef struct ic_models {
    cm_device dev;
    cm_dtype dtype;               // of every weight and activation: f32 on the CPU, bf16 (or f32) on CUDA
    bool tiny;
    flux_config flux_cfg;
    flux_model flux;
    cm_params ps_flux;            // frozen
    siglip_model sig;
    dino_model dino;
    vision_feat_config vfc;
    cm_params ps_vision;          // frozen: SigLIP
    cm_params ps_dino;            // frozen: DINOv2
    vae_encoder vae;
    cm_params ps_vae;             // frozen
    ic_text text;                 // T5 + CLIP + tokenizers, frozen
    ic_adapter_config ad_cfg;
    ic_adapter adapter;
    cm_params ps_adapter;         // trainable: image_proj.* and ip_adapter.*
    int ref_size;                 // reference view side the towers take
    struct ref_cache *refs;       // model.ref_cache: the reference features of the data's records read from it (not owned)
    struct latent_cache *latents; // model.latent_cache: the targets' VAE moments read from it (not owned)
    int vae_factor;               // pixels per latent
} ic_models;

#define IC_TINY_VAE_LEVELS 3  // the tiny preset's VAE: 4 pixels per latent

// where the frozen text encoders run: the run's device in its dtype, the CPU in f32
// (model.text_device: cpu), or nowhere — their outputs come from a text cache (model.text_cache)
typedef enum { IC_TEXT_MODEL = 0, IC_TEXT_CPU = 1, IC_TEXT_NONE = 2 } ic_text_where;

// tiny random models through the same code (the embedded demo and the tests); init_kv:
// "zero_v" zeroes every to_v_ip so the frozen FLUX starts unperturbed, "default" keeps nn.Linear init
// text: an ic_text_where (false / true: on dev in dt / on the CPU in f32)
int ic_models_init_tiny(ic_models *m, const train_tiny_dims *d, cm_device dev, cm_dtype dt, int text, uint64_t seed,
                        const char *init_kv, char *err, size_t errlen);
// real weights as published; parts whose path is empty use their tiny preset only when all are empty
int ic_models_load(ic_models *m, const ic_model_paths *p, cm_device dev, cm_dtype dt, int text, const char *init_kv,
                   uint64_t seed, char *err, size_t errlen);
// the text side alone, as the two above make it (the text cache's builder runs exactly these
// encoders): tiny != NULL: the tiny preset of the bundle's seed; else T5 / CLIP from t5, clip with
// t5_len tokens (0 = 512). IC_TEXT_NONE: only the widths and lengths, no encoder
int ic_models_text(ic_text *t, const train_tiny_dims *tiny, uint64_t seed, const char *t5, const char *clip, int t5_len, int text,
                   cm_device dev, cm_dtype dt, char *err, size_t errlen);
void ic_models_free(ic_models *m);
// the vision towers' weights given back (m->vfc and m->ref_size kept): a run whose reference
// features all come from a reference cache. ic_models_towers says whether they are there.
void ic_models_drop_towers(ic_models *m);
static inline bool ic_models_towers(const ic_models *m) { return m->sig.layer != NULL; }
// the vision towers alone, as the two above make them (the reference cache's builder runs exactly
// these): only m->sig, m->dino, m->vfc, m->ref_size set; free with ic_models_free
int ic_models_vision(ic_models *m, const train_tiny_dims *tiny, uint64_t seed, const char *siglip, const char *dinov2, int ref_size,
                     cm_device dev, cm_dtype dt, char *err, size_t errlen);
// the VAE encoder alone, as the two above make it (the latent cache's builder runs exactly this one):
// only m->vae, m->ps_vae, m->vae_factor set; free with ic_models_free
int ic_models_vae(ic_models *m, const train_tiny_dims *tiny, uint64_t seed, const char *vae, cm_device dev, cm_dtype dt, char *err,
                  size_t errlen);
// the reference features' sizes as the two above make the towers, without loading a weight: tiny != NULL
// the tiny preset's, else the towers at siglip and dinov2 (ref_size 0: SigLIP's own side). *tokens
// a view (N), *width (Ds + Dd), *vfc the shallow layers, *side the views'. 0 or -1 with err.
int ic_models_vision_shape(const train_tiny_dims *tiny, const char *siglip, const char *dinov2, int ref_size, int64_t *tokens,
                           int64_t *width, vision_feat_config *vfc, int *side, char *err, size_t errlen);
// 0 when dev can run (the CPU, or a CUDA device of a build with CUDA where one is usable);
// else err says why, prefixed by what names the setting ("run.device", "--device")
int ic_device_check(cm_device dev, const char *what, char *err, size_t errlen);
// the adapter weights of a file into m's adapter: the released PyTorch .bin (read directly) or a
// safetensors file (cameo export's, or a checkpoint's adapter.safetensors). 0, or -1 with err.
int ic_models_load_adapter_file(ic_models *m, const char *path, char *err, size_t errlen);
// the same file's tensors into ps, a subset of the adapter's names in any dtype (the optimizer's f32
// masters: optim_master_registry), the file's other tensors passed over without a word
int ic_adapter_file_into(cm_params *ps, const char *path, char *err, size_t errlen);
