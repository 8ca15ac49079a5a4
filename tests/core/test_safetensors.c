// test_safetensors.c — reads files from the Python safetensors package, round-trips and
// byte-compares our writer against it, loads a sharded index, and rejects malformed files with
// messages naming the file and the problem. Fixtures: scripts/make_safetensors_fixtures.py.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/tensor.h"
#include "models/safetensors.h"
#include "testutil.h"

#define FIX "tests/fixtures/safetensors/"

static char tmpdir[256];

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

// ---- value formulas shared with the fixture script --------------------------------------------

static double fval(int k, int64_t i) { return (double)(i % 64) * 0.25 - k; }
static int64_t ival(int64_t i) { return i * 3 - 7; }
static uint8_t u8val(int64_t i) { return (uint8_t)((i * 37) % 256); }

static double get_elem(const st_entry *e, int64_t i) {
    const uint8_t *p = e->data;
    switch (e->dtype) {
    case CM_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case CM_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case CM_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case CM_U8: return p[i];
    case CM_BF16: { uint16_t h; memcpy(&h, p + 2 * i, 2); uint32_t b = (uint32_t)h << 16; float v; memcpy(&v, &b, 4); return v; }
    case CM_F16: {
        uint16_t h; memcpy(&h, p + 2 * i, 2);
        int s = h >> 15, ex = (h >> 10) & 31, m = h & 1023;
        double v = ex == 0 ? ldexp(m, -24) : ldexp(1024 + m, ex - 25);
        return s ? -v : v;
    }
    default: return NAN;
    }
}

static int64_t numel_of(const st_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
    return n;
}

static void check_entry(const st_file *f, const char *name, cm_dtype dt, int ndim, const int64_t *shape, int k) {
    const st_entry *e = st_find(f, name);
    TEST_CHECK(e != NULL, "'%s' not found", name);
    if (!e) return;
    TEST_CHECK(e->dtype == dt, "'%s' dtype %d want %d", name, e->dtype, dt);
    TEST_CHECK(e->ndim == ndim, "'%s' ndim %d want %d", name, e->ndim, ndim);
    for (int d = 0; d < ndim && d < e->ndim; d++) TEST_CHECK(e->shape[d] == shape[d], "'%s' shape[%d]", name, d);
    int64_t n = numel_of(e);
    TEST_CHECK(e->nbytes == (size_t)n * dtype_size(dt), "'%s' nbytes %zu", name, e->nbytes);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = dt == CM_I32 ? (double)ival(i) : dt == CM_U8 ? u8val(i) : fval(k, i);
        if (get_elem(e, i) != want) bad++;
    }
    TEST_CHECK(bad == 0, "'%s': %d wrong values", name, bad);
}

// ---- reading the Python package's files ------------------------------------------------------

static void test_read_python(void) {
    char err[512];
    st_file *f = st_open(FIX "basic.safetensors", err, sizeof err);
    TEST_CHECK(f != NULL, "%s", err);
    if (!f) return;
    TEST_CHECK(st_count(f) == 10, "count %d", st_count(f));
    check_entry(f, "f32", CM_F32, 2, (int64_t[]){2, 3}, 0);
    check_entry(f, "bf16", CM_BF16, 1, (int64_t[]){4}, 1);
    check_entry(f, "f16", CM_F16, 2, (int64_t[]){2, 2}, 2);
    check_entry(f, "f64", CM_F64, 1, (int64_t[]){3}, 3);
    check_entry(f, "i32", CM_I32, 1, (int64_t[]){5}, 0);
    check_entry(f, "u8", CM_U8, 2, (int64_t[]){3, 3}, 0);
    check_entry(f, "scalar", CM_F32, 0, NULL, 4);
    check_entry(f, "empty", CM_BF16, 2, (int64_t[]){0, 4}, 0);
    check_entry(f, "big", CM_F32, 6, (int64_t[]){2, 3, 4, 5, 1, 2}, 5);
    const st_entry *p = st_find(f, "position_ids");
    TEST_CHECK(p && p->dtype == CM_NDTYPES && strcmp(p->dtype_str, "I64") == 0 && p->nbytes == 48, "I64 entry listed");
    TEST_CHECK(st_find(f, "nope") == NULL && st_find(f, "") == NULL, "absent names");
    TEST_CHECK(st_meta(f, "format") && strcmp(st_meta(f, "format"), "pt") == 0, "metadata format");
    TEST_CHECK(st_meta(f, "other") == NULL && st_meta_count(f) == 1, "metadata count");
    // st_at walks header order, which the Python package writes in data order
    const uint8_t *prev = NULL;
    for (int i = 0; i < st_count(f); i++) {
        const st_entry *e = st_at(f, i);
        TEST_CHECK(e && (!prev || (const uint8_t *)e->data >= prev), "st_at(%d) in data order", i);
        if (e) prev = e->data;
    }
    TEST_CHECK(st_at(f, -1) == NULL && st_at(f, 10) == NULL, "st_at out of range");
    st_close(f);

    f = st_open(FIX "unsupported.safetensors", err, sizeof err);
    TEST_CHECK(f != NULL, "%s", err);
    if (f) {
        const st_entry *b = st_find(f, "flags"), *q = st_find(f, "fp8");
        TEST_CHECK(b && b->dtype == CM_NDTYPES && strcmp(b->dtype_str, "BOOL") == 0, "BOOL listed");
        TEST_CHECK(q && q->dtype == CM_NDTYPES && strcmp(q->dtype_str, "F8_E4M3") == 0, "F8 listed");
        check_entry(f, "w", CM_F32, 1, (int64_t[]){2}, 0);
        st_close(f);
    }
}

// ---- st_to_tensor ------------------------------------------------------------------------------

static void test_to_tensor(void) {
    char err[512];
    st_file *f = st_open(FIX "basic.safetensors", err, sizeof err);
    TEST_CHECK(f != NULL, "%s", err);
    if (!f) return;
    const st_entry *e = st_find(f, "f16");
    cm_tensor *t = st_to_tensor(e, CM_DEV_CPU, err, sizeof err);
    TEST_CHECK(t && t->dtype == CM_F16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2, "f16 tensor");
    TEST_CHECK(t && tensor_nbytes(t) == e->nbytes && memcmp(tensor_data(t), e->data, e->nbytes) == 0, "f16 tensor bytes");
    tensor_release(t);
    t = st_to_tensor(st_find(f, "position_ids"), CM_DEV_CPU, err, sizeof err);
    TEST_CHECK(t && t->dtype == CM_I32 && t->ndim == 2 && t->shape[1] == 6, "I64 narrowed to I32: %s", t ? "" : err);
    if (t) for (int i = 0; i < 6; i++) TEST_CHECK(((const int32_t *)tensor_data(t))[i] == ival(i), "narrowed id %d", i);
    tensor_release(t);
    st_close(f);

    f = st_open(FIX "unsupported.safetensors", err, sizeof err);
    if (!f) return;
    err[0] = 0;
    t = st_to_tensor(st_find(f, "flags"), CM_DEV_CPU, err, sizeof err);
    TEST_CHECK(t == NULL && strstr(err, "flags") && strstr(err, "BOOL"), "BOOL refused by name: %s", err);
    t = st_to_tensor(st_find(f, "fp8"), CM_DEV_CPU, err, sizeof err);
    TEST_CHECK(t == NULL && strstr(err, "fp8") && strstr(err, "F8_E4M3"), "F8 refused by name: %s", err);
    st_close(f);
}

// ---- writer ------------------------------------------------------------------------------------

static void *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *p = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(p, 1, (size_t)sz, fp);
    fclose(fp);
    return p;
}

// fills buf with the formula values for a tensor of dtype dt, n elements
static void fill(void *buf, cm_dtype dt, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case CM_F32: ((float *)buf)[i] = (float)fval(k, i); break;
        case CM_F64: ((double *)buf)[i] = fval(k, i); break;
        case CM_BF16: { float v = (float)fval(k, i); uint32_t b; memcpy(&b, &v, 4); ((uint16_t *)buf)[i] = (uint16_t)(b >> 16); break; }
        case CM_F16: {  // the formula's values are exact in f16: k/4 steps, |v| < 32
            double v = fval(k, i);
            uint16_t s = v < 0 ? 0x8000 : 0;
            double a = fabs(v);
            uint16_t h = 0;
            if (a != 0) {
                int e;
                double m = frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
                h = (uint16_t)(((e - 1 + 15) << 10) | (uint16_t)((m * 2 - 1) * 1024));
            }
            ((uint16_t *)buf)[i] = s | h;
            break;
        }
        case CM_I32: ((int32_t *)buf)[i] = (int32_t)ival(i); break;
        case CM_U8: ((uint8_t *)buf)[i] = u8val(i); break;
        default: break;
        }
    }
}

typedef struct { const char *name; cm_dtype dt; int ndim; int64_t shape[3]; int k; } spec;

// the same set as writer_ref_tensors() in scripts/make_safetensors_fixtures.py, added in a
// different order (the writer must sort like the Python package)
static const spec REF[] = {
    {"mask", CM_U8, 1, {7}, 0},
    {"odd\"name\\\xc3\xa9\n\x01/", CM_F16, 1, {1}, 6},
    {"z.weight", CM_F32, 2, {3, 4}, 0},
    {"ids", CM_I32, 1, {4}, 0},
    {"a.weight", CM_F32, 3, {2, 2, 2}, 1},
    {"b.bf", CM_BF16, 1, {5}, 2},
    {"scalar", CM_F32, 0, {0}, 5},
    {"b.half", CM_F16, 2, {2, 3}, 3},
    {"empty", CM_F32, 2, {0, 3}, 0},
    {"c.double", CM_F64, 1, {3}, 4},
};
#define NREF (int)(sizeof REF / sizeof REF[0])

static void test_writer_matches_python(void) {
    char err[512], path[512];
    st_writer *w = st_writer_new();
    void *bufs[NREF];
    for (int i = 0; i < NREF; i++) {
        int64_t n = 1;
        for (int d = 0; d < REF[i].ndim; d++) n *= REF[i].shape[d];
        bufs[i] = calloc((size_t)n + 1, 8);
        fill(bufs[i], REF[i].dt, n, REF[i].k);
        st_writer_add(w, REF[i].name, REF[i].dt, REF[i].ndim, REF[i].shape, bufs[i]);
    }
    st_writer_meta(w, "format", "np");
    st_writer_meta(w, "format", "pt");  // replaces
    tmp_path(path, sizeof path, "writer_ref.safetensors");
    int rc = st_writer_save(w, path, err, sizeof err);
    TEST_CHECK(rc == 0, "%s", err);
    st_writer_free(w);
    for (int i = 0; i < NREF; i++) free(bufs[i]);

    size_t na = 0, nb = 0;
    uint8_t *a = read_all(path, &na), *b = read_all(FIX "writer_ref.safetensors", &nb);
    TEST_CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "writer output (%zu bytes) differs from the Python "
               "package's (%zu bytes); check with scripts/make_safetensors_fixtures.py --verify %s", na, nb, path);
    free(a);
    free(b);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    TEST_CHECK(access(tmp, F_OK) != 0, "no .tmp left behind");

    // without metadata
    int32_t y[2] = {(int32_t)ival(0), (int32_t)ival(1)};
    float x[2] = {(float)fval(0, 0), (float)fval(0, 1)};
    w = st_writer_new();
    st_writer_add(w, "y", CM_I32, 1, (int64_t[]){2}, y);
    st_writer_add(w, "x", CM_F32, 1, (int64_t[]){2}, x);
    tmp_path(path, sizeof path, "nometa.safetensors");
    TEST_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);
    a = read_all(path, &na);
    b = read_all(FIX "writer_ref_nometa.safetensors", &nb);
    TEST_CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "no-metadata writer output differs from Python's");
    free(a);
    free(b);
}

static void test_roundtrip(void) {
    char err[512], path[512];
    tmp_path(path, sizeof path, "rt.safetensors");
    float *big = malloc(1000 * 37 * sizeof(float));
    for (int i = 0; i < 1000 * 37; i++) big[i] = (float)i * 0.5f;
    uint8_t u[3] = {1, 2, 3};
    double dd = 3.25;
    st_writer *w = st_writer_new();
    st_writer_add(w, "big", CM_F32, 2, (int64_t[]){1000, 37}, big);
    st_writer_add_copy(w, "u", CM_U8, 1, (int64_t[]){3}, u);
    u[0] = 99;  // the copy must not see this
    st_writer_add(w, "d", CM_F64, 0, NULL, &dd);
    st_writer_add(w, "none", CM_BF16, 3, (int64_t[]){2, 0, 5}, NULL);
    st_writer_meta(w, "b", "2");
    st_writer_meta(w, "a", "1 \"quoted\"\n");
    st_writer_meta(w, "c", "");
    TEST_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    // saving again over an existing file replaces it atomically
    TEST_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);

    st_file *f = st_open(path, err, sizeof err);
    TEST_CHECK(f != NULL, "%s", err);
    if (f) {
        TEST_CHECK(st_count(f) == 4, "count");
        const st_entry *e = st_find(f, "big");
        TEST_CHECK(e && e->ndim == 2 && e->shape[0] == 1000 && e->shape[1] == 37 && memcmp(e->data, big, e->nbytes) == 0, "big");
        TEST_CHECK(((uintptr_t)e->data % 8) == 0, "data 8-aligned");
        e = st_find(f, "u");
        TEST_CHECK(e && ((const uint8_t *)e->data)[0] == 1, "copied data");
        e = st_find(f, "d");
        TEST_CHECK(e && e->ndim == 0 && e->nbytes == 8 && *(const double *)e->data == 3.25, "scalar f64");
        e = st_find(f, "none");
        TEST_CHECK(e && e->nbytes == 0 && e->ndim == 3 && e->shape[1] == 0, "empty bf16");
        TEST_CHECK(st_meta_count(f) == 3 && strcmp(st_meta(f, "a"), "1 \"quoted\"\n") == 0 && strcmp(st_meta(f, "c"), "") == 0, "metadata");
        TEST_CHECK(strcmp(st_meta_key(f, 0), "a") == 0 && strcmp(st_meta_key(f, 2), "c") == 0, "metadata sorted");
        st_close(f);
    }
    free(big);

    // an empty writer makes a valid empty file ("{}" padded)
    tmp_path(path, sizeof path, "empty.safetensors");
    w = st_writer_new();
    TEST_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);
    f = st_open(path, err, sizeof err);
    TEST_CHECK(f && st_count(f) == 0, "empty file: %s", f ? "" : err);
    st_close(f);
    size_t n = 0;
    char *raw = read_all(path, &n);
    TEST_CHECK(raw && n == 16 && memcmp(raw + 8, "{}      ", 8) == 0, "empty file bytes as Python");
    free(raw);
}

static void test_writer_errors(void) {
    char err[512], path[512];
    float x = 1;
    tmp_path(path, sizeof path, "bad.safetensors");
    struct { const char *why; const char *want; int dup, meta, dt, nul; } cases[] = {
        {"duplicate", "added twice", 1, 0, 0, 0},
        {"__metadata__ name", "__metadata__", 0, 1, 0, 0},
        {"bad dtype", "dtype", 0, 0, 1, 0},
        {"NULL data", "data is NULL", 0, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_writer *w = st_writer_new();
        st_writer_add(w, "a", CM_F32, 0, NULL, &x);
        if (cases[i].dup) st_writer_add(w, "a", CM_F32, 0, NULL, &x);
        if (cases[i].meta) st_writer_add(w, "__metadata__", CM_F32, 0, NULL, &x);
        if (cases[i].dt) st_writer_add(w, "b", CM_NDTYPES, 0, NULL, &x);
        if (cases[i].nul) st_writer_add(w, "c", CM_F32, 1, (int64_t[]){2}, NULL);
        err[0] = 0;
        TEST_CHECK(st_writer_save(w, path, err, sizeof err) == -1, "%s accepted", cases[i].why);
        TEST_CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, cases[i].want), "%s: message '%s'", cases[i].why, err);
        TEST_CHECK(access(path, F_OK) != 0, "%s: nothing written", cases[i].why);
        st_writer_free(w);
    }
    st_writer *w = st_writer_new();
    st_writer_add(w, "a", CM_F32, 0, NULL, &x);
    TEST_CHECK(st_writer_save(w, "/nonexistent-dir/x.safetensors", err, sizeof err) == -1 &&
               strstr(err, "/nonexistent-dir/x.safetensors"), "unwritable folder: %s", err);
    st_writer_free(w);
}

// ---- sharded index -----------------------------------------------------------------------------

static void write_text(const char *path, const char *s) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    fputs(s, fp);
    fclose(fp);
}

static void test_index(void) {
    char err[512];
    const char *paths[] = {FIX "sharded", FIX "sharded/", FIX "sharded/diffusion_pytorch_model.safetensors.index.json"};
    for (int p = 0; p < 3; p++) {
        st_index *ix = st_index_open(paths[p], err, sizeof err);
        TEST_CHECK(ix != NULL, "%s", err);
        if (!ix) continue;
        TEST_CHECK(st_index_count(ix) == 4, "index count %d", st_index_count(ix));
        const st_entry *e = st_index_find(ix, "blocks.1.w");
        TEST_CHECK(e && e->dtype == CM_BF16 && e->ndim == 2 && get_elem(e, 3) == fval(2, 3), "blocks.1.w");
        e = st_index_find(ix, "blocks.0.b");
        TEST_CHECK(e && e->dtype == CM_F32 && get_elem(e, 1) == fval(1, 1), "blocks.0.b");
        TEST_CHECK(st_index_find(ix, "unlisted") == NULL && st_index_find(ix, "x") == NULL, "unlisted names absent");
        const st_file *s = st_index_shard_of(ix, "norm.scale");
        TEST_CHECK(s && strstr(st_path(s), "00002-of-00002"), "shard_of");
        TEST_CHECK(st_index_at(ix, 0) && strcmp(st_index_at(ix, 0)->name, "blocks.0.b") == 0, "sorted by name");
        st_index_close(ix);
    }
    // a single file is an index of one shard
    st_index *ix = st_index_open(FIX "basic.safetensors", err, sizeof err);
    TEST_CHECK(ix && st_index_count(ix) == 10 && st_index_find(ix, "f32"), "single-file index: %s", ix ? "" : err);
    st_index_close(ix);

    // broken indexes
    char dir[512], path[600], cmd[1200];
    tmp_path(dir, sizeof dir, "idx");
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "cp " FIX "sharded/*.safetensors %s/", dir);
    TEST_CHECK(system(cmd) == 0, "copy shards");
    struct { const char *json; const char *want; } bad[] = {
        {"{\"weight_map\": {\"blocks.0.w\": \"missing.safetensors\"}}", "missing.safetensors"},
        {"{\"weight_map\": {\"blocks.0.w\": \"diffusion_pytorch_model-00002-of-00002.safetensors\"}}", "no such tensor"},
        {"{\"weight_map\": {\"blocks.0.w\": \"../x.safetensors\"}}", "beside the index"},
        {"{\"weight_map\": {\"blocks.0.w\": 3}}", "not a file name"},
        {"{\"metadata\": {}}", "weight_map"},
        {"{\"weight_map\": {\"blocks.0.w\": \"diffusion_pytorch_model-00001-of-00002.safetensors\","
         " \"blocks.0.w\": \"diffusion_pytorch_model-00001-of-00002.safetensors\"}}", "twice"},
        {"{\"weight_map\": ", "not valid JSON"},
    };
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].json);
        err[0] = 0;
        ix = st_index_open(dir, err, sizeof err);
        TEST_CHECK(ix == NULL && strstr(err, bad[i].want) && strstr(err, "model.safetensors.index.json"),
                   "bad index %zu: '%s'", i, err);
        st_index_close(ix);
    }
    unlink(path);
    ix = st_index_open(dir, err, sizeof err);  // two shards, no index
    TEST_CHECK(ix == NULL && strstr(err, dir) && strstr(err, "2 .safetensors"), "no index: '%s'", err);
    ix = st_index_open("/nonexistent-cameo", err, sizeof err);
    TEST_CHECK(ix == NULL && strstr(err, "/nonexistent-cameo"), "missing path: '%s'", err);
}

// ---- malformed files ---------------------------------------------------------------------------

// writes an 8-byte length (hlen, or the real one when hlen < 0), the header and `data` bytes
static void write_st(const char *path, long long hlen, const char *hdr, size_t hdrn, size_t ndata) {
    FILE *fp = fopen(path, "wb");
    uint64_t n = hlen < 0 ? hdrn : (uint64_t)hlen;
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 255), fp);
    fwrite(hdr, 1, hdrn, fp);
    for (size_t i = 0; i < ndata; i++) fputc((int)i, fp);
    fclose(fp);
}

static void expect_bad(const char *path, const char *want, const char *why) {
    char err[512] = "";
    st_file *f = st_open(path, err, sizeof err);
    TEST_CHECK(f == NULL, "%s: accepted", why);
    st_close(f);
    TEST_CHECK(strncmp(err, path, strlen(path)) == 0, "%s: message does not start with the path: '%s'", why, err);
    TEST_CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", why, err, want);
}

#define A4 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

static void test_malformed(void) {
    char path[512];
    tmp_path(path, sizeof path, "m.safetensors");
    struct { const char *hdr; size_t ndata; const char *want; } cases[] = {
        {"{\"a\":", 0, "not valid JSON"},
        {"[]", 0, "not a JSON object"},
        {"{} x", 0, "not valid JSON"},
        {"{},\"__metadata__\":{}}", 0, "not valid JSON"},  // what safetensors 0.8 writes for save({}, metadata={})
        {"{\"a\":1}", 0, "not a JSON object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "\"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F17'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "at most 6"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "need 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "run past"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "end before"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, "non-negative"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, "whole bytes"},
        {"{" A4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]}}", 10, "overlaps"},
        {"{" A4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "gap"},
        {"{" A4 "}", 8, "cover 4"},
        {"{" A4 "," A4 "}", 4, "twice"},
        {"{\"__metadata__\":{},\"__metadata__\":{}," A4 "}", 4, "\"__metadata__\" appears twice"},
        {"{\"__metadata__\":{\"k\":1}," A4 "}", 4, "not a string"},
        {"{\"__metadata__\":[]," A4 "}", 4, "__metadata__"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," A4 "}", 4, "key 'k' twice"},
        {"{\"a\xff\":{}}", 0, "UTF-8"},
        {"{\"a\xed\xa0\x80\":{}}", 0, "UTF-8"},  // an encoded surrogate
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[64];
        snprintf(why, sizeof why, "malformed case %zu", i);
        write_st(path, -1, cases[i].hdr, strlen(cases[i].hdr), cases[i].ndata);
        expect_bad(path, cases[i].want, why);
    }
    write_st(path, -1, "{\"a\":\0{}}", 9, 0);
    expect_bad(path, "NUL", "NUL in header");
    write_st(path, 1000, "{}", 2, 10);
    expect_bad(path, "beyond the end", "header length past the file");
    write_st(path, 200000000LL, "{}", 2, 0);
    expect_bad(path, "limit", "header over 100 MB");
    write_st(path, (long long)(~0ULL >> 1), "{}", 2, 0);
    expect_bad(path, "limit", "header length 2^63-1");
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    expect_bad(path, "truncated", "empty file");
    fp = fopen(path, "wb");
    fwrite("\x02\0\0\0", 1, 4, fp);
    fclose(fp);
    expect_bad(path, "truncated", "4-byte file");
    // a valid file cut short anywhere in its header or data
    size_t n = 0;
    uint8_t *raw = read_all(FIX "basic.safetensors", &n);
    for (size_t cut = 0; raw && cut < n; cut += 1 + cut / 8) {
        fp = fopen(path, "wb");
        fwrite(raw, 1, cut, fp);
        fclose(fp);
        char err[512];
        st_file *f = st_open(path, err, sizeof err);
        TEST_CHECK(f == NULL && strncmp(err, path, strlen(path)) == 0, "truncated at %zu accepted", cut);
        st_close(f);
    }
    free(raw);
    expect_bad(tmpdir, "not a regular file", "a folder");
    expect_bad("/nonexistent-cameo.safetensors", "cannot open", "missing file");

    // not errors: the header may list tensors in any order, and "__metadata__": null means none;
    // sub-byte dtypes are listed
    const char *ok = "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},\"__metadata__\":null,"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                     "\"c\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[6,8]}," A4 "}";
    write_st(path, -1, ok, strlen(ok), 8);
    char err[512];
    st_file *f = st_open(path, err, sizeof err);
    TEST_CHECK(f && st_count(f) == 4 && st_meta_count(f) == 0, "unordered header: %s", f ? "" : err);
    if (f) {
        TEST_CHECK(((const uint8_t *)st_find(f, "b")->data)[1] == 5, "b data");
        TEST_CHECK(st_find(f, "c")->dtype == CM_NDTYPES && st_find(f, "c")->nbytes == 2, "F4 listed");
        TEST_CHECK(strcmp(st_at(f, 0)->name, "b") == 0, "st_at keeps header order");
    }
    st_close(f);

    // st_open_memory over the same bytes
    raw = read_all(path, &n);
    f = st_open_memory(raw, n, "mem", err, sizeof err);
    TEST_CHECK(f && st_count(f) == 4 && strcmp(st_path(f), "mem") == 0, "open_memory: %s", f ? "" : err);
    st_close(f);
    f = st_open_memory(raw, 7, "mem", err, sizeof err);
    TEST_CHECK(!f && strncmp(err, "mem: truncated", 14) == 0, "open_memory truncated: %s", err);
    free(raw);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cameo_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_read_python();
    test_to_tensor();
    test_writer_matches_python();
    test_roundtrip();
    test_writer_errors();
    test_index();
    test_malformed();
    if (!test_failures) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "test files kept in %s\n", tmpdir);
    }
    return test_summary("test_safetensors");
}
