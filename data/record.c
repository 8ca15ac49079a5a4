// record.c — record header/CRC, metadata serialisation, zstd (dictionary) compression.
#include "data/record.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "data/checksum.h"
#include "data/le.h"


static int parse(const void *value, size_t len, record_view *r, int check, char *err, size_t errlen) {
    const uint8_t *p = value;
    if (len < RECORD_HEADER) { snprintf(err, errlen, "record of %zu bytes is shorter than its %d-byte header", len, RECORD_HEADER); return -1; }
    if (le_get32(p) != RECORD_MAGIC) { snprintf(err, errlen, "bad magic 0x%08x (expected 0x%08x \"CMR1\")", le_get32(p), RECORD_MAGIC); return -1; }
    if (le_get16(p + 4) != RECORD_VERSION) { snprintf(err, errlen, "record version %u (this reader knows %d)", le_get16(p + 4), RECORD_VERSION); return -1; }
    r->flags = le_get16(p + 6);
    r->id = le_get64(p + 8);
    r->character = le_get32(p + 16);
    r->width = le_get16(p + 20);
    r->height = le_get16(p + 22);
    r->image_len = le_get32(p + 24);
    r->meta_len = le_get32(p + 28);
    r->meta_raw_len = le_get32(p + 32);
    uint64_t want = (uint64_t)RECORD_HEADER + r->image_len + r->meta_len;
    if (want != len) { snprintf(err, errlen, "record length %zu but header says %llu (40 + image %u + metadata %u)", len, (unsigned long long)want, r->image_len, r->meta_len); return -1; }
    if (check) {
        uint32_t c = crc32c_update(crc32c_update(0, p, 36), p + RECORD_HEADER, len - RECORD_HEADER);
        uint32_t s = le_get32(p + 36);
        if (c != s) { snprintf(err, errlen, "checksum mismatch: stored 0x%08x, computed 0x%08x", s, c); return -1; }
    }
    if (r->width == 0 || r->height == 0) { snprintf(err, errlen, "image size %ux%u (expected both > 0)", r->width, r->height); return -1; }
    r->image = p + RECORD_HEADER;
    r->meta = r->image + r->image_len;
    return 0;
}

int record_parse(const void *value, size_t len, record_view *out, char *err, size_t errlen) { return parse(value, len, out, 1, err, errlen); }
int record_parse_nocrc(const void *value, size_t len, record_view *out, char *err, size_t errlen) { return parse(value, len, out, 0, err, errlen); }

uint8_t *record_assemble(uint64_t id, uint32_t character, uint16_t flags, int width, int height, const void *image,
                         size_t image_len, const void *meta, size_t meta_len, size_t meta_raw_len, size_t *out_len) {
    size_t n = RECORD_HEADER + image_len + meta_len;
    uint8_t *p = malloc(n);
    if (!p) return NULL;
    le_put32(p, RECORD_MAGIC);
    le_put16(p + 4, RECORD_VERSION);
    le_put16(p + 6, flags);
    le_put64(p + 8, id);
    le_put32(p + 16, character);
    le_put16(p + 20, (uint16_t)width);
    le_put16(p + 22, (uint16_t)height);
    le_put32(p + 24, (uint32_t)image_len);
    le_put32(p + 28, (uint32_t)meta_len);
    le_put32(p + 32, (uint32_t)meta_raw_len);
    memcpy(p + RECORD_HEADER, image, image_len);
    memcpy(p + RECORD_HEADER + image_len, meta, meta_len);
    le_put32(p + 36, crc32c_update(crc32c_update(0, p, 36), p + RECORD_HEADER, n - RECORD_HEADER));
    *out_len = n;
    return p;
}

int record_meta_encode(const record_meta_in *in, uint8_t **out, size_t *out_len) {
    if (in->n_captions < 1 || in->n_captions > RECORD_MAX_CAPTIONS) return -1;
    size_t n = 1 + 2 + 2 + 8 + 1 + (in->has_bbox ? 16 : 0);
    const char *ch = in->character ? in->character : "", *src = in->source ? in->source : "";
    for (int i = 0; i < in->n_captions; i++) { size_t l = strlen(in->captions[i]); if (l > 65535) return -1; n += 2 + l; }
    if (strlen(ch) > 65535 || strlen(src) > 65535) return -1;
    n += strlen(ch) + strlen(src);
    if (n > RECORD_MAX_META) return -1;  // a reader refuses it: never write what cannot be read
    uint8_t *p = malloc(n), *q = p;
    if (!p) return -1;
    *q++ = (uint8_t)in->n_captions;
    for (int i = 0; i < in->n_captions; i++) { size_t l = strlen(in->captions[i]); le_put16(q, (uint16_t)l); memcpy(q + 2, in->captions[i], l); q += 2 + l; }
    size_t l = strlen(ch); le_put16(q, (uint16_t)l); memcpy(q + 2, ch, l); q += 2 + l;
    l = strlen(src); le_put16(q, (uint16_t)l); memcpy(q + 2, src, l); q += 2 + l;
    le_put32(q, in->orig_w); le_put32(q + 4, in->orig_h); q += 8;
    *q++ = (uint8_t)(in->has_bbox ? 1 : 0);
    if (in->has_bbox) for (int i = 0; i < 4; i++) { le_put32(q, in->bbox[i]); q += 4; }
    *out = p;
    *out_len = n;
    return 0;
}

int record_meta_decode(const void *raw, size_t len, record_meta *m, char *err, size_t errlen) {
    const uint8_t *p = raw, *end = p + len;
    // strings land in the arena with a NUL each: at most len + 257 bytes
    size_t need = len + RECORD_MAX_CAPTIONS + 3;
    if (m->arena_cap < need) {
        char *a = realloc(m->arena, need);
        if (!a) { snprintf(err, errlen, "out of memory for metadata of %zu bytes", len); return -1; }
        m->arena = a;
        m->arena_cap = need;
    }
    char *a = m->arena;
#define NEED(k, what) do { if ((size_t)(end - p) < (size_t)(k)) { snprintf(err, errlen, "metadata truncated at byte %zu reading %s (%zu bytes total)", (size_t)(p - (const uint8_t *)raw), what, len); return -1; } } while (0)
    NEED(1, "caption count");
    m->n_captions = *p++;
    if (m->n_captions < 1) { snprintf(err, errlen, "metadata has 0 captions (expected 1..255)"); return -1; }
    const char **dst[2] = {&m->character, &m->source};
    for (int i = 0; i < m->n_captions + 2; i++) {
        NEED(2, "a string length");
        size_t l = le_get16(p); p += 2;
        NEED(l, "a string");
        memcpy(a, p, l); a[l] = 0;
        if (memchr(a, 0, l)) { snprintf(err, errlen, "metadata string %d contains a NUL byte", i); return -1; }
        if (i < m->n_captions) m->captions[i] = a; else *dst[i - m->n_captions] = a;
        a += l + 1; p += l;
    }
    NEED(9, "original size and bbox flag");
    m->orig_w = le_get32(p); m->orig_h = le_get32(p + 4); p += 8;
    m->has_bbox = *p++;
    if (m->has_bbox > 1) { snprintf(err, errlen, "metadata bbox flag %d (expected 0 or 1)", m->has_bbox); return -1; }
    if (m->has_bbox) { NEED(16, "bbox"); for (int i = 0; i < 4; i++) { m->bbox[i] = le_get32(p); p += 4; } }
    if (p != end) { snprintf(err, errlen, "metadata has %zu trailing bytes", (size_t)(end - p)); return -1; }
#undef NEED
    return 0;
}

void record_meta_free(record_meta *m) { free(m->arena); m->arena = NULL; m->arena_cap = 0; }

int record_meta_compress(void *cctx, const void *cdict, const void *raw, size_t raw_len, uint8_t **out, size_t *out_len) {
    size_t cap = ZSTD_compressBound(raw_len);
    uint8_t *p = malloc(cap);
    size_t n = cdict ? ZSTD_compress_usingCDict(cctx, p, cap, raw, raw_len, cdict) : ZSTD_compressCCtx(cctx, p, cap, raw, raw_len, 19);
    if (ZSTD_isError(n)) { free(p); return -1; }
    *out = p;
    *out_len = n;
    return 0;
}

int record_meta_decompress(void *dctx, const void *ddict, const record_view *r, uint8_t **buf, size_t *cap, char *err, size_t errlen) {
    if ((r->flags & RECORD_FLAG_META_DICT) && !ddict) { snprintf(err, errlen, "metadata needs the dataset's zstd dictionary, which is not loaded"); return -1; }
    if (r->meta_raw_len > RECORD_MAX_META) { snprintf(err, errlen, "metadata raw length %u exceeds 16 MiB", r->meta_raw_len); return -1; }
    if (*cap < r->meta_raw_len + 1) {
        uint8_t *b = realloc(*buf, r->meta_raw_len + 1);
        if (!b) { snprintf(err, errlen, "out of memory"); return -1; }
        *buf = b;
        *cap = r->meta_raw_len + 1;
    }
    size_t n = (r->flags & RECORD_FLAG_META_DICT)
                   ? ZSTD_decompress_usingDDict(dctx, *buf, r->meta_raw_len, r->meta, r->meta_len, ddict)
                   : ZSTD_decompressDCtx(dctx, *buf, r->meta_raw_len, r->meta, r->meta_len);
    if (ZSTD_isError(n)) { snprintf(err, errlen, "metadata zstd error: %s", ZSTD_getErrorName(n)); return -1; }
    if (n != r->meta_raw_len) { snprintf(err, errlen, "metadata decompressed to %zu bytes, header says %u", n, r->meta_raw_len); return -1; }
    return 0;
}
