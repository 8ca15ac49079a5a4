// safetensors.c — memory-mapped safetensors reader, atomic writer, sharded-index loader.
// The JSON header is parsed with cJSON; it is written by hand so that the bytes match what the
// Python package (serde_json, compact) writes.
#include "safetensors.h"
#include "atomic_file.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------
// errors: every message is "<file>: <problem>"

__attribute__((format(printf, 4, 5)))
static void st_err(char *err, size_t errlen, const char *file, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    int n = snprintf(err, errlen, "%s: ", file ? file : "(null)");
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

// ---------------------------------------------------------------------------------------------
// dtypes: every dtype of the format (so a file holding e.g. an I64 buffer still opens), its
// size in bits, and the cm_dtype if cameo has one.

typedef struct { const char *name; int bits; int cm; } st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"F32", 32, CM_F32}, {"BF16", 16, CM_BF16}, {"F16", 16, CM_F16}, {"F64", 64, CM_F64},
    {"I32", 32, CM_I32}, {"U8", 8, CM_U8},
    {"BOOL", 8, -1}, {"I8", 8, -1}, {"I16", 16, -1}, {"U16", 16, -1}, {"U32", 32, -1},
    {"I64", 64, -1}, {"U64", 64, -1}, {"C64", 64, -1}, {"F8_E5M2", 8, -1}, {"F8_E4M3", 8, -1},
    {"F8_E8M0", 8, -1}, {"F4", 4, -1}, {"F6_E2M3", 6, -1}, {"F6_E3M2", 6, -1},
};
#define ST_NDTYPES_ALL (int)(sizeof st_dtypes / sizeof st_dtypes[0])

static const st_dtype_info *st_dtype_lookup(const char *s) {
    for (int i = 0; i < ST_NDTYPES_ALL; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
    return NULL;
}

int st_dtype_parse(const char *s) {
    const st_dtype_info *d = s ? st_dtype_lookup(s) : NULL;
    return d ? d->cm : -1;
}

const char *st_dtype_str(cm_dtype dt) {
    for (int i = 0; i < ST_NDTYPES_ALL; i++)
        if (st_dtypes[i].cm == (int)dt) return st_dtypes[i].name;
    return NULL;
}

static int st_dtype_bytes(cm_dtype dt) {
    const char *s = st_dtype_str(dt);
    return s ? st_dtype_lookup(s)->bits / 8 : 0;
}

// ---------------------------------------------------------------------------------------------
// small helpers

static bool st_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        unsigned min;
        if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
        else return false;
        if (n - i < (size_t)len) return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += (size_t)len;
    }
    return true;
}

// a JSON number that is an exact non-negative integer (cJSON keeps numbers as doubles, exact
// up to 2^53, which is far beyond any file we can map)
static bool st_json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0.0 && v <= 9007199254740992.0) || v != (double)(uint64_t)v) return false;
    *out = (uint64_t)v;
    return true;
}

static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

// ---------------------------------------------------------------------------------------------
// reader

struct st_file {
    char *path;
    const uint8_t *base;  // whole file
    size_t size;
    bool mapped;          // munmap on close
    cJSON *root;          // names, dtype strings and metadata point into it
    st_entry *entries;    // header order
    int n;
    int *by_name;         // indices sorted by name
    int *by_offset;
    const char **meta_k, **meta_v;
    int nmeta;
};

static int st_cmp_str(const char *a, const char *b) { return strcmp(a, b); }  // bytewise (unsigned)

// qsort has no context pointer; sorting happens under no lock, so pass the table via a
// thread-local
static _Thread_local const st_file *st_sort_file;

static int st_cmp_by_name(const void *a, const void *b) {
    const st_entry *e = st_sort_file->entries;
    return st_cmp_str(e[*(const int *)a].name, e[*(const int *)b].name);
}

static uint64_t st_begin_of(const st_file *f, int i) {
    return (uint64_t)((const uint8_t *)f->entries[i].data - f->base);
}

static int st_cmp_by_offset(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    uint64_t bi = st_begin_of(st_sort_file, i), bj = st_begin_of(st_sort_file, j);
    if (bi != bj) return bi < bj ? -1 : 1;
    size_t ni = st_sort_file->entries[i].nbytes, nj = st_sort_file->entries[j].nbytes;
    if (ni != nj) return ni < nj ? -1 : 1;  // empty tensors first at a shared offset
    return i - j;
}

// one tensor's header entry → e (data offsets checked later, against all the others)
static int st_parse_entry(st_file *f, const cJSON *j, st_entry *e, uint64_t *begin, uint64_t *end,
                          size_t data_len, char *err, size_t errlen) {
    const char *name = j->string;
    e->name = name;
    if (!cJSON_IsObject(j))
        return st_err(err, errlen, f->path, "tensor '%s': header entry is not a JSON object", name), -1;
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(jd))
        return st_err(err, errlen, f->path, "tensor '%s': \"dtype\" missing or not a string", name), -1;
    if (!cJSON_IsArray(js))
        return st_err(err, errlen, f->path, "tensor '%s': \"shape\" missing or not an array", name), -1;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return st_err(err, errlen, f->path, "tensor '%s': \"data_offsets\" missing or not a [begin, end] pair", name), -1;

    const st_dtype_info *di = st_dtype_lookup(jd->valuestring);
    if (!di)
        return st_err(err, errlen, f->path,
                      "tensor '%s': unknown dtype '%s' (the format has F64, F32, F16, BF16, I64, I32, I16, I8, "
                      "U64, U32, U16, U8, BOOL, C64, F8_E4M3, F8_E5M2, F8_E8M0, F6_E2M3, F6_E3M2, F4)",
                      name, jd->valuestring), -1;
    e->dtype_str = di->name;
    e->dtype = di->cm >= 0 ? (cm_dtype)di->cm : CM_NDTYPES;

    int nd = cJSON_GetArraySize(js);
    if (nd > CM_MAX_DIMS)
        return st_err(err, errlen, f->path, "tensor '%s': shape has %d dims, cameo supports at most %d",
                      name, nd, CM_MAX_DIMS), -1;
    e->ndim = nd;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *c = js->child; c; c = c->next, d++) {
        uint64_t v;
        if (!st_json_uint(c, &v))
            return st_err(err, errlen, f->path, "tensor '%s': shape[%d] is not a non-negative integer", name, d), -1;
        if (v > INT64_MAX || __builtin_mul_overflow(numel, v, &numel))
            return st_err(err, errlen, f->path, "tensor '%s': shape overflows 64 bits", name), -1;
        e->shape[d] = (int64_t)v;
    }
    uint64_t bits;
    if (__builtin_mul_overflow(numel, (uint64_t)di->bits, &bits))
        return st_err(err, errlen, f->path, "tensor '%s': size overflows 64 bits", name), -1;
    if (bits % 8)
        return st_err(err, errlen, f->path, "tensor '%s': %llu elements of %s do not fill whole bytes",
                      name, (unsigned long long)numel, di->name), -1;

    if (!st_json_uint(jo->child, begin) || !st_json_uint(jo->child->next, end))
        return st_err(err, errlen, f->path, "tensor '%s': data_offsets are not non-negative integers", name), -1;
    if (*end < *begin)
        return st_err(err, errlen, f->path, "tensor '%s': data_offsets [%llu, %llu] end before they begin",
                      name, (unsigned long long)*begin, (unsigned long long)*end), -1;
    if (*end > data_len)
        return st_err(err, errlen, f->path, "tensor '%s': data_offsets [%llu, %llu] run past the data buffer (%zu bytes)",
                      name, (unsigned long long)*begin, (unsigned long long)*end, data_len), -1;
    if (*end - *begin != bits / 8)
        return st_err(err, errlen, f->path,
                      "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape and dtype %s need %llu",
                      name, (unsigned long long)*begin, (unsigned long long)*end,
                      (unsigned long long)(*end - *begin), di->name, (unsigned long long)(bits / 8)), -1;
    e->nbytes = (size_t)(bits / 8);
    return 0;
}

static int st_cmp_json_key(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static int st_parse_meta(st_file *f, const cJSON *j, char *err, size_t errlen) {
    if (cJSON_IsNull(j)) return 0;  // serde reads null as "no metadata"
    if (!cJSON_IsObject(j))
        return st_err(err, errlen, f->path, "\"__metadata__\" is not a JSON object"), -1;
    int n = cJSON_GetArraySize(j);
    f->meta_k = calloc((size_t)n + 1, sizeof *f->meta_k);
    f->meta_v = calloc((size_t)n + 1, sizeof *f->meta_v);
    if (!f->meta_k || !f->meta_v) return st_err(err, errlen, f->path, "out of memory for metadata"), -1;
    const cJSON **items = calloc((size_t)n + 1, sizeof *items);
    if (!items) return st_err(err, errlen, f->path, "out of memory for metadata"), -1;
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            st_err(err, errlen, f->path, "\"__metadata__\" value of '%s' is not a string", c->string);
            free(items);
            return -1;
        }
        items[f->nmeta++] = c;
    }
    // sorted: duplicates found in O(n log n) (a header may hold millions of keys), st_meta bisects
    qsort(items, (size_t)f->nmeta, sizeof *items, st_cmp_json_key);
    for (int i = 0; i < f->nmeta; i++) {
        if (i && strcmp(items[i]->string, items[i - 1]->string) == 0) {
            st_err(err, errlen, f->path, "\"__metadata__\" has key '%s' twice", items[i]->string);
            free(items);
            return -1;
        }
        f->meta_k[i] = items[i]->string;
        f->meta_v[i] = items[i]->valuestring;
    }
    free(items);
    return 0;
}

static int st_parse(st_file *f, char *err, size_t errlen) {
    if (f->size < 8)
        return st_err(err, errlen, f->path, "truncated: %zu bytes, a safetensors file starts with an 8-byte header length", f->size), -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->base[i];  // little-endian on any host
    if (hlen > ST_MAX_HEADER)
        return st_err(err, errlen, f->path, "header length %llu is over the %u-byte limit (not a safetensors file?)",
                      (unsigned long long)hlen, ST_MAX_HEADER), -1;
    if (hlen > f->size - 8)
        return st_err(err, errlen, f->path, "header length %llu goes beyond the end of the file (%zu bytes): truncated?",
                      (unsigned long long)hlen, f->size), -1;
    const uint8_t *h = f->base + 8;
    if (memchr(h, 0, hlen))
        return st_err(err, errlen, f->path, "header holds a NUL byte"), -1;
    if (!st_utf8_valid(h, hlen))
        return st_err(err, errlen, f->path, "header is not valid UTF-8"), -1;

    // cJSON wants a terminated string; the mapping has none
    char *txt = malloc(hlen + 1);
    if (!txt) return st_err(err, errlen, f->path, "out of memory for a %llu-byte header", (unsigned long long)hlen), -1;
    memcpy(txt, h, hlen);
    txt[hlen] = 0;
    const char *stop = NULL;
    f->root = cJSON_ParseWithOpts(txt, &stop, 1);
    size_t where = stop ? (size_t)(stop - txt) : 0;
    free(txt);
    if (!f->root)
        return st_err(err, errlen, f->path, "header is not valid JSON (error near byte %zu of %llu)", where,
                      (unsigned long long)hlen), -1;
    if (!cJSON_IsObject(f->root))
        return st_err(err, errlen, f->path, "header is not a JSON object"), -1;

    const uint8_t *data = h + hlen;
    size_t data_len = f->size - 8 - (size_t)hlen;
    int nkeys = cJSON_GetArraySize(f->root);
    f->entries = calloc((size_t)nkeys + 1, sizeof *f->entries);
    f->by_name = calloc((size_t)nkeys + 1, sizeof *f->by_name);
    f->by_offset = calloc((size_t)nkeys + 1, sizeof *f->by_offset);
    if (!f->entries || !f->by_name || !f->by_offset)
        return st_err(err, errlen, f->path, "out of memory for %d header entries", nkeys), -1;
    bool seen_meta = false;
    for (const cJSON *c = f->root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (seen_meta) return st_err(err, errlen, f->path, "\"__metadata__\" appears twice"), -1;
            seen_meta = true;
            if (st_parse_meta(f, c, err, errlen)) return -1;
            continue;
        }
        st_entry *e = &f->entries[f->n];
        uint64_t b, en;
        if (st_parse_entry(f, c, e, &b, &en, data_len, err, errlen)) return -1;
        e->data = data + b;
        f->by_name[f->n] = f->by_offset[f->n] = f->n;
        f->n++;
    }

    st_sort_file = f;
    qsort(f->by_name, (size_t)f->n, sizeof(int), st_cmp_by_name);
    qsort(f->by_offset, (size_t)f->n, sizeof(int), st_cmp_by_offset);
    st_sort_file = NULL;
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->entries[f->by_name[i]].name, f->entries[f->by_name[i - 1]].name) == 0)
            return st_err(err, errlen, f->path, "tensor '%s' appears twice in the header", f->entries[f->by_name[i]].name), -1;

    // the tensors must tile the buffer: no gap (hidden data), no overlap (aliased writes)
    size_t pos = 0;
    const char *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->entries[f->by_offset[i]];
        size_t b = (size_t)((const uint8_t *)e->data - data);
        if (b < pos)
            return st_err(err, errlen, f->path, "tensor '%s' (bytes %zu..%zu) overlaps tensor '%s' (ends at %zu)",
                          e->name, b, b + e->nbytes, prev, pos), -1;
        if (b > pos)
            return st_err(err, errlen, f->path, "gap in the data buffer: bytes %zu..%zu belong to no tensor (next is '%s')",
                          pos, b, e->name), -1;
        pos = b + e->nbytes;
        prev = e->name;
    }
    if (pos != data_len)
        return st_err(err, errlen, f->path, "data buffer has %zu bytes but the tensors cover %zu (truncated or trailing data)",
                      data_len, pos), -1;
    return 0;
}

static st_file *st_file_new(const char *path, char *err, size_t errlen) {
    st_file *f = calloc(1, sizeof *f);
    if (f) f->path = st_strdup(path ? path : "(memory)");
    if (!f || !f->path) {
        st_err(err, errlen, path, "out of memory");
        free(f);
        return NULL;
    }
    return f;
}

st_file *st_open_memory(const void *buf, size_t size, const char *name, char *err, size_t errlen) {
    st_file *f = st_file_new(name, err, errlen);
    if (!f) return NULL;
    f->base = buf;
    f->size = size;
    if (size > 0 && !buf) {
        st_err(err, errlen, f->path, "NULL buffer of %zu bytes", size);
        st_close(f);
        return NULL;
    }
    if (st_parse(f, err, errlen)) {
        st_close(f);
        return NULL;
    }
    return f;
}

st_file *st_open(const char *path, char *err, size_t errlen) {
    st_file *f = st_file_new(path, err, errlen);
    if (!f) return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st_err(err, errlen, path, "cannot open: %s", strerror(errno));
        st_close(f);
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st_err(err, errlen, path, "fstat failed: %s", strerror(errno));
        close(fd);
        st_close(f);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        st_err(err, errlen, path, "not a regular file");
        close(fd);
        st_close(f);
        return NULL;
    }
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {  // mmap of 0 bytes fails; st_parse reports the empty file
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            st_err(err, errlen, path, "mmap of %zu bytes failed: %s", f->size, strerror(errno));
            close(fd);
            st_close(f);
            return NULL;
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd);  // the mapping keeps the file alive
    if (st_parse(f, err, errlen)) {
        st_close(f);
        return NULL;
    }
    return f;
}

int st_count(const st_file *f) { return f ? f->n : 0; }

const st_entry *st_at(const st_file *f, int i) {
    return (f && i >= 0 && i < f->n) ? &f->entries[i] : NULL;
}

const st_entry *st_find(const st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_entry *e = &f->entries[f->by_name[mid]];
        int c = st_cmp_str(e->name, name);
        if (c == 0) return e;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    if (!f || !key) return NULL;
    int lo = 0, hi = f->nmeta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->meta_k[mid], key);
        if (c == 0) return f->meta_v[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int st_meta_count(const st_file *f) { return f ? f->nmeta : 0; }
const char *st_meta_key(const st_file *f, int i) { return (f && i >= 0 && i < f->nmeta) ? f->meta_k[i] : NULL; }
const char *st_path(const st_file *f) { return f ? f->path : NULL; }

void st_close(st_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    cJSON_Delete(f->root);
    free(f->entries);
    free(f->by_name);
    free(f->by_offset);
    free(f->meta_k);
    free(f->meta_v);
    free(f->path);
    free(f);
}

// ---------------------------------------------------------------------------------------------
// writer

typedef struct {
    char *name;
    cm_dtype dtype;
    int ndim;
    int64_t shape[CM_MAX_DIMS];
    const void *data;
    void *owned;  // st_writer_add_copy
    size_t nbytes;
} st_wentry;

struct st_writer {
    st_wentry *t;
    int n, cap;
    char **mk, **mv;
    int nmeta, capmeta;
    char bad[256];  // first misuse seen by add/meta, reported by save (add has no error return)
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

static void st_writer_misuse(st_writer *w, const char *fmt, const char *name) {
    if (!w->bad[0]) snprintf(w->bad, sizeof w->bad, fmt, name ? name : "(null)");
}

void st_writer_meta(st_writer *w, const char *key, const char *value) {
    if (!w) return;
    if (!key || !value) return st_writer_misuse(w, "metadata key '%s' or its value is NULL", key);
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->mk[i], key) == 0) {
            char *v = st_strdup(value);
            if (!v) return st_writer_misuse(w, "out of memory for metadata '%s'", key);
            free(w->mv[i]);
            w->mv[i] = v;
            return;
        }
    if (w->nmeta == w->capmeta) {
        int cap = w->capmeta ? 2 * w->capmeta : 8;
        char **k = realloc(w->mk, (size_t)cap * sizeof *k);
        if (k) w->mk = k;
        char **v = realloc(w->mv, (size_t)cap * sizeof *v);
        if (v) w->mv = v;
        if (!k || !v) return st_writer_misuse(w, "out of memory for metadata '%s'", key);
        w->capmeta = cap;
    }
    w->mk[w->nmeta] = st_strdup(key);
    w->mv[w->nmeta] = st_strdup(value);
    if (!w->mk[w->nmeta] || !w->mv[w->nmeta]) {
        free(w->mk[w->nmeta]);
        free(w->mv[w->nmeta]);
        return st_writer_misuse(w, "out of memory for metadata '%s'", key);
    }
    w->nmeta++;
}

static st_wentry *st_writer_push(st_writer *w, const char *name, cm_dtype dt, int ndim, const int64_t *shape,
                                 const void *data) {
    if (!w) return NULL;
    if (!name) return st_writer_misuse(w, "tensor name is NULL%s", ""), NULL;
    if (st_dtype_bytes(dt) == 0) return st_writer_misuse(w, "tensor '%s': dtype is not a cm_dtype", name), NULL;
    if (ndim < 0 || ndim > CM_MAX_DIMS || (ndim > 0 && !shape))
        return st_writer_misuse(w, "tensor '%s': ndim out of range 0..6 or shape NULL", name), NULL;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[d], &numel))
            return st_writer_misuse(w, "tensor '%s': negative or overflowing shape", name), NULL;
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)st_dtype_bytes(dt), &nbytes) || nbytes > SIZE_MAX)
        return st_writer_misuse(w, "tensor '%s': size overflows", name), NULL;
    if (nbytes > 0 && !data) return st_writer_misuse(w, "tensor '%s': data is NULL", name), NULL;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wentry *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return st_writer_misuse(w, "out of memory adding tensor '%s'", name), NULL;
        w->t = t;
        w->cap = cap;
    }
    st_wentry *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    e->name = st_strdup(name);
    if (!e->name) return st_writer_misuse(w, "out of memory adding tensor '%s'", name), NULL;
    e->dtype = dt;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = data;
    e->nbytes = (size_t)nbytes;
    w->n++;
    return e;
}

void st_writer_add(st_writer *w, const char *name, cm_dtype dt, int ndim, const int64_t *shape, const void *data) {
    st_writer_push(w, name, dt, ndim, shape, data);
}

void st_writer_add_copy(st_writer *w, const char *name, cm_dtype dt, int ndim, const int64_t *shape, const void *data) {
    st_wentry *e = st_writer_push(w, name, dt, ndim, shape, data);
    if (!e || e->nbytes == 0) return;
    e->owned = malloc(e->nbytes);
    if (!e->owned) {
        st_writer_misuse(w, "out of memory copying tensor '%s'", name);
        return;
    }
    memcpy(e->owned, data, e->nbytes);
    e->data = e->owned;
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    for (int i = 0; i < w->nmeta; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->t);
    free(w->mk);
    free(w->mv);
    free(w);
}

// growable string for the header
typedef struct { char *p; size_t n, cap; bool oom; } st_buf;

static void st_buf_put(st_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void st_buf_str(st_buf *b, const char *s) { st_buf_put(b, s, strlen(s)); }

// a JSON string escaped as serde_json does: \" \\ \b \f \n \r \t, other controls as \u00xx,
// everything else (UTF-8, '/', DEL) raw
static void st_buf_json(st_buf *b, const char *s) {
    st_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *r = NULL;
        switch (*p) {
        case '"': r = "\\\""; break;
        case '\\': r = "\\\\"; break;
        case '\b': r = "\\b"; break;
        case '\f': r = "\\f"; break;
        case '\n': r = "\\n"; break;
        case '\r': r = "\\r"; break;
        case '\t': r = "\\t"; break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                r = esc;
            }
        }
        if (r) st_buf_str(b, r);
        else st_buf_put(b, (const char *)p, 1);
    }
    st_buf_put(b, "\"", 1);
}

static void st_buf_u64(st_buf *b, uint64_t v) {
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    st_buf_str(b, t);
}

// the Python package's layout order: larger alignment first, then by name. Within one
// alignment its dtype enum puts F32 before I32 and BF16 before F16.
static int st_write_rank(cm_dtype dt) {
    switch (dt) {
    case CM_F64: return 0;
    case CM_F32: return 1;
    case CM_I32: return 2;
    case CM_BF16: return 3;
    case CM_F16: return 4;
    default: return 5;  // U8
    }
}

static int st_cmp_write(const void *a, const void *b) {
    const st_wentry *x = *(const st_wentry *const *)a, *y = *(const st_wentry *const *)b;
    int rx = st_write_rank(x->dtype), ry = st_write_rank(y->dtype);
    if (rx != ry) return rx - ry;
    return strcmp(x->name, y->name);
}

static int st_cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// checks names, sorts the tensors into write order, builds the padded header
static int st_writer_header(st_writer *w, const char *path, st_wentry **order, st_buf *b, char *err, size_t errlen) {
    const char **names = calloc((size_t)w->n + (size_t)w->nmeta + 1, sizeof *names);
    if (!names) return st_err(err, errlen, path, "out of memory"), -1;
    for (int i = 0; i < w->n; i++) {
        const char *nm = w->t[i].name;
        if (strcmp(nm, "__metadata__") == 0) {
            free(names);
            return st_err(err, errlen, path, "'__metadata__' cannot name a tensor"), -1;
        }
        if (!st_utf8_valid((const unsigned char *)nm, strlen(nm))) {
            free(names);
            return st_err(err, errlen, path, "tensor name '%s' is not valid UTF-8", nm), -1;
        }
        names[i] = nm;
        order[i] = &w->t[i];
    }
    qsort(names, (size_t)w->n, sizeof *names, st_cmp_cstr);
    for (int i = 1; i < w->n; i++)
        if (strcmp(names[i], names[i - 1]) == 0) {
            st_err(err, errlen, path, "tensor '%s' added twice", names[i]);
            free(names);
            return -1;
        }
    qsort(order, (size_t)w->n, sizeof *order, st_cmp_write);

    // metadata keys sorted, for a deterministic file; a key's value is found by pointer identity
    for (int i = 0; i < w->nmeta; i++) {
        if (!st_utf8_valid((const unsigned char *)w->mk[i], strlen(w->mk[i])) ||
            !st_utf8_valid((const unsigned char *)w->mv[i], strlen(w->mv[i]))) {
            free(names);
            return st_err(err, errlen, path, "metadata '%s' is not valid UTF-8", w->mk[i]), -1;
        }
        names[i] = w->mk[i];
    }
    qsort(names, (size_t)w->nmeta, sizeof *names, st_cmp_cstr);

    st_buf_str(b, "{");
    if (w->nmeta > 0) {
        st_buf_str(b, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            int k = 0;
            while (w->mk[k] != names[i]) k++;
            if (i) st_buf_str(b, ",");
            st_buf_json(b, w->mk[k]);
            st_buf_str(b, ":");
            st_buf_json(b, w->mv[k]);
        }
        st_buf_str(b, "}");
    }
    free(names);
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_wentry *e = order[i];
        if (i || w->nmeta) st_buf_str(b, ",");
        st_buf_json(b, e->name);
        st_buf_str(b, ":{\"dtype\":\"");
        st_buf_str(b, st_dtype_str(e->dtype));
        st_buf_str(b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) st_buf_str(b, ",");
            st_buf_u64(b, (uint64_t)e->shape[d]);
        }
        st_buf_str(b, "],\"data_offsets\":[");
        st_buf_u64(b, off);
        st_buf_str(b, ",");
        off += e->nbytes;
        st_buf_u64(b, off);
        st_buf_str(b, "]}");
    }
    st_buf_str(b, "}");
    // pad with spaces so the data buffer starts 8-aligned (as the Python package does)
    while (!b->oom && b->n % 8) st_buf_str(b, " ");
    if (b->oom) return st_err(err, errlen, path, "out of memory building the header"), -1;
    if (b->n > ST_MAX_HEADER)
        return st_err(err, errlen, path, "header of %zu bytes is over the %u-byte limit readers accept", b->n, ST_MAX_HEADER), -1;
    return 0;
}

int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen) { return st_writer_save_sum(w, path, NULL, err, errlen); }

int st_writer_save_sum(st_writer *w, const char *path, af_sum *sum, char *err, size_t errlen) {
    if (!w || !path) return st_err(err, errlen, path, "st_writer_save: NULL writer or path"), -1;
    if (w->bad[0]) return st_err(err, errlen, path, "%s", w->bad), -1;

    st_wentry **order = calloc((size_t)w->n + 1, sizeof *order);
    st_buf b = {0};
    int rc = -1;
    af_file f;
    if (!order) st_err(err, errlen, path, "out of memory");
    else if (!st_writer_header(w, path, order, &b, err, errlen) && !af_open(&f, path, sum != NULL, err, errlen)) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
        af_write(&f, len8, 8);
        af_write(&f, b.p, b.n);
        for (int i = 0; i < w->n; i++) af_write(&f, order[i]->data, order[i]->nbytes);
        rc = af_commit(&f, sum, err, errlen);
    }
    free(order);
    free(b.p);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// sharded index

typedef struct { const char *name; const st_entry *e; int shard; } st_ixent;

struct st_index {
    char *path;
    st_file **shards;
    int nshards;
    st_ixent *t;  // sorted by name
    int n;
    st_entry *flat;  // copies of the entries in t order, for st_index_at
};

static int st_cmp_ixent(const void *a, const void *b) {
    return strcmp(((const st_ixent *)a)->name, ((const st_ixent *)b)->name);
}

static bool st_ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static char *st_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

// the folder part of a file path ("." when there is none)
static char *st_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return st_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

// in a folder: the one *.safetensors.index.json, else the one *.safetensors
static char *st_index_pick(const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return st_err(err, errlen, dir, "cannot open folder: %s", strerror(errno)), NULL;
    char *index = NULL, *single = NULL;
    int nindex = 0, nsingle = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (st_ends_with(de->d_name, ".safetensors.index.json")) {
            if (nindex++ == 0) index = st_strdup(de->d_name);
        } else if (st_ends_with(de->d_name, ".safetensors")) {
            if (nsingle++ == 0) single = st_strdup(de->d_name);
        }
    }
    closedir(d);
    char *pick = NULL;
    if (nindex == 1) pick = st_join(dir, index);
    else if (nindex > 1)
        st_err(err, errlen, dir, "%d *.safetensors.index.json files (e.g. %s); pass the one to load", nindex, index);
    else if (nsingle == 1) pick = st_join(dir, single);
    else if (nsingle > 1)
        st_err(err, errlen, dir, "%d .safetensors files and no *.safetensors.index.json; pass the file to load", nsingle);
    else st_err(err, errlen, dir, "no *.safetensors.index.json and no .safetensors file");
    if ((nindex == 1 || (nindex == 0 && nsingle == 1)) && !pick) st_err(err, errlen, dir, "out of memory");
    free(index);
    free(single);
    return pick;
}

static int st_index_add_shard(st_index *ix, const char *path, char *err, size_t errlen) {
    st_file **s = realloc(ix->shards, (size_t)(ix->nshards + 1) * sizeof *s);
    if (!s) return st_err(err, errlen, ix->path, "out of memory"), -1;
    ix->shards = s;
    char sub[1024];
    st_file *f = st_open(path, sub, sizeof sub);
    if (!f) return st_err(err, errlen, ix->path, "shard %s", sub), -1;
    ix->shards[ix->nshards++] = f;
    return ix->nshards - 1;
}

// reads a small file whole (index JSONs are a few hundred KB)
static char *st_read_text(const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return st_err(err, errlen, path, "cannot open: %s", strerror(errno)), NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 65536 * 2;
            if (cap > (size_t)ST_MAX_HEADER) {
                st_err(err, errlen, path, "index file over %u bytes", ST_MAX_HEADER);
                break;
            }
            char *p = realloc(buf, cap);
            if (!p) {
                st_err(err, errlen, path, "out of memory");
                break;
            }
            buf = p;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, fp);
        n += k;
        if (k == 0) {
            if (ferror(fp)) {
                st_err(err, errlen, path, "read failed");
                break;
            }
            buf[n] = 0;
            fclose(fp);
            if (memchr(buf, 0, n)) {
                free(buf);
                return st_err(err, errlen, path, "holds a NUL byte: not a JSON index"), NULL;
            }
            return buf;
        }
    }
    fclose(fp);
    free(buf);
    return NULL;
}

static int st_index_from_json(st_index *ix, char *err, size_t errlen) {
    char *txt = st_read_text(ix->path, err, errlen);
    if (!txt) return -1;
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithOpts(txt, &stop, 1);
    size_t where = stop ? (size_t)(stop - txt) : 0;
    free(txt);
    if (!root) return st_err(err, errlen, ix->path, "not valid JSON (error near byte %zu)", where), -1;
    int rc = -1;
    char *dir = st_dirname(ix->path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!dir) {
        st_err(err, errlen, ix->path, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(wm)) {
        st_err(err, errlen, ix->path, "no \"weight_map\" object");
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    ix->t = calloc((size_t)n + 1, sizeof *ix->t);
    if (!ix->t) {
        st_err(err, errlen, ix->path, "out of memory");
        goto done;
    }
    for (const cJSON *c = wm->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            st_err(err, errlen, ix->path, "weight_map['%s'] is not a file name string", c->string);
            goto done;
        }
        const char *shard = c->valuestring;
        // shards live beside the index; refuse paths that would leave the folder
        if (!shard[0] || shard[0] == '/' || strstr(shard, "..")) {
            st_err(err, errlen, ix->path, "weight_map['%s'] names shard '%s': only a file beside the index is allowed",
                   c->string, shard);
            goto done;
        }
        int si = -1;
        for (int i = 0; i < ix->nshards; i++) {
            const char *p = st_path(ix->shards[i]);
            size_t dl = strlen(dir);
            if (strncmp(p, dir, dl) == 0 && p[dl] == '/' && strcmp(p + dl + 1, shard) == 0) si = i;
        }
        if (si < 0) {
            char *sp = st_join(dir, shard);
            if (!sp) {
                st_err(err, errlen, ix->path, "out of memory");
                goto done;
            }
            si = st_index_add_shard(ix, sp, err, errlen);
            free(sp);
            if (si < 0) goto done;
        }
        const st_entry *e = st_find(ix->shards[si], c->string);
        if (!e) {
            st_err(err, errlen, ix->path, "weight_map puts '%s' in %s, which has no such tensor", c->string, shard);
            goto done;
        }
        ix->t[ix->n++] = (st_ixent){e->name, e, si};
    }
    rc = 0;
done:
    free(dir);
    cJSON_Delete(root);
    return rc;
}

st_index *st_index_open(const char *dir_or_file, char *err, size_t errlen) {
    if (!dir_or_file) return st_err(err, errlen, "(null)", "st_index_open: NULL path"), NULL;
    st_index *ix = calloc(1, sizeof *ix);
    if (!ix) return st_err(err, errlen, dir_or_file, "out of memory"), NULL;
    struct stat sb;
    if (stat(dir_or_file, &sb) != 0) {
        st_err(err, errlen, dir_or_file, "cannot open: %s", strerror(errno));
        goto fail;
    }
    ix->path = S_ISDIR(sb.st_mode) ? st_index_pick(dir_or_file, err, errlen) : st_strdup(dir_or_file);
    if (!ix->path) {
        if (!S_ISDIR(sb.st_mode)) st_err(err, errlen, dir_or_file, "out of memory");
        goto fail;
    }
    if (st_ends_with(ix->path, ".json")) {
        if (st_index_from_json(ix, err, errlen)) goto fail;
    } else {
        // one unsharded file: every tensor in it
        if (st_index_add_shard(ix, ix->path, err, errlen) < 0) goto fail;
        const st_file *f = ix->shards[0];
        ix->t = calloc((size_t)f->n + 1, sizeof *ix->t);
        if (!ix->t) {
            st_err(err, errlen, ix->path, "out of memory");
            goto fail;
        }
        for (int i = 0; i < f->n; i++) ix->t[ix->n++] = (st_ixent){f->entries[i].name, &f->entries[i], 0};
    }
    qsort(ix->t, (size_t)ix->n, sizeof *ix->t, st_cmp_ixent);
    for (int i = 1; i < ix->n; i++)
        if (strcmp(ix->t[i].name, ix->t[i - 1].name) == 0) {  // cJSON keeps duplicate keys
            st_err(err, errlen, ix->path, "weight_map lists '%s' twice", ix->t[i].name);
            goto fail;
        }
    ix->flat = calloc((size_t)ix->n + 1, sizeof *ix->flat);
    if (!ix->flat) {
        st_err(err, errlen, ix->path, "out of memory");
        goto fail;
    }
    for (int i = 0; i < ix->n; i++) ix->flat[i] = *ix->t[i].e;
    return ix;
fail:
    st_index_close(ix);
    return NULL;
}

int st_index_count(const st_index *ix) { return ix ? ix->n : 0; }

const st_entry *st_index_at(const st_index *ix, int i) {
    return (ix && i >= 0 && i < ix->n) ? &ix->flat[i] : NULL;
}

static const st_ixent *st_index_lookup(const st_index *ix, const char *name) {
    if (!ix || !name) return NULL;
    st_ixent key = {name, NULL, 0};
    return bsearch(&key, ix->t, (size_t)ix->n, sizeof *ix->t, st_cmp_ixent);
}

const st_entry *st_index_find(const st_index *ix, const char *name) {
    const st_ixent *h = st_index_lookup(ix, name);
    return h ? h->e : NULL;
}

const st_file *st_index_shard_of(const st_index *ix, const char *name) {
    const st_ixent *h = st_index_lookup(ix, name);
    return h ? ix->shards[h->shard] : NULL;
}

void st_index_close(st_index *ix) {
    if (!ix) return;
    for (int i = 0; i < ix->nshards; i++) st_close(ix->shards[i]);
    free(ix->shards);
    free(ix->t);
    free(ix->flat);
    free(ix->path);
    free(ix);
}

// ---------------------------------------------------------------------------------------------
// entry → tensor

cm_tensor *st_to_tensor(const st_entry *e, cm_device dev, char *err, size_t errlen) {
    if (!e) return st_err(err, errlen, "(null)", "st_to_tensor: NULL entry"), NULL;
    if (e->dtype != CM_NDTYPES) return tensor_from_host(e->dtype, e->ndim, e->shape, e->data, dev);
    if (strcmp(e->dtype_str, "I64") != 0)
        return st_err(err, errlen, e->name, "dtype %s is not supported (cameo holds F32, BF16, F16, F64, I32, U8; I64 "
                      "is narrowed to I32)", e->dtype_str), NULL;
    // int ids (position_ids and the like): narrow to I32 when every value fits
    size_t n = e->nbytes / 8;
    int32_t *v = malloc(n ? n * sizeof *v : 1);
    if (!v) return st_err(err, errlen, e->name, "out of memory narrowing I64"), NULL;
    for (size_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, (const uint8_t *)e->data + 8 * i, 8);  // may be unaligned
        if (x < INT32_MIN || x > INT32_MAX) {
            st_err(err, errlen, e->name, "I64 value %lld at element %zu does not fit I32", (long long)x, i);
            free(v);
            return NULL;
        }
        v[i] = (int32_t)x;
    }
    cm_tensor *t = tensor_from_host(CM_I32, e->ndim, e->shape, v, dev);
    free(v);
    return t;
}
