// trainer.c — `cameo train`: the three-stage schedule, with checkpoints, exact resume, signals,
// NaN handling, metrics and a progress bar, on one rank or many (data parallel; the AdamW state
// replicated or sharded ZeRO-1, optimizer.shard_state; the gradients averaged in buckets while
// the last micro-batch's backward runs, train/dist_reduce.h).
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "data/build.h"
#include "data/dataset.h"
#include "data/demo.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "models/safetensors.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/config.h"
#include "train/config_diff.h"
#include "train/demo_data.h"
#include "train/dist.h"
#include "train/dist_reduce.h"
#include "train/recompute_auto.h"
#include "train/watchdog.h"
#include "train/feed.h"
#include "train/latent_cache.h"
#include "train/metrics.h"
#include "train/models.h"
#include "train/optim.h"
#include "train/progress.h"
#include "train/ref_cache.h"
#include "train/schedule.h"
#include "train/text_cache.h"
#include "train/train_eval.h"
#include "train/validation.h"
#include "train/stage_setup.h"
#include "train/step.h"
#include "train/torch_export.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t signal_says;  // rank 0 tells a stop when its signal lands: 1, 2 on a TTY (ends the bar's line)
// the stop comes after the step in progress, which (or the model's loading, an evaluation) may take
// minutes: said when the signal lands, and a second Ctrl-C quits at once (the checkpoints on disk
// are whole: their writes are renamed into place). SIGTERM is not doubled: Slurm and mpirun may send
// it more than once, and each must still end in a checkpoint
static void on_signal(int sig) {
    if (sig == SIGINT && stop_requested == SIGINT) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    bool first = !stop_requested;
    stop_requested = sig;
    if (!first || !signal_says || sig == SIGPIPE) return;  // SIGPIPE: the output is gone
    static const char int_msg[] = "\ncameo: Ctrl-C: stopping after this step, with a checkpoint (Ctrl-C again to quit now, "
                                  "without one)\n";
    static const char term_msg[] = "\ncameo: SIGTERM: stopping after this step, with a checkpoint\n";
    static const char hup_msg[] = "\ncameo: SIGHUP (the terminal is gone): stopping after this step, with a checkpoint\n";
    int skip = signal_says == 2 ? 0 : 1;  // the leading newline only under a bar
    int saved = errno;  // a failed write here must not change the errno an interrupted call left
    ssize_t rc = sig == SIGINT   ? write(STDERR_FILENO, int_msg + skip, sizeof int_msg - 1 - skip)
                 : sig == SIGHUP ? write(STDERR_FILENO, hup_msg + skip, sizeof hup_msg - 1 - skip)
                                 : write(STDERR_FILENO, term_msg + skip, sizeof term_msg - 1 - skip);
    (void)rc;
    errno = saved;
}

static int mkdirs(const char *path) {
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

typedef struct trainer {
    train_config cfg;
    dist d;                      // this rank of the data-parallel world; rank 0 does all the writing
    char run_dir[4096], ckpt_dir[4200];
    ic_models m;
    text_cache tcache;           // model.text_cache: T5 / CLIP outputs read from it (m.text has no encoders)
    ref_cache rcache;            // model.ref_cache: the references' features read from it (m.refs)
    latent_cache lcache;         // model.latent_cache: the targets' VAE moments read from it (m.latents)
    uint64_t ref_fallbacks_told; // of rcache.fallbacks, those a stage's summary counted already
    optim opt;
    metrics met;
    progress prog;
    ckpt_state st;
    metrics_ema ema;
    char last_ckpt[4400];
    train_eval ev;               // evaluation during training (rank 0, eval.every > 0)
    train_val val;               // the validation loss (every rank, validation.every > 0)
    bool sharded;                // the optimizer holds this rank's shard only (ZeRO-1)
    dist_reducer red;            // the gradients' averaging over the ranks, in buckets during backward
    watchdog wd;                 // ends the process when a step never finishes (run.step_timeout)
    bool auto_fresh;             // --resume auto found no checkpoint: a fresh start
    bool stop_agreed;            // run() failed on every rank alike (bad steps, a checkpoint): no abort
    bool told_elsewhere;         // run()'s set-up error is told by another rank (start_agreed)
    int rc_stage, rc_n;          // train.recompute: auto: the first rc_n blocks recompute in stage rc_stage + 1 (0: none chosen yet)
    int64_t steps_run;
    double samples, t_start;
    double last_loss;            // the last updating step's loss (NaN: none yet), for the summary
    bool quiet_cli;              // --quiet: this process prints no bar (not saved: a resume prints again)
    bool metrics_warned;         // a metrics write failed (a full disk): said once, the training goes on
    bool saved_here;             // this process wrote a checkpoint (last_ckpt is its own, not the one resumed from)
} trainer;

// the dataset exists, or is generated when the config asks; paired stages need pairs
static int prepare_data(trainer *t, char *err, size_t errlen) {
    train_config *c = &t->cfg;
    char man[4200];
    snprintf(man, sizeof man, "%s/manifest.json", c->data.path);
    int rc = 0;
    if (t->d.rank == 0 && cfg_data_path_used(c) && access(man, R_OK)) {  // unread when every stage names its own
        if (!c->data.generate_demo_if_missing) {
            snprintf(err, errlen, "data.path: no dataset at %s (build one with `cameo data build` or `cameo data demo`, "
                     "or set data.generate_demo_if_missing: true)", c->data.path);
            rc = -1;
        } else {
            progress_message(&t->prog, "generating the demo dataset at %s (%d characters x %d images)", c->data.path,
                             c->data.demo_characters, c->data.demo_per_character);
            rc = train_demo_data(c, err, errlen);
        }
    }
    if (dist_agree(&t->d, rc)) {  // rank 0 decides; the others stop with it
        if (t->d.rank) snprintf(err, errlen, "rank 0 could not prepare the dataset at %s", c->data.path);
        return -1;
    }
    char warn[2048];
    if (stage_check_pairs(c, cfg_stage_data, NULL, warn, sizeof warn, err, errlen)) return -1;  // each stage's dataset
    for (char *line = warn, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        progress_message(&t->prog, "warning: %s", line);
    }
    for (int s = 0; s < c->n_stages; s++) {  // a warm-up longer than its stage never reaches the stage's lr
        const train_stage *sg = &c->stages[s];
        if (sg->steps > 0 && sg->warmup_steps > sg->steps)
            progress_message(&t->prog, "warning: stage %d/%d: warmup_steps %lld > steps %lld: the learning rate climbs the whole "
                             "stage and ends at %.3g, %.0f%% of its lr %.3g", s + 1, c->n_stages, (long long)sg->warmup_steps,
                             (long long)sg->steps, train_stage_lr(c, s) * (double)sg->steps / (double)sg->warmup_steps,
                             100.0 * (double)sg->steps / (double)sg->warmup_steps, train_stage_lr(c, s));
    }
    return 0;
}

static loader *open_stage_loader(trainer *t, int s, bool resume) {
    loader_config lc = stage_loader_config(&t->cfg, s, t->m.ref_size, t->d.rank, t->d.world);
    lc.no_ref_views = t->m.refs != NULL;  // their features come from the reference cache
    lc.no_target = t->m.latents != NULL;  // its VAE moments come from the latent cache
    loader_resume r, *rp = NULL;
    if (resume && ckpt_state_get_data(&t->st, "epoch", &r.epoch) && ckpt_state_get_data(&t->st, "batches_done", &r.batches_done) &&
        ckpt_state_get_data(&t->st, "manifest_hash", &r.manifest_hash) && ckpt_state_get_data(&t->st, "bucket_hash", &r.bucket_hash)) {
        r.seed = lc.seed;
        rp = &r;
    }
    return loader_open(&lc, rp);
}

// a sharded run's checkpoint: rank 0 makes the folder, every rank writes its optimizer shard into
// it, rank 0 completes it (or removes it when any rank failed). The same call on every rank.
static int save_sharded(trainer *t, cm_params **regs, const char *yaml, char *err, size_t errlen) {
    int rc = t->d.rank == 0 ? ckpt_save_begin(t->ckpt_dir, t->st.step, err, errlen) : 0;
    if (dist_agree(&t->d, rc)) return -1;
    char tmp[4400], name[64], path[4500];
    ckpt_tmp_path(t->ckpt_dir, t->st.step, tmp, sizeof tmp);
    ckpt_optim_name(t->d.rank, t->d.world, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    // fault injection for tests: CAMEO_FAULT_CKPT=R:S makes rank R's shard write fail from step S on
    const char *fault = getenv("CAMEO_FAULT_CKPT");
    int frank, fstep;
    if (fault && sscanf(fault, "%d:%d", &frank, &fstep) == 2 && frank == t->d.rank && t->st.step >= fstep)
        snprintf(path, sizeof path, "%s/no-such-folder/%s", tmp, name);
    af_sum sum = {0};
    int mine = optim_save_sum(&t->opt, path, &sum, err, errlen) ? t->d.rank + 1 : 0;
    if (mine) fprintf(stderr, "cameo train: rank %d: %s\n", t->d.rank, err);
    int failed = dist_max_int(&t->d, mine);  // the highest failing rank + 1
    // every shard's size and crc32 to rank 0 for the manifest (each rank fills its own pair; the
    // sum over the ranks is exact: integers below 2^53)
    double *sizes = calloc(2 * (size_t)t->d.world, sizeof *sizes);
    CM_CHECK(sizes, "train", "out of host memory");
    sizes[2 * t->d.rank] = (double)sum.bytes, sizes[2 * t->d.rank + 1] = (double)sum.crc;
    if (!failed) dist_sum_doubles(&t->d, sizes, 2 * t->d.world);
    if (failed) {
        free(sizes);
        if (t->d.rank == 0) ckpt_save_abort(t->ckpt_dir, t->st.step);
        if (!mine) snprintf(err, errlen, "rank %d could not write its optimizer shard under %s (see its message)", failed - 1, tmp);
        return -1;
    }
    if (t->d.rank) {
        free(sizes);
        return 0;
    }
    char **names = calloc((size_t)t->d.world, sizeof *names);
    af_sum *sums = calloc((size_t)t->d.world, sizeof *sums);
    CM_CHECK(names && sums, "train", "out of host memory");
    for (int r = 0; r < t->d.world; r++) {
        names[r] = malloc(64);
        CM_CHECK(names[r], "train", "out of host memory");
        ckpt_optim_name(r, t->d.world, names[r], 64);
        sums[r] = (af_sum){.bytes = (uint64_t)sizes[2 * r], .crc = (uint32_t)sizes[2 * r + 1]};
    }
    rc = ckpt_save_finish(t->ckpt_dir, regs, 1, &t->st, yaml, (const char *const *)names, sums, t->d.world,
                          t->cfg.run.keep_last, t->last_ckpt, sizeof t->last_ckpt, err, errlen);
    for (int r = 0; r < t->d.world; r++) free(names[r]);
    free(names);
    free(sums);
    free(sizes);
    return rc;
}

static int save_checkpoint(trainer *t, const feed *F, char *err, size_t errlen) {
    t->st.n_data = 0;
    if (F) {
        loader_resume r;
        feed_state(F, &r);
        ckpt_state_add_data(&t->st, "epoch", r.epoch);
        ckpt_state_add_data(&t->st, "batches_done", r.batches_done);
        ckpt_state_add_data(&t->st, "manifest_hash", r.manifest_hash);
        ckpt_state_add_data(&t->st, "bucket_hash", r.bucket_hash);
    }
    t->st.skipped_steps = t->opt.skipped;
    t->st.skipped_in_row = t->opt.skipped_in_row;
    t->st.loss_smoothed = metrics_ema_value(&t->ema);
    t->st.loss_ema_acc = t->ema.acc, t->st.loss_ema_n = t->ema.n;
    t->st.elapsed_s += progress_now() - t->t_start;
    t->t_start = progress_now();
    char *yaml = t->d.rank == 0 ? train_config_to_yaml(&t->cfg) : NULL;
    cm_params *regs[1] = {&t->m.ps_adapter};
    int rc = 0;
    if (!t->sharded) {
        if (t->d.rank == 0)  // the ranks are identical: one writes
            rc = ckpt_save(t->ckpt_dir, regs, 1, &t->opt, &t->st, yaml, t->cfg.run.keep_last, t->last_ckpt, sizeof t->last_ckpt, err, errlen);
    } else rc = save_sharded(t, regs, yaml, err, errlen);
    free(yaml);
    if (dist_agree(&t->d, rc)) {
        if (t->d.rank && !rc) snprintf(err, errlen, "rank 0 could not write a checkpoint under %s", t->ckpt_dir);
        return -1;
    }
    // rank 0 made the name: every rank's messages (a stop after bad steps) name the last checkpoint
    dist_broadcast_text(&t->d, t->last_ckpt, sizeof t->last_ckpt);
    t->saved_here = true;
    return 0;
}

// a checkpoint that could not be written (a full disk, a file-size limit, a folder gone read-only)
// stops the run: appended to the writer's error, what the save needs and where, and what is kept.
// It said only which file failed, as if the run were lost; the newest checkpoint is whole (saves
// are renamed into place) and resumes once there is room
static void save_failed_note(const trainer *t, char *err, size_t errlen) {
    // the checkpoint's size: the adapter in bf16, the f32 master, the moments and the weight average
    double per = 2 + 4 + 2.0 * dtype_size(t->opt.cfg.state_dtype) + (t->opt.cfg.ema_decay > 0 ? 4 : 0);
    double need = per * (double)optim_numel(&t->opt, false), MiB = 1048576.0;
    char room[4400 + 64] = "", lim[96] = "", q[8500];
    struct statvfs sv;
    if (!statvfs(t->ckpt_dir, &sv))
        snprintf(room, sizeof room, "; %.1f MiB free under %s", (double)sv.f_bavail * (double)sv.f_frsize / MiB, t->ckpt_dir);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY)
        snprintf(lim, sizeof lim, "; the file-size limit (ulimit -f) is %llu bytes", (unsigned long long)rl.rlim_cur);
    const char *when = strstr(err, strerror(ENOSPC)) || strstr(err, strerror(EFBIG)) ? "once there is room" : "once that is mended";
    size_t n = strlen(err);
    n += (size_t)snprintf(err + n, errlen - n, ". The checkpoint of step %lld was not saved (about %.1f MiB%s%s) and the run "
                          "stops", (long long)t->st.step, need / MiB, room, lim);
    if (n >= errlen) return;
    // a checkpoint of this process holds its config (--set overrides included); one it resumed from
    // does not: then the command that started it is the one to run again
    if (t->saved_here)
        snprintf(err + n, errlen - n, ": its last checkpoint %s is intact; %s `cameo train --resume %s` goes "
                 "on from it", t->last_ckpt, when, progress_shell_word(t->ckpt_dir, q, sizeof q));
    else if (t->last_ckpt[0])
        snprintf(err + n, errlen - n, ": the checkpoint it resumed from, %s, is intact; %s the same command "
                 "goes on from it again", t->last_ckpt, when);
    else snprintf(err + n, errlen - n, " before its first checkpoint: %s the same command starts it again", when);
}

// a checkpoint of this step (F: the data position, NULL at a stage's end), the metrics flushed
// with it, and said
static void fault_hang_at(int rank, int64_t step, const char *where);

// under the watchdog: a rank stuck in the write (a hung file system) or the others waiting in its
// collectives end the job as a stuck step does
static int checkpoint_now(trainer *t, const feed *F, char *err, size_t errlen) {
    watchdog_arm_for(&t->wd, t->st.step - 1, "the checkpoint of step");
    fault_hang_at(t->d.rank, t->st.step, "ckpt");
    int rc = save_checkpoint(t, F, err, errlen);
    watchdog_disarm(&t->wd);
    if (rc) {
        if (t->d.rank == 0) save_failed_note(t, err, errlen);
        return -1;
    }
    if (t->d.rank == 0) metrics_flush(&t->met);
    progress_message(&t->prog, "checkpoint %s", t->last_ckpt);
    return 0;
}

// fault injection for tests of the watchdog: CAMEO_FAULT_HANG=R:S makes rank R stop for ever before
// step S (0-based global index), as a dead node would; R:S:ckpt in the checkpoint after step S,
// R:S:log in the logging after step S (rank 0's progress line and metrics), R:S:stage at the end of
// the stage whose last step is S, R:S:adapter in the run's last writes after its last step S
static void fault_hang_at(int rank, int64_t step, const char *where) {
    const char *v = getenv("CAMEO_FAULT_HANG");
    int r, n = 0;
    long long s;
    char w[8] = "step";
    if (!v || sscanf(v, "%d:%lld%n", &r, &s, &n) != 2 || r != rank || s != step) return;
    if (v[n] == ':') snprintf(w, sizeof w, "%s", v + n + 1);
    if (strcmp(w, where)) return;
    for (;;) pause();
}
static void fault_hang(int rank, int64_t step) { fault_hang_at(rank, step, "step"); }

// fault injection for tests of a late stop: CAMEO_FAULT_SIGNAL=R:S makes rank R receive SIGTERM
// during the validation after step S (as a Slurm warning may arrive at any moment)
static void fault_signal(int rank, int64_t step) {
    const char *v = getenv("CAMEO_FAULT_SIGNAL");
    int r;
    long long s;
    if (v && sscanf(v, "%d:%lld", &r, &s) == 2 && r == rank && s == step) raise(SIGTERM);
}

// fault injection for tests of the NaN path: CAMEO_FAULT_NAN_FROM=N makes every step >= N non-finite
static bool fault_nan(int64_t step) {
    const char *v = getenv("CAMEO_FAULT_NAN_FROM");
    return v && *v && step >= atoll(v);
}

// train.recompute: auto, after the backward of stage s's first step (every block recomputed): as
// few blocks as fit keep recomputing from now on — the step's peak, plus a replay's kept bytes (the
// largest of the step's scopes) per block that keeps its activations, within the device's budget.
// Every rank takes the most cautious rank's choice, so all run the same programme.
static void recompute_decide(trainer *t, int s) {
    const int nd = t->m.flux.cfg.num_layers, ns = t->m.flux.cfg.num_single_layers, nb = nd + ns;
    const double MiB = 1024.0 * 1024.0;
    double kept, peak, budget;
    // this rank's vote: -1 without figures (no sample read: no replay ran), all when the device's free
    // memory is unknown, else as many kept as fit
    int n = recompute_vote(nd, ns, t->m.dev, &peak, &kept, &budget);
    double *v = calloc((size_t)t->d.world, sizeof *v);
    CM_CHECK(v, "train", "out of host memory");
    v[t->d.rank] = n;
    if (t->d.world > 1) dist_sum_doubles(&t->d, v, t->d.world);
    n = recompute_agree(v, t->d.world, nb);
    free(v);
    t->rc_stage = s + 1;
    t->rc_n = n;
    progress_message(&t->prog, "stage %d/%d (%s): recompute: auto: the first %d of %d FLUX blocks recompute, %d keep their "
                     "activations (the first step, all recomputed, peaked at %.0f MiB; a block keeps %.1f MiB; the "
                     "allocator may reach %.0f MiB)", s + 1, t->cfg.n_stages, t->cfg.stages[s].name, n, nb, nb - n, peak / MiB, kept / MiB,
                     budget / MiB);
}

// one optimizer step of stage s: grad_accum micro-batches, then clip + AdamW. 0 ok, 1 skipped (non-finite),
// 2 skipped (no readable sample in the whole global batch), -1 error.
// Each micro-batch's successor is taken and uploaded as soon as its backward is queued (until the
// stage's last one): on a GPU the copy runs beside the backward, before the optimizer's sync.
static int train_one_step(trainer *t, feed *F, int s, double *loss_out, int *samples_out, double *data_s,
                          optim_step_info *info) {
    const train_stage *sg = &t->cfg.stages[s];
    step_opts so = stage_step_opts(&t->cfg, s);
    bool rc_measure = false;  // recompute: auto, the stage's first step: all recomputed, measured
    if (so.recompute == CFG_RECOMPUTE_AUTO) {
        rc_measure = t->rc_stage != s + 1;
        so.recompute = rc_measure ? FLUX_RECOMPUTE_ALL : t->rc_n;
        if (rc_measure) {
            alloc_reset_peak(t->m.dev);
            autograd_recompute_max_kept(true);
        }
    }
    bool poison = fault_nan(t->st.step);
    double loss_wsum = 0;  // Σ over this rank's micro-batches of loss × samples
    int samples = 0;
    for (int a = 0; a < sg->grad_accum; a++) {
        step_batch b;
        double t0 = progress_now();
        if (feed_take(F, &b)) return -1;
        *data_s += progress_now() - t0;
        // damaged records leave a micro-batch short (or empty) on some rank: each loss weighted by its
        // share of the nominal global batch sums the per-sample gradients over G x grad_accum; the
        // optimizer takes them times G x grad_accum / (the samples read), so the step's gradient is
        // the mean over the samples all ranks read, however they fell into micro-batches
        cm_tensor *loss = NULL;
        if (b.B > 0) {
            uint64_t micro = step_micro_key((uint64_t)t->st.step, a);  // noise and σ key
            loss = step_forward_batch(&t->m, &b, &so, NULL, NULL, micro, NULL);
            double w = (double)b.B * t->d.world / sg->batch_size;  // 1 exactly when no record was lost
            cm_tensor *scaled = op_scale(loss, poison ? NAN : w / sg->grad_accum);
            if (a + 1 == sg->grad_accum) dist_reducer_arm(&t->red);  // the gradients become final in this backward
            autograd_backward(scaled, NULL);
            tensor_release(scaled);
        }
        samples += b.B;
        int B = b.B;
        step_batch_release(&b);
        bool more = a + 1 < sg->grad_accum || t->st.step_in_stage + 1 < sg->steps;
        t0 = progress_now();
        if (more && feed_ahead(F)) {
            tensor_release(loss);
            return -1;
        }
        *data_s += progress_now() - t0;
        if (loss) loss_wsum += tensor_get(loss, 0) * B;  // reads the device: after the queued backward
        tensor_release(loss);
    }
    // every rank launches the rest of its buckets before any other collective (same order everywhere)
    dist_reducer_finish(&t->red);
    if (rc_measure) recompute_decide(t, s);
    double sums[2] = {loss_wsum, samples};  // the global batch's mean loss and sample count
    dist_sum_doubles(&t->d, sums, 2);
    *loss_out = sums[1] > 0 ? sums[0] / sums[1] : NAN;
    *samples_out = (int)sums[1];
    if (sums[1] == 0) {  // every record of the global batch was damaged: nothing to learn from
        optim_zero_grad(&t->opt);
        *info = (optim_step_info){.grad_norm = NAN, .lr = NAN, .skipped = true};
        return 2;
    }
    lr_schedule ls = schedule_for_stage(&t->cfg, s);
    double lr = schedule_lr(&ls, t->st.step_in_stage);
    double mult = (double)sg->batch_size * sg->grad_accum / sums[1];  // 1 exactly when no record was lost
    int skipped;
    if (!t->sharded) {
        for (int i = 0; i < optim_n_params(&t->opt); i++) optim_grad_ready(&t->opt, i);
        skipped = optim_apply_scaled(&t->opt, lr, sqrt(optim_local_sumsq(&t->opt)), mult, info);
    } else {  // ZeRO-1: each gradient averaged into its owner, which updates it and sends the result
        for (int i = t->opt.begin; i < t->opt.end; i++) optim_grad_ready(&t->opt, i);
        double *parts = calloc((size_t)optim_n_params(&t->opt) + 1, sizeof *parts);
        CM_CHECK(parts, "train", "out of host memory");
        optim_local_sumsq_parts(&t->opt, parts);
        dist_sum_doubles(&t->d, parts, optim_n_params(&t->opt));  // each entry has one owner: x + 0, exact
        double norm = sqrt(optim_sum_parts(&t->opt, parts));
        free(parts);
        skipped = optim_apply_scaled(&t->opt, lr, norm, mult, info);
        if (!skipped) dist_broadcast_params(&t->d, &t->opt);
    }
    return skipped ? 1 : 0;
}

// the weight average (optimizer.ema) into the adapter on every rank, or the weights back (the
// owners' parameters broadcast when the state is sharded): validation and eval measure it
static void swap_ema(void *ctx, bool in) {
    trainer *t = ctx;
    optim_swap_ema(&t->opt, in);
    if (t->sharded) dist_broadcast_params(&t->d, &t->opt);
}

// adapter.freeze: the named parts of the adapter held fixed (no gradient, no optimizer state)
static int freeze_adapter(trainer *t, char *err, size_t errlen) {
    int64_t held, all;
    int nt, nf;
    if (stage_freeze_adapter(&t->cfg, &t->m.ps_adapter, &nf, &nt, &held, &all, err, errlen)) return -1;
    progress_message(&t->prog, "adapter.freeze: %d of %d tensors held fixed (%lld of %lld parameters, %.1f%%): no gradients, "
                     "no optimizer state; saved with the adapter as they are", nf, nt, (long long)held, (long long)all,
                     100.0 * (double)held / (double)all);
    return 0;
}

// a resume under a config that differs from the checkpoint's: every change told, before any work;
// one the stage in progress cannot follow is refused
// the stage in progress goes on only on the dataset it began with (the data position is a place in
// that dataset's order, and the loader refuses another): a data.path pointing at a rebuilt or
// other dataset is refused here, naming the key, both folders and what to do instead, before any
// model is loaded (it was refused after loading them, by the loader's hash message). The same
// dataset moved or copied has the same manifest.json and passes.
static int resume_same_dataset(const train_config *was, const train_config *now, const ckpt_state *st, const char *dir, char *err,
                               size_t errlen) {
    int s = st->stage;
    uint64_t h;
    if (s < 0 || s >= now->n_stages || st->step_in_stage <= 0 || st->step_in_stage >= now->stages[s].steps ||
        !ckpt_state_get_data(st, "manifest_hash", &h))
        return 0;  // no stage to go on with, or a checkpoint without a data position
    manifest m;
    char e[512];
    const char *path = cfg_stage_data(now, s);
    if (manifest_load(path, &m, e, sizeof e)) return 0;  // no dataset there: said where the data is prepared
    uint64_t mh = m.hash;
    manifest_free(&m);
    if (mh == h) return 0;
    char k[64] = "data.path";
    if (now->stages[s].data[0]) snprintf(k, sizeof k, "stages[%d].data", s);
    const char *old = s < was->n_stages ? cfg_stage_data(was, s) : was->data.path;
    // what differs, then what to do: the same folder (rebuilt, its shards changed) is said as a change,
    // not as "X is not the dataset ... (X, ...)", which read as a contradiction
    bool same = !strcmp(old, path);
    char what[2 * CFG_PATH + 512], fix[CFG_PATH + 64];  // two paths and a stage name; one path
    if (same) {
        snprintf(what, sizeof what, "the dataset at %s changed since stage %d/%d ('%s') began on it, %lld steps ago (its manifest.json "
                 "differs from the checkpoint's: shards added, removed or rebuilt)", path, s + 1, now->n_stages, now->stages[s].name,
                 (long long)st->step_in_stage);
        snprintf(fix, sizeof fix, "Put that dataset back at %s", path);
    } else {
        snprintf(what, sizeof what, "%s is not the dataset stage %d/%d ('%s') is %lld steps into (%s, the checkpoint's: its "
                 "manifest.json differs)", path, s + 1, now->n_stages, now->stages[s].name, (long long)st->step_in_stage, old);
        snprintf(fix, sizeof fix, "Point %s back at that one", k);
    }
    snprintf(err, errlen, "%s: %s; a stage goes on only on the dataset it began with. %s, or fine-tune on the new one as a new run "
             "from this checkpoint's adapter (--set model.adapter_init=%s/adapter.safetensors, another run.name)", k, what, fix, dir);
    return -1;
}

static int resume_changes(trainer *t, const char *dir, char *err, size_t errlen) {
    char path[4200];
    ckpt_state st;
    if (ckpt_read_state(dir, &st, err, errlen)) return -1;
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    train_config *was = malloc(sizeof *was);
    CM_CHECK(was, "train", "out of host memory");
    if (train_config_load(was, path, NULL, 0, err, errlen)) {
        free(was);
        return -1;
    }
    was->run.quiet = t->cfg.run.quiet;  // --quiet is how this run prints, not what it trains
    enum { MAXCH = 64 };
    cfg_change ch[MAXCH];
    int n = train_config_diff(was, &t->cfg, ch, MAXCH);
    // every change is checked, not only the MAXCH told: a refused one past them went unseen
    int rc = train_config_resume_check_all(was, &t->cfg, st.stage, (long long)st.step_in_stage, err, errlen);
    if (!rc) rc = resume_same_dataset(was, &t->cfg, &st, dir, err, errlen);
    free(was);
    for (int i = 0; i < n && i < MAXCH; i++) {
        int s = -1;  // a finished stage is not trained again: its change is told as doing nothing
        char note[160] = "";
        if (sscanf(ch[i].path, "stages[%d]", &s) == 1 && s >= 0 && s < st.stage)
            snprintf(note, sizeof note, " — no effect: stage %d/%d is finished, the run goes on in stage %d/%d (to train more, "
                     "add a stage)", s + 1, t->cfg.n_stages, st.stage + 1, t->cfg.n_stages);
        else if (!strcmp(ch[i].path, "model.text_cache") || !strcmp(ch[i].path, "model.ref_cache") ||
                 !strcmp(ch[i].path, "model.latent_cache"))
            snprintf(note, sizeof note, " — the same frozen outputs, %s", strcmp(ch[i].now, "\"\"") ? "read instead of computed"
                                                                                                  : "computed instead of read");
        progress_message(&t->prog, "resume: %s changed from %s (the checkpoint's) to %s%s", ch[i].path, ch[i].was, ch[i].now, note);
    }
    if (n > MAXCH) progress_message(&t->prog, "resume: and %d more changes to the checkpoint's config", n - MAXCH);
    return rc;
}

// the checkpoint folder to resume from PATH (a folder, a run's checkpoints/, its latest), chosen
// and verified — every file's crc32 — by rank 0 alone and told to the others: one read of the
// checkpoint per job (not one per rank and step of the set-up), and the same folder on every rank
static int resolve_once(const dist *d, const char *path, char *out, size_t outlen, char *err, size_t errlen) {
    int rc = d->rank == 0 ? ckpt_resolve(path, out, outlen, err, errlen) : 0;
    if (dist_agree(d, rc)) {
        if (d->rank) snprintf(err, errlen, "rank 0 found no usable checkpoint at %s (see its message)", path);
        return -1;
    }
    dist_broadcast_text(d, out, outlen);
    return 0;
}

// the in-training evaluation of this step (rank 0 samples; every rank swaps the weight average in
// and out around it, a collective when the state is sharded)
static void eval_now(trainer *t, const train_stage *sg) {
    const train_config *c = &t->cfg;
    bool avg = c->eval.ema && c->optimizer.ema > 0;
    if (avg) swap_ema(t, true);
    char e[1024];  // an evaluation that cannot write its files does not stop the training
    if (t->d.rank == 0 && train_eval_run(&t->ev, &t->m, c, t->st.step, sg->resolution, &t->met, &t->prog, &t->wd, e, sizeof e))
        progress_message(&t->prog, "eval at step %lld failed, training goes on: %s", (long long)t->st.step, e);
    if (avg) swap_ema(t, false);
    // the other ranks wait here, unwatched, for as long as rank 0 evaluates (its images are watched):
    // waiting instead in the next step's first collective, their step watchdog ended the job when an
    // evaluation took longer than run.step_timeout
    dist_barrier(&t->d);
}

// whether checkpoint folder ck lies in the checkpoints folder dir (both resolved: relative
// paths, links); false when either does not exist
static bool ckpt_in(const char *ck, const char *dir) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(ck, a) || !realpath(dir, b)) return false;
    char *slash = strrchr(a, '/');
    if (!slash) return false;
    *slash = 0;
    return !strcmp(a[0] ? a : "/", b);
}

// rc of every rank: 0 when all are 0, else -1 on all. Of the failing ranks only the lowest says why
// (a config error every rank finds is told once, not once per rank); of the others, rank 0 names
// it (a file one node lacks: its message alone does not say which rank, or node, it came from)
static int start_agreed(const dist *d, int rc, bool *told_elsewhere, char *err, size_t errlen) {
    int first = dist_max_int(d, rc ? d->world - d->rank : 0);  // world - the lowest failing rank
    if (first && !rc) snprintf(err, errlen, "rank %d could not start (see its message)", d->world - first);
    *told_elsewhere = first && (rc ? d->rank != d->world - first : d->rank != 0);
    return first ? -1 : 0;
}

// run()'s set-up checks (the config, the run folder, the dataset) find the same on every rank: each
// rank's verdict agreed as start-up's are, so a refusal is told once and every rank leaves on its
// own — it was told once per rank and ended in an MPI_Abort. 0, or -1 on every rank
static int setup_agreed(trainer *t, int rc, char *err, size_t errlen) {
    if (!start_agreed(&t->d, rc, &t->told_elsewhere, err, errlen)) return 0;
    t->stop_agreed = true;
    return -1;
}

void train_threads_apply(const train_config *c) {
    // run.threads 0: every core, but at most 4 for the tiny preset, whose ops are too small for
    // more (20 tiny steps on a 16-core VM: 3.5 s on 16 threads, 0.9 s on 4; docs/performance.md)
    int threads = c->run.threads;
    if (threads == 0 && c->model.tiny && omp_get_max_threads() > 4) threads = 4;
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
}

// model.text_cache: the outputs of the text encoders (not loaded) from the cache, which must be
// theirs and cover every dataset the run reads (the evaluation's prompts: text_cache_prompts)
static int attach_text_cache(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    text_cache_id id;
    if (text_cache_identity(c, &id, err, errlen) || text_cache_open(&t->tcache, c->model.text_cache, &id, false, err, errlen) ||
        fstore_covers_run(&t->tcache, c, "captions", NULL, err, errlen))
        return -1;
    t->m.text.cache = &t->tcache;
    progress_message(&t->prog, "model.text_cache: T5 / CLIP outputs of %llu captions from %s; the text encoders are not loaded",
                     (unsigned long long)text_cache_count(&t->tcache), c->model.text_cache);
    return 0;
}

// model.ref_cache: the features of every reference the data can draw from the cache, which must be
// the towers' and cover every dataset the run reads. The towers are loaded only for an evaluation,
// whose references are image files, not records (run: `towers`).
static int attach_ref_cache(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    fstore_id id;
    if (ref_cache_identity(c, &id, err, errlen) || ref_cache_open(&t->rcache, c->model.ref_cache, &id, false, err, errlen) ||
        fstore_covers_run(&t->rcache.s, c, "references", NULL, err, errlen))
        return -1;
    t->m.refs = &t->rcache;
    progress_message(&t->prog, "model.ref_cache: SigLIP / DINOv2 features of %llu references from %s; the towers run on no "
                     "training reference%s", (unsigned long long)fstore_count(&t->rcache.s), c->model.ref_cache,
                     ic_models_towers(&t->m) ? " (loaded for the evaluation's)" : " and are not loaded");
    return 0;
}

// model.latent_cache: the VAE's moments of every target the data can draw (each record in each bucket
// a stage puts it in, cut from the centre) from the cache, which must be the VAE's and cover every
// dataset the run reads in those buckets. The VAE stays loaded (its weights are small).
static int attach_latent_cache(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    fstore_id id;
    if (latent_cache_identity(c, &id, err, errlen) || latent_cache_open(&t->lcache, c->model.latent_cache, &id, false, err, errlen) ||
        fstore_covers_run(&t->lcache.s, c, "latents", latent_cover_of, err, errlen))
        return -1;
    t->m.latents = &t->lcache;
    progress_message(&t->prog, "model.latent_cache: VAE latents of %llu targets from %s; the VAE runs on no training target and the "
                     "loader cuts none", (unsigned long long)fstore_count(&t->lcache.s), c->model.latent_cache);
    return 0;
}

// with a text cache, every evaluation prompt must be in it (named here, not at the first evaluation)
static int text_cache_prompts(trainer *t, char *err, size_t errlen) {
    if (!t->tcache.env) return 0;
    for (int i = 0; i < t->ev.np; i++)
        if (!text_cache_has(&t->tcache, t->ev.pairs[i].prompt)) {
            snprintf(err, errlen, "model.text_cache: %s holds no entry for the prompt of %s line %d ('%.60s'): run `cameo cache-text "
                     "CONFIG` with this config's eval.pairs to add it", t->tcache.path, t->cfg.eval.pairs, t->ev.pairs[i].line,
                     t->ev.pairs[i].prompt);
            return -1;
        }
    return 0;
}

static int run(trainer *t, const char *resume_dir, char *err, size_t errlen) {
    train_config *c = &t->cfg;
    train_threads_apply(c);
    snprintf(t->run_dir, sizeof t->run_dir, "%s/%s", c->run.out_dir, c->run.name);
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", t->run_dir);
    progress_init(&t->prog, stderr, c->run.quiet || t->quiet_cli || t->d.rank > 0, c->run.log_every);
    t->prog.silent = t->d.rank > 0;  // rank 0 speaks for all; errors go to stderr from any rank
    int rc = 0;  // each check on every rank: agreed below (setup_agreed), collectives kept in step
    if (c->run.dev.type == CM_CPU && cfg_model_dtype(c, c->run.dev) != CM_F32) {  // before the run folder is made
        snprintf(err, errlen, "model.dtype: %s on the CPU — the CPU computes in f32 (bf16 is for cuda devices): --set model.dtype=f32 "
                 "(or auto)", cfg_dtype_name(c->model.dtype));
        rc = -1;
    }
    if (!rc && resume_dir && resume_changes(t, resume_dir, err, errlen)) rc = -1;  // before anything is written
    // another run's checkpoint resumed into a run folder with checkpoints of its own: its saves took
    // their step names (replacing them), keep_last removed the rest, and metrics.jsonl went on from
    // the other run's lines — two runs mixed in one folder, without a word
    int n_own = !rc && resume_dir ? ckpt_list(t->ckpt_dir, NULL, 0) : 0;
    if (n_own > 0 && !ckpt_in(resume_dir, t->ckpt_dir)) {
        snprintf(err, errlen, "run.name: %s already holds %d checkpoint(s) of another run; resuming %s there would replace them "
                 "and mix the two runs' logs: resume into another run.name / run.out_dir, or from a checkpoint of that folder "
                 "(--resume auto)", t->ckpt_dir, n_own, resume_dir);
        rc = -1;
    }
    if (!rc && !resume_dir && ckpt_list(t->ckpt_dir, NULL, 0) > 0) {  // a fresh start would mix its checkpoints in
        int n = ckpt_list(t->ckpt_dir, NULL, 0);
        snprintf(err, errlen, "run.name: %s already holds %d checkpoint(s) of an earlier run; continue it with --resume auto "
                 "(or --resume %s), or start anew under another run.name / run.out_dir", t->ckpt_dir, n, t->ckpt_dir);
        rc = -1;
    }
    if (setup_agreed(t, rc, err, errlen)) return -1;
    if (t->auto_fresh) progress_message(&t->prog, "--resume auto: no checkpoint under %s yet, so the run starts", t->ckpt_dir);
    if (setup_agreed(t, prepare_data(t, err, errlen), err, errlen)) return -1;  // every rank calls it: a collective inside
    // made once the checks passed: a refused dataset (a batch no bucket holds, a paired stage
    // without pairs) left an empty RUN/checkpoints/ behind
    rc = mkdirs(t->ckpt_dir) ? -1 : 0;
    if (rc) snprintf(err, errlen, "run.out_dir: cannot create %s: %s", t->ckpt_dir, strerror(errno));
    if (setup_agreed(t, rc, err, errlen)) return -1;
    const char *init_kv = cfg_init_kv_name(c->adapter.init_kv);
    cm_dtype dt = cfg_model_dtype(c, c->run.dev);
    int text = c->model.text_cache[0] ? IC_TEXT_NONE : c->model.text_cpu ? IC_TEXT_CPU : IC_TEXT_MODEL;
    // with a reference cache the towers see only the evaluation's references (image files, not records)
    bool towers = !c->model.ref_cache[0] || c->eval.every > 0;
    if (c->model.tiny) {
        if (ic_models_init_tiny(&t->m, &c->model.tiny_dims, c->run.dev, dt, text, c->run.seed, init_kv, err, errlen)) return -1;
        // a tiny run starts from model.adapter_init too (it was checked to exist, then never read)
        if (c->model.adapter_init[0] && ic_models_load_adapter_file(&t->m, c->model.adapter_init, err, errlen)) return -1;
        if (!towers) ic_models_drop_towers(&t->m);
    } else {
        ic_model_paths p = {c->model.flux, c->model.siglip, c->model.dinov2, c->model.vae, c->model.t5, c->model.clip,
                            c->model.adapter_init, 0, c->data.ref_size, !towers};
        if (ic_models_load(&t->m, &p, c->run.dev, dt, text, init_kv, c->run.seed, err, errlen)) return -1;
    }
    if (c->model.text_cache[0] && attach_text_cache(t, err, errlen)) return -1;
    if (c->model.ref_cache[0] && attach_ref_cache(t, err, errlen)) return -1;
    if (c->model.latent_cache[0] && attach_latent_cache(t, err, errlen)) return -1;
    if (c->adapter.n_freeze && freeze_adapter(t, err, errlen)) return -1;
    optim_config oc = {.lr = c->optimizer.lr, .beta1 = c->optimizer.beta1, .beta2 = c->optimizer.beta2, .eps = c->optimizer.eps,
                       .weight_decay = c->optimizer.weight_decay, .grad_clip = c->optimizer.grad_clip,
                       .state_dtype = c->optimizer.state_bf16 ? CM_BF16 : CM_F32, .ema_decay = c->optimizer.ema,
                       .ema_warmup = c->optimizer.ema_warmup};
    cm_params *regs[1] = {&t->m.ps_adapter};
    t->sharded = c->optimizer.shard_state && t->d.world > 1;
    if (t->sharded ? optim_init_sharded(&t->opt, regs, 1, &oc, t->d.rank, t->d.world, err, errlen)
                   : optim_init(&t->opt, regs, 1, &oc, 0, -1, err, errlen))
        return -1;
    // a bf16 model: the masters take the f32 values of model.adapter_init (the parameters hold them
    // rounded to bf16, and the masters were made from those: a released or earlier f32 adapter lost
    // its low bits at the start of fine-tuning). A resume's masters come from its checkpoint
    if (!resume_dir && c->model.adapter_init[0] && dt != CM_F32) {
        cm_params mp;
        optim_master_registry(&t->opt, &mp);
        int rc = mp.n ? ic_adapter_file_into(&mp, c->model.adapter_init, err, errlen) : 0;
        params_free(&mp);
        if (rc) return -1;
        optim_masters_loaded(&t->opt);
    }
    if (t->d.world > 1) {  // rank 0's share; the others' are about the same (optim_init_sharded)
        int64_t own = optim_numel(&t->opt, true), all = optim_numel(&t->opt, false);
        progress_message(&t->prog, "data parallel over %d ranks; AdamW state %s: rank 0 keeps %lld of %lld parameters "
                         "(%.1f%%, %.1f MiB of f32 master and moments)", t->d.world, t->sharded ? "sharded (ZeRO-1)" : "replicated",
                         (long long)own, (long long)all, 100.0 * (double)own / (double)all, 12.0 * (double)own / 1048576.0);
    }
    if (dist_reducer_init(&t->red, &t->d, &t->opt, t->sharded, (size_t)(c->optimizer.reduce_bucket_mb * 1e6), err, errlen))
        return -1;
    if (c->optimizer.ema > 0)
        progress_message(&t->prog, "optimizer.ema %g%s: a weight average beside the masters (%.1f MiB of f32 on this rank); "
                         "cameo export / eval / sample --ema use it", c->optimizer.ema, c->optimizer.ema_warmup ? " with warm-up" : "",
                         4.0 * (double)optim_numel(&t->opt, true) / 1048576.0);
    memset(&t->st, 0, sizeof t->st);
    t->st.seed = c->run.seed;
    t->st.started_unix = (double)time(NULL);
    t->ema.beta = 0.9;
    if (resume_dir) {
        const char *dir = resume_dir;  // chosen and verified once, by rank 0 (resolve_once)
        if (ckpt_load_verified(dir, regs, 1, &t->opt, &t->st, err, errlen)) return -1;
        if (t->sharded) dist_broadcast_params(&t->d, &t->opt);  // each rank loaded its own shard's weights
        snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", dir);  // the newest until this run writes one
        if (t->opt.ema_fresh)
            progress_message(&t->prog, "optimizer.ema: the checkpoint %s keeps no weight average; the average starts "
                             "from its weights", dir);
        if (t->st.seed != c->run.seed) {
            snprintf(err, errlen, "run.seed: the checkpoint %s was made with seed %llu, the config says %llu", dir,
                     (unsigned long long)t->st.seed, (unsigned long long)c->run.seed);
            return -1;
        }
        t->opt.skipped = t->st.skipped_steps;
        t->opt.skipped_in_row = t->st.skipped_in_row;
        if (t->st.loss_ema_n >= 0) t->ema.acc = t->st.loss_ema_acc, t->ema.n = t->st.loss_ema_n;  // exactly
        else if (isfinite(t->st.loss_smoothed)) metrics_ema_restore(&t->ema, t->st.loss_smoothed);   // an older checkpoint
        // stages counted from 1, as the progress bar ("stage 2/3 paired") and cameo inspect count them
        if (t->st.stage < c->n_stages)
            progress_message(&t->prog, "resuming from %s: step %lld, stage %d of %d (%s), %lld of its steps done", dir,
                             (long long)t->st.step, t->st.stage + 1, c->n_stages, t->st.stage_name, (long long)t->st.step_in_stage);
        else
            progress_message(&t->prog, "resuming from %s: step %lld, after the last of %d stages", dir, (long long)t->st.step,
                             c->n_stages);
        if (t->st.stage >= c->n_stages)  // written before the last stage kept its data position
            progress_message(&t->prog, "the checkpoint %s ended all %d stages without a data position: nothing is left to train "
                             "from it (to train on, start a run from its adapter: model.adapter_init=%s/adapter.safetensors)", dir,
                             c->n_stages, dir);
    }
    // the step the run goes on from: the logs keep the lines up to it, the later ones are made again.
    // A fresh start goes on from 0: the lines of an earlier attempt killed before its first
    // checkpoint (--resume auto then finds none and starts anew) were appended to, logging step 1 twice
    int64_t from = resume_dir ? t->st.step : 0;
    // agreed as the set-up's checks are: the validation set's check fails on every rank alike (told
    // once), the logs and the evaluation's files fail on rank 0 alone (all leave, rank 0 telling)
    int lrc = t->d.rank == 0 ? metrics_open(&t->met, t->run_dir, true, from, err, errlen) : 0;
    if (!lrc && t->d.rank == 0 && c->eval.every > 0) lrc = train_eval_open(&t->ev, &t->m, c, t->run_dir, from, err, errlen);
    if (!lrc && t->d.rank == 0 && c->eval.every > 0) lrc = text_cache_prompts(t, err, errlen);
    if (!lrc && c->validation.every > 0) lrc = train_val_open(&t->val, c, t->run_dir, from, t->d.rank, err, errlen);
    if (setup_agreed(t, lrc, err, errlen)) {
        if (t->d.rank == 0) metrics_close(&t->met);
        train_eval_close(&t->ev);
        return -1;
    }
    // resumed at an evaluation step whose evaluation was cut short (its lines are written together
    // at its end): made again now, as the uninterrupted run made it
    // the same for the validation loss: a stop during it, or a signal in its step (the checkpoint
    // then comes first and the validation is left out) would leave the step without its line
    int done_stage = t->st.step_in_stage == 0 && t->st.stage > 0 ? t->st.stage - 1 : t->st.stage;  // the resume step's
    bool done_last = resume_dir && t->st.stage < c->n_stages && t->st.stage == train_config_last_stage(c) &&
                     t->st.step_in_stage >= c->stages[t->st.stage].steps;  // a finished run: its last step
    if (resume_dir && c->eval.every > 0 && t->st.stage < c->n_stages && t->st.step > 0 &&
        dist_agree(&t->d, t->d.rank == 0 && t->ev.resume_unevaluated) && train_eval_due(c, t->st.step, done_last)) {
        progress_message(&t->prog, "eval at step %lld was cut short before the stop: made again", (long long)t->st.step);
        eval_now(t, &c->stages[done_stage]);  // its stage's
    }
    if (resume_dir && c->validation.every > 0 && t->st.stage < c->n_stages && t->st.step > 0 &&
        dist_agree(&t->d, t->d.rank == 0 && t->val.resume_unvalidated) && train_val_due(c, t->st.step, done_last)) {
        progress_message(&t->prog, "validation at step %lld was left out before the stop: made now", (long long)t->st.step);
        char e[1024];
        double vl;
        if (train_val_run(&t->val, &t->m, c, done_stage, t->st.step, &t->d, t->d.rank == 0 ? &t->met : NULL, &t->prog,
                          c->optimizer.ema > 0 ? swap_ema : NULL, t, &vl, e, sizeof e))
            progress_message(&t->prog, "validation at step %lld failed, training goes on: %s", (long long)t->st.step, e);
    }
    t->t_start = progress_now();
    double run_t0 = progress_now();
    double limit = c->run.step_timeout >= 0 ? c->run.step_timeout : t->d.world > 1 ? 1800 : 0;
    watchdog_start(&t->wd, limit, t->d.rank);

    rc = 0;
    int stop = 0;  // a signal, as agreed by every rank: what they all act on (stop_requested is one rank's)
    for (int s = t->st.stage; s < c->n_stages && !rc; s++) {
        const train_stage *sg = &c->stages[s];
        // a finished run resumed: nothing left; a stage of 0 steps is skipped (its data never opened)
        if (sg->steps == 0 || (s == t->st.stage && t->st.step_in_stage >= sg->steps)) continue;
        bool resume_loader = resume_dir && s == t->st.stage && t->st.step_in_stage > 0;
        if (s != t->st.stage) t->st.step_in_stage = 0;
        t->st.stage = s;
        snprintf(t->st.stage_name, sizeof t->st.stage_name, "%s", sg->name);
        loader *L = open_stage_loader(t, s, resume_loader);
        feed F;
        feed_init(&F, L, &t->m);
        if (!L) {
            snprintf(err, errlen, "stages[%d]: the loader could not open %s (see the message above)", s, cfg_stage_data(c, s));
            return -1;
        }
        progress_stage_begin(&t->prog, sg->name, s, c->n_stages, sg->steps, t->st.step_in_stage);
        while (t->st.step_in_stage < sg->steps) {
            double loss, data_s = 0, t_step = progress_now();
            int samples;
            optim_step_info info;
            watchdog_arm(&t->wd, t->st.step);
            fault_hang(t->d.rank, t->st.step);
            int r = train_one_step(t, &F, s, &loss, &samples, &data_s, &info);
            double step_s = progress_now() - t_step;
            if (r < 0) {
                watchdog_disarm(&t->wd);
                snprintf(err, errlen, "stages[%d]: the loader failed (see the message above)", s);
                rc = -1;
                break;
            }
            t->st.step++;
            t->st.step_in_stage++;
            t->steps_run++;
            t->samples += samples;
            if (r == 0 && isfinite(loss)) t->last_loss = loss;
            if (r == 2)
                progress_message(&t->prog, "step %lld: every record of its global batch was damaged (skipped and counted by the "
                                 "loader): no update", (long long)t->st.step);
            if (r == 1) {
                progress_message(&t->prog, "step %lld: non-finite loss or gradient (norm %g): skipped (%lld in a row)",
                                 (long long)t->st.step, info.grad_norm, (long long)t->opt.skipped_in_row);
                if (t->opt.skipped_in_row >= c->run.max_bad_steps) {
                    snprintf(err, errlen, "run.max_bad_steps: %lld non-finite steps in a row; stopping. The last good checkpoint is %s",
                             (long long)t->opt.skipped_in_row, t->last_ckpt[0] ? t->last_ckpt : "(none yet)");
                    rc = -1;
                    t->stop_agreed = true;  // the norm is every rank's
                    watchdog_disarm(&t->wd);
                    break;
                }
            }
            fault_hang_at(t->d.rank, t->st.step, "log");
            double sm = metrics_ema_update(&t->ema, loss);
            double sps = progress_count(&t->prog, samples);  // the first step left out once there are more
            metrics_row row = {.step = t->st.step, .stage = s, .stage_name = sg->name, .loss = loss, .loss_smoothed = sm,
                               .lr = info.lr, .grad_norm = info.grad_norm, .samples_per_s = sps, .step_s = step_s, .data_s = data_s,
                               // the run's training time over all resumes (the checkpoint's, then this process's)
                               .time = t->st.elapsed_s + (progress_now() - t->t_start)};
            if (t->d.rank == 0 && c->run.log_every > 0 && (t->st.step % c->run.log_every == 0 || t->st.step_in_stage == sg->steps) &&
                metrics_log(&t->met, &row) && !t->metrics_warned) {
                t->metrics_warned = true;
                progress_message(&t->prog, "metrics: %s; the training goes on, the steps whose lines cannot be written are "
                                 "left out (counted in the summary)", t->met.err);
            }
            progress_update(&t->prog, t->st.step_in_stage, loss, sm, info.lr, info.grad_norm, sps);
            bool stage_done = t->st.step_in_stage == sg->steps, last = stage_done && s == train_config_last_stage(c);
            if (stage_done && !last) {  // the next step starts the next stage from its first batch
                t->st.stage = s + 1;
                t->st.step_in_stage = 0;
                snprintf(t->st.stage_name, sizeof t->st.stage_name, "%s", c->stages[s + 1].name);
            }
            // the last stage ends where it stands, with its data position: a resume that lengthens
            // it (--set stages.N.steps=...) goes on from there
            const feed *pos = stage_done && !last ? NULL : &F;
            // no periodic checkpoint inside a run of skipped steps: the last good one stays the newest
            stop = dist_max_int(&t->d, stop_requested);  // a signal to any rank stops them all, together
            // the step's watch ends after its logging and the agreement: rank 0 stuck in its lines (a
            // progress line blocked on a full pipe, metrics on a hung file system) left the others
            // waiting in that agreement unwatched, and the job hung for ever
            watchdog_disarm(&t->wd);
            bool periodic = c->run.ckpt_every > 0 && t->st.step % c->run.ckpt_every == 0 && t->opt.skipped_in_row == 0;
            bool saved = stage_done || periodic || stop;
            if (saved && checkpoint_now(t, pos, err, errlen)) { rc = -1, t->stop_agreed = true; break; }
            bool eval_due = !stop && train_eval_due(c, t->st.step, last), val_due = !stop && train_val_due(c, t->st.step, last);
            if (eval_due) eval_now(t, sg);
            if (val_due) {
                char e[1024];  // a validation that fails does not stop the training
                double vl;
                watchdog_arm_for(&t->wd, t->st.step - 1, "the validation after step");  // watched as a step is
                if (train_val_run(&t->val, &t->m, c, s, t->st.step, &t->d, t->d.rank == 0 ? &t->met : NULL, &t->prog,
                                  c->optimizer.ema > 0 ? swap_ema : NULL, t, &vl, e, sizeof e))
                    progress_message(&t->prog, "validation at step %lld failed, training goes on: %s", (long long)t->st.step, e);
                watchdog_disarm(&t->wd);
                fault_signal(t->d.rank, t->st.step);
            }
            // a signal during them (an evaluation can take minutes; Slurm's warning comes at any
            // moment): agreed again, and this step saved now
            if ((eval_due || val_due) && (stop = dist_max_int(&t->d, stop_requested)) && !saved &&
                checkpoint_now(t, pos, err, errlen)) { rc = -1, t->stop_agreed = true; break; }
            if (stop) break;
            if (stage_done) break;
        }
        // watched as a step is: rank 0 stuck in its stage line left the others in the sum below for ever
        if (!rc) watchdog_arm_for(&t->wd, t->st.step - 1, "the end of the stage at step");
        fault_hang_at(t->d.rank, t->st.step, "stage");
        progress_stage_end(&t->prog);
        uint64_t skipped, replaced;
        feed_damage(&F, &skipped, &replaced);
        // each rank read its slice: the counts of all (rank 0 tells them); not after one rank's own
        // error (the others are still in a step's collective)
        // with a reference cache, the paired references damaged at its build (read as their targets')
        double bad[2] = {(double)skipped, (double)(replaced + t->rcache.fallbacks - t->ref_fallbacks_told)};
        t->ref_fallbacks_told = t->rcache.fallbacks;
        if (!rc) dist_sum_doubles(&t->d, bad, 2);
        watchdog_disarm(&t->wd);
        if (bad[0] > 0 || bad[1] > 0)
            progress_message(&t->prog, "stage %s: %.0f records skipped as damaged, %.0f references replaced", sg->name, bad[0], bad[1]);
        feed_close(&F);
        // the stage's cached blocks go back: the next stage's shapes (another resolution or batch)
        // reuse few of them, and kept they held the old stage's memory beside the new one's for the
        // rest of the run (on a GPU until an allocation failed; on the CPU for good)
        alloc_empty_cache(t->m.dev);
        if (t->m.dev.type != CM_CPU) alloc_empty_cache(CM_DEV_CPU);
        if (stop) {
            char q[8500];
            progress_message(&t->prog, "stopped by signal %d at step %lld; resume with: cameo train --resume %s",
                             stop, (long long)t->st.step, progress_shell_word(t->ckpt_dir, q, sizeof q));
            break;
        }
    }
    // rank 0's last writes (the metrics, the adapter) watched as a checkpoint's are: stuck there (a
    // hung file system) it left the others in MPI_Finalize for ever
    if (!rc) watchdog_arm_for(&t->wd, t->st.step - 1, "the adapter's write after step");
    fault_hang_at(t->d.rank, t->st.step, "adapter");
    if (t->d.rank == 0) metrics_close(&t->met);
    train_eval_close(&t->ev);
    train_val_close(&t->val);
    if (rc) return rc;

    if (!stop) {  // the adapter alone, beside the run
        char out[4200];
        snprintf(out, sizeof out, "%s/adapter.safetensors", t->run_dir);
        int saved = t->d.rank == 0 ? params_save(&t->m.ps_adapter, out, true, CM_BF16, err, errlen) : 0;
        watchdog_disarm(&t->wd);
        if (saved) {
            // a full disk here loses nothing trained: say so, and how to make the file again
            size_t n = strlen(err);
            char q1[8500], q2[8500];
            if (t->last_ckpt[0])
                snprintf(err + n, errlen - n, "; the run's last checkpoint %s is intact: `cameo export %s --out %s` recreates the "
                         "adapter once there is room", t->last_ckpt, progress_shell_word(t->last_ckpt, q1, sizeof q1),
                         progress_shell_word(out, q2, sizeof q2));
            return -1;
        }
        if (t->red.steps > 0)
            progress_message(&t->prog, "gradients averaged in %d bucket(s) per step (optimizer.reduce_bucket_mb %g): %.0f%% of "
                             "their bytes launched during backward", t->red.n_buckets, c->optimizer.reduce_bucket_mb,
                             100.0 * (double)t->red.bytes_early / (double)(t->red.bytes_total ? t->red.bytes_total : 1));
        progress_summary_info si = {.steps = t->steps_run, .skipped = t->opt.skipped, .seconds = progress_now() - run_t0,
                                    .final_loss = t->last_loss, .loss_smoothed = metrics_ema_value(&t->ema),
                                    .samples_per_s = t->samples / (progress_now() - run_t0 + 1e-9), .adapter_path = out,
                                    .checkpoint_path = t->last_ckpt, .run_dir = t->run_dir,
                                    .metrics_lost = t->met.lost, .metrics_err = t->met.err};
        progress_summary(&t->prog, &si);
    }
    watchdog_disarm(&t->wd);  // stopped by a signal: no adapter written
    return 0;
}


// every global batch still to train splits evenly over the ranks (each takes its slice of one
// order). A stage of 0 steps, or one the checkpoint has finished, reads no data: a resume on another
// rank count (docs/distributed.md) is not held to the batch of a stage it will not train.
// from, done: the stage the run starts in and its steps already done (0, 0 without a resume)
static int batch_split_check(const train_config *c, int world, int from, int64_t done, char *err, size_t errlen) {
    for (int s = from; s < c->n_stages; s++)
        if (c->stages[s].steps > (s == from ? done : 0) && c->stages[s].batch_size % world) {
            snprintf(err, errlen, "stages[%d].batch_size: %d does not split over %d ranks (use a multiple of the world size)", s,
                     c->stages[s].batch_size, world);
            return -1;
        }
    if (c->validation.every > 0 && c->validation.batch_size % world) {  // 0: each stage's, checked above
        snprintf(err, errlen, "validation.batch_size: %d does not split over %d ranks (use a multiple of the world size)",
                 c->validation.batch_size, world);
        return -1;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cameo train [CONFIG.yaml] [--resume DIR|auto] [--set key=value]... [--quiet]\n"
               "  CONFIG   a YAML config (default: the embedded configs/tiny.yaml)\n"
               "  --resume a checkpoint folder, or a run's checkpoints/ folder (its latest); `auto`: the\n"
               "           config's run folder's latest checkpoint when it has one, else a fresh start\n"
               "           (the one command for a cluster job that may be requeued)\n"
               "  --set    override one key, e.g. --set stages.1.steps=200 --set run.device=cpu\n"
               "  --quiet  no progress bar: messages and the summary only (as run.quiet: true)\n");
}

int train_cli(int argc, char **argv) {
    const char *config = NULL, *resume = NULL;
    const char *sets[64];
    int n_sets = 0;
    bool quiet = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 63) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--quiet")) quiet = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (argv[i][0] != '-' && !config) config = argv[i];
        else if (argv[i][0] != '-') {  // read as "unknown argument", a user looks for a misspelt option
            fprintf(stderr, "cameo train: one CONFIG is read, and '%s' is a second one (after '%s'): change the first's keys "
                            "with --set KEY=VALUE (repeatable), or merge the two files into one\n", argv[i], config);
            return 2;
        } else if ((!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--set")) && i + 1 >= argc) {
            fprintf(stderr, "cameo train: %s needs a value after it\n", argv[i]);
            return 2;
        } else if (!strcmp(argv[i], "--set")) {
            fprintf(stderr, "cameo train: more than 63 --set overrides (put them in a config file)\n");
            return 2;
        } else { fprintf(stderr, "cameo train: unknown argument '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    signal(SIGINT, on_signal);  // from the start: a signal during set-up stops after the first step
    signal(SIGTERM, on_signal);
    // an output closed under us (`cameo train 2>&1 | head`, a log viewer or ssh session gone): a
    // stop as on SIGTERM, with a checkpoint of the step, where SIGPIPE's default ended the process
    // at its next line and lost every step since the last checkpoint
    signal(SIGPIPE, on_signal);
    // the terminal closed (an ssh session dropped, its window shut): SIGHUP's default ended the run
    // at once and lost every step since the last checkpoint. Left alone when ignored (nohup): that
    // run asked to go on
    struct sigaction hup;
    if (!sigaction(SIGHUP, NULL, &hup) && hup.sa_handler != SIG_IGN) signal(SIGHUP, on_signal);
    static trainer t;
    memset(&t, 0, sizeof t);
    t.last_loss = NAN;
    char err[16384] = "";
    static char resolved[4096], cfg_path[4200];
    dist_init(&t.d, NULL, NULL);  // first: rank 0 alone picks and verifies the checkpoint to resume
    signal_says = t.d.rank == 0 ? 1 + isatty(STDERR_FILENO) : 0;
    cm_warn_mute(t.d.rank > 0);   // rank 0's warnings stand for all; errors still come from any rank
    int rc = 0;
    bool resume_auto = resume && !strcmp(resume, "auto");
    if (resume && !config && !resume_auto) {  // the checkpoint's own resolved config
        rc = resolve_once(&t.d, resume, resolved, sizeof resolved, err, sizeof err);
        snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", resolved);
        config = cfg_path, resume = resolved;
    }
    if (!rc) rc = config ? train_config_load(&t.cfg, config, sets, n_sets, err, sizeof err)
                         : train_config_parse(&t.cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "<embedded tiny.yaml>", sets,
                                              n_sets, err, sizeof err);
    if (!rc) rc = train_config_check_paths(&t.cfg, err, sizeof err);
    t.quiet_cli = quiet;
    if (!rc) rc = ic_device_check(t.cfg.run.dev, "run.device", err, sizeof err);
    // a file one node lacks or a GPU one node cannot use fails on some ranks only: all stop here,
    // before the others enter a collective (the checkpoint's choice, NCCL's set-up) it never joins
    bool told_elsewhere = false;
    rc = start_agreed(&t.d, rc, &told_elsewhere, err, sizeof err);
    static char auto_dir[8400];
    if (!rc && resume_auto) {  // the run's own checkpoints when it has any (a requeued cluster job), else a fresh start
        snprintf(auto_dir, sizeof auto_dir, "%s/%s/checkpoints", t.cfg.run.out_dir, t.cfg.run.name);
        // rank 0 looks, for all: a node's stale view of the shared folder must not send one rank into
        // a fresh start while the others resume (and wait in rank 0's choice of the checkpoint)
        resume = dist_agree(&t.d, t.d.rank == 0 && ckpt_list(auto_dir, NULL, 0) > 0) ? auto_dir : NULL;
        t.auto_fresh = !resume;
    }
    if (!rc && resume && resume != resolved) {  // a CONFIG beside --resume DIR, or --resume auto: resolved here
        rc = resolve_once(&t.d, resume, resolved, sizeof resolved, err, sizeof err);
        resume = resolved;
    }
    if (!rc) {  // after the checkpoint's choice: the stages it has finished are not checked
        // the stage to start in and its steps done: rank 0 reads them, summed with the others' zeros
        double at[2] = {0, 0};
        ckpt_state cs;
        if (resume && t.d.rank == 0 && ckpt_read_state(resume, &cs, err, sizeof err) == 0)
            at[0] = cs.stage, at[1] = (double)cs.step_in_stage;
        dist_sum_doubles(&t.d, at, 2);
        // the same config and position on every rank, so the same verdict: rank 0 tells it
        if (batch_split_check(&t.cfg, t.d.world, (int)at[0], (int64_t)at[1], err, sizeof err)) rc = -1, told_elsewhere = t.d.rank > 0;
    }
    bool alike = rc != 0;  // an error so far is every rank's (agreed, or rank 0's checkpoint): no abort needed
    if (!rc) rc = dist_bind_device(&t.d, &t.cfg.run.dev, err, sizeof err);
    if (!rc) rc = run(&t, resume, err, sizeof err);
    if (rc && !told_elsewhere && !t.told_elsewhere) fprintf(stderr, "cameo train: %s\n", err);
    watchdog_stop(&t.wd);
    dist_reducer_free(&t.red);
    optim_free(&t.opt);
    ic_models_free(&t.m);
    if (t.tcache.env) text_cache_close(&t.tcache);
    if (t.rcache.s.env) ref_cache_close(&t.rcache);
    if (t.lcache.s.env) latent_cache_close(&t.lcache);
    // a rank may be waiting in a collective: stop them all (an abort may cut the others' messages short)
    if (rc && !alike && !t.stop_agreed && t.d.world > 1) dist_abort(&t.d, 1);
    dist_finalize(&t.d);
    return rc ? 1 : 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// `cameo export CKPT --out FILE [--ema]`: the adapter of a checkpoint alone (published key names,
// bf16), as safetensors or, for a name ending .bin / .pt / .pth, as a torch.save file (the released
// pipeline loads its adapter with torch.load). CKPT may also be an adapter .safetensors file.
// --ema: the checkpoint's weight average (optimizer.ema) in place of the weights, rounded to bf16.
static void export_usage(FILE *f) {
    fprintf(f, "usage: cameo export CHECKPOINT|ADAPTER.safetensors --out FILE.safetensors|FILE.bin [--ema]\n"
               "  CHECKPOINT  a checkpoint folder, a run's checkpoints/ folder (its latest) or its latest file\n"
               "  --out       .safetensors: the adapter as stored; .bin / .pt / .pth: a torch.save file in the\n"
               "              released layout (the InstantCharacter pipeline's torch.load reads it)\n"
               "  --ema       the checkpoint's weight average (a run with optimizer.ema) in place of its weights\n");
}

// OUT.tmp, where the writers (models/atomic_file.h) put the file until its rename: a SIGINT or
// SIGTERM mid-write left it behind, a part-written file of up to gigabytes beside OUT
static char export_tmp[4300];
static void export_on_signal(int sig) {
    if (export_tmp[0]) unlink(export_tmp);  // async-signal-safe; gone already after the rename
    signal(sig, SIG_DFL);
    raise(sig);  // the default end, so the caller sees the signal
}

int export_cli(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL;
    bool ema = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--ema")) ema = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { export_usage(stdout); return 0; }
        else if (argv[i][0] != '-' && !ckpt) ckpt = argv[i];
        else if (!strcmp(argv[i], "--out")) { fprintf(stderr, "cameo export: --out needs a value after it\n"); return 2; }
        else { fprintf(stderr, "cameo export: unknown argument '%s'\n", argv[i]); export_usage(stderr); return 2; }
    }
    if (!ckpt || !out) {  // say which: `cameo export runs/x` printed the usage alone
        fprintf(stderr, "cameo export: missing %s\n", !ckpt ? "CHECKPOINT (a checkpoint folder or an adapter file)" : "--out FILE");
        export_usage(stderr);
        return 2;
    }
    bool torch = ends_with(out, ".bin") || ends_with(out, ".pt") || ends_with(out, ".pth");
    if (!torch && !ends_with(out, ".safetensors")) {
        fprintf(stderr, "cameo export: %s: the name says no format (.safetensors, or .bin / .pt / .pth for a torch.save "
                        "file the released pipeline's torch.load reads)\n", out);
        return 2;
    }
    char err[2048], dir[4096], src[4200];
    struct stat sb;
    {   // --out inside a checkpoint folder (its adapter.safetensors, say) rewrote a file its manifest
        // verifies: the checkpoint was then refused by resume, export and inspect
        char od[4200], mp[4300], tp[4300];
        snprintf(od, sizeof od, "%s", out);
        char *sl = strrchr(od, '/');
        if (sl) *sl = 0;
        else snprintf(od, sizeof od, ".");
        snprintf(mp, sizeof mp, "%s/manifest.json", od);
        snprintf(tp, sizeof tp, "%s/trainer_state.json", od);
        if (!stat(mp, &sb) && !stat(tp, &sb)) {
            fprintf(stderr, "cameo export: --out %s is inside the checkpoint folder %s (its manifest would no longer match "
                            "its files); write it elsewhere\n", out, od);
            return 2;
        }
    }
    bool file = ends_with(ckpt, ".safetensors") && !stat(ckpt, &sb) && S_ISREG(sb.st_mode);
    if (file && ema) {
        fprintf(stderr, "cameo export: --ema reads a checkpoint's weight average: give the checkpoint, not %s\n", ckpt);
        return 2;
    }
    if (file && ckpt_verify_member(ckpt, err, sizeof err)) {  // a checkpoint's adapter by path: verified as the folder is
        fprintf(stderr, "cameo export: %s\n", err);
        return 1;
    }
    if (file) snprintf(src, sizeof src, "%s", ckpt);
    else if (ckpt_resolve(ckpt, dir, sizeof dir, err, sizeof err)) { fprintf(stderr, "cameo export: %s\n", err); return 1; }
    else snprintf(src, sizeof src, "%s/adapter.safetensors", dir);
    st_file **avg = NULL;
    int n_avg = 0;
    if (ema && ckpt_open_ema(dir, &avg, &n_avg, err, sizeof err)) { fprintf(stderr, "cameo export: %s\n", err); return 1; }
    st_file *f = st_open(src, err, sizeof err);
    if (!f) {
        fprintf(stderr, "cameo export: %s\n", err);
        ckpt_close_files(avg, n_avg);
        return 1;
    }
    // an adapter file given by hand: an optimizer state (400 tensors named <param>.m / .v / .master /
    // .ema under the same parts) or another model's weights was written out as if one, and the
    // released pipeline's load_state_dict(strict=False) takes such a file without a word
    const char *optim_fmt = file ? st_meta(f, "optim.format") : NULL;
    for (int i = 0; file && i < st_count(f); i++) {
        const char *nm = st_at(f, i)->name;
        if (optim_fmt || (strncmp(nm, "image_proj.", 11) && strncmp(nm, "ip_adapter.", 11))) {
            if (optim_fmt)
                fprintf(stderr, "cameo export: %s is an optimizer state (optim.format %s), not an adapter: give its checkpoint "
                                "folder (--ema for the weight average) or the adapter.safetensors beside it\n", src, optim_fmt);
            else
                fprintf(stderr, "cameo export: %s: tensor '%s' is not part of an InstantCharacter adapter (expected image_proj.* "
                                "and ip_adapter.* only)\n", src, nm);
            st_close(f);
            return 1;
        }
    }
    int n = st_count(f), rc, n_ema = 0;
    te_tensor *t = calloc((size_t)n + 1, sizeof *t);
    void **own = calloc((size_t)n + 1, sizeof *own);  // the averages in the adapter's dtype
    CM_CHECK(t && own, "export", "out of host memory for %d tensors", n);
    for (int i = 0; i < n; i++) {
        const st_entry *e = st_at(f, i), *a = ema ? ckpt_ema_find(avg, n_avg, e->name) : NULL;
        t[i] = (te_tensor){.name = e->name, .dtype = e->dtype, .ndim = e->ndim, .shape = e->shape, .data = e->data};
        if (a && (a->dtype != CM_F32 || a->nbytes / 4 != e->nbytes / dtype_size(e->dtype))) {
            fprintf(stderr, "cameo export: %s: its weight average holds %zu bytes of %s, the adapter %zu of %s (not the same "
                            "tensor: a damaged or foreign optimizer file?)\n", e->name, a->nbytes, dtype_name(a->dtype), e->nbytes,
                    dtype_name(e->dtype));
            n = i;  // what is converted so far is freed below
            rc = 1;
            goto out;
        }
        if (a) {  // f32 average -> the adapter's dtype (round to nearest even); one held fixed has none
            cm_tensor *x = tensor_from_host(CM_F32, a->ndim, a->shape, a->data, CM_DEV_CPU);
            own[i] = malloc(e->nbytes + 1);
            tensor_copy_to_host(x, e->dtype, own[i]);
            tensor_release(x);
            t[i].data = own[i];
            n_ema++;
        }
    }
    rc = 0;
    snprintf(export_tmp, sizeof export_tmp, "%s.tmp", out);
    signal(SIGINT, export_on_signal);
    signal(SIGTERM, export_on_signal);
    signal(SIGHUP, export_on_signal);
    if (torch) {
        rc = torch_export_save(out, t, n, 0, err, sizeof err);
    } else {
        st_writer *w = st_writer_new();  // re-written through the writer: atomic, and checked on the way
        for (int i = 0; i < n; i++) st_writer_add(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, t[i].data);
        for (int i = 0; i < st_meta_count(f); i++) st_writer_meta(w, st_meta_key(f, i), st_meta(f, st_meta_key(f, i)));
        if (ema) st_writer_meta(w, "cameo.weights", "ema");
        rc = st_writer_save(w, out, err, sizeof err);
        st_writer_free(w);
    }
    export_tmp[0] = 0;  // renamed or removed: a later signal has nothing of ours to remove
out:
    for (int i = 0; i < n; i++) free(own[i]);
    free(own);
    free(t);
    st_close(f);
    ckpt_close_files(avg, n_avg);
    if (rc == 1) return 1;  // said above
    if (rc) { fprintf(stderr, "cameo export: %s\n", err); return 1; }
    printf("cameo export: %d tensors from %s -> %s%s", n, src, out, torch ? " (torch.save format)" : "");
    if (ema) printf("; the weight average of %d of them%s", n_ema, n_ema < n ? " (the others are held fixed)" : "");
    printf("\n");
    return 0;
}
