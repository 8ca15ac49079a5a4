// test_metrics.c — train/metrics (JSONL lines, TensorBoard TFRecord framing with crc32c, the
// hand-encoded Event protobufs decoded back field by field, resume trimming, EMA) and
// train/progress (plain-line output when not a TTY, quiet mode, summary).
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "train/metrics.h"
#include "train/progress.h"

// minimal protobuf reader over one message
typedef struct { const uint8_t *p, *end; } rd;
static uint64_t rd_varint(rd *r) {
    uint64_t v = 0;
    for (int s = 0; r->p < r->end && s < 64; s += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) break;
    }
    return v;
}

typedef struct { double wall; int64_t step; char version[32]; char tag[64]; float value; int has_value, session_start; } event;

static int decode_event(const uint8_t *d, size_t n, event *e) {
    memset(e, 0, sizeof *e);
    rd r = {d, d + n};
    while (r.p < r.end) {
        uint64_t key = rd_varint(&r);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (field == 1 && wire == 1) {
            memcpy(&e->wall, r.p, 8);
            r.p += 8;
        } else if (field == 2 && wire == 0) {
            e->step = (int64_t)rd_varint(&r);
        } else if (field == 3 && wire == 2) {
            uint64_t l = rd_varint(&r);
            memcpy(e->version, r.p, l < 31 ? l : 31);
            r.p += l;
        } else if (field == 7 && wire == 2) {  // SessionLog: 1 status
            uint64_t l = rd_varint(&r);
            rd s = {r.p, r.p + l};
            r.p += l;
            if (rd_varint(&s) != (1 << 3 | 0)) return -1;
            e->session_start = rd_varint(&s) == 1;
        } else if (field == 5 && wire == 2) {
            uint64_t l = rd_varint(&r);
            rd s = {r.p, r.p + l};
            r.p += l;
            if (rd_varint(&s) != (1 << 3 | 2)) return -1;  // Summary.value
            uint64_t vl = rd_varint(&s);
            rd v = {s.p, s.p + vl};
            if (v.end != s.end) return -1;
            while (v.p < v.end) {
                uint64_t k = rd_varint(&v);
                if (k == (1 << 3 | 2)) {
                    uint64_t tl = rd_varint(&v);
                    memcpy(e->tag, v.p, tl < 63 ? tl : 63);
                    v.p += tl;
                } else if (k == (2 << 3 | 5)) {
                    memcpy(&e->value, v.p, 4);
                    v.p += 4;
                    e->has_value = 1;
                } else return -1;
            }
        } else return -1;
    }
    return r.p == r.end ? 0 : -1;
}

static void test_metrics(void) {
    TEST_CHECK(tb_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c check value");
    // a known Event encoding: wall_time 1.5, step 300, tag "a", value 2.0
    uint8_t buf[64];
    size_t n = tb_encode_event(buf, sizeof buf, 1.5, 300, "a", 2.0f, NULL);
    const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xac, 0x02, 0x2a, 0x0a, 0x0a, 0x08,
                            0x0a, 0x01, 'a', 0x15, 0, 0, 0, 0x40};
    TEST_CHECK(n == sizeof want && !memcmp(buf, want, n), "Event bytes (n=%zu)", n);
    TEST_CHECK(tb_encode_event(buf, 10, 1.5, 300, "a", 2.0f, NULL) == 0, "too small a buffer is refused");
    // an image Event: tag "i", 2 wide, 3 high, RGB, 4 "PNG" bytes (as TensorBoard's EventAccumulator
    // reads it: checked by hand with tensorboard 2.21 on a training run's eval/pP images)
    const uint8_t png[4] = {0x89, 'P', 'N', 'G'};
    n = tb_encode_image_event(buf, sizeof buf, 1.5, 300, "i", 2, 3, png, 4);
    const uint8_t want_img[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xac, 0x02, 0x2a, 0x13, 0x0a, 0x11, 0x0a, 0x01, 'i',
                                0x22, 0x0c, 0x08, 0x03, 0x10, 0x02, 0x18, 0x03, 0x22, 0x04, 0x89, 'P', 'N', 'G'};
    TEST_CHECK(n == sizeof want_img && !memcmp(buf, want_img, n), "image Event bytes (n=%zu)", n);
    TEST_CHECK(tb_encode_image_event(buf, 20, 1.5, 300, "i", 2, 3, png, 4) == 0, "too small a buffer is refused (image)");
    // SessionLog START at step 9 (bytes as tensorboard's event_pb2 serialises Event(wall_time=1, step=9,
    // session_log=SessionLog(status=START)))
    n = tb_encode_session_start(buf, sizeof buf, 1.0, 9);
    const uint8_t want_start[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x09, 0x3a, 0x02, 0x08, 0x01};
    TEST_CHECK(n == sizeof want_start && !memcmp(buf, want_start, n), "SessionLog START bytes (n=%zu)", n);

    char dir[128], path[300], err[512];
    snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-%d", (int)getpid());
    metrics m;
    TEST_CHECK(metrics_open(&m, dir, true, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(strstr(m.tb_path, "/tb/events.out.tfevents.") != NULL, "event file name %s", m.tb_path);
    metrics_ema ema = {.beta = 0.9};
    for (int s = 1; s <= 4; s++) {
        double loss = 1.0 / s;
        metrics_row r = {.step = s, .stage = s > 2, .stage_name = s > 2 ? "paired" : "unpaired", .loss = loss,
                         .loss_smoothed = metrics_ema_update(&ema, loss), .lr = 1e-4, .grad_norm = s == 3 ? NAN : 0.5,
                         .samples_per_s = 12.5, .step_s = 0.1, .data_s = 0.02, .time = s * 0.1};
        TEST_CHECK(metrics_log(&m, &r) == 0, "log");
    }
    TEST_NEAR(metrics_ema_value(&ema), (0.1 * 0.729 * 1 + 0.1 * 0.81 * 0.5 + 0.1 * 0.9 / 3 + 0.1 * 0.25) / (1 - pow(0.9, 4)),
              1e-12, 1e-12, "bias-corrected EMA");
    char tbp[sizeof m.tb_path];
    snprintf(tbp, sizeof tbp, "%s", m.tb_path);
    metrics_close(&m);

    // JSONL
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    char line[512];
    int lines = 0, nulls = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        nulls += strstr(line, "\"grad_norm\":null") != NULL;
        TEST_CHECK(strstr(line, "\"step_s\":0.1,\"data_s\":0.02,") != NULL, "step_s and data_s: %s", line);
        if (lines == 1)
            TEST_CHECK(!strncmp(line, "{\"step\":1,\"stage\":0,\"stage_name\":\"unpaired\",\"loss\":1,", 52), "line 1: %s", line);
    }
    if (f) fclose(f);
    TEST_CHECK(lines == 4 && nulls == 1, "4 lines, NaN as null (%d, %d)", lines, nulls);

    // TensorBoard: version record, then 8 scalars per log step, CRCs checked
    f = fopen(tbp, "rb");
    uint8_t *d;
    size_t dn;
    int recs = 0, ok = 1;
    event e;
    while (f && tb_read_record(f, &d, &dn, err, sizeof err) == 1) {
        ok &= decode_event(d, dn, &e) == 0;
        if (recs == 0) TEST_CHECK(!strcmp(e.version, "brain.Event:2") && e.wall > 1.6e9, "file_version first");
        if (recs == 1) TEST_CHECK(!strcmp(e.tag, "train/loss") && e.step == 1 && e.value == 1.0f && e.has_value, "first scalar");
        if (recs == 8 * 3 + 1) TEST_CHECK(!strcmp(e.tag, "train/loss") && e.step == 4 && e.value == 0.25f, "step 4 loss");
        free(d);
        recs++;
    }
    TEST_CHECK(ok, "every event decodes");
    TEST_CHECK(recs == 1 + 8 * 4, "records: %d", recs);
    if (f) fclose(f);

    // a flipped byte is caught by the CRC (in a copy)
    char bad_path[sizeof tbp + 8], cmd0[3 * sizeof tbp];
    snprintf(bad_path, sizeof bad_path, "%s.bad", tbp);
    snprintf(cmd0, sizeof cmd0, "cp '%s' '%s'", tbp, bad_path);
    TEST_CHECK(system(cmd0) == 0, "copy");
    f = fopen(bad_path, "r+b");
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 1, f);
    fseek(f, 0, SEEK_SET);
    int rc, bad = 0;
    while ((rc = tb_read_record(f, &d, &dn, err, sizeof err)) == 1) free(d);
    bad = rc == -1;
    fclose(f);
    remove(bad_path);
    TEST_CHECK(bad && strstr(err, "crc"), "corruption detected: %s", err);

    // resume from step 2: later lines are dropped, a new event file is started
    TEST_CHECK(metrics_open(&m, dir, true, 2, err, sizeof err) == 0, "%s", err);
    metrics_row r = {.step = 3, .loss = 0.3};
    metrics_log(&m, &r);
    metrics_close(&m);
    f = fopen(path, "r");
    lines = 0;
    int last = 0;
    while (f && fgets(line, sizeof line, f)) lines++, last = atoi(line + 8);
    if (f) fclose(f);
    TEST_CHECK(lines == 3 && last == 3, "trimmed on resume: %d lines, last step %d", lines, last);
    TEST_CHECK(strcmp(m.tb_path, tbp) != 0 && access(tbp, F_OK) == 0, "a new event file beside the old one");
    // which starts with SessionLog START at the first step written again, so TensorBoard drops the
    // old file's steps 3 and 4 instead of showing them twice
    f = fopen(m.tb_path, "rb");
    recs = 0;
    int starts = 0;
    while (f && tb_read_record(f, &d, &dn, err, sizeof err) == 1) {
        TEST_CHECK(decode_event(d, dn, &e) == 0, "resumed file: record %d decodes", recs);
        if (recs == 1) TEST_CHECK(e.session_start && e.step == 3, "resumed file: START at step 3 (%d, %lld)", e.session_start,
                                  (long long)e.step);
        starts += e.session_start;
        free(d);
        recs++;
    }
    if (f) fclose(f);
    TEST_CHECK(starts == 1 && recs == 2 + 8, "resumed file: version, START, 8 scalars (%d records)", recs);

    if (getenv("CAMEO_TEST_KEEP")) {  // for scripts/check_tfevents.py
        printf("kept %s\n", dir);
        return;
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

// a run folder whose path is long (here 1.1 kB; PATH_MAX is 4096): metrics.jsonl and tb/ keep
// their names (a 1 kB buffer wrote the lines to RUN/metrics. and the events under RUN/t)
static void test_long_path(void) {
    char dir[1400], path[1500], err[512];
    int n = snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-long-%d", (int)getpid());
    for (int k = 0; k < 5; k++) {
        dir[n++] = '/';
        for (int i = 0; i < 210; i++) dir[n++] = (char)('a' + k);
    }
    dir[n] = 0;
    metrics m;
    TEST_CHECK(metrics_open(&m, dir, true, -1, err, sizeof err) == 0, "long path: %s", err);
    metrics_row r = {.step = 1, .loss = 0.5};
    TEST_CHECK(metrics_log(&m, &r) == 0, "long path: log");
    metrics_close(&m);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    TEST_CHECK(access(path, R_OK) == 0, "long path: RUN/metrics.jsonl written (%zu-byte folder)", strlen(dir));
    snprintf(path, sizeof path, "%s/tb/", dir);
    TEST_CHECK(!strncmp(m.tb_path, path, strlen(path)) && access(m.tb_path, R_OK) == 0, "long path: the event file under RUN/tb/");
    // a folder too long for a path: refused with its length, not written under a name cut short
    char huge[4300];
    memset(huge, 'x', sizeof huge - 1);
    huge[0] = '/', huge[sizeof huge - 1] = 0;
    TEST_CHECK(metrics_open(&m, huge, false, -1, err, sizeof err) == -1, "a 4.3 kB run folder is refused");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/cameo-test-metrics-long-%d", (int)getpid());
    if (system(cmd)) fprintf(stderr, "cannot remove the long folder\n");
}

// a write that fails part-way (a full disk; here the file-size limit, EFBIG): metrics_log says so,
// and the torn line and records are cut off, so that the lines and events written once space is back
// read whole (a torn record ended TensorBoard's reading of the file; a torn line spoiled the JSONL)
static void test_write_failure(void) {
    char dir[128], path[300], err[512];
    snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-full-%d", (int)getpid());
    metrics m;
    TEST_CHECK(metrics_open(&m, dir, true, -1, err, sizeof err) == 0, "%s", err);
    metrics_row r = {.step = 1, .stage_name = "unpaired", .loss = 0.5};
    TEST_CHECK(metrics_log(&m, &r) == 0, "log step 1");
    struct stat sj, st;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    TEST_CHECK(stat(path, &sj) == 0 && stat(m.tb_path, &st) == 0, "stat");
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    // step 2: room for part of a line (and none for the larger event file); step 3: for part of the
    // step's records (the line fits); step 4: room again
    for (int k = 0; k < 2; k++) {
        lim = old;
        lim.rlim_cur = (rlim_t)(k == 0 ? sj.st_size : st.st_size) + 40;
        TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
        r.step = 2 + k;
        TEST_CHECK(metrics_log(&m, &r) == -1, "step %lld: a failed write is told", (long long)r.step);
        setrlimit(RLIMIT_FSIZE, &old);
        TEST_CHECK(stat(path, &sj) == 0 && stat(m.tb_path, &st) == 0, "stat");
    }
    signal(SIGXFSZ, prev);
    TEST_CHECK(strstr(m.err, "metrics.jsonl: cannot write") && m.lost == 2, "the first error and the count (%s, %lld)", m.err,
               (long long)m.lost);
    r.step = 4;
    TEST_CHECK(metrics_log(&m, &r) == 0, "log step 4 once there is room");
    metrics_close(&m);
    FILE *f = fopen(path, "r");
    char line[512];
    int lines = 0, whole = 0;
    while (f && fgets(line, sizeof line, f)) lines++, whole += !strncmp(line, "{\"step\":", 8) && strstr(line, "}\n");
    if (f) fclose(f);
    TEST_CHECK(lines == 3 && whole == 3, "metrics.jsonl: steps 1, 3 and 4, whole (%d lines, %d whole)", lines, whole);
    f = fopen(m.tb_path, "rb");
    uint8_t *d;
    size_t dn;
    int recs = 0, rc = -1;
    while (f && (rc = tb_read_record(f, &d, &dn, err, sizeof err)) == 1) free(d), recs++;
    if (f) fclose(f);
    TEST_CHECK(rc == 0 && recs == 1 + 8 * 2, "the event file reads to its end: version, steps 1 and 4 (%d records, %s)", recs,
               rc ? err : "clean end");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

// a resume's trim of metrics.jsonl onto a full disk (its copy outgrows RLIMIT_FSIZE): metrics_open
// fails naming the cause, metrics.jsonl is as it was, and no metrics.jsonl.tmp is left holding
// the space (it was, a partial copy the size of what fitted)
static void test_trim_full(void) {
    char dir[128], path[300], tmp[310], err[512];
    snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-trim-%d", (int)getpid());
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    metrics m;
    TEST_CHECK(metrics_open(&m, dir, false, -1, err, sizeof err) == 0, "%s", err);
    for (int s = 1; s <= 40; s++) {
        metrics_row r = {.step = s, .stage_name = "unpaired", .loss = 0.5};
        TEST_CHECK(metrics_log(&m, &r) == 0, "log step %d", s);
    }
    metrics_close(&m);
    struct stat before, after;
    TEST_CHECK(stat(path, &before) == 0, "stat");
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)before.st_size / 4;  // the copy of steps 1..30 does not fit
    TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    err[0] = 0;
    int rc = metrics_open(&m, dir, false, 30, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    if (!rc) metrics_close(&m);
    TEST_CHECK(rc == -1 && strstr(err, "metrics.jsonl") && strstr(err, strerror(EFBIG)), "the trim fails naming the cause: %s", err);
    TEST_CHECK(stat(path, &after) == 0 && after.st_size == before.st_size, "metrics.jsonl as it was (%lld of %lld bytes)",
               (long long)after.st_size, (long long)before.st_size);
    TEST_CHECK(stat(tmp, &after) != 0, "no %s left", tmp);
    TEST_CHECK(metrics_open(&m, dir, false, 30, err, sizeof err) == 0, "with room again: %s", err);
    metrics_close(&m);
    TEST_CHECK(stat(path, &after) == 0 && after.st_size < before.st_size && after.st_size > before.st_size / 2, "trimmed to 30 steps");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

// TensorBoard's event file cannot take its first record (a full disk; RLIMIT_FSIZE): metrics_open
// fails naming it and removes it, instead of leaving a cut-off event file in tb/ per attempt
static void test_tb_header_full(void) {
    char dir[128], tb[160], err[512];
    snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-tbfull-%d", (int)getpid());
    snprintf(tb, sizeof tb, "%s/tb", dir);
    metrics m;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 10;  // the version record is longer
    TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    err[0] = 0;
    int rc = metrics_open(&m, dir, true, -1, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    if (!rc) metrics_close(&m);
    TEST_CHECK(rc == -1 && strstr(err, "events.out.tfevents") && strstr(err, strerror(EFBIG)), "the event file's failure told: %s", err);
    int files = 0;
    DIR *d = opendir(tb);
    for (struct dirent *e; d && (e = readdir(d));) files += e->d_name[0] != '.';
    if (d) closedir(d);
    TEST_CHECK(files == 0, "no cut-off event file left in %s (%d)", tb, files);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

static void test_progress(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/cameo-test-progress-%d.txt", (int)getpid());
    FILE *f = fopen(path, "w+");
    progress p;
    progress_init(&p, f, false, 5);
    progress_stage_begin(&p, "unpaired", 0, 3, 20, 0);
    for (int s = 1; s <= 20; s++) progress_update(&p, s, 1.0 / s, 0.5, 1e-4, 0.9, 8.0);
    progress_stage_end(&p);
    progress_message(&p, "saved checkpoint %s", "runs/x/step-20");
    progress_summary_info si = {.steps = 20, .skipped = 1, .seconds = 65, .final_loss = 0.05, .loss_smoothed = 0.06,
                                .adapter_path = "runs/x/checkpoints/step-20/adapter.safetensors"};
    progress_summary(&p, &si);
    fflush(f);
    rewind(f);
    char line[512];
    int n = 0, cr = 0, has_eta = 0, has_summary = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        cr += strchr(line, '\r') != NULL;
        has_eta |= strstr(line, "ETA") != NULL;
        has_summary |= strstr(line, "adapter.safetensors") != NULL;
        if (n == 1) TEST_CHECK(strstr(line, "stage 1/3 unpaired: 20 steps") != NULL, "header: %s", line);
        if (n == 2) TEST_CHECK(strstr(line, "unpaired [1/3]") && strstr(line, " 5/20"), "first bar line: %s", line);
    }
    fclose(f);
    TEST_CHECK(cr == 0, "no carriage returns when not a TTY");
    TEST_CHECK(n >= 4 + 1 + 2, "plain lines every log_every steps (%d lines)", n);
    TEST_CHECK(has_eta && has_summary, "ETA and summary");

    f = fopen(path, "w+");
    progress_init(&p, f, true, 5);
    progress_stage_begin(&p, "quiet", 0, 1, 10, 0);
    for (int s = 1; s <= 10; s++) progress_update(&p, s, 1, 1, 1, 1, 1);
    progress_stage_end(&p);
    progress_summary(&p, &si);
    fflush(f);
    long sz = ftell(f);
    fclose(f);
    TEST_CHECK(sz > 0 && sz < 400, "quiet: only the summary (%ld bytes)", sz);
    remove(path);

    // a path with a space or a quote in a command to paste is one shell word
    char w[128];
    TEST_CHECK(!strcmp(progress_shell_word("runs/tiny/tb", w, sizeof w), "runs/tiny/tb"), "plain: %s", w);
    TEST_CHECK(!strcmp(progress_shell_word("runs/my run é/tb", w, sizeof w), "'runs/my run é/tb'"), "space: %s", w);
    TEST_CHECK(!strcmp(progress_shell_word("runs/it's", w, sizeof w), "'runs/it'\\''s'"), "quote: %s", w);
    f = fopen(path, "w+");
    progress_init(&p, f, false, 5);
    si.run_dir = "runs/my run";
    progress_summary(&p, &si);
    fflush(f);
    rewind(f);
    int quoted = 0;
    while (fgets(line, sizeof line, f)) quoted |= strstr(line, "tensorboard --logdir 'runs/my run/tb'") != NULL;
    fclose(f);
    remove(path);
    TEST_CHECK(quoted, "the summary's tensorboard command quotes a run folder with a space");
}

// event files sort in start order, as TensorBoard reads them: a run started (here, by a parent of a
// smaller pid) in the second of an earlier one (its child) sorted by pid, before it
static void test_tb_order(void) {
    char dir[128], tb[160], err[512];
    snprintf(dir, sizeof dir, "/tmp/cameo-test-metrics-order-%d", (int)getpid());
    snprintf(tb, sizeof tb, "%s/tb", dir);
    pid_t pid = fork();
    if (pid == 0) {
        metrics m;
        int rc = metrics_open(&m, dir, true, -1, err, sizeof err);
        metrics_close(&m);
        _exit(rc ? 1 : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the earlier run (a child) opens its event file");
    metrics m;
    TEST_CHECK(metrics_open(&m, dir, true, 2, err, sizeof err) == 0, "%s", err);
    metrics_close(&m);
    char last[256] = "", mine[256];
    snprintf(mine, sizeof mine, "%s", strrchr(m.tb_path, '/') + 1);
    int n = 0;
    DIR *d = opendir(tb);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            n++;
            if (strcmp(e->d_name, last) > 0) snprintf(last, sizeof last, "%s", e->d_name);
        }
    if (d) closedir(d);
    TEST_CHECK(n == 2 && !strcmp(last, mine), "the later run's file sorts last: %s (of %d; last %s)", mine, n, last);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

int main(void) {
    test_metrics();
    test_long_path();
    test_write_failure();
    test_trim_full();
    test_tb_header_full();
    test_tb_order();
    test_progress();
    return test_summary("test_metrics");
}
