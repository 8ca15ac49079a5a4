// torch_export.c — a torch.save zip of tensors (torch_export.h): pickle protocol 2 + stored ZIP.
#include "autograd/tensor.h"
#include "train/torch_export.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/atomic_file.h"
#include "models/crc32.h"

#define TE_ALIGN 64          // torch.save's alignment of each record's data
#define TE_ARCHIVE "archive"  // the records' folder (torch.save of a file object uses this name too)

// --- pickle (protocol 2) into a buffer sized beforehand: te_pickle_bound ---------------------
typedef struct { uint8_t *p; size_t n, cap; } te_pk;

static void pk_raw(te_pk *k, const void *s, size_t n) {
    CM_CHECK(k->n + n <= k->cap, "torch_export", "pickle larger than its bound (%zu + %zu > %zu)", k->n, n, k->cap);
    memcpy(k->p + k->n, s, n);
    k->n += n;
}
static void pk_op(te_pk *k, uint8_t op) { pk_raw(k, &op, 1); }
static void pk_le(te_pk *k, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * i));
    pk_raw(k, b, (size_t)bytes);
}
static void pk_str(te_pk *k, const char *s, size_t n) {  // BINUNICODE
    pk_op(k, 'X');
    pk_le(k, n, 4);
    pk_raw(k, s, n);
}
static void pk_int(te_pk *k, int64_t v) {
    if (v >= 0 && v < 256) pk_op(k, 'K'), pk_le(k, (uint64_t)v, 1);            // BININT1
    else if (v >= 0 && v < 65536) pk_op(k, 'M'), pk_le(k, (uint64_t)v, 2);     // BININT2
    else if (v >= INT32_MIN && v <= INT32_MAX) pk_op(k, 'J'), pk_le(k, (uint64_t)v, 4);  // BININT
    else pk_op(k, 0x8a), pk_op(k, 8), pk_le(k, (uint64_t)v, 8);                // LONG1, 8 bytes
}
static void pk_global(te_pk *k, const char *module, const char *name) {  // GLOBAL 'module\nname\n'
    pk_op(k, 'c');
    pk_raw(k, module, strlen(module));
    pk_op(k, '\n');
    pk_raw(k, name, strlen(name));
    pk_op(k, '\n');
}
static void pk_ordered_dict(te_pk *k) {  // collections.OrderedDict()
    pk_global(k, "collections", "OrderedDict");
    pk_op(k, ')');  // EMPTY_TUPLE
    pk_op(k, 'R');  // REDUCE
}
static void pk_int_tuple(te_pk *k, int n, const int64_t *v) {
    pk_op(k, '(');
    for (int i = 0; i < n; i++) pk_int(k, v[i]);
    pk_op(k, 't');
}
// the bytes a tensor's entry can take: its key, the fixed opcodes and globals, up to 10 bytes a dim
static size_t te_pickle_bound(const te_tensor *t) { return strlen(t->name) + 256 + 20 * (size_t)t->ndim; }

static const char *te_storage(cm_dtype dt) {
    switch (dt) {
    case CM_BF16: return "BFloat16Storage";
    case CM_F32: return "FloatStorage";
    case CM_F16: return "HalfStorage";
    case CM_F64: return "DoubleStorage";
    default: return NULL;
    }
}
static size_t te_part_len(const char *name) {
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

// data.pkl: {part: OrderedDict(key: tensor, ...), ...}, parts in order of first appearance
static void te_pickle(te_pk *k, const te_tensor *t, int n) {
    pk_op(k, 0x80), pk_op(k, 2);  // PROTO 2
    pk_op(k, '}');                // EMPTY_DICT
    pk_op(k, '(');
    for (int i = 0; i < n; i++) {
        size_t pl = te_part_len(t[i].name);
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = te_part_len(t[j].name) == pl && !memcmp(t[j].name, t[i].name, pl);
        if (seen) continue;
        pk_str(k, t[i].name, pl);
        pk_ordered_dict(k);
        pk_op(k, '(');
        for (int j = i; j < n; j++) {
            if (te_part_len(t[j].name) != pl || memcmp(t[j].name, t[i].name, pl)) continue;
            const char *key = t[j].name + pl + 1;
            pk_str(k, key, strlen(key));
            int64_t numel = 1, stride[CM_MAX_DIMS];
            for (int d = t[j].ndim - 1; d >= 0; d--) stride[d] = numel, numel *= t[j].shape[d];
            char skey[24];
            snprintf(skey, sizeof skey, "%d", j);
            pk_global(k, "torch._utils", "_rebuild_tensor_v2");
            pk_op(k, '(');
            pk_op(k, '(');  // the persistent id ('storage', type, key, location, numel)
            pk_str(k, "storage", 7);
            pk_global(k, "torch", te_storage(t[j].dtype));
            pk_str(k, skey, strlen(skey));
            pk_str(k, "cpu", 3);
            pk_int(k, numel);
            pk_op(k, 't');
            pk_op(k, 'Q');  // BINPERSID
            pk_int(k, 0);   // storage offset
            pk_int_tuple(k, t[j].ndim, t[j].shape);
            pk_int_tuple(k, t[j].ndim, stride);
            pk_op(k, 0x89);  // NEWFALSE: requires_grad
            pk_ordered_dict(k);  // backward hooks
            pk_op(k, 't');
            pk_op(k, 'R');
        }
        pk_op(k, 'u');  // SETITEMS into the part's OrderedDict
    }
    pk_op(k, 'u');  // SETITEMS into the top dict
    pk_op(k, '.');  // STOP
}

// --- ZIP (stored) ------------------------------------------------------------------------------
typedef struct {
    char name[64];
    uint32_t crc;
    uint64_t size, offset;  // data bytes; the local header's offset
} te_entry;

static void le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

// local header, extra fields (ZIP64 sizes where needed; padding so the data starts 64-aligned),
// data
static void zip_entry(af_file *f, te_entry *e, const char *name, const void *data, uint64_t size, bool z64) {
    snprintf(e->name, sizeof e->name, "%s/%s", TE_ARCHIVE, name);
    e->crc = cm_crc32(0, data, size);
    e->size = size;
    e->offset = f->written;
    bool big = z64 || size >= 0xffffffffu;
    size_t nl = strlen(e->name), x64 = big ? 20 : 0;
    size_t pad = (TE_ALIGN - (e->offset + 30 + nl + x64 + 4) % TE_ALIGN) % TE_ALIGN;
    uint8_t h[30 + 64 + 20 + 4 + TE_ALIGN];
    le(h, 0x04034b50u, 4);
    le(h + 4, big ? 45 : 20, 2);  // version needed: 4.5 for ZIP64
    le(h + 6, 0, 2), le(h + 8, 0, 2), le(h + 10, 0, 2), le(h + 12, 0x21, 2);  // flags, stored, 1980-01-01
    le(h + 14, e->crc, 4);
    le(h + 18, big ? 0xffffffffu : size, 4), le(h + 22, big ? 0xffffffffu : size, 4);
    le(h + 26, nl, 2), le(h + 28, x64 + 4 + pad, 2);
    size_t o = 30;
    memcpy(h + o, e->name, nl), o += nl;
    if (big) le(h + o, 0x0001, 2), le(h + o + 2, 16, 2), le(h + o + 4, size, 8), le(h + o + 12, size, 8), o += 20;
    le(h + o, 0x4246, 2), le(h + o + 2, pad, 2), o += 4;  // the padding field ('FB', as torch.save)
    memset(h + o, 0, pad), o += pad;
    af_write(f, h, o);
    af_write(f, data, size);
}

// the central directory and its end records (ZIP64 ones where a field overflows, or always)
static void zip_finish(af_file *f, const te_entry *e, int n, bool z64) {
    uint64_t cd_off = f->written;
    for (int i = 0; i < n; i++) {
        bool bs = z64 || e[i].size >= 0xffffffffu, bo = z64 || e[i].offset >= 0xffffffffu;
        size_t nl = strlen(e[i].name), x = (bs ? 16 : 0) + (bo ? 8 : 0);
        uint8_t h[46 + 64 + 4 + 24];
        le(h, 0x02014b50u, 4);
        le(h + 4, 45, 2), le(h + 6, bs || bo ? 45 : 20, 2);  // made by, needed
        le(h + 8, 0, 2), le(h + 10, 0, 2), le(h + 12, 0, 2), le(h + 14, 0x21, 2);
        le(h + 16, e[i].crc, 4);
        le(h + 20, bs ? 0xffffffffu : e[i].size, 4), le(h + 24, bs ? 0xffffffffu : e[i].size, 4);
        le(h + 28, nl, 2), le(h + 30, x ? x + 4 : 0, 2), le(h + 32, 0, 2);  // name, extra, comment
        le(h + 34, 0, 2), le(h + 36, 0, 2), le(h + 38, 0, 4);             // disk, attributes
        le(h + 42, bo ? 0xffffffffu : e[i].offset, 4);
        size_t o = 46;
        memcpy(h + o, e[i].name, nl), o += nl;
        if (x) {
            le(h + o, 0x0001, 2), le(h + o + 2, x, 2), o += 4;
            if (bs) le(h + o, e[i].size, 8), le(h + o + 8, e[i].size, 8), o += 16;
            if (bo) le(h + o, e[i].offset, 8), o += 8;
        }
        af_write(f, h, o);
    }
    uint64_t cd_size = f->written - cd_off, z_off = f->written;
    bool big = z64 || cd_off >= 0xffffffffu || cd_size >= 0xffffffffu || n >= 0xffff;
    uint8_t h[56 + 20 + 22];
    size_t o = 0;
    if (big) {
        le(h, 0x06064b50u, 4), le(h + 4, 44, 8), le(h + 12, 45, 2), le(h + 14, 45, 2);
        le(h + 16, 0, 4), le(h + 20, 0, 4), le(h + 24, (uint64_t)n, 8), le(h + 32, (uint64_t)n, 8);
        le(h + 40, cd_size, 8), le(h + 48, cd_off, 8);
        le(h + 56, 0x07064b50u, 4), le(h + 60, 0, 4), le(h + 64, z_off, 8), le(h + 72, 1, 4);
        o = 76;
    }
    le(h + o, 0x06054b50u, 4), le(h + o + 4, 0, 2), le(h + o + 6, 0, 2);
    le(h + o + 8, big ? 0xffff : (uint64_t)n, 2), le(h + o + 10, big ? 0xffff : (uint64_t)n, 2);
    le(h + o + 12, big ? 0xffffffffu : cd_size, 4), le(h + o + 16, big ? 0xffffffffu : cd_off, 4);
    le(h + o + 20, 0, 2);
    af_write(f, h, o + 22);
}

int torch_export_save(const char *path, const te_tensor *t, int n, unsigned flags, char *err, size_t errlen) {
    size_t bound = 64;
    for (int i = 0; i < n; i++) {
        size_t pl = te_part_len(t[i].name);
        if (!pl || !t[i].name[pl + 1]) {
            cm_seterr(err, errlen, "%s: tensor '%s': a torch export names each tensor <part>.<key> (e.g. "
                      "image_proj.latents, ip_adapter.0.to_k_ip.weight)", path, t[i].name);
            return -1;
        }
        if (!te_storage(t[i].dtype)) {
            cm_seterr(err, errlen, "%s: tensor '%s': dtype %s has no torch storage here (allowed: bf16, f32, f16, f64)",
                      path, t[i].name, dtype_name(t[i].dtype));
            return -1;
        }
        if (t[i].ndim < 0 || t[i].ndim > CM_MAX_DIMS) {
            cm_seterr(err, errlen, "%s: tensor '%s': %d dims (at most %d)", path, t[i].name, t[i].ndim, CM_MAX_DIMS);
            return -1;
        }
        bound += te_pickle_bound(&t[i]);
    }
    te_pk k = {.p = malloc(bound), .cap = bound};
    te_entry *e = calloc((size_t)n + 3, sizeof *e);
    CM_CHECK(k.p && e, "torch_export", "out of host memory for %d tensors", n);
    te_pickle(&k, t, n);
    af_file f;
    int rc = af_open(&f, path, false, err, errlen);
    if (!rc) {
        bool z64 = flags & TE_ZIP64;
        int m = 0;
        zip_entry(&f, &e[m++], "data.pkl", k.p, k.n, z64);
        zip_entry(&f, &e[m++], "byteorder", "little", 6, z64);
        for (int i = 0; i < n; i++) {
            char name[24];
            snprintf(name, sizeof name, "data/%d", i);
            int64_t numel = 1;
            for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
            zip_entry(&f, &e[m++], name, t[i].data, (uint64_t)numel * dtype_size(t[i].dtype), z64);
        }
        zip_entry(&f, &e[m++], "version", "3\n", 2, z64);
        zip_finish(&f, e, m, z64);
        rc = af_commit(&f, NULL, err, errlen);
    }
    free(k.p);
    free(e);
    return rc;
}
