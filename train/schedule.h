// schedule.h — the learning rate per step: linear warm-up, then constant or cosine decay to a
// floor (min_lr_ratio x lr), per stage. Every stage restarts its own warm-up and decay.
// defines: lr_schedule, schedule_* functions.
#pragma once
#include <stdint.h>
#include "train/config.h"

typedef struct lr_schedule {
    double lr;             // peak (base) learning rate
    int64_t warmup;        // steps of linear warm-up: step s < warmup gives lr * (s + 1) / warmup
    int64_t total;         // steps in the stage (cosine reaches the floor at the last step)
    cfg_lr_kind kind;      // CFG_LR_CONSTANT | CFG_LR_COSINE
    double min_ratio;      // cosine floor as a fraction of lr
} lr_schedule;

// the schedule of stage s of a config (its lr, or optimizer.lr when the stage gives none)
lr_schedule schedule_for_stage(const train_config *c, int stage);
// lr at step (0-based) within the stage; steps past total stay at the last value
double schedule_lr(const lr_schedule *s, int64_t step);
// shortcut: the lr of a global step of a config (0 past the last stage)
double schedule_lr_global(const train_config *c, int64_t global_step);
