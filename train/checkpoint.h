// checkpoint.h — training checkpoints: one folder per step, written atomically, verified by
// checksum on load, with fallback to the previous complete one. Format: docs/checkpoints.md.
// defines: ckpt_state and the ckpt_* functions.
//
//   DIR/step-N/adapter.safetensors    trainable params, bf16, published names (image_proj.*, ip_adapter.*)
//   DIR/step-N/optimizer.safetensors  f32 "<param>.master", "<param>.m", "<param>.v" + counters (optim_save)
//     — or, from a run with the optimizer state sharded over N ranks, optimizer-K-of-N.safetensors
//     for K = 0..N-1, each written by rank K with its own parameters' state
//   DIR/step-N/trainer_state.json     step, stage, step in stage, data position, RNG, skips, times
//   DIR/step-N/config.yaml            the resolved config (train_config_to_yaml)
//   DIR/step-N/manifest.json          every file above with its size and crc32 — written last
//   DIR/latest                        a small text file "step-N\n", replaced atomically
//
// Save: everything goes into DIR/.tmp-step-N (each file fsynced), then the folder is fsynced and
// renamed to DIR/step-N, DIR is fsynced, then `latest` is replaced (write latest.tmp, fsync,
// rename, fsync DIR). A crash at any point leaves the previous checkpoint and `latest` intact;
// leftovers (.tmp-step-*) are removed by the next save. keep_last K > 0 then deletes the oldest
// complete checkpoints beyond K (each renamed to .del-step-N first: a deletion cut short is a
// leftover the next save removes).
// Load: `latest` → verify the manifest's sizes and checksums; when it is missing or damaged,
// the newest other complete checkpoint that verifies is used, with a warning on stderr naming
// what was wrong.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "models/params.h"
#include "models/atomic_file.h"
#include "models/safetensors.h"
#include "train/optim.h"

#define CKPT_MAX_DATA 16
#define CKPT_MAX_RNG 8

typedef struct ckpt_state {
    int64_t step;                 // optimizer steps done over the whole run (the next step's index)
    int stage;                    // stage index of the next step
    int64_t step_in_stage;        // steps done in that stage
    char stage_name[128];
    int n_data;                   // the loader's resume integers, opaque here (loader_resume)
    char data_names[CKPT_MAX_DATA][32];
    uint64_t data_pos[CKPT_MAX_DATA];
    uint64_t seed;
    int n_rng;                    // any RNG state words the trainer keeps (0 when all counter-based)
    uint64_t rng[CKPT_MAX_RNG];
    int64_t skipped_steps;        // non-finite steps skipped so far, and in a row at the save
    int64_t skipped_in_row;
    double loss_smoothed;         // the smoothed loss at the save (NAN: none yet; written only when finite)
    double loss_ema_acc;          // its running average before bias correction, and the losses it saw:
    int64_t loss_ema_n;           // restored exactly on resume (-1: not in the file, an older checkpoint)
    double elapsed_s;             // training wall time so far (over all resumes)
    double started_unix;          // when the run first started
    double saved_unix;            // filled by ckpt_save
} ckpt_state;

// adds one named data-position integer (up to CKPT_MAX_DATA)
void ckpt_state_add_data(ckpt_state *st, const char *name, uint64_t value);
// the value of a named data-position integer; false when absent
bool ckpt_state_get_data(const ckpt_state *st, const char *name, uint64_t *value);

// Writes DIR/step-<st->step> as above. regs: the registries whose trainable params form the
// adapter; opt: the optimizer (NULL: no optimizer file, e.g. an export); config_yaml: the
// resolved config text (NULL: none). keep_last 0 keeps all. out (may be NULL) receives the
// folder's path. 0, or -1 with a message in err (and nothing older touched).
int ckpt_save(const char *dir, cm_params **regs, int n_regs, const optim *opt, const ckpt_state *st,
              const char *config_yaml, int keep_last, char *out, size_t outlen, char *err, size_t errlen);

// The same in three parts, for a save by many ranks (each writing its optimizer shard into the
// temporary folder, on a file system they share): rank 0 calls ckpt_save_begin (creates
// DIR/.tmp-step-N, removes leftovers); then every rank writes its file into ckpt_tmp_path(...)
// under the name ckpt_optim_name(rank, world); then rank 0 calls ckpt_save_finish with those
// names in `more` and their sizes and crc32s (optim_save_sum) in `more_sums` (they go into the manifest:
// nothing is read back), or ckpt_save_abort when any rank failed.
void ckpt_tmp_path(const char *dir, int64_t step, char *out, size_t outlen);
void ckpt_optim_name(int shard, int n_shards, char *out, size_t outlen);
int ckpt_save_begin(const char *dir, int64_t step, char *err, size_t errlen);
int ckpt_save_finish(const char *dir, cm_params **regs, int n_regs, const ckpt_state *st, const char *config_yaml,
                     const char *const *more, const af_sum *more_sums, int n_more, int keep_last, char *out, size_t outlen,
                     char *err, size_t errlen);
void ckpt_save_abort(const char *dir, int64_t step);

// checks a checkpoint folder against its manifest (sizes, crc32); 0, or -1 with the problem
int ckpt_verify(const char *ckpt_dir, char *err, size_t errlen);
// one file given by path (CKPT/adapter.safetensors as adapter_init or export's input): checked
// against the manifest of the checkpoint folder it lies in; 0 when it matches, or when it lies in
// no checkpoint folder or the manifest does not list it; -1 with the problem (a checkpoint folder
// whose manifest is missing or unreadable included: nothing in it can be verified)
int ckpt_verify_member(const char *path, char *err, size_t errlen);

// path: a checkpoint folder (holds manifest.json) — verified, no fallback — or a folder of
// checkpoints (holds `latest` or step-*) — latest with fallback. out receives the folder.
// 0, or -1 when no usable checkpoint exists (err says what was tried).
int ckpt_resolve(const char *path, char *out, size_t outlen, char *err, size_t errlen);

// reads trainer_state.json
int ckpt_read_state(const char *ckpt_dir, ckpt_state *st, char *err, size_t errlen);
// restores a verified checkpoint: optimizer state and master weights into opt's params — of its
// own shard, from whichever optimizer file holds each parameter (opt may
// be NULL: then the adapter's bf16 weights are loaded into the regs' trainable params —
// for evaluation or fine-tuning starts) and the trainer state into st (may be NULL).
int ckpt_load(const char *ckpt_dir, cm_params **regs, int n_regs, optim *opt, ckpt_state *st, char *err, size_t errlen);
// the same for a folder ckpt_resolve has just verified (its files not read again: at full size the
// optimizer files are ~45 GB)
int ckpt_load_verified(const char *ckpt_dir, cm_params **regs, int n_regs, optim *opt, ckpt_state *st, char *err,
                       size_t errlen);

// The weight average of a checkpoint (optimizer.ema): "<param>.ema" (f32) in its optimizer files.
// ckpt_open_ema opens those files of a folder ckpt_resolve has verified (not read again, as
// ckpt_load_verified; an error when its run kept no average); ckpt_ema_find finds a parameter's
// average in whichever file holds it (NULL for one held fixed, adapter.freeze). ckpt_load_ema
// loads the adapter's weights as ckpt_load_verified with opt NULL does, then the average over
// every parameter that has one (for evaluation: --ema).
int ckpt_open_ema(const char *ckpt_dir, st_file ***files, int *n_files, char *err, size_t errlen);
const st_entry *ckpt_ema_find(st_file *const *files, int n_files, const char *param);
void ckpt_close_files(st_file **files, int n_files);
int ckpt_load_ema(const char *ckpt_dir, cm_params **regs, int n_regs, char *err, size_t errlen);

// complete checkpoints (a step-N folder with manifest.json) in DIR, ascending; returns the count
// (at most max written to steps), -1 when DIR cannot be read
int ckpt_list(const char *dir, int64_t *steps, int max);
// every complete step-N of dir, ascending, in *steps (malloc'd; the caller frees; NULL on -1). n or -1
int ckpt_list_all(const char *dir, int64_t **steps);

// crc32 of a whole file; 0 on success, -1 (errno set) when unreadable
int ckpt_crc32_file(const char *path, uint32_t *crc, uint64_t *size);
