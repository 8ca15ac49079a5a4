// torch_import.c — torch.save zip files: ZIP (stored, ZIP64) + a minimal, allow-listed pickle VM.
#include "autograd/tensor.h"
#include "train/torch_import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kernels/backend.h"
#include "data/le.h"
#include "models/safetensors.h"
#include "models/crc32.h"

#define TI_MAX_STACK (1 << 20)
#define TI_MAX_MEMO (1 << 24)
#define TI_MAX_ENTRIES (1 << 22)
// keys flatten may visit: memo references let a few hundred bytes share one dict under two keys at
// each of 32 levels (2^32 visits); the released adapter has a few hundred
#define TI_MAX_KEYS (1 << 20)



// ---------------------------------------------------------------------------------------------
// ZIP
typedef struct {
    char *name;
    const uint8_t *data;
    uint64_t size;
    uint32_t crc;
} zentry;

typedef struct {
    const uint8_t *buf;
    size_t size;
    zentry *e;
    int n;
    bool no_crc;  // every non-empty record's crc32 is 0: torch.save with set_crc32_options(False) wrote none
} zipf;

static void zip_free(zipf *z) {
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

static int zip_open(zipf *z, const uint8_t *buf, size_t size, const char *name, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    z->buf = buf, z->size = size;
    if (size < 4 || le_get32(buf) != 0x04034b50u) {
        if (size >= 2 && buf[0] == 0x80)
            cm_seterr(err, errlen, "%s: a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch", name);
        else cm_seterr(err, errlen, "%s: not a zip archive (torch.save files start with 'PK')", name);
        return -1;
    }
    if (size < 22) {
        cm_seterr(err, errlen, "%s: truncated zip (%zu bytes)", name, size);
        return -1;
    }
    // end of central directory: scan back over a comment of up to 64 KiB
    size_t eocd = 0;
    bool found = false;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size - 22 + 1; p-- > lo;) {
        if (le_get32(buf + p) == 0x06054b50u) {
            eocd = p;
            found = true;
            break;
        }
    }
    if (!found) {
        cm_seterr(err, errlen, "%s: truncated zip: no end-of-central-directory record", name);
        return -1;
    }
    uint64_t n = le_get16(buf + eocd + 10), cd_size = le_get32(buf + eocd + 12), cd_off = le_get32(buf + eocd + 16);
    if (n == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {  // ZIP64
        if (eocd < 20 || le_get32(buf + eocd - 20) != 0x07064b50u) {
            cm_seterr(err, errlen, "%s: ZIP64 sizes without a ZIP64 locator", name);
            return -1;
        }
        uint64_t z64 = le_get64(buf + eocd - 20 + 8);
        if (size < 56 || z64 > size - 56 || le_get32(buf + z64) != 0x06064b50u) {  // size - 56 wrapped below 56 bytes
            cm_seterr(err, errlen, "%s: bad ZIP64 end-of-central-directory record", name);
            return -1;
        }
        n = le_get64(buf + z64 + 32), cd_size = le_get64(buf + z64 + 40), cd_off = le_get64(buf + z64 + 48);
    }
    if (cd_off > size || cd_size > size - cd_off || n > TI_MAX_ENTRIES) {
        cm_seterr(err, errlen, "%s: truncated zip: the central directory lies outside the file", name);
        return -1;
    }
    z->e = calloc(n + 1, sizeof *z->e);
    const uint8_t *p = buf + cd_off, *end = buf + cd_off + cd_size;
    for (uint64_t i = 0; i < n; i++) {
        if (end - p < 46 || le_get32(p) != 0x02014b50u) {
            cm_seterr(err, errlen, "%s: central directory entry %llu is damaged", name, (unsigned long long)i);
            zip_free(z);
            return -1;
        }
        uint16_t method = le_get16(p + 10), nlen = le_get16(p + 28), xlen = le_get16(p + 30), clen = le_get16(p + 32);
        uint64_t csize = le_get32(p + 20), usize = le_get32(p + 24), lho = le_get32(p + 42);
        uint32_t crc = le_get32(p + 16);
        if ((size_t)(end - p) < 46u + nlen + xlen + clen) {
            cm_seterr(err, errlen, "%s: central directory entry %llu is truncated", name, (unsigned long long)i);
            zip_free(z);
            return -1;
        }
        char *ename = malloc((size_t)nlen + 1);
        memcpy(ename, p + 46, nlen);
        ename[nlen] = 0;
        z->e[z->n].name = ename;
        z->n++;
        // ZIP64 extra field: the 8-byte values of whichever fields are 0xffffffff, in order
        const uint8_t *x = p + 46 + nlen, *xe = x + xlen;
        while (xe - x >= 4) {
            uint16_t id = le_get16(x), sz = le_get16(x + 2);
            if (xe - x - 4 < sz) break;
            if (id == 0x0001) {
                const uint8_t *q = x + 4, *qe = q + sz;
                if (usize == 0xffffffffu && qe - q >= 8) usize = le_get64(q), q += 8;
                if (csize == 0xffffffffu && qe - q >= 8) csize = le_get64(q), q += 8;
                if (lho == 0xffffffffu && qe - q >= 8) lho = le_get64(q), q += 8;
            }
            x += 4 + sz;
        }
        if (method != 0) {
            cm_seterr(err, errlen, "%s: entry '%s' is compressed (method %u); torch.save writes every entry stored — "
                   "was the file re-zipped? Re-save it with torch.save", name, ename, method);
            zip_free(z);
            return -1;
        }
        if (csize != usize || lho > size || size - lho < 30 || le_get32(buf + lho) != 0x04034b50u) {
            cm_seterr(err, errlen, "%s: entry '%s': bad local header or sizes", name, ename);
            zip_free(z);
            return -1;
        }
        uint64_t data = lho + 30 + le_get16(buf + lho + 26) + le_get16(buf + lho + 28);
        if (data > size || csize > size - data) {
            cm_seterr(err, errlen, "%s: truncated zip: entry '%s' needs %llu bytes at offset %llu, the file has %zu", name,
                   ename, (unsigned long long)csize, (unsigned long long)data, size);
            zip_free(z);
            return -1;
        }
        z->e[z->n - 1].data = buf + data;
        z->e[z->n - 1].size = csize;
        z->e[z->n - 1].crc = crc;
        p += 46 + nlen + xlen + clen;
    }
    // torch.serialization.set_crc32_options(False) leaves every crc32 field 0 (torch.load reads such
    // a file): nothing to check, rather than every record "damaged"
    int n_data = 0, n_zero = 0;
    for (int i = 0; i < z->n; i++)
        if (z->e[i].size) n_data++, n_zero += !z->e[i].crc;
    z->no_crc = n_data > 0 && n_zero == n_data;
    return 0;
}

static const zentry *zip_find(const zipf *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// pickle values (arena-allocated; freed together)
typedef enum { PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR, PK_MARK } pk_kind;

typedef struct pk {
    pk_kind k;
    int64_t i;
    double f;
    char *s;                 // PK_STR (NUL-terminated; may hold NULs for bytes), PK_GLOBAL "module.name"
    size_t slen;
    struct pk **it;          // tuple / list items; dict: key, value pairs
    int n, cap;
    // storage
    cm_dtype dt;
    const uint8_t *sdata;
    int64_t snumel;
    const zentry *entry;     // the storage's record (for its crc32, checked by torch_import_verify)
    // tensor
    struct pk *storage;
    int64_t offset;
    int ndim;
    int64_t shape[CM_MAX_DIMS], stride[CM_MAX_DIMS];
} pk;

typedef struct {
    const char *name;
    const zipf *z;
    const char *prefix;      // "<archive>/"
    pk **all;
    size_t n_all, cap_all;
    pk **stack;
    int sp, scap;
    pk **memo;
    size_t memo_cap, memo_count;
    char *err;
    size_t errlen;
    bool failed;
} vm;

static pk MARK_OBJ = {.k = PK_MARK};

static pk *pk_new(vm *v, pk_kind k) {
    pk *x = calloc(1, sizeof *x);
    x->k = k;
    if (v->n_all == v->cap_all) {
        v->cap_all = v->cap_all ? 2 * v->cap_all : 256;
        v->all = realloc(v->all, v->cap_all * sizeof *v->all);
    }
    v->all[v->n_all++] = x;
    return x;
}

static void pk_push_item(pk *c, pk *x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4;
        c->it = realloc(c->it, (size_t)c->cap * sizeof *c->it);
    }
    c->it[c->n++] = x;
}

static void vm_free(vm *v) {
    for (size_t i = 0; i < v->n_all; i++) {
        free(v->all[i]->s);
        free(v->all[i]->it);
        free(v->all[i]);
    }
    free(v->all);
    free(v->stack);
    free(v->memo);
}

static void vfail(vm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(vm *v, const char *fmt, ...) {
    if (v->failed) return;
    v->failed = true;
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    cm_seterr(v->err, v->errlen, "%s: data.pkl: %s", v->name, m);
}

static void push(vm *v, pk *x) {
    if (v->sp >= TI_MAX_STACK) {
        vfail(v, "pickle stack deeper than %d", TI_MAX_STACK);
        return;
    }
    if (v->sp == v->scap) {
        v->scap = v->scap ? 2 * v->scap : 64;
        v->stack = realloc(v->stack, (size_t)v->scap * sizeof *v->stack);
    }
    v->stack[v->sp++] = x;
}
static pk *pop(vm *v) {
    if (v->sp <= 0) {
        vfail(v, "stack underflow");
        return NULL;
    }
    pk *x = v->stack[--v->sp];
    if (x->k == PK_MARK) {
        vfail(v, "unexpected MARK on the stack");
        return NULL;
    }
    return x;
}
static pk *top(vm *v) {
    if (v->sp <= 0 || v->stack[v->sp - 1]->k == PK_MARK) {
        vfail(v, "stack underflow");
        return NULL;
    }
    return v->stack[v->sp - 1];
}
// index of the topmost MARK, or -1
static int find_mark(vm *v) {
    for (int i = v->sp - 1; i >= 0; i--)
        if (v->stack[i]->k == PK_MARK) return i;
    vfail(v, "no MARK on the stack");
    return -1;
}

static const char *kind_str(pk_kind k) {
    static const char *n[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor", "mark"};
    return (unsigned)k < sizeof n / sizeof *n ? n[k] : "?";
}

static const char *const ALLOWED_GLOBALS =
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, "
    "torch.FloatStorage, torch.BFloat16Storage, torch.HalfStorage, torch.DoubleStorage";

static int storage_dtype(const char *g, cm_dtype *dt) {
    if (!strcmp(g, "torch.FloatStorage")) *dt = CM_F32;
    else if (!strcmp(g, "torch.BFloat16Storage")) *dt = CM_BF16;
    else if (!strcmp(g, "torch.HalfStorage")) *dt = CM_F16;
    else if (!strcmp(g, "torch.DoubleStorage")) *dt = CM_F64;
    else return -1;
    return 0;
}

static pk *make_global(vm *v, const char *module, size_t ml, const char *name, size_t nl) {
    pk *g = pk_new(v, PK_GLOBAL);
    g->s = malloc(ml + nl + 2);
    memcpy(g->s, module, ml);
    g->s[ml] = '.';
    memcpy(g->s + ml + 1, name, nl);
    g->s[ml + nl + 1] = 0;
    cm_dtype dt;
    if (strcmp(g->s, "collections.OrderedDict") && strcmp(g->s, "torch._utils._rebuild_tensor_v2") &&
        strcmp(g->s, "torch._utils._rebuild_parameter") && storage_dtype(g->s, &dt)) {
        vfail(v, "global '%.200s' is not allowed (allowed: %s)", g->s, ALLOWED_GLOBALS);
        return NULL;
    }
    return g;
}

static bool int_tuple(const pk *t, int64_t *out, int *n) {
    if (!t || t->k != PK_TUPLE || t->n > CM_MAX_DIMS) return false;
    for (int i = 0; i < t->n; i++) {
        if (t->it[i]->k != PK_INT) return false;
        out[i] = t->it[i]->i;
    }
    *n = t->n;
    return true;
}

static pk *persistent_load(vm *v, pk *pid) {
    // ('storage', torch.XStorage, key, location, numel)
    if (pid->k != PK_TUPLE || pid->n != 5 || pid->it[0]->k != PK_STR || strcmp(pid->it[0]->s, "storage") ||
        pid->it[1]->k != PK_GLOBAL || pid->it[2]->k != PK_STR || pid->it[3]->k != PK_STR || pid->it[4]->k != PK_INT) {
        vfail(v, "persistent id is not ('storage', torch.<T>Storage, key, location, numel)");
        return NULL;
    }
    pk *s = pk_new(v, PK_STORAGE);
    if (storage_dtype(pid->it[1]->s, &s->dt)) {
        vfail(v, "storage type '%.200s' is not supported (allowed: Float, BFloat16, Half, Double)", pid->it[1]->s);
        return NULL;
    }
    int64_t numel = pid->it[4]->i;
    char ename[600];
    snprintf(ename, sizeof ename, "%sdata/%.300s", v->prefix, pid->it[2]->s);
    const zentry *e = zip_find(v->z, ename);
    if (!e) {
        vfail(v, "storage '%.300s' has no entry '%.400s' in the archive", pid->it[2]->s, ename);
        return NULL;
    }
    size_t es = dtype_size(s->dt);
    if (numel < 0 || (uint64_t)numel > e->size / es) {
        vfail(v, "storage '%.300s' claims %lld elements of %zu bytes but its entry holds %llu bytes", pid->it[2]->s,
              (long long)numel, es, (unsigned long long)e->size);
        return NULL;
    }
    s->sdata = e->data;
    s->snumel = numel;
    s->entry = e;
    return s;
}

static pk *rebuild_tensor(vm *v, pk *args) {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->k != PK_TUPLE || args->n < 4 || args->it[0]->k != PK_STORAGE || args->it[1]->k != PK_INT) {
        vfail(v, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
        return NULL;
    }
    pk *t = pk_new(v, PK_TENSOR);
    int nd2 = 0;
    if (!int_tuple(args->it[2], t->shape, &t->ndim) || !int_tuple(args->it[3], t->stride, &nd2) || nd2 != t->ndim) {
        vfail(v, "_rebuild_tensor_v2: size / stride are not integer tuples of the same length (at most %d dims)", CM_MAX_DIMS);
        return NULL;
    }
    t->storage = args->it[0];
    t->offset = args->it[1]->i;
    // the view must lie inside the storage; every sum and product checked, as a crafted file may
    // choose sizes and strides whose products wrap past 2^63 (to a "last element" inside it)
    int64_t maxi = t->offset, numel = 1;
    bool empty = false, wrap = false;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || t->stride[d] < 0 || t->shape[d] > ((int64_t)1 << 40) || t->stride[d] > ((int64_t)1 << 40)) {
            vfail(v, "_rebuild_tensor_v2: negative or huge size/stride");
            return NULL;
        }
        int64_t span;
        if (!t->shape[d]) empty = true;
        else wrap |= __builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) || __builtin_add_overflow(maxi, span, &maxi);
        wrap |= __builtin_mul_overflow(numel, t->shape[d], &numel);
    }
    if (wrap || numel > ((int64_t)1 << 40)) {
        vfail(v, "_rebuild_tensor_v2: its sizes and strides overflow 64-bit indices (a damaged or crafted file)");
        return NULL;
    }
    if (t->offset < 0 || (!empty && maxi >= t->storage->snumel)) {
        vfail(v, "tensor view (offset %lld, last element %lld) lies outside its storage of %lld elements",
              (long long)t->offset, (long long)maxi, (long long)t->storage->snumel);
        return NULL;
    }
    return t;
}

static pk *call(vm *v, pk *fn, pk *args) {
    if (fn->k != PK_GLOBAL) {
        vfail(v, "REDUCE on a %s (only allowed globals may be called)", kind_str(fn->k));
        return NULL;
    }
    if (args->k != PK_TUPLE) {
        vfail(v, "REDUCE arguments are a %s, not a tuple", kind_str(args->k));
        return NULL;
    }
    if (!strcmp(fn->s, "collections.OrderedDict")) {
        if (args->n) {
            vfail(v, "OrderedDict called with %d arguments (torch.save writes none)", args->n);
            return NULL;
        }
        return pk_new(v, PK_DICT);
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_tensor_v2")) return rebuild_tensor(v, args);
    if (!strcmp(fn->s, "torch._utils._rebuild_parameter")) {
        if (args->n < 1 || args->it[0]->k != PK_TENSOR) {
            vfail(v, "_rebuild_parameter without a tensor");
            return NULL;
        }
        return args->it[0];
    }
    vfail(v, "'%.200s' cannot be called (allowed: OrderedDict, _rebuild_tensor_v2, _rebuild_parameter)", fn->s);
    return NULL;
}

static void memo_put(vm *v, uint64_t idx, pk *x) {
    if (!x) return;
    if (idx >= TI_MAX_MEMO) {
        vfail(v, "memo index %llu too large", (unsigned long long)idx);
        return;
    }
    if (idx >= v->memo_cap) {
        size_t nc = v->memo_cap ? v->memo_cap : 256;
        while (nc <= idx) nc *= 2;
        v->memo = realloc(v->memo, nc * sizeof *v->memo);
        memset(v->memo + v->memo_cap, 0, (nc - v->memo_cap) * sizeof *v->memo);
        v->memo_cap = nc;
    }
    if (!v->memo[idx]) v->memo_count++;
    v->memo[idx] = x;
}
static pk *memo_get(vm *v, uint64_t idx) {
    if (idx >= v->memo_cap || !v->memo[idx]) {
        vfail(v, "memo index %llu was never stored", (unsigned long long)idx);
        return NULL;
    }
    return v->memo[idx];
}

static pk *make_str(vm *v, const uint8_t *p, size_t n) {
    pk *s = pk_new(v, PK_STR);
    s->s = malloc(n + 1);
    memcpy(s->s, p, n);
    s->s[n] = 0;
    s->slen = n;
    return s;
}

// runs the pickle; returns the result or NULL (v->err set)
static pk *vm_run(vm *v, const uint8_t *p, size_t n) {
    const uint8_t *end = p + n, *start = p;
#define NEED(k)                                                                          \
    do {                                                                                 \
        if ((size_t)(end - p) < (size_t)(k)) {                                           \
            vfail(v, "truncated at byte %zu (opcode 0x%02x needs %zu more bytes)",       \
                  (size_t)(p - start), op, (size_t)(k));                                 \
            return NULL;                                                                 \
        }                                                                                \
    } while (0)
    while (!v->failed) {
        if (p >= end) {
            vfail(v, "ends without STOP");
            return NULL;
        }
        uint8_t op = *p++;
        switch (op) {
        case 0x80:  // PROTO
            NEED(1);
            if (*p < 2 || *p > 5) vfail(v, "pickle protocol %d (supported: 2..5)", *p);
            p++;
            break;
        case 0x95:  // FRAME
            NEED(8);
            p += 8;
            break;
        case '.': {  // STOP
            pk *r = pop(v);
            return v->failed ? NULL : r;
        }
        case '}': push(v, pk_new(v, PK_DICT)); break;   // EMPTY_DICT
        case ']': push(v, pk_new(v, PK_LIST)); break;   // EMPTY_LIST
        case ')': push(v, pk_new(v, PK_TUPLE)); break;  // EMPTY_TUPLE
        case '(': push(v, &MARK_OBJ); break;            // MARK
        case 'N': push(v, pk_new(v, PK_NONE)); break;
        case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
            pk *b = pk_new(v, PK_BOOL);
            b->i = op == 0x88;
            push(v, b);
            break;
        }
        case 'X': case 'T': case 'B': {  // BINUNICODE, BINSTRING, BINBYTES: u32 length
            NEED(4);
            uint32_t l = le_get32(p);
            p += 4;
            NEED(l);
            push(v, make_str(v, p, l));
            p += l;
            break;
        }
        case 0x8c: case 'U': case 'C': {  // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES: u8 length
            NEED(1);
            uint8_t l = *p++;
            NEED(l);
            push(v, make_str(v, p, l));
            p += l;
            break;
        }
        case 0x8d: case 0x8e: {  // BINUNICODE8, BINBYTES8
            NEED(8);
            uint64_t l = le_get64(p);
            p += 8;
            NEED(l);
            push(v, make_str(v, p, (size_t)l));
            p += l;
            break;
        }
        case 'q': NEED(1); memo_put(v, *p++, top(v)); break;            // BINPUT
        case 'r': NEED(4); memo_put(v, le_get32(p), top(v)); p += 4; break;  // LONG_BINPUT
        case 0x94: memo_put(v, v->memo_count, top(v)); break;           // MEMOIZE: index = len(memo)
        case 'h': { NEED(1); pk *x = memo_get(v, *p++); if (x) push(v, x); break; }               // BINGET
        case 'j': { NEED(4); pk *x = memo_get(v, le_get32(p)); p += 4; if (x) push(v, x); break; }     // LONG_BINGET
        case 'c': {  // GLOBAL "module\nname\n"
            const uint8_t *m = p, *nl1 = memchr(p, '\n', (size_t)(end - p));
            if (!nl1) { vfail(v, "truncated GLOBAL"); return NULL; }
            const uint8_t *nm = nl1 + 1, *nl2 = memchr(nm, '\n', (size_t)(end - nm));
            if (!nl2) { vfail(v, "truncated GLOBAL"); return NULL; }
            pk *g = make_global(v, (const char *)m, (size_t)(nl1 - m), (const char *)nm, (size_t)(nl2 - nm));
            if (g) push(v, g);
            p = nl2 + 1;
            break;
        }
        case 0x93: {  // STACK_GLOBAL
            pk *nm = pop(v), *m = pop(v);
            if (!nm || !m) return NULL;
            if (nm->k != PK_STR || m->k != PK_STR) { vfail(v, "STACK_GLOBAL needs two strings"); return NULL; }
            pk *g = make_global(v, m->s, m->slen, nm->s, nm->slen);
            if (g) push(v, g);
            break;
        }
        case 'J': { NEED(4); pk *x = pk_new(v, PK_INT); x->i = (int32_t)le_get32(p); p += 4; push(v, x); break; }  // BININT
        case 'K': { NEED(1); pk *x = pk_new(v, PK_INT); x->i = *p++; push(v, x); break; }                     // BININT1
        case 'M': { NEED(2); pk *x = pk_new(v, PK_INT); x->i = le_get16(p); p += 2; push(v, x); break; }          // BININT2
        case 0x8a: {  // LONG1: n bytes, little-endian two's complement
            NEED(1);
            uint8_t l = *p++;
            NEED(l);
            if (l > 8) { vfail(v, "LONG1 of %u bytes does not fit 64 bits", l); return NULL; }
            uint64_t x = 0;
            for (int i = 0; i < l; i++) x |= (uint64_t)p[i] << (8 * i);
            if (l && l < 8 && (p[l - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * l);  // sign-extend
            pk *o = pk_new(v, PK_INT);
            o->i = (int64_t)x;
            p += l;
            push(v, o);
            break;
        }
        case 'G': {  // BINFLOAT: big-endian double
            NEED(8);
            uint64_t b = 0;
            for (int i = 0; i < 8; i++) b = b << 8 | p[i];
            pk *o = pk_new(v, PK_FLOAT);
            memcpy(&o->f, &b, 8);
            p += 8;
            push(v, o);
            break;
        }
        case 't': case 'l': case 'd': {  // TUPLE, LIST, DICT: items since MARK
            int m = find_mark(v);
            if (m < 0) return NULL;
            pk *o = pk_new(v, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT);
            if (op == 'd' && (v->sp - m - 1) % 2) { vfail(v, "DICT with an odd number of items"); return NULL; }
            for (int i = m + 1; i < v->sp; i++) pk_push_item(o, v->stack[i]);
            v->sp = m;
            push(v, o);
            break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
            int k = op - 0x84;
            if (v->sp < k) { vfail(v, "stack underflow"); return NULL; }
            pk *o = pk_new(v, PK_TUPLE);
            for (int i = v->sp - k; i < v->sp; i++) {
                if (v->stack[i]->k == PK_MARK) { vfail(v, "MARK inside TUPLE%d", k); return NULL; }
                pk_push_item(o, v->stack[i]);
            }
            v->sp -= k;
            push(v, o);
            break;
        }
        case 'a': {  // APPEND
            pk *x = pop(v), *l = top(v);
            if (!x || !l) return NULL;
            if (l->k != PK_LIST) { vfail(v, "APPEND to a %s", kind_str(l->k)); return NULL; }
            pk_push_item(l, x);
            break;
        }
        case 'e': {  // APPENDS
            int m = find_mark(v);
            if (m < 1) { if (m == 0) vfail(v, "APPENDS without a list"); return NULL; }
            pk *l = v->stack[m - 1];
            if (l->k != PK_LIST) { vfail(v, "APPENDS to a %s", kind_str(l->k)); return NULL; }
            for (int i = m + 1; i < v->sp; i++) pk_push_item(l, v->stack[i]);
            v->sp = m;
            break;
        }
        case 's': {  // SETITEM
            pk *val = pop(v), *key = pop(v), *d = top(v);
            if (!val || !key || !d) return NULL;
            if (d->k != PK_DICT) { vfail(v, "SETITEM on a %s", kind_str(d->k)); return NULL; }
            pk_push_item(d, key);
            pk_push_item(d, val);
            break;
        }
        case 'u': {  // SETITEMS
            int m = find_mark(v);
            if (m < 1) { if (m == 0) vfail(v, "SETITEMS without a dict"); return NULL; }
            pk *d = v->stack[m - 1];
            if (d->k != PK_DICT) { vfail(v, "SETITEMS on a %s", kind_str(d->k)); return NULL; }
            if ((v->sp - m - 1) % 2) { vfail(v, "SETITEMS with an odd number of items"); return NULL; }
            for (int i = m + 1; i < v->sp; i++) pk_push_item(d, v->stack[i]);
            v->sp = m;
            break;
        }
        case 'Q': {  // BINPERSID
            pk *pid = pop(v);
            if (!pid) return NULL;
            pk *s = persistent_load(v, pid);
            if (s) push(v, s);
            break;
        }
        case 'R': {  // REDUCE
            pk *args = pop(v), *fn = pop(v);
            if (!args || !fn) return NULL;
            pk *r = call(v, fn, args);
            if (r) push(v, r);
            break;
        }
        case 'b': {  // BUILD: only the state of OrderedDicts (state_dict's _metadata) and tensors
            pk *state = pop(v), *o = top(v);
            if (!state || !o) return NULL;
            if (o->k != PK_DICT && o->k != PK_TENSOR) { vfail(v, "BUILD on a %s", kind_str(o->k)); return NULL; }
            break;  // ignored: _metadata holds module versions only
        }
        case '0': if (pop(v)) {} break;  // POP
        case '1': {  // POP_MARK
            int m = find_mark(v);
            if (m < 0) return NULL;
            v->sp = m;
            break;
        }
        case '2': { pk *x = top(v); if (x) push(v, x); break; }  // DUP
        default:
            vfail(v, "unknown or unsupported opcode 0x%02x at byte %zu", op, (size_t)(p - 1 - start));
            return NULL;
        }
    }
#undef NEED
    return NULL;
}

// ---------------------------------------------------------------------------------------------
struct ti_file {
    void *map;
    size_t map_size;
    int fd;
    char name[512];
    ti_tensor *t;
    int n, cap;
    bool no_crc;  // the archive records no crc32 (zipf.no_crc): torch_import_verify has nothing to check
};

int64_t ti_numel(const ti_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static int flatten(ti_file *f, vm *v, const pk *d, const char *prefix, int depth, int64_t *keys, char *err,
                   size_t errlen) {
    if (depth > 32) {
        cm_seterr(err, errlen, "%s: dictionaries nested deeper than 32", f->name);
        return -1;
    }
    for (int i = 0; i + 1 < d->n; i += 2) {
        if (++*keys > TI_MAX_KEYS) {
            cm_seterr(err, errlen, "%s: more than %d keys once nested dictionaries are flattened (shared "
                      "dictionaries referenced over and over: a damaged or crafted file)", f->name, TI_MAX_KEYS);
            return -1;
        }
        const pk *k = d->it[i], *val = d->it[i + 1];
        char key[256];
        if (k->k == PK_STR) snprintf(key, sizeof key, "%s%s", prefix, k->s);
        else if (k->k == PK_INT) snprintf(key, sizeof key, "%s%lld", prefix, (long long)k->i);
        else {
            cm_seterr(err, errlen, "%s: a dictionary key is a %s (expected str)", f->name, kind_str(k->k));
            return -1;
        }
        if (val->k == PK_DICT) {
            char sub[300];
            snprintf(sub, sizeof sub, "%s.", key);
            if (flatten(f, v, val, sub, depth + 1, keys, err, errlen)) return -1;
            continue;
        }
        if (val->k != PK_TENSOR) continue;  // non-tensor entries are skipped (duplicates: no_duplicates)
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 64;
            f->t = realloc(f->t, (size_t)f->cap * sizeof *f->t);
        }
        ti_tensor *t = &f->t[f->n++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", key);
        t->dtype = val->storage->dt;
        t->ndim = val->ndim;
        memcpy(t->shape, val->shape, sizeof t->shape);
        memcpy(t->stride, val->stride, sizeof t->stride);
        t->offset = val->offset;
        t->storage = val->storage->sdata;
        t->storage_numel = val->storage->snumel;
        t->storage_bytes = val->storage->entry->size;
        t->storage_crc = val->storage->entry->crc;
        snprintf(t->storage_entry, sizeof t->storage_entry, "%s", val->storage->entry->name);
        t->data = t->storage + (size_t)t->offset * dtype_size(t->dtype);
        int64_t s = 1;
        t->contiguous = true;
        for (int dd = t->ndim - 1; dd >= 0; dd--) {
            if (t->shape[dd] != 1 && t->stride[dd] != s) t->contiguous = false;
            s *= t->shape[dd];
        }
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const ti_tensor *const *)a)->name, (*(const ti_tensor *const *)b)->name);
}

// a name twice is an error; sorted, not compared pairwise: a 1 MB pickle can name ~10^5 tensors
static int no_duplicates(const ti_file *f, char *err, size_t errlen) {
    const ti_tensor **by = malloc((size_t)(f->n ? f->n : 1) * sizeof *by);  // [n] sorted by name
    if (!by) {
        cm_seterr(err, errlen, "%s: out of memory sorting %d tensor names", f->name, f->n);
        return -1;
    }
    for (int i = 0; i < f->n; i++) by[i] = &f->t[i];
    qsort(by, (size_t)f->n, sizeof *by, cmp_tensor_name);
    int rc = 0;
    for (int i = 1; i < f->n && !rc; i++)
        if (!strcmp(by[i - 1]->name, by[i]->name)) {
            cm_seterr(err, errlen, "%s: tensor '%s' appears twice", f->name, by[i]->name);
            rc = -1;
        }
    free(by);
    return rc;
}

static ti_file *parse(ti_file *f, const uint8_t *buf, size_t size, unsigned flags, char *err, size_t errlen) {
    zipf z;
    if (zip_open(&z, buf, size, f->name, err, errlen)) {
        torch_import_close(f);
        return NULL;
    }
    const zentry *pkl = NULL;
    for (int i = 0; i < z.n; i++) {
        size_t l = strlen(z.e[i].name);
        if ((l >= 9 && !strcmp(z.e[i].name + l - 9, "/data.pkl")) || !strcmp(z.e[i].name, "data.pkl")) {
            pkl = &z.e[i];
            break;
        }
    }
    if (!pkl) {
        cm_seterr(err, errlen, "%s: no data.pkl in the archive (not a torch.save file)", f->name);
        zip_free(&z);
        torch_import_close(f);
        return NULL;
    }
    f->no_crc = z.no_crc;
    if (!(flags & TI_NO_CRC) && !z.no_crc && cm_crc32(0, pkl->data, pkl->size) != pkl->crc) {
        cm_seterr(err, errlen, "%s: %s: crc32 mismatch (the file is damaged)", f->name, pkl->name);
        zip_free(&z);
        torch_import_close(f);
        return NULL;
    }
    char prefix[512];
    size_t pl = strlen(pkl->name) - 8;  // keep "<archive>/"
    if (pl >= sizeof prefix) pl = sizeof prefix - 1;
    memcpy(prefix, pkl->name, pl);
    prefix[pl] = 0;
    vm v = {.name = f->name, .z = &z, .prefix = prefix, .err = err, .errlen = errlen};
    pk *root = vm_run(&v, pkl->data, pkl->size);
    int rc = -1;
    if (root && root->k != PK_DICT) cm_seterr(err, errlen, "%s: data.pkl holds a %s, not a dict of tensors", f->name, kind_str(root->k));
    else if (root) {
        int64_t keys = 0;
        rc = flatten(f, &v, root, "", 0, &keys, err, errlen);
        if (!rc) rc = no_duplicates(f, err, errlen);
    }
    if (!rc && f->n == 0) {
        cm_seterr(err, errlen, "%s: no tensors in the file", f->name);
        rc = -1;
    }
    vm_free(&v);
    zip_free(&z);
    if (rc) {
        torch_import_close(f);
        return NULL;
    }
    return f;
}

ti_file *torch_import_open_memory(const void *buf, size_t size, const char *name, unsigned flags, char *err,
                                  size_t errlen) {
    ti_file *f = calloc(1, sizeof *f);
    f->fd = -1;
    snprintf(f->name, sizeof f->name, "%s", name ? name : "(memory)");
    return parse(f, buf, size, flags, err, errlen);
}

bool torch_import_is_torch_file(const char *path) {
    // a legacy (pre-1.6) torch.save file opens with the pickled magic number 0x1950a86a20f9469cfc6c
    // (protocol 2, LONG1 of 10 bytes): ours too, so that its reader says what it is (read as
    // safetensors, its first 8 bytes made a header length of 5e18 bytes: "not a safetensors file?")
    static const unsigned char legacy[14] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    unsigned char m[14] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(m, 1, sizeof m, f) : 0;
    if (f) fclose(f);
    return (n >= 4 && !memcmp(m, "PK\3\4", 4)) || (n == sizeof m && !memcmp(m, legacy, sizeof m));
}

ti_file *torch_import_open(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        cm_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size == 0) {
        cm_seterr(err, errlen, "%s: empty or unreadable", path);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        cm_seterr(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    ti_file *f = calloc(1, sizeof *f);
    f->fd = fd, f->map = map, f->map_size = (size_t)st.st_size;
    snprintf(f->name, sizeof f->name, "%s", path);
    return parse(f, map, f->map_size, 0, err, errlen);
}

int torch_import_count(const ti_file *f) { return f->n; }
const ti_tensor *torch_import_at(const ti_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const ti_tensor *torch_import_find(const ti_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}
void torch_import_close(ti_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    if (f->fd >= 0) close(f->fd);
    free(f->t);
    free(f);
}

static double load_el(cm_dtype dt, const uint8_t *p) {
    switch (dt) {
    case CM_F32: { float x; memcpy(&x, p, 4); return x; }
    case CM_F64: { double x; memcpy(&x, p, 8); return x; }
    case CM_BF16: { uint16_t h; memcpy(&h, p, 2); return bf16_to_f32(h); }
    case CM_F16: { uint16_t h; memcpy(&h, p, 2); return f16_to_f32(h); }
    default: return 0;
    }
}
static void store_el(cm_dtype dt, uint8_t *p, double x) {
    switch (dt) {
    case CM_F32: { float y = (float)x; memcpy(p, &y, 4); break; }
    case CM_F64: memcpy(p, &x, 8); break;
    case CM_BF16: { uint16_t h = f32_to_bf16((float)x); memcpy(p, &h, 2); break; }
    case CM_F16: { uint16_t h = f32_to_f16((float)x); memcpy(p, &h, 2); break; }
    default: cm_die("torch_import_copy", "dtype %s not supported (allowed: f32, bf16, f16, f64)", dtype_name(dt));
    }
}

void torch_import_copy(const ti_tensor *t, cm_dtype dt, void *dst) {
    int64_t n = ti_numel(t);
    size_t es = dtype_size(t->dtype), ds = dtype_size(dt);
    if (t->contiguous && dt == t->dtype) {
        memcpy(dst, t->data, (size_t)n * es);
        return;
    }
    int64_t idx[CM_MAX_DIMS] = {0};
    uint8_t *o = dst;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        const uint8_t *src = t->data + (size_t)off * es;
        if (dt == t->dtype) memcpy(o + (size_t)i * ds, src, es);
        else store_el(dt, o + (size_t)i * ds, load_el(t->dtype, src));
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

bool torch_import_has_crc(const ti_file *f) { return !f->no_crc; }

int torch_import_verify(const ti_file *f, char *err, size_t errlen) {
    if (f->no_crc) {
        cm_warn("warning: %s records no crc32 (saved with torch.serialization.set_crc32_options(False)): "
                "damage to it cannot be detected", f->name);
        return 0;
    }
    for (int i = 0; i < f->n; i++) {
        const ti_tensor *t = &f->t[i];
        bool seen = false;  // a storage shared by several tensors is read once
        for (int j = 0; j < i && !seen; j++) seen = f->t[j].storage == t->storage;
        if (!seen && cm_crc32(0, t->storage, t->storage_bytes) != t->storage_crc) {
            cm_seterr(err, errlen, "%s: %s (the storage of %s): crc32 mismatch (the file is damaged)", f->name,
                      t->storage_entry, t->name);
            return -1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
int torch_import_load(cm_params **regs, int n_regs, const char *path, bool strict, int *n_extra, char *err,
                      size_t errlen) {
    ti_file *f = torch_import_open(path, err, errlen);
    if (!f) return -1;
    if (torch_import_verify(f, err, errlen)) {
        torch_import_close(f);
        return -1;
    }
    int used = 0;
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++) {
            cm_param *p = &regs[r]->items[i];
            const ti_tensor *t = torch_import_find(f, p->name);
            bool ok = t && t->ndim == p->t->ndim;
            for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == p->t->shape[d];
            if (!ok) {
                char want[96], got[96] = "missing";
                tensor_shape_str(p->t, want, sizeof want);
                if (t) {
                    int k = snprintf(got, sizeof got, "[");
                    for (int d = 0; d < t->ndim && k < 80; d++) k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
                    snprintf(got + k, sizeof got - (size_t)k, "] %s", dtype_name(t->dtype));
                }
                cm_seterr(err, errlen, "%s: %s: expected %s, found %s", path, p->name, want, got);
                torch_import_close(f);
                return -1;
            }
            used++;
            int64_t n = ti_numel(t);
            void *host = malloc((size_t)n * dtype_size(t->dtype) + 8);
            torch_import_copy(t, t->dtype, host);
            cm_device dev = p->t->storage->dev;
            cm_tensor *src = tensor_from_host(t->dtype, t->ndim, t->shape, host, dev);
            free(host);
            int64_t cst[CM_MAX_DIMS], s = 1, one = 1, zero = 0;
            for (int d = t->ndim - 1; d >= 0; d--) cst[d] = s, s *= t->shape[d];
            const cm_backend *be = backend_get(dev.type);
            if (t->ndim == 0)
                be->copy_strided(backend_ctx(dev), 1, &one, p->t->dtype, tensor_data(p->t), &zero, t->dtype, tensor_data(src), &zero);
            else
                be->copy_strided(backend_ctx(dev), t->ndim, t->shape, p->t->dtype, tensor_data(p->t), p->t->stride, t->dtype,
                                 tensor_data(src), cst);
            tensor_release(src);
        }
    int extra = f->n - used;
    if (n_extra) *n_extra = extra;
    if (strict && extra > 0) {
        const char *first = "";
        for (int i = 0; i < f->n && !first[0]; i++) {
            bool found = false;
            for (int r = 0; r < n_regs && !found; r++) found = params_find(regs[r], f->t[i].name) != NULL;
            if (!found) first = f->t[i].name;
        }
        cm_seterr(err, errlen, "%s: %d tensors the model does not have (first: %s)", path, extra, first);
        torch_import_close(f);
        return -1;
    }
    torch_import_close(f);
    return 0;
}

int torch_import_to_safetensors(const char *in, const char *out, char *err, size_t errlen) {
    ti_file *f = torch_import_open(in, err, errlen);
    if (!f) return -1;
    if (torch_import_verify(f, err, errlen)) {
        torch_import_close(f);
        return -1;
    }
    st_writer *w = st_writer_new();
    void **bufs = calloc((size_t)f->n + 1, sizeof *bufs);
    for (int i = 0; i < f->n; i++) {
        const ti_tensor *t = &f->t[i];
        if (t->contiguous) {  // straight from the mapping
            st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        } else {
            bufs[i] = malloc((size_t)ti_numel(t) * dtype_size(t->dtype) + 8);
            torch_import_copy(t, t->dtype, bufs[i]);
            st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, bufs[i]);
        }
    }
    const char *base = strrchr(in, '/');
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "source", base ? base + 1 : in);
    int rc = st_writer_save(w, out, err, errlen);
    st_writer_free(w);
    for (int i = 0; i < f->n; i++) free(bufs[i]);
    free(bufs);
    torch_import_close(f);
    return rc;
}

// whether name lies in the top-level part part[0, pl) ("image_proj" of "image_proj.latents")
static bool in_part(const char *name, const char *part, size_t pl) {
    return !strncmp(name, part, pl) && (name[pl] == '.' || !name[pl]);
}

int torch_import_inspect(const char *cmd, const char *path, bool quiet) {
    char err[1024];
    ti_file *f = torch_import_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "cameo %s: %s\n", cmd, err);
        return 1;
    }
    int rc = torch_import_verify(f, err, sizeof err);
    int64_t total = 0, bytes = 0, by_dtype[CM_NDTYPES] = {0};
    for (int i = 0; i < f->n; i++) {
        int64_t n = ti_numel(&f->t[i]);
        total += n, bytes += n * (int64_t)dtype_size(f->t[i].dtype), by_dtype[f->t[i].dtype] += n;
    }
    printf("%s (a torch.save file: %s)\n  tensors: %d   parameters: %lld   data: %.2f MB\n  dtypes:", path,
           rc ? err : f->no_crc ? "no crc32 recorded (set_crc32_options(False)), not verified" : "every storage's crc32 verified", f->n, (long long)total, (double)bytes / 1e6);
    for (int d = 0; d < CM_NDTYPES; d++)
        if (by_dtype[d]) printf(" %s %lld", dtype_name((cm_dtype)d), (long long)by_dtype[d]);
    printf("\n");
    for (int i = 0, first = 1; i < f->n; i++) {  // the top-level parts, in order of first appearance
        const char *dot = strchr(f->t[i].name, '.');
        size_t pl = dot ? (size_t)(dot - f->t[i].name) : strlen(f->t[i].name);
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = in_part(f->t[j].name, f->t[i].name, pl);
        if (seen) continue;
        int64_t n = 0;
        for (int j = i; j < f->n; j++)
            if (in_part(f->t[j].name, f->t[i].name, pl)) n += ti_numel(&f->t[j]);
        printf("%s%.*s: %lld", first ? "  " : "   ", (int)pl, f->t[i].name, (long long)n);
        first = 0;
    }
    printf("\n");
    for (int i = 0; !quiet && i < f->n; i++) {
        const ti_tensor *t = &f->t[i];
        printf("  %-64s %-5s [", t->name, dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]%s\n", t->contiguous ? "" : " (view)");
    }
    torch_import_close(f);
    return rc ? 1 : 0;
}

static void import_usage(FILE *f) {
    fprintf(f, "usage: cameo import-bin IN.bin OUT.safetensors   convert a torch.save checkpoint\n"
               "       cameo import-bin --list IN.bin             list its tensors\n");
}

int torch_import_cli(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    bool list = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { import_usage(stdout); return 0; }
        if (!strcmp(a, "--list")) list = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cameo import-bin: unknown argument '%s'\n", a);
            import_usage(stderr);
            return 2;
        } else if (npos == 2) {
            fprintf(stderr, "cameo import-bin: '%s': one more file than IN.bin and OUT.safetensors\n", a);
            import_usage(stderr);
            return 2;
        } else pos[npos++] = a;
    }
    // --list IN.bin reads one file: a second was read as an OUT it never writes; IN.bin --list
    // was read as OUT = "--list" and refused for its name
    if (list && npos != 1) {
        if (npos) fprintf(stderr, "cameo import-bin: --list lists one file (IN.bin), and writes none: drop '%s'\n", pos[1]);
        else fprintf(stderr, "cameo import-bin: --list: missing IN.bin (the torch.save file to list)\n");
        import_usage(stderr);
        return 2;
    }
    if (list) return torch_import_inspect("import-bin --list", pos[0], false);
    if (npos < 2) {
        fprintf(stderr, "cameo import-bin: missing %s\n", npos ? "OUT.safetensors (the file to write)" : "IN.bin and OUT.safetensors");
        import_usage(stderr);
        return 2;
    }
    char err[1024];
    const char *in = pos[0], *to = pos[1];
    // OUT is written as safetensors: under another name (`import-bin x.bin x.bin`, or y.pt) the
    // bytes would lie about their format, and an OUT that is IN replaced the download
    size_t lo = strlen(to);
    struct stat si, so;
    if (lo < 12 || strcmp(to + lo - 12, ".safetensors")) {
        fprintf(stderr, "cameo import-bin: %s: the output is written as safetensors; give a name ending in .safetensors\n", to);
        return 2;
    }
    if (!stat(in, &si) && !stat(to, &so) && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        fprintf(stderr, "cameo import-bin: %s is the input itself; give another OUT.safetensors\n", to);
        return 2;
    }
    if (torch_import_to_safetensors(in, to, err, sizeof err)) {
        fprintf(stderr, "cameo import-bin: %s\n", err);
        return 1;
    }
    st_file *s = st_open(to, err, sizeof err);
    int n = s ? st_count(s) : 0;
    st_close(s);
    printf("wrote %s: %d tensors\n", to, n);
    return 0;
}
