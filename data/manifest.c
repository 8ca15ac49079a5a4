// manifest.c — manifest.json read (cJSON, validated) and atomic write.
#include "data/manifest.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/checksum.h"
#include "data/fsutil.h"

static int name_ok(const char *s) {
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) >= MANIFEST_NAME_MAX) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')) return 0;
    return 1;
}

// a non-negative integer field that fits a double exactly
static int get_u64(const cJSON *o, const char *key, uint64_t *v, const char *what, const char *ctx, char *err, size_t errlen) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9007199254740992.0 || x->valuedouble != (double)(uint64_t)x->valuedouble) {
        snprintf(err, errlen, "%s: %s\"%s\" must be a non-negative integer", what, ctx, key);
        return -1;
    }
    *v = (uint64_t)x->valuedouble;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

// every shard name once: sorted, then neighbours compared (a pairwise check is O(n²): minutes at 10⁵ shards)
static int shard_names_unique(const manifest *m, const char *what, char *err, size_t errlen) {
    const char **names = malloc(sizeof(char *) * ((size_t)m->n_shards + 1));
    if (!names) { snprintf(err, errlen, "%s: out of memory checking %d shard names", what, m->n_shards); return -1; }
    for (int i = 0; i < m->n_shards; i++) names[i] = m->shards[i].name;
    qsort(names, (size_t)m->n_shards, sizeof *names, by_name);
    int rc = 0;
    for (int i = 1; i < m->n_shards && !rc; i++)
        if (!strcmp(names[i - 1], names[i])) { snprintf(err, errlen, "%s: shard name \"%s\" appears twice", what, names[i]); rc = -1; }
    free(names);
    return rc;
}

int manifest_parse(const char *text, size_t len, manifest *m, const char *what, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->hash = hash64_update(HASH64_INIT, text, len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long off = (e && e >= text && e <= text + len) ? (long)(e - text) : -1;
        snprintf(err, errlen, "%s: not valid JSON (error near byte %ld)", what, off);
        return -1;
    }
    int rc = -1;
    uint64_t v;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(f) || strcmp(f->valuestring, MANIFEST_FORMAT)) {
        snprintf(err, errlen, "%s: \"format\" must be \"%s\"", what, MANIFEST_FORMAT);
        goto out;
    }
    if (get_u64(root, "version", &v, what, "", err, errlen)) goto out;
    if (v != MANIFEST_VERSION) { snprintf(err, errlen, "%s: format version %llu, this reader knows version %d", what, (unsigned long long)v, MANIFEST_VERSION); goto out; }
    m->version = (int)v;
    if (get_u64(root, "samples", &m->samples, what, "", err, errlen)) goto out;
    if (get_u64(root, "characters", &m->characters, what, "", err, errlen)) goto out;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "dictionary");
    if (cJSON_IsObject(d)) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(d, "file");
        if (!cJSON_IsString(fn) || !name_ok(fn->valuestring)) { snprintf(err, errlen, "%s: dictionary.file must be a plain file name", what); goto out; }
        strcpy(m->dict_file, fn->valuestring);
        if (get_u64(d, "id", &v, what, "dictionary.", err, errlen)) goto out;
        m->dict_id = (uint32_t)v;
        if (get_u64(d, "bytes", &m->dict_bytes, what, "dictionary.", err, errlen)) goto out;
        if (get_u64(d, "crc32c", &v, what, "dictionary.", err, errlen)) goto out;
        if (v > 0xffffffffu) { snprintf(err, errlen, "%s: dictionary.crc32c exceeds 32 bits", what); goto out; }
        m->dict_crc32c = (uint32_t)v;
        m->has_dict = 1;
    } else if (d && !cJSON_IsNull(d)) { snprintf(err, errlen, "%s: \"dictionary\" must be an object or null", what); goto out; }
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(root, "image");
    if (cJSON_IsObject(im)) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(im, "quality"), *l = cJSON_GetObjectItemCaseSensitive(im, "lossless"), *s = cJSON_GetObjectItemCaseSensitive(im, "max_side");
        m->quality = cJSON_IsNumber(q) ? q->valueint : 0;
        m->lossless = cJSON_IsTrue(l);
        m->max_side = cJSON_IsNumber(s) ? s->valueint : 0;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "buckets");
    if (cJSON_IsObject(b)) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(b, "resolution"), *st = cJSON_GetObjectItemCaseSensitive(b, "step"), *ma = cJSON_GetObjectItemCaseSensitive(b, "max_aspect"),
                    *t = cJSON_GetObjectItemCaseSensitive(b, "table");
        if (!cJSON_IsNumber(r) || !cJSON_IsNumber(st) || !cJSON_IsArray(t)) { snprintf(err, errlen, "%s: buckets needs resolution, step and table", what); goto out; }
        m->bucket_resolution = r->valueint;
        m->bucket_step = st->valueint;
        m->bucket_max_aspect = cJSON_IsNumber(ma) ? ma->valuedouble : 2.0;
        int n = cJSON_GetArraySize(t);
        if (n > 4096) { snprintf(err, errlen, "%s: %d buckets (at most 4096)", what, n); goto out; }
        m->buckets = calloc((size_t)n + 1, sizeof *m->buckets);
        m->n_buckets = n;
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(t, i);
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 3) { snprintf(err, errlen, "%s: buckets.table[%d] must be [W, H, count]", what, i); goto out; }
            for (int k = 0; k < 3; k++) {
                const cJSON *x = cJSON_GetArrayItem(e, k);
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 2e9) { snprintf(err, errlen, "%s: buckets.table[%d][%d] must be a non-negative integer", what, i, k); goto out; }
                m->buckets[i][k] = x->valueint;
            }
        }
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(root, "shards");
    if (!cJSON_IsArray(sh)) { snprintf(err, errlen, "%s: \"shards\" must be an array", what); goto out; }
    int n = cJSON_GetArraySize(sh);
    if (n > 1000000) { snprintf(err, errlen, "%s: %d shards (at most 1000000)", what, n); goto out; }
    m->shards = calloc((size_t)n + 1, sizeof *m->shards);
    m->n_shards = n;
    uint64_t next = 0;
    int i = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, sh) {  // (not cJSON_GetArrayItem(sh, i): a list walk each, O(n²) over 10⁵ shards)
        manifest_shard *s = &m->shards[++i];
        char ctx[48];
        snprintf(ctx, sizeof ctx, "shards[%d].", i);
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsObject(e) || !cJSON_IsString(nm) || !name_ok(nm->valuestring)) { snprintf(err, errlen, "%s: %sname must be a plain folder name", what, ctx); goto out; }
        strcpy(s->name, nm->valuestring);
        if (get_u64(e, "first_id", &s->first_id, what, ctx, err, errlen) || get_u64(e, "samples", &s->samples, what, ctx, err, errlen) ||
            get_u64(e, "characters", &s->characters, what, ctx, err, errlen) || get_u64(e, "bytes", &s->bytes, what, ctx, err, errlen) ||
            get_u64(e, "crc32c", &v, what, ctx, err, errlen))
            goto out;
        if (v > 0xffffffffu) { snprintf(err, errlen, "%s: %scrc32c exceeds 32 bits", what, ctx); goto out; }
        s->crc32c = (uint32_t)v;
        if (s->first_id != next) { snprintf(err, errlen, "%s: %sfirst_id is %llu, expected %llu (ids must be contiguous)", what, ctx, (unsigned long long)s->first_id, (unsigned long long)next); goto out; }
        if (s->samples == 0) { snprintf(err, errlen, "%s: %ssamples is 0", what, ctx); goto out; }
        next += s->samples;
    }
    if (shard_names_unique(m, what, err, errlen)) goto out;
    if (next != m->samples) { snprintf(err, errlen, "%s: shards hold %llu samples, \"samples\" says %llu", what, (unsigned long long)next, (unsigned long long)m->samples); goto out; }
    if (next > 0xffffffffull) { snprintf(err, errlen, "%s: %llu samples (this reader supports up to 2^32-1)", what, (unsigned long long)next); goto out; }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) manifest_free(m);
    return rc;
}

int manifest_load(const char *dir, manifest *m, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t len;
    char *text = fs_read_file(path, &len, 64u << 20);
    if (!text) {
        memset(m, 0, sizeof *m);
        snprintf(err, errlen, "%s: cannot read (%s); a dataset folder holds manifest.json (made by `cameo data build`)", path, strerror(errno));
        return -1;
    }
    int rc = manifest_parse(text, len, m, path, err, errlen);
    free(text);
    return rc;
}

int manifest_write(const char *dir, const manifest *m, char *err, size_t errlen) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", MANIFEST_FORMAT);
    cJSON_AddNumberToObject(root, "version", MANIFEST_VERSION);
    cJSON_AddNumberToObject(root, "samples", (double)m->samples);
    cJSON_AddNumberToObject(root, "characters", (double)m->characters);
    if (m->has_dict) {
        cJSON *d = cJSON_AddObjectToObject(root, "dictionary");
        cJSON_AddStringToObject(d, "file", m->dict_file);
        cJSON_AddNumberToObject(d, "id", m->dict_id);
        cJSON_AddNumberToObject(d, "bytes", (double)m->dict_bytes);
        cJSON_AddNumberToObject(d, "crc32c", m->dict_crc32c);
    } else cJSON_AddNullToObject(root, "dictionary");
    cJSON *im = cJSON_AddObjectToObject(root, "image");
    cJSON_AddStringToObject(im, "codec", "webp");
    cJSON_AddNumberToObject(im, "quality", m->quality);
    cJSON_AddBoolToObject(im, "lossless", m->lossless);
    cJSON_AddNumberToObject(im, "max_side", m->max_side);
    cJSON *b = cJSON_AddObjectToObject(root, "buckets");
    cJSON_AddNumberToObject(b, "resolution", m->bucket_resolution);
    cJSON_AddNumberToObject(b, "step", m->bucket_step);
    cJSON_AddNumberToObject(b, "max_aspect", m->bucket_max_aspect);
    cJSON *t = cJSON_AddArrayToObject(b, "table");
    for (int i = 0; i < m->n_buckets; i++) cJSON_AddItemToArray(t, cJSON_CreateIntArray(m->buckets[i], 3));
    cJSON *sh = cJSON_AddArrayToObject(root, "shards");
    for (int i = 0; i < m->n_shards; i++) {
        const manifest_shard *s = &m->shards[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", s->name);
        cJSON_AddNumberToObject(e, "first_id", (double)s->first_id);
        cJSON_AddNumberToObject(e, "samples", (double)s->samples);
        cJSON_AddNumberToObject(e, "characters", (double)s->characters);
        cJSON_AddNumberToObject(e, "bytes", (double)s->bytes);
        cJSON_AddNumberToObject(e, "crc32c", s->crc32c);
        cJSON_AddItemToArray(sh, e);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t n = strlen(text);
    text = realloc(text, n + 2);
    text[n++] = '\n';
    int rc = fs_write_atomic(path, text, n, err, errlen);
    free(text);
    return rc;
}

void manifest_free(manifest *m) {
    free(m->buckets);
    free(m->shards);
    m->buckets = NULL;
    m->shards = NULL;
    m->n_buckets = m->n_shards = 0;
}

int manifest_shard_of(const manifest *m, uint64_t id) {
    int lo = 0, hi = m->n_shards - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const manifest_shard *s = &m->shards[mid];
        if (id < s->first_id) hi = mid - 1;
        else if (id >= s->first_id + s->samples) lo = mid + 1;
        else return mid;
    }
    return -1;
}
