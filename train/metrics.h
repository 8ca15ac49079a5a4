// metrics.h — the training log: one JSON line per log step (RUN/metrics.jsonl) and TensorBoard
// event files (RUN/tb/events.out.tfevents.<time>.<host>.<pid>.<n>) so `tensorboard --logdir RUN/tb` shows
// the curves. No protobuf library: the few Event fields are hand-encoded.
// defines: metrics_row, metrics, metrics_ema and the metrics_* / tb_* functions.
//
// TFRecord framing of each record: u64 length (LE), u32 masked crc32c(length bytes), data,
// u32 masked crc32c(data); masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
// Event (tensorflow/core/util/event.proto): 1 wall_time double, 2 step int64, 3 file_version
// string ("brain.Event:2", the first record), 7 session_log { 1 status: START } (a resume's second
// record), 5 summary { 1 value { 1 tag string,
// 2 simple_value float | 4 image { 1 height, 2 width, 3 colorspace, 4 encoded_image_string } } }.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct metrics_row {
    int64_t step;             // global optimizer step (1-based: the step just done)
    int stage;                // stage index
    const char *stage_name;   // may be NULL
    double loss;              // this step's loss (mean over micro-batches)
    double loss_smoothed;     // metrics_ema of the loss
    double lr;
    double grad_norm;         // before clipping
    double samples_per_s;
    double step_s;            // this step's wall seconds
    double data_s;            // of them, host seconds taking and uploading batches (beside the device's
                              // backward on a GPU: near step_s means the data pipeline is the bottleneck)
    double time;              // training wall seconds since the run started, over all resumes
} metrics_row;

typedef struct metrics {
    FILE *jsonl;
    FILE *tb;
    char jsonl_path[4200];   // RUN/metrics.jsonl, RUN up to PATH_MAX
    char tb_path[4400];
    double t0;
    // writes that failed (a full disk): what the first said, and how many log steps lost lines or
    // events. A failed write is cut back off its file, so the file stays whole for what follows
    char err[512];
    char last_err[512];      // the latest failure (a validation's or evaluation's own warning names it)
    int64_t lost;
} metrics;

// Opens RUN/metrics.jsonl (appending) and, when tensorboard is set, a new event file under
// RUN/tb/. resume_step >= 0: lines of metrics.jsonl with "step" > resume_step (logged after
// the checkpoint a resumed run restarts from) are dropped first, and the new event file says
// SessionLog START at resume_step + 1 (TensorBoard drops the older files' events from there). 0, or -1 with err set.
// Fault injection for tests: CAMEO_FAULT_TB_FULL=1 sends the event file's writes after its header to /dev/full.
int metrics_open(metrics *m, const char *run_dir, bool tensorboard, int64_t resume_step, char *err, size_t errlen);
// one JSONL line + one TB event with the scalars loss, loss_smoothed, lr, grad_norm, samples_per_s,
// step_s, data_s (and stage). 0, or -1 when a write failed (m->err, m->lost): the line or the
// step's events are then left out whole, never torn
int metrics_log(metrics *m, const metrics_row *r);
// any extra scalar (TB only), e.g. "eval/clip_score"; 0 or -1 as metrics_log
int metrics_scalar(metrics *m, const char *tag, int64_t step, double value);
// an image (TB only; PNG bytes, width x height RGB), e.g. "eval/pair0_seed0"; shown under IMAGES
int metrics_image(metrics *m, const char *tag, int64_t step, int width, int height, const uint8_t *png, size_t png_len);
void metrics_flush(metrics *m);
void metrics_close(metrics *m);

// a bias-corrected exponential moving average (like TensorBoard's smoothing)
typedef struct metrics_ema {
    double beta;   // e.g. 0.9
    double acc;    // running average before correction
    int64_t n;     // values seen
} metrics_ema;
double metrics_ema_update(metrics_ema *e, double x);  // returns the smoothed value (non-finite x ignored)
double metrics_ema_value(const metrics_ema *e);
// continues from a saved smoothed value (after a resume): as if many values had been seen
void metrics_ema_restore(metrics_ema *e, double smoothed);

// --- encoding, exposed for tests ---
uint32_t tb_crc32c(uint32_t crc, const void *buf, size_t n);  // Castagnoli, start with 0
uint32_t tb_masked_crc(uint32_t crc);
// encodes an Event into buf (cap bytes); returns its length (0 when it does not fit).
// tag == NULL and version != NULL: the file_version event.
size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *tag, float value,
                       const char *version);
// an Event with one image summary value (Summary.Image: height, width, colorspace 3, the PNG bytes);
// its length, 0 when it does not fit
size_t tb_encode_image_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *tag, int width, int height,
                             const uint8_t *png, size_t png_len);
// an Event with SessionLog START at step: TensorBoard then drops the events of earlier files with
// step >= step (a resumed run writes them again); its length, 0 when it does not fit
size_t tb_encode_session_start(uint8_t *buf, size_t cap, double wall_time, int64_t step);
// writes one TFRecord; 0 or -1
int tb_write_record(FILE *f, const uint8_t *data, size_t n);
// reads the next TFRecord (checking both CRCs) into *data (malloc'd, caller frees).
// 1 = a record, 0 = clean end of file, -1 = damaged (err set)
int tb_read_record(FILE *f, uint8_t **data, size_t *n, char *err, size_t errlen);
