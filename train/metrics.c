// metrics.c — JSONL metrics and TensorBoard event files (TFRecord + hand-encoded Event protobufs).
#include "autograd/tensor.h"
#include "train/metrics.h"
#include "data/le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>


static double now_unix(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

// ---------------------------------------------------------------------------------------------
// crc32c
static uint32_t crc32c_tab[256];
uint32_t tb_crc32c(uint32_t crc, const void *buf, size_t n) {
    if (!crc32c_tab[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            crc32c_tab[i] = c;
        }
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (n--) c = crc32c_tab[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}
uint32_t tb_masked_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

// ---------------------------------------------------------------------------------------------
// protobuf encoding
typedef struct { uint8_t *p; size_t n, cap; bool over; } pbuf;
static void pb_byte(pbuf *b, uint8_t x) {
    if (b->n < b->cap) b->p[b->n] = x;
    else b->over = true;
    b->n++;
}
static void pb_varint(pbuf *b, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(b, (uint8_t)v);
}
static void pb_bytes(pbuf *b, const void *d, size_t n) {
    for (size_t i = 0; i < n; i++) pb_byte(b, ((const uint8_t *)d)[i]);
}
static void pb_tag(pbuf *b, int field, int wire) { pb_varint(b, (uint64_t)(field << 3 | wire)); }
static void pb_fixed64(pbuf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) pb_byte(b, (uint8_t)(v >> (8 * i)));
}
static void pb_fixed32(pbuf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) pb_byte(b, (uint8_t)(v >> (8 * i)));
}
static void pb_string(pbuf *b, int field, const char *s) {
    size_t n = strlen(s);
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, s, n);
}
static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

// an Event's first fields: 1 wall_time (double), 2 step (int64 varint, two's complement for
// negatives; left out at 0, the proto default)
static void pb_event_head(pbuf *b, double wall_time, int64_t step) {
    uint64_t wt;
    memcpy(&wt, &wall_time, 8);
    pb_tag(b, 1, 1);
    pb_fixed64(b, wt);
    if (step) {
        pb_tag(b, 2, 0);
        pb_varint(b, (uint64_t)step);
    }
}

size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *tag, float value,
                       const char *version) {
    pbuf b = {buf, 0, cap, false};
    pb_event_head(&b, wall_time, step);
    if (!tag && version) {
        pb_string(&b, 3, version);  // file_version
    } else if (tag) {
        size_t tl = strlen(tag);
        size_t value_len = 1 + varint_len(tl) + tl + 1 + 4;   // Summary.Value: tag + simple_value
        size_t summary_len = 1 + varint_len(value_len) + value_len;  // Summary: repeated value
        pb_tag(&b, 5, 2);
        pb_varint(&b, summary_len);
        pb_tag(&b, 1, 2);
        pb_varint(&b, value_len);
        pb_string(&b, 1, tag);
        uint32_t fv;
        memcpy(&fv, &value, 4);
        pb_tag(&b, 2, 5);
        pb_fixed32(&b, fv);
    }
    return b.over ? 0 : b.n;
}

size_t tb_encode_session_start(uint8_t *buf, size_t cap, double wall_time, int64_t step) {
    pbuf b = {buf, 0, cap, false};
    pb_event_head(&b, wall_time, step);
    pb_tag(&b, 7, 2);  // session_log: SessionLog { 1 status = START (1) }
    pb_varint(&b, 2);
    pb_tag(&b, 1, 0);
    pb_varint(&b, 1);
    return b.over ? 0 : b.n;
}

size_t tb_encode_image_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *tag, int width, int height,
                             const uint8_t *png, size_t png_len) {
    pbuf b = {buf, 0, cap, false};
    pb_event_head(&b, wall_time, step);
    size_t tl = strlen(tag);
    // Summary.Image: 1 height, 2 width, 3 colorspace (3 = RGB), 4 encoded_image_string
    size_t image_len = 1 + varint_len((uint64_t)height) + 1 + varint_len((uint64_t)width) + 1 + 1 + 1 + varint_len(png_len) + png_len;
    size_t value_len = 1 + varint_len(tl) + tl + 1 + varint_len(image_len) + image_len;  // Summary.Value: tag + image (4)
    size_t summary_len = 1 + varint_len(value_len) + value_len;
    pb_tag(&b, 5, 2);
    pb_varint(&b, summary_len);
    pb_tag(&b, 1, 2);
    pb_varint(&b, value_len);
    pb_string(&b, 1, tag);
    pb_tag(&b, 4, 2);
    pb_varint(&b, image_len);
    pb_tag(&b, 1, 0);
    pb_varint(&b, (uint64_t)height);
    pb_tag(&b, 2, 0);
    pb_varint(&b, (uint64_t)width);
    pb_tag(&b, 3, 0);
    pb_varint(&b, 3);
    pb_tag(&b, 4, 2);
    pb_varint(&b, png_len);
    pb_bytes(&b, png, png_len);
    return b.over ? 0 : b.n;
}

int tb_write_record(FILE *f, const uint8_t *data, size_t n) {
    uint8_t hdr[12];
    uint64_t len = n;
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(len >> (8 * i));
    uint32_t lc = tb_masked_crc(tb_crc32c(0, hdr, 8));
    for (int i = 0; i < 4; i++) hdr[8 + i] = (uint8_t)(lc >> (8 * i));
    uint32_t dc = tb_masked_crc(tb_crc32c(0, data, n));
    uint8_t foot[4];
    for (int i = 0; i < 4; i++) foot[i] = (uint8_t)(dc >> (8 * i));
    if (fwrite(hdr, 1, 12, f) != 12 || fwrite(data, 1, n, f) != n || fwrite(foot, 1, 4, f) != 4) return -1;
    return 0;
}


int tb_read_record(FILE *f, uint8_t **data, size_t *n, char *err, size_t errlen) {
    uint8_t hdr[12];
    size_t r = fread(hdr, 1, 12, f);
    if (r == 0) return 0;
    if (r != 12) {
        cm_seterr(err, errlen, "truncated record header (%zu of 12 bytes)", r);
        return -1;
    }
    if (le_get32(hdr + 8) != tb_masked_crc(tb_crc32c(0, hdr, 8))) {
        cm_seterr(err, errlen, "length crc mismatch");
        return -1;
    }
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)hdr[i] << (8 * i);
    if (len > (1u << 30)) {
        cm_seterr(err, errlen, "record length %llu is implausible", (unsigned long long)len);
        return -1;
    }
    uint8_t *d = malloc(len + 4);
    if (fread(d, 1, len + 4, f) != len + 4) {
        cm_seterr(err, errlen, "truncated record (%llu data bytes expected)", (unsigned long long)len);
        free(d);
        return -1;
    }
    if (le_get32(d + len) != tb_masked_crc(tb_crc32c(0, d, len))) {
        cm_seterr(err, errlen, "data crc mismatch");
        free(d);
        return -1;
    }
    *data = d;
    *n = len;
    return 1;
}

// ---------------------------------------------------------------------------------------------
static int mkdir_p(const char *path) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

// keeps the lines of path whose "step" is <= max_step (a resumed run rewrites what came after).
// Only a regular file is trimmed, through a symbolic link: metrics.jsonl linked to a device
// (/dev/full, /dev/null: reads without end) or a FIFO has nothing to keep, and a link stays a link
static int trim_jsonl(const char *path, int64_t max_step, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) return 0;  // nothing yet, or not a file to trim
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        cm_seterr(err, errlen, "%s: cannot resolve: %s", path, strerror(errno));
        return -1;
    }
    path = real;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o) {
        cm_seterr(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int e = 0;  // the first failure's errno
    // every write checked (a full disk fails part-way), and the copy on disk before it replaces the
    // log: a cut copy renamed over it lost the steps that did not fit; an unsynced one, all of them
    // after a crash. On a failure the copy goes (it held the space the user then has to find)
    while (!e && (len = getline(&line, &cap, f)) > 0) {
        const char *s = strstr(line, "\"step\":");
        long long step = s ? strtoll(s + 7, NULL, 10) : 0;
        // a torn last line is dropped too
        if (step <= max_step && line[len - 1] == '\n' && fwrite(line, 1, (size_t)len, o) != (size_t)len) e = errno ? errno : EIO;
    }
    free(line);
    if (!e && ferror(f)) e = EIO;
    fclose(f);
    if (!e && fflush(o)) e = errno;
    if (!e && fsync(fileno(o))) e = errno;
    if (fclose(o) && !e) e = errno;
    if (!e && rename(tmp, path)) e = errno;
    if (e) {
        cm_seterr(err, errlen, "%s: cannot rewrite (through %s): %s", path, tmp, strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}

// appends n bytes to f (unbuffered) whole or not at all: a write that fails part-way (ENOSPC) is cut
// back off the file, else its torn line / record would spoil what comes after it once space returns
// (TensorBoard stops reading an event file at a damaged record). The first failure is kept in m->err
static int append_whole(metrics *m, FILE *f, const char *path, const void *buf, size_t n) {
    int fd = fileno(f);
    off_t at = lseek(fd, 0, SEEK_END);
    if (fwrite(buf, 1, n, f) == n && !fflush(f)) return 0;
    int e = errno;
    clearerr(f);
    struct stat st;
    bool cut = at >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode);  // not a device (/dev/full)
    int cut_rc = cut ? ftruncate(fd, at) || fseeko(f, at, SEEK_SET) : 0;
    cm_seterr(m->last_err, sizeof m->last_err, "%s: cannot write: %s%s%s", path, strerror(e),
              cut_rc ? "; cutting the torn write off failed too: " : "", cut_rc ? strerror(errno) : "");
    if (!m->err[0]) snprintf(m->err, sizeof m->err, "%s", m->last_err);
    return -1;
}

// one past the highest sequence number (events.out.tfevents.T.HOST.SSSS.PID) of dir's event files of
// second t; 0 when it has none (files of the older HOST.PID.K layout have no 4-digit field there)
static int tb_next_seq(const char *dir, long long t) {
    char prefix[64];
    int next = 0;
    snprintf(prefix, sizeof prefix, "events.out.tfevents.%010lld.", t);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        size_t dot = (size_t)(strrchr(e->d_name, '.') - e->d_name);  // before the pid; the prefix ends in one
        if (dot < strlen(prefix) + 5 || e->d_name[dot - 5] != '.') continue;
        const char *seq = e->d_name + dot - 5;  // ".SSSS.PID"
        bool digits = true;
        for (int i = 1; i <= 4; i++) digits &= seq[i] >= '0' && seq[i] <= '9';
        int k = digits ? atoi(seq + 1) : -1;
        if (k >= next) next = k + 1;
    }
    if (d) closedir(d);
    return next;
}

int metrics_open(metrics *m, const char *run_dir, bool tensorboard, int64_t resume_step, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->t0 = now_unix();
    if (mkdir_p(run_dir)) {
        cm_seterr(err, errlen, "%s: cannot create the run folder: %s", run_dir, strerror(errno));
        return -1;
    }
    // a name cut short would write the lines to another file (RUN/metrics.) and the summary name this one
    if (snprintf(m->jsonl_path, sizeof m->jsonl_path, "%s/metrics.jsonl", run_dir) >= (int)sizeof m->jsonl_path) {
        cm_seterr(err, errlen, "%s: the run folder's path is too long (%zu bytes; at most %zu)", run_dir, strlen(run_dir),
                  sizeof m->jsonl_path - sizeof "/metrics.jsonl");
        return -1;
    }
    if (resume_step >= 0 && trim_jsonl(m->jsonl_path, resume_step, err, errlen)) return -1;
    m->jsonl = fopen(m->jsonl_path, "ab");
    if (!m->jsonl) {
        cm_seterr(err, errlen, "%s: cannot open: %s", m->jsonl_path, strerror(errno));
        return -1;
    }
    setvbuf(m->jsonl, NULL, _IONBF, 0);  // append_whole writes each line at once
    if (tensorboard) {
        char dir[sizeof m->jsonl_path], host[256] = "localhost";
        snprintf(dir, sizeof dir, "%s/tb", run_dir);
        if (mkdir_p(dir)) {
            cm_seterr(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
            metrics_close(m);
            return -1;
        }
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = 0;
        // unique and in start order, as TensorBoard reads a folder's files (by name): time, host, then
        // a sequence number past those of the files of the same second, then the pid. With the pid
        // before a counter, a run started in the second of an earlier one (a resume, whose START
        // purge must come after the old steps) sorted by pid, which says nothing of the order
        long long t = (long long)m->t0;
        for (int k0 = tb_next_seq(dir, t), k = k0; k < k0 + 100; k++) {
            snprintf(m->tb_path, sizeof m->tb_path, "%s/events.out.tfevents.%010lld.%.64s.%04d.%d", dir, t, host, k, (int)getpid());
            m->tb = fopen(m->tb_path, "wbx");
            if (m->tb || errno != EEXIST) break;
        }
        if (!m->tb) {
            cm_seterr(err, errlen, "%s: cannot create: %s", m->tb_path, strerror(errno));
            metrics_close(m);
            return -1;
        }
        uint8_t buf[128];
        size_t n = tb_encode_event(buf, sizeof buf, m->t0, 0, NULL, 0, "brain.Event:2");
        int rc = tb_write_record(m->tb, buf, n);
        // a resume: the earlier event files hold the steps after the checkpoint too, and this file
        // writes them again; SessionLog START at the first new step tells TensorBoard to drop the
        // earlier ones (its purge of orphaned data), else every such step shows twice
        if (resume_step >= 0) {
            n = tb_encode_session_start(buf, sizeof buf, m->t0, resume_step + 1);
            rc |= tb_write_record(m->tb, buf, n);
        }
        if (rc || fflush(m->tb)) {
            cm_seterr(err, errlen, "%s: cannot write: %s", m->tb_path, strerror(errno));
            metrics_close(m);
            unlink(m->tb_path);  // its cut-off first record would stay in tb/ (one more per retry on a full disk)
            return -1;
        }
        setvbuf(m->tb, NULL, _IONBF, 0);  // from here, append_whole writes each step's events at once
        const char *full = getenv("CAMEO_FAULT_TB_FULL");  // tests: a disk that fills after the header
        int fd = full && !strcmp(full, "1") ? open("/dev/full", O_WRONLY) : -1;
        if (fd >= 0) dup2(fd, fileno(m->tb)), close(fd);
    }
    return 0;
}

// the records of one write, gathered in memory (open_memstream) before append_whole
typedef struct { FILE *f; char *buf; size_t n; } mbuf;
static int mbuf_open(mbuf *b) {
    b->buf = NULL, b->n = 0;
    b->f = open_memstream(&b->buf, &b->n);
    return b->f ? 0 : -1;
}
// writes the gathered bytes to f whole; frees them
static int mbuf_commit(metrics *m, mbuf *b, FILE *f, const char *path) {
    int rc = fclose(b->f) ? -1 : append_whole(m, f, path, b->buf, b->n);
    free(b->buf);
    return rc;
}

static int tb_scalar_to(FILE *f, const char *tag, int64_t step, double value) {
    uint8_t buf[512];
    size_t n = tb_encode_event(buf, sizeof buf, now_unix(), step, tag, (float)value, NULL);
    if (!n) return -1;
    return tb_write_record(f, buf, n);
}

int metrics_scalar(metrics *m, const char *tag, int64_t step, double value) {
    if (!m->tb) return 0;
    mbuf b;
    if (mbuf_open(&b)) return -1;
    if (tb_scalar_to(b.f, tag, step, value)) {
        fclose(b.f);
        free(b.buf);
        return -1;
    }
    return mbuf_commit(m, &b, m->tb, m->tb_path);
}

int metrics_image(metrics *m, const char *tag, int64_t step, int width, int height, const uint8_t *png, size_t png_len) {
    if (!m->tb) return 0;
    size_t cap = png_len + strlen(tag) + 128;
    uint8_t *buf = malloc(cap);
    size_t n = buf ? tb_encode_image_event(buf, cap, now_unix(), step, tag, width, height, png, png_len) : 0;
    int rc = -1;
    if (n) {  // the framed record in one write
        mbuf b;
        if (!mbuf_open(&b)) {
            if (!tb_write_record(b.f, buf, n)) rc = mbuf_commit(m, &b, m->tb, m->tb_path);
            else fclose(b.f), free(b.buf);
        }
    }
    free(buf);
    return rc;
}

static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);  // JSON has no NaN / Inf
}

int metrics_log(metrics *m, const metrics_row *r) {
    int rc = 0;
    mbuf b;
    if (m->jsonl) {
        if (mbuf_open(&b)) return -1;
        FILE *f = b.f;
        fprintf(f, "{\"step\":%lld,\"stage\":%d", (long long)r->step, r->stage);
        if (r->stage_name) {
            fputs(",\"stage_name\":\"", f);
            for (const char *c = r->stage_name; *c; c++)
                if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
                else if ((unsigned char)*c >= 0x20) fputc(*c, f);
            fputc('"', f);
        }
        json_num(f, "loss", r->loss);
        json_num(f, "loss_smoothed", r->loss_smoothed);
        json_num(f, "lr", r->lr);
        json_num(f, "grad_norm", r->grad_norm);
        json_num(f, "samples_per_s", r->samples_per_s);
        json_num(f, "step_s", r->step_s);
        json_num(f, "data_s", r->data_s);
        json_num(f, "time", r->time);
        fputs("}\n", f);
        rc |= mbuf_commit(m, &b, m->jsonl, m->jsonl_path);
    }
    if (m->tb) {  // the step's scalars in one write: all of them or none
        static const char *tags[8] = {"train/loss", "train/loss_smoothed", "train/lr", "train/grad_norm",
                                      "train/samples_per_s", "train/step_s", "train/data_s", "train/stage"};
        double v[8] = {r->loss, r->loss_smoothed, r->lr, r->grad_norm, r->samples_per_s, r->step_s, r->data_s, r->stage};
        if (mbuf_open(&b)) return -1;
        int enc = 0;
        for (int i = 0; i < 8; i++) enc |= tb_scalar_to(b.f, tags[i], r->step, v[i]);
        if (enc) fclose(b.f), free(b.buf), rc = -1;
        else rc |= mbuf_commit(m, &b, m->tb, m->tb_path);
    }
    if (rc) m->lost++;
    return rc ? -1 : 0;
}

void metrics_flush(metrics *m) {
    if (m->jsonl) fflush(m->jsonl);
    if (m->tb) fflush(m->tb);
}

void metrics_close(metrics *m) {
    if (m->jsonl) fclose(m->jsonl);
    if (m->tb) fclose(m->tb);
    m->jsonl = m->tb = NULL;
}

double metrics_ema_update(metrics_ema *e, double x) {
    if (isfinite(x)) {
        e->acc = e->beta * e->acc + (1 - e->beta) * x;
        e->n++;
    }
    return metrics_ema_value(e);
}
double metrics_ema_value(const metrics_ema *e) {
    if (!e->n) return NAN;
    return e->acc / (1 - pow(e->beta, (double)e->n));
}
void metrics_ema_restore(metrics_ema *e, double smoothed) {
    if (!isfinite(smoothed)) {
        e->acc = 0, e->n = 0;
        return;
    }
    e->acc = smoothed;
    e->n = 100000;  // beta^n == 0: no bias correction left
}
