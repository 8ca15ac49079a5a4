// progress.c — the progress line, plain log lines and the final summary.
#include "train/progress.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *progress_fmt_duration(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%.0fs", s);
    return buf;
}

const char *progress_shell_word(const char *path, char *buf, size_t n) {
    bool plain = *path != 0;
    for (const char *c = path; *c; c++)
        if (!strchr("/._-+=:,@%", *c) && !(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9')) plain = false;
    if (plain) {
        snprintf(buf, n, "%s", path);
        return buf;
    }
    size_t k = 0;
    if (k + 1 < n) buf[k++] = '\'';
    for (const char *c = path; *c && k + 5 < n; c++) {
        if (*c == '\'') memcpy(buf + k, "'\\''", 4), k += 4;  // ' ends the quote, \' is one, ' opens it again
        else buf[k++] = *c;
    }
    if (k + 1 < n) buf[k++] = '\'';
    if (n) buf[k < n ? k : n - 1] = 0;
    return buf;
}

void progress_init(progress *p, FILE *out, bool quiet, int log_every) {
    memset(p, 0, sizeof *p);
    p->out = out ? out : stderr;
    p->tty = isatty(fileno(p->out));
    p->quiet = quiet;
    p->log_every = log_every > 0 ? log_every : 1;
}

void progress_stage_begin(progress *p, const char *name, int stage_index, int n_stages, int64_t total_steps,
                          int64_t start_step) {
    snprintf(p->stage, sizeof p->stage, "%s", name ? name : "");
    p->stage_index = stage_index, p->n_stages = n_stages;
    p->total = total_steps, p->start_step = start_step, p->last_step = start_step;
    p->t_start = progress_now();
    p->t_first = 0, p->first_step = start_step;
    p->samples = p->samples_first = 0;
    p->last_draw = 0;
    if (!p->quiet && !p->tty)
        fprintf(p->out, "stage %d/%d %s: %lld steps%s\n", stage_index + 1, n_stages, p->stage, (long long)total_steps,
                start_step ? " (resumed)" : "");
}

// the terminal's width in columns, read at each redraw (a window may be resized); COLUMNS when the
// TTY does not say (0 columns: a pty nobody sized); 0 when neither knows (no cut)
static int progress_columns(const progress *p) {
    struct winsize ws;
    if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n > 0 ? n : 0;
}

// cut line (n bytes) to at most max columns: a line as wide as the terminal, or wider, wraps and
// each \r redraw would leave a line behind; counts UTF-8 characters (a stage name may have some)
// and never cuts one in half; *cols: the columns kept
static void progress_fit(char *line, int n, int max, int *cols) {
    int c = 0, k = 0;
    for (; k < n; k++) {
        if (((unsigned char)line[k] & 0xc0) == 0x80) continue;  // a continuation byte: same column
        if (c == max) break;
        c++;
    }
    line[k] = 0;
    *cols = c;
}

static void clear_bar(progress *p) {
    if (p->tty && p->bar_on_screen) {
        int w = progress_columns(p), len = p->line_len;
        if (w > 0 && len > w - 1) len = w - 1;  // the terminal narrowed since the draw: do not wrap now
        fprintf(p->out, "\r%*s\r", len, "");
        p->bar_on_screen = false;
    }
}

double progress_count(progress *p, int64_t samples) {
    double now = progress_now();
    p->samples += (double)samples;
    if (p->t_first == 0) {  // the first step: its rate is all there is
        p->t_first = now, p->samples_first = p->samples;
        return p->samples / (now - p->t_start + 1e-9);
    }
    return (p->samples - p->samples_first) / (now - p->t_first + 1e-9);
}

// the first update of a stage stands for the end of its first step when progress_count was not called
static void progress_first(progress *p, int64_t step, double now) {
    if (p->t_first == 0) p->t_first = now, p->samples_first = p->samples;
    if (p->first_step == p->start_step) p->first_step = step;
}

void progress_update(progress *p, int64_t step, double loss, double loss_smoothed, double lr, double grad_norm,
                     double samples_per_s) {
    p->last_step = step;
    double now = progress_now();
    progress_first(p, step, now);
    if (p->quiet) return;
    bool last = step >= p->total;
    if (p->tty) {
        if (!last && now - p->last_draw < 0.1) return;  // at most 10 redraws per second
    } else if (step % p->log_every && !last) {
        return;
    }
    p->last_draw = now;
    // the time per step since the first step ended: that step (seconds at full size, with
    // recompute: auto) counted in held the ETA far too high for hundreds of steps
    double el = now - p->t_start, per;
    int64_t done = step - p->start_step;
    if (step > p->first_step) per = (now - p->t_first) / (double)(step - p->first_step);
    else per = done > 0 ? el / (double)done : NAN;
    double eta = per * (double)(p->total - step);
    char eta_s[32];
    progress_fmt_duration(eta, eta_s, sizeof eta_s);
    char line[320];
    int n = snprintf(line, sizeof line,
                     "%s [%d/%d] %*lld/%lld %3.0f%%  %.1f samples/s  loss %#.4g (%#.4g)  lr %.2e  |g| %#.3g  ETA %s",
                     p->stage, p->stage_index + 1, p->n_stages, (int)snprintf(NULL, 0, "%lld", (long long)p->total),
                     (long long)step, (long long)p->total, p->total ? 100.0 * (double)step / (double)p->total : 100.0,
                     samples_per_s, loss, loss_smoothed, lr, grad_norm, eta_s);
    if (n < 0) return;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    if (p->tty) {
        int w = progress_columns(p), cols;
        progress_fit(line, n, w > 0 ? w - 1 : n, &cols);  // w - 1: the cursor stays on the line
        int pad = p->line_len - cols;  // blank what the last, longer line left on screen
        if (w > 0 && cols + pad > w - 1) pad = w - 1 - cols;
        fprintf(p->out, "\r%s", line);
        if (pad > 0) fprintf(p->out, "%*s", pad, "");
        p->line_len = cols;
        p->bar_on_screen = true;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
}

void progress_stage_end(progress *p) {
    double el = progress_now() - p->t_start;
    char d[32];
    progress_fmt_duration(el, d, sizeof d);
    if (p->quiet) return;
    if (p->tty && p->bar_on_screen) {
        fputc('\n', p->out);
        p->bar_on_screen = false;
        p->line_len = 0;
    }
    // a stage left before its end (a signal, an error) is not "done": said with where it stands
    if (p->last_step < p->total)
        fprintf(p->out, "stage %d/%d %s stopped at step %lld of %lld: %lld steps in %s\n", p->stage_index + 1, p->n_stages,
                p->stage, (long long)p->last_step, (long long)p->total, (long long)(p->last_step - p->start_step), d);
    else
        fprintf(p->out, "stage %d/%d %s done: %lld steps in %s\n", p->stage_index + 1, p->n_stages, p->stage,
                (long long)(p->last_step - p->start_step), d);
    fflush(p->out);
}

void progress_message(progress *p, const char *fmt, ...) {
    if (p->silent) return;
    clear_bar(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
}

void progress_summary(progress *p, const progress_summary_info *s) {
    if (p->silent) return;
    clear_bar(p);
    char d[32];
    progress_fmt_duration(s->seconds, d, sizeof d);
    fprintf(p->out, "done: %lld steps in %s", (long long)s->steps, d);
    if (s->samples_per_s > 0) fprintf(p->out, ", %.1f samples/s", s->samples_per_s);
    if (isfinite(s->final_loss)) fprintf(p->out, ", final loss %#.4g (smoothed %#.4g)", s->final_loss, s->loss_smoothed);
    if (s->skipped) fprintf(p->out, ", %lld non-finite steps skipped", (long long)s->skipped);
    fputc('\n', p->out);
    if (s->adapter_path) fprintf(p->out, "adapter: %s\n", s->adapter_path);
    if (s->checkpoint_path && s->checkpoint_path[0]) fprintf(p->out, "checkpoint: %s (resume with --resume)\n", s->checkpoint_path);
    else if (s->checkpoint_path) fprintf(p->out, "checkpoint: none (no step was run)\n");
    if (s->run_dir) {
        char tb[4200], q[8500];
        snprintf(tb, sizeof tb, "%s/tb", s->run_dir);
        fprintf(p->out, "metrics: %s/metrics.jsonl, tensorboard --logdir %s\n", s->run_dir, progress_shell_word(tb, q, sizeof q));
    }
    if (s->run_dir && s->metrics_lost)
        fprintf(p->out, "metrics: %lld log step(s) left out, their writes failed (the first: %s)\n", (long long)s->metrics_lost,
                s->metrics_err && s->metrics_err[0] ? s->metrics_err : "?");
    fflush(p->out);
}
