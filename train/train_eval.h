// train_eval.h — evaluation during training (config `eval:`): every eval.every optimizer steps and
// after the last one, rank 0 samples the pairs of eval.pairs with the adapter as it is and scores
// them as `cameo eval` does (DINO-I, SigLIP-I, with eval.clip CLIP-I / CLIP-T). Images go to
// RUN/eval/step-N/pP_seedK.png, a line per image to RUN/eval/results.jsonl, the means to
// TensorBoard (eval/dino_i, eval/siglip_i, eval/clip_i, eval/clip_t) with each pair's first image
// (eval/pP) and the progress line.
// Sampling draws no random number the training uses (the noise is keyed by its own seed), so a
// run trains the same weights with evaluation on or off.
// defines: train_eval, train_eval_open, train_eval_due, train_eval_run, train_eval_close
#pragma once
#include "eval/pairs.h"
#include "train/config.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/watchdog.h"

typedef struct train_eval {
    bool open;
    eval_pair *pairs;
    int np;
    vae_decoder dec;
    cm_params pd;
    eval_clip clip;
    bool has_clip;
    char dir[4200];  // RUN/eval
    bool resume_unevaluated;  // resumed at a step whose evaluation has no lines (killed during it)
    bool tb_warned;           // a TensorBoard write failed (a full disk): said once, the run goes on
} train_eval;

// at the start (rank 0, eval.every > 0): the pairs and their references, the decoder, CLIP — a bad
// eval config stops the run before its first step, not hours in. On a resume (resume_step >= 0)
// results.jsonl loses its lines of later steps (they are made again), and resume_unevaluated
// says whether the resume step itself lacks its evaluation. 0, or -1 with err.
int train_eval_open(train_eval *te, ic_models *m, const train_config *c, const char *run_dir, int64_t resume_step,
                    char *err, size_t errlen);
// whether step (just done) is an evaluation step; last: the run's last step
bool train_eval_due(const train_config *c, int64_t step, bool last);
// evaluates the adapter at step; resolution: the stage's (used when eval.size is 0). 0, or -1 with err.
// wd (may be NULL): each image is watched as a step is (an evaluation may rightly take longer than
// run.step_timeout, one image not). CAMEO_FAULT_EVAL_SLEEP=MS (tests) sleeps MS before each image.
int train_eval_run(train_eval *te, ic_models *m, const train_config *c, int64_t step, int resolution, metrics *met,
                   progress *prog, watchdog *wd, char *err, size_t errlen);
void train_eval_close(train_eval *te);
