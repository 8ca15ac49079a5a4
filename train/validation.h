// validation.h — the validation loss (config `validation:`): every validation.every optimizer
// steps and after the run's last one, the rectified-flow loss of the adapter as it is on the same
// validation.samples samples, each at every σ of validation.sigmas with its noise fixed per
// (sample, σ) — so the curve moves only with the weights, where the training loss also moves with
// its random σ, noise and samples. The samples come from validation.path (a held-out dataset) or
// data.path, at the current stage's resolution and mode, with no caption or reference dropped.
// Every rank takes its slice of each global batch (the stage's batch size) and the means are
// averaged over the ranks. Rank 0 appends a line to RUN/validation.jsonl, the scalars to
// TensorBoard (val/loss, val/loss_sigma_<σ>) and prints a progress line.
// Nothing of the training's randomness is drawn (its own loader and noise keys): the trained
// weights are the same with validation on or off.
// With a weight average (optimizer.ema) the same samples are measured again on it (the caller's
// swap puts it in and takes it out): "loss_ema" and "loss_ema_by_sigma" in the line, val/loss_ema.
// defines: train_val, train_val_open, train_val_due, train_val_run, train_val_close
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "train/config.h"
#include "train/dist.h"
#include "train/metrics.h"
#include "train/models.h"
#include "train/progress.h"

typedef struct train_val {
    char jsonl[4300];         // RUN/validation.jsonl
    bool resume_unvalidated;  // rank 0, on a resume: the file has no line of the resume step
    bool tb_warned;           // a TensorBoard write failed (a full disk): said once, the run goes on
    int skips_told;           // 1 + the stage whose validation has logged its damaged records (0: none yet)
    // the validation set of a stage: its dataset opened, bucketed and its batches chosen once (at
    // its first validation), not at every one (each read every sample's size: seconds at 10M)
    struct loader_index *ix;
    int ix_stage;             // 1 + the stage ix belongs to (0: none)
} train_val;

// at the start (validation.every > 0): the dataset exists and has pairs where a stage needs them;
// on a resume (resume_step >= 0) rank 0 drops the lines of later steps and notes whether the resume
// step's own line is there (a stop before or during its validation leaves it out). 0, or -1 with err.
int train_val_open(train_val *v, const train_config *c, const char *run_dir, int64_t resume_step, int rank, char *err,
                   size_t errlen);
// whether step (just done) is a validation step; last: the run's last step
bool train_val_due(const train_config *c, int64_t step, bool last);
// the validation loss at `step` in stage s (every rank calls it); *loss gets the mean over samples
// and σ. 0, or -1 with err (on every rank alike: the training may go on).
// swap (may be NULL): swap(ctx, true) puts the weight average into the models' adapter on every
// rank, swap(ctx, false) the weights back.
int train_val_run(train_val *v, ic_models *m, const train_config *c, int s, int64_t step, const dist *d, metrics *met,
                  progress *prog, void (*swap)(void *ctx, bool in), void *swap_ctx, double *loss, char *err, size_t errlen);
// frees the validation set kept (safe on a train_val zeroed or never opened)
void train_val_close(train_val *v);
