// optim.h — AdamW over the trainable parameters of one or more cm_params registries, with f32
// master weights and moments, global grad-norm clipping and NaN/Inf step skipping.
// defines: optim_config, optim_slot, optim, optim_step_info and the optim_* functions.
//
// Parameters: the trainable params of the registries (less those held fixed, cm_param.frozen), in registry order then registration
// order, form one flattened list (index 0..n_all-1). That index is how everything outside refers
// to a parameter (optim_grad_ready, optim_param_at).
//
// Precision: a parameter stored in f32 (CPU, or CUDA f32) IS its own master — the update runs in
// place on its storage, no copy. A bf16 parameter (CUDA) gets a separate f32 master on the same
// device; after each update the master is cast back into the bf16 parameter. Moments m, v are
// f32 on the parameter's device. Gradients may be f32 or bf16 (the backend's adamw reads both).
//
// Sharded over ranks (ZeRO-1 data parallelism, optim_init_sharded; train/dist.h moves the data):
//   * The optimizer owns a contiguous shard [begin, end) of the flattened list: only those get
//     master/moment state, are updated, saved and loaded. Default: everything ([0, n_all)).
//     optim_init_sharded cuts the list into n_shards shards of about equal element counts and
//     keeps every shard's bounds, so each parameter's owner is known (optim_owner).
//   * optim_grad_ready(opt, i) marks parameter i's gradient final and averaged for this step
//     (the trainer calls it after train/dist_reduce.h's reducer is done; the reducer itself
//     learns when a gradient is final from autograd's leaf hook).
//   * The global grad norm of a sharded run: every rank fills its owned entries of a per-parameter
//     vector (optim_local_sumsq_parts), the vector is summed over the ranks and then summed in
//     parameter order (optim_sum_parts) — on the CPU the very bits of the one-rank norm. It is
//     passed to optim_apply. optim_step does both for one rank.
//   * After optim_apply, a sharded run all-gathers the updated parameters of each shard (the
//     optimizer never touches parameters outside its shard).
//
// Step:  norm = ||g||_2 over the shard (backend sumsq)  → not finite: skip (no update, moments
// untouched, gradients zeroed, counted)  → gscale = min(1, clip / (norm + 1e-6)) (PyTorch's
// clip_grad_norm_) → backend adamw_multi over each (device, gradient dtype) group of the owned
// parameters (the same bits as adamw per parameter), bias corrections of step t = step + 1
// → bf16 params get cast(master).
//
// Weight average (cfg.ema_decay = d > 0): each owned parameter keeps an f32 ema beside its master,
// starting equal to it; after every applied update (not a skipped one) ema = d_u ema + (1 - d_u)
// master for every owned parameter (backend axpby), d_u = d, or with cfg.ema_warmup as diffusers'
// EMAModel: 0 at the first update (u = 0: the average takes the updated weights), then
// min(d, (1 + u) / (10 + u)) at the u-th. Sharded like the masters: no communication. Saved
// as "<param>.ema" beside the moments (metadata "optim.ema_updates"); `cameo export --ema`,
// `cameo eval --ema` and `cameo sample --ema` read it from there (ckpt_ema_*, checkpoint.h).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"
#include "models/params.h"

typedef struct optim_config {
    double lr;            // default lr (optim_step takes the scheduled lr)
    double beta1, beta2, eps, weight_decay;
    double grad_clip;     // max global L2 norm; 0 = no clipping
    cm_dtype state_dtype; // of the moments m, v: CM_F32 (default, 0) or CM_BF16 (stochastic rounding,
                          // kernels/sr_round.h: 8 instead of 16 bytes per parameter's moments)
    double ema_decay;     // > 0: an exponential moving average of the weights (f32, beside the master)
    bool ema_warmup;      // its decay 0 at the first update, then min(ema_decay, (1 + u) / (10 + u)) at the u-th (u from 0: diffusers' EMAModel)
} optim_config;

typedef struct optim_slot {   // one owned parameter
    cm_param *param;          // in its registry (name, tensor)
    int index;                // in the flattened list
    int64_t n;                // elements
    cm_tensor *master;        // f32 master: == param->t (retained) when the param is f32 contiguous
    bool master_is_param;
    cm_tensor *m, *v;         // moments (cfg.state_dtype), contiguous, on the param's device
    cm_tensor *ema;           // f32 average of the master (cfg.ema_decay > 0), else NULL
    cm_tensor *held;          // the master while the average stands in a parameter that is its own master
} optim_slot;

typedef struct optim {
    optim_config cfg;
    cm_param **all;           // [n_all] the flattened trainable list
    int n_all;
    int begin, end;           // the owned shard [begin, end)
    int n_shards, shard;      // optim_init_sharded: how many shards, and which one is this
    int *bounds;              // [n_shards + 1] every shard's first index (NULL: not sharded)
    optim_slot *slot;         // [end - begin]
    bool *ready;              // [n_all] gradient marked ready this step (optim_grad_ready)
    int64_t step;             // updates applied (AdamW's t for the next update is step + 1)
    int64_t skipped;          // steps skipped for non-finite gradients, in total
    int64_t skipped_in_row;   // consecutive skipped steps (0 after a good one)
    int64_t ema_updates;      // updates of the weight average so far (its warm-up's u)
    bool ema_fresh;           // optim_load_files found no average in the files: it starts from their masters
} optim;

typedef struct optim_step_info {
    double grad_norm;         // before clipping (NaN/Inf when skipped)
    double gscale;            // the factor the held gradients were applied with: the clip factor (1 = none) x grad_mult
    double lr;
    bool skipped;             // non-finite gradient: nothing updated
    int n_missing_grad;       // owned params without .grad: left untouched this step, as PyTorch does
} optim_step_info;

optim_config optim_config_default(void);  // lr 1e-4, betas 0.9/0.999, eps 1e-8, wd 0.01, clip 1.0

// regs: n_regs registries; their trainable params form the flattened list. begin/end: the owned
// shard; end = -1 means n_all. 0, or -1 with a message in err (no trainable params, bad shard,
// mixed devices).
int optim_init(optim *o, cm_params **regs, int n_regs, const optim_config *cfg, int begin, int end, char *err,
               size_t errlen);
// the shard `shard` of n_shards: [bounds[shard], bounds[shard + 1]) where the bounds cut the
// flattened list into runs of about equal element counts (a shard may be empty when there are
// more shards than parameters). 0, or -1 with err.
int optim_init_sharded(optim *o, cm_params **regs, int n_regs, const optim_config *cfg, int shard, int n_shards,
                       char *err, size_t errlen);
void optim_free(optim *o);
// A bf16 parameter's master starts as the parameter cast up: the bits an f32 file had beyond
// bf16 (model.adapter_init) are gone. optim_master_registry lists the owned separate masters (f32,
// contiguous, under their parameters' names; parameters that are their own master are left out)
// for a loader to fill from the file; then optim_masters_loaded casts them into the parameters
// and restarts the weight average from them. params_free(out) releases the list, not the masters.
void optim_master_registry(optim *o, cm_params *out);
void optim_masters_loaded(optim *o);
// the shard that owns parameter i (0 when the optimizer is not sharded)
int optim_owner(const optim *o, int i);

int optim_n_params(const optim *o);                 // n_all
cm_param *optim_param_at(const optim *o, int i);    // flattened index → param
int64_t optim_numel(const optim *o, bool owned_only);

// the hook point (see above): parameter i's gradient is final for this step
void optim_grad_ready(optim *o, int param_index);

// sum of squares of the owned gradients (missing .grad = 0); NaN/Inf propagate
double optim_local_sumsq(const optim *o);
// the same in parts: parts[n_all] gets each owned parameter's sum of squares (on the CPU; a CUDA
// group's total lands in its first member's entry) and 0 elsewhere; optim_sum_parts adds them in
// index order — the bits of optim_local_sumsq
void optim_local_sumsq_parts(const optim *o, double *parts);
double optim_sum_parts(const optim *o, const double *parts);
// one AdamW update of the owned shard given the GLOBAL grad norm; zeroes the owned gradients.
// Returns 1 when skipped (non-finite norm), 0 when applied.
int optim_apply(optim *o, double lr, double grad_norm, optim_step_info *info);
// the same for gradients that are grad_mult times the held ones (the trainer's correction when
// damaged records left micro-batches short): norm, clipping and update as for grad_mult x .grad
int optim_apply_scaled(optim *o, double lr, double grad_norm, double grad_mult, optim_step_info *info);
// optim_apply(o, lr, sqrt(optim_local_sumsq(o))) — the one-rank step
int optim_step(optim *o, double lr, optim_step_info *info);
// releases the .grad of every parameter in the flattened list (owned or not)
void optim_zero_grad(optim *o);
// in: the weight average into the owned parameters (rounded to their dtype; a parameter that is
// its own master keeps a copy of it meanwhile); out: the masters back, the very bytes of before.
// For measuring the average (validation, evaluation); a sharded run then broadcasts the owners'
// parameters (dist_broadcast_params) after each swap. Nothing when the optimizer keeps no average.
void optim_swap_ema(optim *o, bool in);

// State of the owned shard to/from safetensors: "<param>.m", "<param>.v" (in the state dtype),
// "<param>.master" (f32), "<param>.ema" (f32, with a weight average), metadata "optim.step",
// "optim.skipped", "optim.skipped_in_row", "optim.format" ("optim.ema_updates" with an average).
// Files without an average load into an optimizer with one: it starts from their masters
// (ema_fresh); an average in the files is ignored by an optimizer without one.
// Loading checks names, shapes and dtypes (moments f32 or bf16, cast to the state dtype: a
// run may switch optimizer.state_dtype on resume), writes the masters into the parameters (cast to bf16 where
// the param is bf16) and restores the counters. 0, or -1 with err naming the file and key.
// Metadata "optim.shard" = "begin:end:n_all" says which part a file holds. A sharded run writes
// one file per shard; optim_load_files finds each owned parameter in whichever of the files holds
// it, so a run may resume on a different number of ranks (every file must agree on the counters).
int optim_save(const optim *o, const char *path, char *err, size_t errlen);
// the same, *sum (may be NULL) getting the file's size and crc32 (for a checkpoint's manifest)
struct af_sum;
int optim_save_sum(const optim *o, const char *path, struct af_sum *sum, char *err, size_t errlen);
int optim_load(optim *o, const char *path, char *err, size_t errlen);
int optim_load_files(optim *o, const char *const *paths, int n_paths, char *err, size_t errlen);
