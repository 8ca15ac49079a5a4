// text_cache.c — see text_cache.h. The text encoders' identity, and captions in and out of the
// feature store (train/feature_store.c) that holds their outputs.
#include "train/text_cache.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/checksum.h"
#include "train/models.h"
#include "train/paths.h"
#include "train/text.h"

static size_t tc_values(const int64_t d[3]) { return (size_t)(d[0] * d[1] + d[2]); }  // T5 rows, then CLIP's

// the 16-byte key of a caption: two FNV-1a 64 hashes from different offsets (the caption is
// stored too and compared on read, so a collision is an error, never a wrong row)
static void caption_key(const uint8_t *cap, size_t n, uint8_t key[16]) {
    uint64_t a = hash64_update(HASH64_INIT, cap, n), b = hash64_update(HASH64_INIT ^ 0x9e3779b97f4a7c15ull, cap, n);
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(a >> (8 * i)), key[8 + i] = (uint8_t)(b >> (8 * i));
}

// a caption in a message: its first 60 bytes, quoted
static const char *caption_shown(const uint8_t *cap, size_t n, char *buf, size_t len) {
    snprintf(buf, len, "the caption '%.*s%s'", (int)(n > 60 ? 60 : n), (const char *)cap, n > 60 ? "..." : "");
    return buf;
}

const fstore_kind TEXT_CACHE_KIND = {
    .format = "cameo-text-cache", .what = "text cache", .build = "cameo cache-text", .setting = "model.text_cache",
    .dims = {"t5_len", "joint_dim", "pooled_dim"}, .magic = 0x31585443u /* "CTX1" */, .values = tc_values,
    .key_of = caption_key, .shown = caption_shown,
};

int text_cache_identity(const train_config *c, text_cache_id *id, char *err, size_t errlen) {
    memset(id, 0, sizeof *id);
    ic_text t;
    uint64_t h = HASH64_INIT;
    if (c->model.tiny) {
        const train_tiny_dims *d = &c->model.tiny_dims;
        uint64_t seed = c->run.seed ^ 0x7e;  // the tiny preset's text seed (train/models.c, ic_models_text)
        const int64_t v[4] = {d->text_dim, d->text_len, d->pooled_dim, (int64_t)seed};
        h = hash64_update(h, "tiny", 4);
        h = hash64_update(h, v, sizeof v);
        const char *tok[2] = {"configs/tiny/t5-tokenizer.json", "configs/tiny/clip-tokenizer.json"};  // ic_text_init_tiny's
        for (int i = 0; i < 2; i++) {
            char tk[PATH_MAX];
            if (cameo_asset(tk, sizeof tk, tok[i], err, errlen) || fstore_hash_file(tk, tok[i], &h, err, errlen)) return -1;
        }
        snprintf(id->encoders, sizeof id->encoders, "the tiny preset's T5 and CLIP (%d and %d wide, %d T5 tokens) of run.seed %llu",
                 d->text_dim, d->pooled_dim, d->text_len, (unsigned long long)c->run.seed);
    } else {
        char tk5[PATH_MAX], tkc[PATH_MAX];
        const char *dirs[4] = {c->model.t5, ic_text_tokenizer_dir(c->model.t5, "tokenizer_2", tk5, sizeof tk5), c->model.clip,
                               ic_text_tokenizer_dir(c->model.clip, "tokenizer", tkc, sizeof tkc)};
        for (int i = 0; i < 4; i++)
            if ((i % 2 == 0 || dirs[i] != dirs[i - 1]) && fstore_hash_folder(dirs[i], &h, err, errlen)) return -1;
        snprintf(id->encoders, sizeof id->encoders, "T5 %.560s and CLIP %.560s", c->model.t5, c->model.clip);
    }
    if (ic_models_text(&t, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.t5, c->model.clip, 0, IC_TEXT_NONE,
                       CM_DEV_CPU, CM_F32, err, errlen))
        return -1;
    id->dim[0] = t.t5_len;
    id->dim[1] = t.joint_dim;
    id->dim[2] = t.pooled_dim;
    const int64_t v[3] = {t.t5_len, t.joint_dim, t.pooled_dim};
    id->fingerprint = hash64_update(h, v, sizeof v);
    return 0;
}

int text_cache_open(text_cache *tc, const char *path, const text_cache_id *want, bool write, char *err, size_t errlen) {
    return fstore_open(tc, &TEXT_CACHE_KIND, path, want, write, err, errlen);
}
void text_cache_close(text_cache *tc) { fstore_close(tc); }
bool text_cache_covers(const text_cache *tc, uint64_t manifest_hash) { return fstore_covers(tc, manifest_hash); }
uint64_t text_cache_count(text_cache *tc) { return fstore_count(tc); }
int text_cache_add_set(text_cache *tc, const char *path, uint64_t manifest_hash, uint64_t samples, char *err, size_t errlen) {
    return fstore_add_set(tc, path, manifest_hash, samples, err, errlen);
}
bool text_cache_has(text_cache *tc, const char *caption) { return fstore_has(tc, (const uint8_t *)caption, strlen(caption), false); }
bool text_cache_sound(text_cache *tc, const char *caption) { return fstore_has(tc, (const uint8_t *)caption, strlen(caption), true); }
int text_cache_verify(text_cache *tc, text_cache_check *r, char *err, size_t errlen) { return fstore_verify(tc, r, err, errlen); }
bool text_cache_applies(const char *path) { return fstore_applies(&TEXT_CACHE_KIND, path); }

int text_cache_lookup(text_cache *tc, const char *const *captions, int B, cm_tensor **txt, cm_tensor **pooled, char *err,
                      size_t errlen) {
    size_t L = (size_t)tc->id.dim[0], D = (size_t)tc->id.dim[1], P = (size_t)tc->id.dim[2];
    fstore_entry *e = calloc((size_t)B, sizeof *e);
    CM_CHECK(e, "text_cache", "out of host memory");
    void *txn;
    int rc = fstore_begin(tc, false, &txn, err, errlen), all_bf16 = 1;
    for (int i = 0; i < B && !rc; i++) {  // every entry found and checked before any is copied
        rc = fstore_get(tc, txn, (const uint8_t *)captions[i], strlen(captions[i]), &e[i], err, errlen);
        if (rc == FSTORE_MISSING) {
            char sc[120];
            snprintf(err, errlen, "text cache %s holds no entry for %s: the cache was built before this caption was in the data; run "
                     "`cameo cache-text CONFIG` again to add it", tc->path,
                     caption_shown((const uint8_t *)captions[i], strlen(captions[i]), sc, sizeof sc));
        }
        if (!rc) all_bf16 &= e[i].dt == CM_BF16;
    }
    if (!rc) {  // bf16 as stored (half the bytes to the device), f32 when any entry is f32
        cm_dtype dt = all_bf16 ? CM_BF16 : CM_F32;
        cm_tensor *h = tensor_empty(dt, 3, (int64_t[]){B, (int64_t)L, (int64_t)D}, CM_DEV_CPU);     // [B, t5_len, joint_dim]
        cm_tensor *p = tensor_empty(dt, 2, (int64_t[]){B, (int64_t)P}, CM_DEV_CPU);                 // [B, pooled_dim]
        uint8_t *hd = tensor_data(h), *pd = tensor_data(p);
        size_t es = dtype_size(dt);
        for (int i = 0; i < B; i++) {
            fstore_entry_copy(&e[i], 0, L * D, dt, hd + (size_t)i * L * D * es);
            fstore_entry_copy(&e[i], L * D, P, dt, pd + (size_t)i * P * es);
        }
        *txt = h, *pooled = p;
    }
    fstore_abort(txn);  // the entries point into the map until here
    free(e);
    return rc ? -1 : 0;
}

int text_cache_put(text_cache *tc, const char *const *captions, int B, const cm_tensor *txt, const cm_tensor *pooled, char *err,
                   size_t errlen) {
    size_t L = (size_t)tc->id.dim[0], D = (size_t)tc->id.dim[1], P = (size_t)tc->id.dim[2];
    CM_CHECK(txt->ndim == 3 && txt->shape[0] == B && (size_t)txt->shape[1] == L && (size_t)txt->shape[2] == D &&
             pooled->ndim == 2 && pooled->shape[0] == B && (size_t)pooled->shape[1] == P && txt->dtype == pooled->dtype &&
             (txt->dtype == CM_F32 || txt->dtype == CM_BF16), "text_cache_put", "txt / pooled do not match the cache's %zu x %zu + %zu",
             L, D, P);
    cm_dtype dt = txt->dtype;
    size_t es = dtype_size(dt), row = L * D * es;
    uint8_t *ht = malloc((size_t)B * row), *hp = malloc((size_t)B * P * es);
    CM_CHECK(ht && hp, "text_cache_put", "out of host memory");
    tensor_copy_to_host(txt, dt, ht);
    tensor_copy_to_host(pooled, dt, hp);
    void *txn;
    int rc = fstore_begin(tc, true, &txn, err, errlen);
    for (int i = 0; i < B && !rc; i++) {
        const void *parts[2] = {ht + (size_t)i * row, hp + (size_t)i * P * es};
        const size_t bytes[2] = {row, P * es};
        rc = fstore_put(tc, txn, (const uint8_t *)captions[i], strlen(captions[i]), dt, parts, bytes, 2, err, errlen);
    }
    free(ht), free(hp);
    if (rc) {
        fstore_abort(txn);
        return -1;
    }
    return fstore_commit(tc, txn, err, errlen);
}
