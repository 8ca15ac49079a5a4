// schedule.c — warm-up + constant | cosine learning rates.
#include "train/schedule.h"

#include <math.h>

lr_schedule schedule_for_stage(const train_config *c, int stage) {
    const train_stage *st = &c->stages[stage];
    return (lr_schedule){.lr = train_stage_lr(c, stage), .warmup = st->warmup_steps, .total = st->steps,
                         .kind = st->lr_schedule, .min_ratio = st->min_lr_ratio};
}

double schedule_lr(const lr_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (s->kind == CFG_LR_CONSTANT) return s->lr;
    int64_t span = s->total - s->warmup - 1;  // decay steps after warm-up; the last step hits the floor
    if (span <= 0) return s->lr;  // nothing left to decay over
    double p = (double)(step - s->warmup) / (double)span;
    if (p > 1) p = 1;
    const double pi = 3.14159265358979323846;
    return s->lr * (s->min_ratio + (1 - s->min_ratio) * 0.5 * (1 + cos(pi * p)));
}

double schedule_lr_global(const train_config *c, int64_t global_step) {
    int64_t in_stage;
    int s = train_config_stage_of_step(c, global_step, &in_stage);
    if (s >= c->n_stages) return 0;
    lr_schedule sc = schedule_for_stage(c, s);
    return schedule_lr(&sc, in_stage);
}
