// config.h — the training configuration: a YAML file (libyaml) typed into `train_config`.
// defines: train_config, train_stage and the enums below; train_config_* functions;
//          train_config_tiny_yaml (the embedded configs/tiny.yaml, train/config_tiny.c).
//
// Reading: YAML → a generic tree → `--set a.b.c=value` overrides applied on the tree (list
// items by index: stages.1.steps=200, or stages[1].steps=200) → typed against the schema.
// Every field has a default (docs/configs.md lists them); unknown keys, wrong types and
// out-of-range values are errors naming the key path and what is allowed, e.g.
//   "configs/x.yaml:12: stages[1].mode: 'pared' is not one of unpaired, paired, mixed".
// Writing: train_config_to_yaml gives the resolved config (every field, defaults filled) as
// YAML that reads back to the same struct; checkpoints store it as config.yaml.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"

#define CFG_MAX_STAGES 16
#define CFG_MAX_BUCKETS 64
#define CFG_PATH 1024
#define CFG_MAX_FREEZE 8
#define CFG_MAX_SIGMAS 8
#define CFG_NAME 128

typedef enum { CFG_MODE_UNPAIRED = 0, CFG_MODE_PAIRED, CFG_MODE_MIXED } cfg_mode;          // = loader_mode
typedef enum { CFG_LR_CONSTANT = 0, CFG_LR_COSINE } cfg_lr_kind;
typedef enum { CFG_T_LOGIT_NORMAL = 0, CFG_T_FLUX_SHIFT, CFG_T_UNIFORM } cfg_timestep;
typedef enum { CFG_W_NONE = 0, CFG_W_SIGMA_SQRT, CFG_W_COSMAP } cfg_weighting;
typedef enum { CFG_INIT_KV_ZERO_V = 0, CFG_INIT_KV_DEFAULT } cfg_init_kv;
typedef enum { CFG_DTYPE_AUTO = 0, CFG_DTYPE_F32, CFG_DTYPE_BF16 } cfg_dtype;

typedef struct train_stage {
    char name[CFG_NAME];
    char data[CFG_PATH];     // this stage's dataset; "" = data.path
    cfg_mode mode;           // unpaired | paired | mixed
    double paired_share;     // mixed: share of paired samples [0, 1]
    int resolution;          // bucket area = resolution^2
    int n_buckets;           // 0 = auto (derived by the loader from resolution)
    int buckets[CFG_MAX_BUCKETS][2];  // (W, H)
    int batch_size;          // global batch per optimizer micro-step
    int grad_accum;          // micro-batches per optimizer step
    int64_t steps;           // optimizer steps in this stage
    cfg_lr_kind lr_schedule; // constant | cosine
    int64_t warmup_steps;    // linear warm-up from lr/warmup to lr
    double lr;               // 0 = optimizer.lr
    double min_lr_ratio;     // cosine: final lr = lr * min_lr_ratio
    int recompute;           // this stage's train.recompute; CFG_RECOMPUTE_INHERIT: the train section's
} train_stage;
#define CFG_RECOMPUTE_INHERIT (-2)
#define CFG_RECOMPUTE_AUTO (-3)  // auto: the stage's first step measures, then as few blocks as fit recompute

typedef struct train_tiny_dims {  // model.tiny: sizes of the tiny models (the code path is the full one)
    int flux_double, flux_single, flux_heads, flux_head_dim;
    int vision_hidden, vision_layers, vision_heads, vision_patch, vision_image;
    int text_dim, text_len, pooled_dim;
    int proj_heads, proj_head_dim, proj_layers, proj_queries, proj_depth;
    int vae_channels, latent_channels;
} train_tiny_dims;

typedef struct train_config {
    char source[CFG_PATH];   // where it was read from ("<embedded tiny.yaml>" for the default)
    struct {
        char name[CFG_NAME];
        char out_dir[CFG_PATH];  // run folder = out_dir/name (checkpoints/, metrics.jsonl, tb/)
        uint64_t seed;
        char device[32];         // "cpu" | "cuda" | "cuda:N"
        cm_device dev;           // parsed from device
        int threads;             // 0 = all cores
        bool quiet;
        int log_every, ckpt_every, keep_last, max_bad_steps;
        double step_timeout;     // seconds a step may take before the process stops; 0 off; -1 auto (1800 s under several ranks)
    } run;
    struct {
        char sizes[CFG_NAME];    // "tiny" | "full"
        bool tiny;               // sizes == "tiny"
        train_tiny_dims tiny_dims;
        char flux[CFG_PATH], siglip[CFG_PATH], dinov2[CFG_PATH], vae[CFG_PATH], t5[CFG_PATH], clip[CFG_PATH];
        char adapter_init[CFG_PATH];  // "" = fresh init; else a released adapter (.bin or .safetensors)
        cfg_dtype dtype;              // auto: f32 on cpu, bf16 on cuda
        bool text_cpu;                // text_device: cpu — T5 / CLIP on the CPU in f32 (else the run's device and dtype)
        char text_cache[CFG_PATH];    // "" = T5 / CLIP run every step; else their outputs read from this cache (cameo cache-text)
        char ref_cache[CFG_PATH];     // "" = SigLIP / DINOv2 run on every reference; else their features read from this cache (cameo cache-refs)
        char latent_cache[CFG_PATH];  // "" = the VAE runs on every target; else its moments read from this cache (cameo cache-latents)
    } model;
    struct {
        char path[CFG_PATH];
        bool generate_demo_if_missing;
        int demo_characters, demo_per_character, demo_size;  // the generated demo dataset
        int ref_size, threads, prefetch, bucket_step;
        double max_aspect;
        bool random_crop;        // the target cut at a random place of its resize (each epoch anew), else at its centre
        bool random_flip;        // the target flipped left-right with probability 1/2 (each epoch anew; never the reference)
    } data;
    struct {
        double ip_scale;
        cfg_init_kv init_kv;
        int n_freeze;                            // freeze: adapter weights held fixed, by name prefix
        char freeze[CFG_MAX_FREEZE][CFG_NAME];   // "image_proj", "ip_adapter", "image_proj.cross_layer_blocks", ...
    } adapter;
    struct {
        double caption_drop, ref_drop;
        cfg_timestep timestep;
        double logit_mean, logit_std;   // logit_normal
        double shift_base, shift_max;   // flux_shift: mu from 0.5 (256 tokens) to 1.15 (4096 tokens)
        double guidance;
        cfg_weighting weighting;
        bool vae_sample;  // the target latent drawn from the VAE posterior (diffusers); false: its mean
        int recompute;  // FLUX blocks under recompute scopes, from the first: 0 none, -1 all
    } train;
    struct {
        double lr, beta1, beta2, eps, weight_decay, grad_clip;  // grad_clip 0 = off
        bool shard_state;  // ZeRO-1 over the data-parallel ranks: each keeps 1/world of the AdamW state
        double reduce_bucket_mb;  // gradient buckets reduced during backward (0 = all after backward)
        bool state_bf16;          // state_dtype: bf16 — AdamW moments in bf16 with stochastic rounding
        double ema;               // decay of the weights' moving average (0 = none; train/optim.h)
        bool ema_warmup;          // its decay 0 at the first update, then min(ema, (1 + u) / (10 + u)) at the u-th (u from 0)
    } optimizer;
    struct {  // evaluation during training (rank 0): cameo eval's scores on the current adapter
        int every;                 // optimizer steps between evaluations (0 = off); also after the last step
        char pairs[CFG_PATH];      // JSONL of {"ref", "prompt"} (cameo eval's --pairs)
        double scale, guidance;    // subject scale, FLUX guidance
        int steps, seeds, size;    // sampler steps; seeds 0..seeds-1; square side (0 = the stage's resolution)
        char clip[CFG_PATH];       // "" = no CLIP-I / CLIP-T; else a full CLIP model (cameo eval's --clip)
        bool ema;                  // score the weight average (optimizer.ema) instead of the weights
    } eval;
    struct {  // validation loss (every rank): the flow-matching loss on fixed samples at fixed σ
        int every;                 // optimizer steps between validations (0 = off); also after the last step
        char path[CFG_PATH];       // a dataset held out from training; "" = data.path (then not held out)
        int samples;               // how many samples (rounded up to whole global batches)
        int batch_size;            // validation's global batch (0 = the stage's batch_size); 1 takes any held-out set
        int n_sigmas;
        double sigmas[CFG_MAX_SIGMAS];  // each sample's loss at each of these σ, with noise fixed per (sample, σ)
    } validation;
    int n_stages;
    train_stage stages[CFG_MAX_STAGES];
} train_config;

// every field at its default; no stages (a stage's own defaults: train_stage_defaults)
void train_config_defaults(train_config *c);
void train_stage_defaults(train_stage *s, int index);

// Reads path (NULL or "" = the embedded tiny config), applies the n_sets "a.b.c=value" overrides
// and types the result into c. 0, or -1 with a message in err.
// the dataset stage s reads: its own data, else data.path
const char *cfg_stage_data(const train_config *c, int s);
// the datasets a run reads, each once: each stage's with steps (its own data, else data.path), then
// validation's when validation.every is on (validation.path, else data.path); into paths[], which
// point into c. Returns how many (at most CFG_MAX_STAGES + 1)
int cfg_run_datasets(const train_config *c, const char *paths[CFG_MAX_STAGES + 1]);
// whether any stage reads data.path (one without its own stages[i].data); when none does, data.path
// need not hold a dataset
bool cfg_data_path_used(const train_config *c);
int train_config_load(train_config *c, const char *path, const char *const *sets, int n_sets, char *err, size_t errlen);
// same from a YAML text; name is used in messages
int train_config_parse(train_config *c, const char *yaml, size_t len, const char *name, const char *const *sets,
                       int n_sets, char *err, size_t errlen);

// Checks what a config needs from the file system before any work: model weight paths exist
// (unless tiny), adapter_init exists when set, the dataset exists or may be generated.
int train_config_check_paths(const train_config *c, char *err, size_t errlen);

// the resolved config as YAML (malloc'd, the caller frees); reads back to the same struct
char *train_config_to_yaml(const train_config *c);
// writes train_config_to_yaml atomically (tmp + fsync + rename)
int train_config_write(const train_config *c, const char *path, char *err, size_t errlen);

// derived values
// the run folder: out_dir/name (checkpoints/, metrics.jsonl, tb/ go there)
const char *train_config_run_dir(const train_config *c, char *buf, size_t n);
double train_stage_lr(const train_config *c, int stage);      // stage lr or optimizer.lr
int64_t train_config_total_steps(const train_config *c);       // over all stages
// global step at which stage s starts; stage_of_step maps a global step to (stage, step in stage)
int64_t train_config_stage_start(const train_config *c, int stage);
int train_config_stage_of_step(const train_config *c, int64_t step, int64_t *step_in_stage);
// the last stage with steps (-1: none): its last step is the run's last — stages after it with
// steps: 0 are skipped, so they do not defer the final validation, evaluation or data position
int train_config_last_stage(const train_config *c);

const char *cfg_mode_name(cfg_mode m);
const char *cfg_lr_kind_name(cfg_lr_kind k);
const char *cfg_timestep_name(cfg_timestep t);
const char *cfg_weighting_name(cfg_weighting w);
const char *cfg_init_kv_name(cfg_init_kv k);
const char *cfg_dtype_name(cfg_dtype d);
// model.dtype on a device: as set, or auto = f32 on cpu, bf16 on cuda
cm_dtype cfg_model_dtype(const train_config *c, cm_device dev);
// "cpu", "cuda", "cuda:N" -> a device; -1 otherwise
int cfg_parse_device(const char *s, cm_device *d);

extern const char train_config_tiny_yaml[];  // configs/tiny.yaml, compiled in (train/config_tiny.c)
