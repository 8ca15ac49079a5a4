// progress.h — what a user sees on stderr: one progress line per stage, redrawn in place with
// \r when the stream is a TTY, else printed as plain lines every log_every steps (logs, Slurm);
// quiet mode prints only messages and the final summary; silent mode (the ranks other than 0 of
// a data-parallel run, whose lines would repeat rank 0's) nothing at all.
// defines: progress, progress_summary_info and the progress_* functions.
//
//   unpaired [1/3]  120/500  24%  8.3 samples/s  loss 0.412 (0.398)  lr 1.0e-04  |g| 0.83  ETA 1m02s
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct progress {
    FILE *out;
    bool tty, quiet, silent;
    int log_every;
    char stage[64];
    int stage_index, n_stages;
    int64_t total, start_step, last_step;
    double t_start;          // monotonic seconds at stage begin
    // the rate and the ETA leave out the stage's first step in this process (the loader's start,
    // train.recompute: auto's measuring step, first-use set-ups): from its end on, they count
    double t_first;          // monotonic seconds at the end of that first step (0: not yet)
    int64_t first_step;      // the step it ended at
    double samples, samples_first;  // samples counted in the stage (progress_count); those of the first step
    int line_len;            // columns of the bar on screen (TTY), cut to the terminal width - 1
    bool bar_on_screen;
    double last_draw;
} progress;

typedef struct progress_summary_info {
    int64_t steps;           // optimizer steps run in this process
    int64_t skipped;         // non-finite steps skipped
    double seconds;          // wall time
    double final_loss, loss_smoothed;
    double samples_per_s;    // mean
    const char *adapter_path;     // the exported / last adapter file (may be NULL)
    const char *checkpoint_path;  // the last checkpoint folder (may be NULL)
    const char *run_dir;          // metrics.jsonl and tb/ live here (may be NULL)
    int64_t metrics_lost;         // log steps whose metrics could not be written (a full disk)
    const char *metrics_err;      // the first such failure (may be NULL)
} progress_summary_info;

// out: usually stderr (a TTY is detected with isatty); log_every: plain-line period
void progress_init(progress *p, FILE *out, bool quiet, int log_every);
// start_step > 0 when a stage resumes in the middle
void progress_stage_begin(progress *p, const char *name, int stage_index, int n_stages, int64_t total_steps,
                          int64_t start_step);
// a step of samples has ended: the stage's samples per second so far, leaving out the first step
// once a later one has ended (the first step alone: its own rate)
double progress_count(progress *p, int64_t samples);
// step: steps done in the stage (1..total)
void progress_update(progress *p, int64_t step, double loss, double loss_smoothed, double lr, double grad_norm,
                     double samples_per_s);
void progress_stage_end(progress *p);
// a line of its own (checkpoint saved, warnings), printed above the bar, also in quiet mode
void progress_message(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_summary(progress *p, const progress_summary_info *s);
// path as a shell word for a command the user may paste: itself when plain, else in single quotes
// ('runs/my run' for a run.name with a space); cut at n - 1
const char *progress_shell_word(const char *path, char *buf, size_t n);
// "1h02m", "3m05s", "12s"
const char *progress_fmt_duration(double seconds, char *buf, size_t n);
// seconds on the monotonic clock (the one every timing in train/ and eval/ reads)
double progress_now(void);
