// stage_setup.h — what a config says for one stage's loader and for the training step, in one
// place for the trainer and the benchmark.
// defines: stage_loader_config, stage_step_opts, stage_check_pairs, stage_freeze_adapter
#pragma once
#include <stdint.h>
#include "data/loader.h"
#include "models/params.h"
#include "train/config.h"
#include "train/step.h"

// the loader of stage s for rank r of w (reference views of ref_size); each stage has its own order
loader_config stage_loader_config(const train_config *c, int s, int ref_size, int rank, int world);
// stage s's aspect buckets into bk[BUCKETS_MAX] (W, H), as its loader makes them (its buckets, else
// data.bucket_step / data.max_aspect at its resolution): how many, or < 1 when none fits
int stage_buckets(const train_config *c, int s, int (*bk)[2]);
// stage s's (its recompute, else the train section's); s < 0: the train section's
step_opts stage_step_opts(const train_config *c, int s);

// every paired or mixed stage that runs (steps > 0) finds a character with two images in its dataset, path_of(c, s),
// and one aspect bucket of it holds a whole global batch (stages[s].batch_size: the loader's batches
// never mix buckets); each distinct dataset is opened once. key: NULL for the training's check,
// the validation's key for its check (whose batch is stage_val_batch's). 0, or -1 with err naming
// key (NULL: "stages[s].mode" / "stages[s].batch_size"), the dataset and the stage. warn (may be NULL) receives a
// line per stage where a tenth or more of the images are enlarged to their bucket ("" when none)
int stage_check_pairs(const train_config *c, const char *(*path_of)(const train_config *c, int s), const char *key,
                      char *warn, size_t warnlen, char *err, size_t errlen);
// the global batch validation takes in stage s (validation.batch_size, else the stage's)
int stage_val_batch(const train_config *c, int s);

// adapter.freeze applied to the adapter's registry ps (the named parts held fixed: no gradient, no
// optimizer state). 0 with the tensors / parameters held (*nf, *held) of all trainable (*nt, *all);
// -1 with err when a prefix names no weight or every weight would be held fixed
int stage_freeze_adapter(const train_config *c, cm_params *ps, int *nf, int *nt, int64_t *held, int64_t *all, char *err,
                         size_t errlen);
