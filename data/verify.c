// verify.c — see verify.h. Works shard by shard so one damaged shard does not hide the others.
#include "data/verify.h"
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "data/checksum.h"
#include "data/le.h"
#include "data/fsutil.h"
#include "data/image.h"
#include "data/manifest.h"
#include "data/record.h"
#include "data/shard.h"

#define MAX_REPORT 50

// A shard whose file checksum is wrong is not opened with LMDB: a damaged page header makes
// LMDB's cursors crash or assert. Its records are found by a raw scan of the file instead
// (a record is contiguous in a leaf or overflow page) and each is parsed with its bounds and
// CRC checked, so a damaged record is still named by sample. Returns the problems found.
static long verify_raw_scan(const char *p, FILE *log) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) { fprintf(log, "%s: cannot read (%s)\n", p, strerror(errno)); return 1; }
    off_t len = lseek(fd, 0, SEEK_END);
    const uint8_t *b = len >= RECORD_HEADER ? mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (b == MAP_FAILED) { fprintf(log, "%s: cannot map (%s)\n", p, strerror(errno)); return 1; }
    long bad = 0;
    char err[256];
    for (size_t i = 0; b && i + RECORD_HEADER <= (size_t)len && bad <= MAX_REPORT; i++) {
        if (memcmp(b + i, "CMR1\x01\x00", 6)) continue;  // magic and version 1
        const uint8_t *h = b + i;
        uint64_t n = RECORD_HEADER + (uint64_t)le_get32(h + 24) + le_get32(h + 28);  // image and metadata bytes
        if (n > (uint64_t)len - i) continue;
        record_view r;
        if (record_parse(h, n, &r, err, sizeof err)) {
            uint64_t id = 0;
            for (int k = 7; k >= 0; k--) id = id << 8 | h[8 + k];
            fprintf(log, "%s: sample %llu (at byte %zu): %s\n", p, (unsigned long long)id, i, err);
            bad++;
        }
        i += n - 1;
    }
    if (b) munmap((void *)b, (size_t)len);
    return bad;
}

static long verify_shard(const char *dir, const manifest *m, int si, ZSTD_DDict *dd, int decode, FILE *log) {
    const manifest_shard *ms = &m->shards[si];
    long bad = 0;
    char p[4400], err[1024];
    snprintf(p, sizeof p, "%s/%s/data.mdb", dir, ms->name);
    uint32_t crc;
    uint64_t bytes;
    if (crc32c_file(p, &crc, &bytes)) { fprintf(log, "%s: cannot read (%s)\n", p, strerror(errno)); return 1; }
    if (bytes != ms->bytes || crc != ms->crc32c) {
        fprintf(log, "%s: %llu bytes crc32c 0x%08x, the manifest says %llu bytes crc32c 0x%08x (shard damaged)\n", p, (unsigned long long)bytes, crc,
                (unsigned long long)ms->bytes, ms->crc32c);
        fprintf(log, "%s: not opened (a damaged LMDB page can crash the reader); records checked by a raw scan\n", p);
        return 1 + verify_raw_scan(p, log);
    }
    shard s;
    if (shard_open(&s, dir, ms->name, ms->first_id, ms->samples, ms->bytes, err, sizeof err)) { fprintf(log, "%s\n", err); return 1; }
    MDB_txn *t = shard_begin(&s, err, sizeof err);
    if (!t) { fprintf(log, "%s\n", err); shard_close(&s); return 1; }
    // [samples] character of each record read; UINT32_MAX where the record did not parse (reported
    // already): the pairs check skips those, not compares them with whatever malloc left there
    uint32_t *chars = malloc(sizeof(uint32_t) * (ms->samples + 1));
    if (!chars) { fprintf(log, "%s: out of memory for %llu samples\n", s.path, (unsigned long long)ms->samples); mdb_txn_abort(t); shard_close(&s); return 1; }
    memset(chars, 0xff, sizeof(uint32_t) * (ms->samples + 1));
    uint16_t *sizes = malloc(sizeof(uint16_t) * 2 * (ms->samples + 1));
    if (shard_read_sizes(&s, t, sizes, err, sizeof err)) { fprintf(log, "%s\n", err); bad++; free(sizes); sizes = NULL; }
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    record_meta meta = {0};
    uint8_t *raw = NULL;
    size_t rawcap = 0, imcap = 0;
    image im = {0};
    MDB_cursor *c;
    mdb_cursor_open(t, s.samples, &c);
    MDB_val k, v;
    uint64_t expect = ms->first_id;
    int rc;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        uint64_t id = k.mv_size == 8 ? shard_unkey64(k.mv_data) : UINT64_MAX;
        long before = bad;
        if (id != expect) { fprintf(log, "%s: key %llu where sample %llu was expected (keys are 8-byte big-endian, contiguous)\n", s.path, (unsigned long long)id, (unsigned long long)expect); bad++; }
        expect = id + 1;
        record_view r;
        if (record_parse(v.mv_data, v.mv_size, &r, err, sizeof err)) { fprintf(log, "%s: sample %llu: %s\n", s.path, (unsigned long long)id, err); bad++; continue; }
        if (r.id != id) { fprintf(log, "%s: sample %llu: record says id %llu\n", s.path, (unsigned long long)id, (unsigned long long)r.id); bad++; }
        if (r.character >= m->characters) { fprintf(log, "%s: sample %llu: character %u beyond the %llu characters\n", s.path, (unsigned long long)id, r.character, (unsigned long long)m->characters); bad++; }
        if (id >= ms->first_id && id < ms->first_id + ms->samples) {
            chars[id - ms->first_id] = r.character;
            if (sizes && (sizes[2 * (id - ms->first_id)] != r.width || sizes[2 * (id - ms->first_id) + 1] != r.height)) {
                fprintf(log, "%s: sample %llu: info sizes say %ux%u, the record %ux%u\n", s.path, (unsigned long long)id, sizes[2 * (id - ms->first_id)], sizes[2 * (id - ms->first_id) + 1], r.width, r.height);
                bad++;
            }
        }
        if (record_meta_decompress(dc, dd, &r, &raw, &rawcap, err, sizeof err) || record_meta_decode(raw, r.meta_raw_len, &meta, err, sizeof err)) {
            fprintf(log, "%s: sample %llu: %s\n", s.path, (unsigned long long)id, err);
            bad++;
        }
        if (decode && (image_webp_decode_into(r.image, r.image_len, (r.flags & RECORD_FLAG_ALPHA) != 0, &im, &imcap) || im.w != r.width || im.h != r.height)) {
            fprintf(log, "%s: sample %llu: WebP image does not decode to %ux%u\n", s.path, (unsigned long long)id, r.width, r.height);
            bad++;
        }
        if (bad != before && bad > MAX_REPORT) { fprintf(log, "%s: more problems not listed\n", s.path); break; }
    }
    if (rc != 0 && rc != MDB_NOTFOUND) { fprintf(log, "%s: reading samples stopped at sample %llu: %s\n", s.path, (unsigned long long)expect, mdb_strerror(rc)); bad++; }
    else if (expect != ms->first_id + ms->samples && bad <= MAX_REPORT) { fprintf(log, "%s: samples end at %llu, the manifest says %llu\n", s.path, (unsigned long long)expect, (unsigned long long)(ms->first_id + ms->samples)); bad++; }
    mdb_cursor_close(c);
    // pairs: every id belongs to this shard and to that character
    mdb_cursor_open(t, s.pairs, &c);
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0 && bad <= MAX_REPORT) {
        if (k.mv_size != 4 || v.mv_size != 8) { fprintf(log, "%s: pairs entry of %zu/%zu bytes (expected 4/8)\n", s.path, k.mv_size, v.mv_size); bad++; continue; }
        uint32_t ch = shard_unkey32(k.mv_data);
        uint64_t id = shard_unkey64(v.mv_data);
        if (id < ms->first_id || id >= ms->first_id + ms->samples) { fprintf(log, "%s: pairs: character %u lists sample %llu outside the shard (missing pair)\n", s.path, ch, (unsigned long long)id); bad++; }
        else if (chars[id - ms->first_id] != UINT32_MAX && chars[id - ms->first_id] != ch) { fprintf(log, "%s: pairs: character %u lists sample %llu of character %u\n", s.path, ch, (unsigned long long)id, chars[id - ms->first_id]); bad++; }
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    shard_close(&s);
    ZSTD_freeDCtx(dc);
    record_meta_free(&meta);
    free(raw); free(im.px); free(chars); free(sizes);
    return bad;
}

long verify_dataset(const char *dir, int decode, FILE *log) {
    manifest m;
    char err[1024];
    if (manifest_load(dir, &m, err, sizeof err)) { fprintf(log, "%s\n", err); return -1; }
    const char *net = fs_network_type(dir);
    if (net) fprintf(log, "warning: %s is on a network filesystem (%s); LMDB needs node-local disk\n", dir, net);
    long bad = 0;
    ZSTD_DDict *dd = NULL;
    if (m.has_dict) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, m.dict_file);
        size_t len;
        char *buf = fs_read_file(p, &len, 16u << 20);
        if (!buf) { fprintf(log, "%s: cannot read the zstd dictionary (%s)\n", p, strerror(errno)); bad++; }
        else {
            if (len != m.dict_bytes || crc32c(buf, len) != m.dict_crc32c) { fprintf(log, "%s: size or crc32c differs from the manifest\n", p); bad++; }
            dd = ZSTD_createDDict(buf, len);
            free(buf);
        }
    }
    // a long verify (10M samples: hours) says where it is: a line every 10 s, between shards
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec, last = t0;
    uint64_t done = 0;
    for (int i = 0; i < m.n_shards; i++) {
        bad += verify_shard(dir, &m, i, dd, decode, log);
        done += m.shards[i].samples;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        if (t - last < 10.0 || i + 1 == m.n_shards) continue;
        last = t;
        double rate = (double)done / (t - t0), left = (double)(m.samples - done) / (rate > 0 ? rate : 1);
        fprintf(log, "verify: %d of %d shards, %llu of %llu samples (%.0f/s), %ld problem(s) so far, about %.0f min left\n", i + 1,
                m.n_shards, (unsigned long long)done, (unsigned long long)m.samples, rate, bad, left / 60);
        fflush(log);
    }
    if (dd) ZSTD_freeDDict(dd);
    manifest_free(&m);
    return bad;
}
