// config_diff.h — what a resume changes: the checkpoint's resolved config against the one the
// resumed run will use, key by key (its --set overrides, or an edited CONFIG), and which of those
// changes a stage in progress cannot take. defines: cfg_change, train_config_diff,
// train_config_resume_check, train_config_resume_check_all.
#pragma once
#include <stddef.h>
#include "train/config.h"

typedef struct cfg_change {
    char path[96];            // "optimizer.lr", "stages[2].batch_size"
    char was[160], now[160];  // the values as the resolved YAML writes them ("(none)": absent)
} cfg_change;

// every key whose value differs between the resolved YAML of was and now, in the order of now's
// YAML (then the keys only was has); fills out[0..max) and returns how many differ (may be > max)
int train_config_diff(const train_config *was, const train_config *now, cfg_change *out, int max);
// a resume into stage `stage` with step_in_stage steps of it done: 0, or -1 with err naming the
// first change that the data position of the stage in progress cannot follow (its global batch,
// mode, paired share, resolution or buckets, the data's bucket grid, the seed; any stage: the frozen
// part of the adapter, adapter.freeze), what it was and is,
// and what to do instead
int train_config_resume_check(const cfg_change *ch, int n, int stage, long long step_in_stage, char *err, size_t errlen);
// train_config_resume_check over every change of was → now (train_config_diff's whole count, not a
// first max of them: a refused change past them went unseen)
int train_config_resume_check_all(const train_config *was, const train_config *now, int stage, long long step_in_stage,
                                  char *err, size_t errlen);
