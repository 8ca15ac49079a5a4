// latent_cache.c — see latent_cache.h. The VAE's identity, and targets' moments in and out of the
// feature store (train/feature_store.c) that holds them.
#include "train/latent_cache.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/checksum.h"
#include "data/le.h"
#include "models/vae.h"
#include "train/models.h"
#include "train/stage_setup.h"

// of the entries and of data/preprocess.c's target (bicubic cover, centre crop): a change to either
// makes every entry another's. 2: names carry the flip
#define LATENT_TARGET_VERSION 2
#define LC_NAME 21               // manifest hash, record id, bucket W, H, flipped

static void name_of(uint64_t mh, uint64_t id, int W, int H, int flip, uint8_t name[LC_NAME]) {
    le_put64(name, mh), le_put64(name + 8, id), le_put16(name + 16, (uint16_t)W), le_put16(name + 18, (uint16_t)H);
    name[20] = (uint8_t)(flip != 0);
}
// a hash of (manifest hash, W, H, flipped), then the id: one record's entries apart, the name checked on every read
static void key_of(const uint8_t *name, size_t n, uint8_t key[16]) {
    memset(key, 0, 16);
    if (n != LC_NAME) return;
    uint8_t part[13];
    memcpy(part, name, 8), memcpy(part + 8, name + 16, 5);
    le_put64(key, hash64_update(HASH64_INIT, part, sizeof part));
    memcpy(key + 8, name + 8, 8);
}
// {channels, H / factor, W / factor} of the entry of name
static void entry_dims(const int64_t store[3], const uint8_t *name, size_t n, int64_t out[3]) {
    int64_t f = store[1] > 0 ? store[1] : 1;
    out[0] = store[0];
    out[1] = n == LC_NAME ? le_get16(name + 18) / f : 0;
    out[2] = n == LC_NAME ? le_get16(name + 16) / f : 0;
}
static size_t lc_values(const int64_t d[3]) { return (size_t)(d[0] * d[1] * d[2]); }
static const char *lc_shown(const uint8_t *name, size_t n, char *buf, size_t len) {
    if (n != LC_NAME) snprintf(buf, len, "an entry of a %zu-byte name", n);
    else snprintf(buf, len, "the %ux%u%s target of record %llu of the dataset of manifest %016llx", le_get16(name + 16),
                  le_get16(name + 18), name[20] ? " flipped" : "", (unsigned long long)le_get64(name + 8), (unsigned long long)le_get64(name));
    return buf;
}

const fstore_kind LATENT_CACHE_KIND = {
    .format = "cameo-latent-cache", .what = "latent cache", .build = "cameo cache-latents", .setting = "model.latent_cache",
    .dims = {"channels", "factor", "layout"}, .magic = 0x31544c43u /* "CLT1" */, .values = lc_values, .key_of = key_of,
    .shown = lc_shown, .entry_dims = entry_dims, .set_key = "manifest and buckets",
};

int latent_cache_identity(const train_config *c, fstore_id *id, char *err, size_t errlen) {
    memset(id, 0, sizeof *id);
    const train_tiny_dims *d = c->model.tiny ? &c->model.tiny_dims : NULL;
    int64_t latent, factor;
    uint64_t h = hash64_update(HASH64_INIT, "vae", 3);
    if (d) {
        latent = d->latent_channels, factor = (int64_t)1 << (IC_TINY_VAE_LEVELS - 1);
        const int64_t v[3] = {d->vae_channels, d->latent_channels, (int64_t)c->run.seed};
        h = hash64_update(h, v, sizeof v);
        snprintf(id->encoders, sizeof id->encoders, "the tiny preset's VAE (%d channels, %d latent) of run.seed %llu", d->vae_channels,
                 d->latent_channels, (unsigned long long)c->run.seed);
    } else {
        vae_config vc;
        if (vae_detect(c->model.vae, &vc, err, errlen) || fstore_hash_folder(c->model.vae, &h, err, errlen)) return -1;
        latent = vc.latent, factor = (int64_t)1 << (vc.nlevels - 1);
        snprintf(id->encoders, sizeof id->encoders, "the VAE %.1100s", c->model.vae);
    }
    const int64_t v[3] = {LATENT_TARGET_VERSION, latent, factor};
    id->fingerprint = hash64_update(h, v, sizeof v);
    id->dim[0] = 2 * latent, id->dim[1] = factor, id->dim[2] = LATENT_TARGET_VERSION;
    return 0;
}

int latent_cache_open(latent_cache *lc, const char *path, const fstore_id *want, bool write, char *err, size_t errlen) {
    return fstore_open(&lc->s, &LATENT_CACHE_KIND, path, want, write, err, errlen);
}
void latent_cache_close(latent_cache *lc) { fstore_close(&lc->s); }
bool latent_cache_applies(const char *path) { return fstore_applies(&LATENT_CACHE_KIND, path); }

bool latent_cache_has(latent_cache *lc, uint64_t mh, uint64_t id, int W, int H, int flip, bool check) {
    uint8_t name[LC_NAME];
    name_of(mh, id, W, H, flip, name);
    return fstore_has(&lc->s, name, LC_NAME, check);
}

int latent_cache_lookup(latent_cache *lc, uint64_t mh, const int64_t *ids, const uint8_t *flipped, int B, int W, int H, cm_tensor **out,
                        char *err, size_t errlen) {
    *out = NULL;
    int64_t C = lc->s.id.dim[0], f = lc->s.id.dim[1];
    fstore_entry *e = calloc((size_t)B, sizeof *e);
    CM_CHECK(e, "latent_cache", "out of host memory");
    void *txn;
    int rc = fstore_begin(&lc->s, false, &txn, err, errlen), all_bf16 = 1;
    for (int i = 0; i < B && !rc; i++) {  // every entry found and checked before any is copied
        uint8_t name[LC_NAME];
        name_of(mh, (uint64_t)ids[i], W, H, flipped && flipped[i], name);
        rc = fstore_get(&lc->s, txn, name, LC_NAME, &e[i], err, errlen);
        if (rc == FSTORE_MISSING) {
            char sn[160];
            snprintf(err, errlen, "latent cache %s holds no entry for %s: the cache was built before it was in the data, for other "
                     "stages or buckets, or from another dataset; run `cameo cache-latents CONFIG` again with this config to add it",
                     lc->s.path, lc_shown(name, LC_NAME, sn, sizeof sn));
            rc = -1;
        }
        if (!rc) all_bf16 &= e[i].dt == CM_BF16;
    }
    if (!rc) {  // bf16 as stored (half the bytes to the device), f32 when any entry is f32
        cm_dtype dt = all_bf16 ? CM_BF16 : CM_F32;
        *out = tensor_empty(dt, 4, (int64_t[]){B, C, H / f, W / f}, CM_DEV_CPU);  // [B, C, h, w]
        uint8_t *d = tensor_data(*out);
        size_t n = (size_t)(C * (H / f) * (W / f)), es = dtype_size(dt);
        for (int i = 0; i < B; i++) fstore_entry_copy(&e[i], 0, n, dt, d + (size_t)i * n * es);
    }
    fstore_abort(txn);  // the entries point into the map until here
    free(e);
    return rc ? -1 : 0;
}

int latent_cache_put(latent_cache *lc, uint64_t mh, const uint64_t *ids, int B, int W, int H, int flip, const cm_tensor *m, char *err,
                     size_t errlen) {
    int64_t C = lc->s.id.dim[0], f = lc->s.id.dim[1];
    cm_dtype dt = m->dtype;
    CM_CHECK(m->ndim == 4 && m->shape[0] == B && m->shape[1] == C && m->shape[2] == H / f && m->shape[3] == W / f &&
             (dt == CM_F32 || dt == CM_BF16) && W % f == 0 && H % f == 0 && W < 65536 && H < 65536, "latent_cache_put",
             "moments do not match the cache's [%d, %lld, %lld, %lld]", B, (long long)C, (long long)(H / f), (long long)(W / f));
    size_t bytes = (size_t)(C * (H / f) * (W / f)) * dtype_size(dt);
    uint8_t *h = malloc((size_t)B * bytes);
    CM_CHECK(h, "latent_cache_put", "out of host memory");
    tensor_copy_to_host(m, dt, h);
    void *txn;
    int rc = fstore_begin(&lc->s, true, &txn, err, errlen);
    for (int i = 0; i < B && !rc; i++) {
        uint8_t name[LC_NAME];
        name_of(mh, ids[i], W, H, flip, name);
        const void *part = h + (size_t)i * bytes;
        rc = fstore_put(&lc->s, txn, name, LC_NAME, dt, &part, &bytes, 1, err, errlen);
    }
    free(h);
    if (rc) {
        fstore_abort(txn);
        return -1;
    }
    return fstore_commit(&lc->s, txn, err, errlen);
}

static void lc_rows(const fstore *s, const fstore_check *r) {
    printf("  latents: %lld channels (mean, logvar) at 1/%lld of the bucket's side; %llu in bf16, %llu in f32\n", (long long)s->id.dim[0],
           (long long)s->id.dim[1], (unsigned long long)r->bf16, (unsigned long long)(r->entries - r->bf16));
}

int latent_cache_inspect_cli(const char *path) { return fstore_inspect_cli(&LATENT_CACHE_KIND, path, "targets", lc_rows); }

void latent_tables_of(const train_config *c, const char *path, latent_tables *t) {
    t->n = 0;
    for (int s = 0; s < c->n_stages; s++) {
        if (c->stages[s].steps <= 0) continue;
        const char *reads[2] = {cfg_stage_data(c, s), c->validation.every > 0 ? (c->validation.path[0] ? c->validation.path
                                                                                                     : cfg_stage_data(c, s)) : NULL};
        for (int k = 0; k < 2; k++) {
            if (!reads[k] || strcmp(reads[k], path)) continue;
            int n = stage_buckets(c, s, t->bk[t->n]), same = 0;
            for (int i = 0; i < t->n && !same && n > 0; i++)
                same = t->nb[i] == n && !memcmp(t->bk[i], t->bk[t->n], (size_t)n * sizeof t->bk[i][0]);
            if (n > 0 && !same) t->nb[t->n++] = n;
        }
    }
    t->flips = c->data.random_flip ? 2 : 1;
}

uint64_t latent_cover_key(const latent_tables *t, uint64_t manifest_hash) {
    uint64_t h = hash64_update(HASH64_INIT, &manifest_hash, sizeof manifest_hash);
    if (t->flips > 1) h = hash64_update(h, &t->flips, sizeof t->flips);  // (one: the key as before flips were cached)
    for (int i = 0; i < t->n; i++) {
        h = hash64_update(h, &t->nb[i], sizeof t->nb[i]);
        h = hash64_update(h, t->bk[i], (size_t)t->nb[i] * sizeof t->bk[i][0]);
    }
    return h;
}

uint64_t latent_cover_of(const train_config *c, const char *path, uint64_t manifest_hash, char *also, size_t alen) {
    latent_tables *t = malloc(sizeof *t);
    CM_CHECK(t, "latent_cache", "out of host memory");
    latent_tables_of(c, path, t);
    uint64_t key = latent_cover_key(t, manifest_hash);
    snprintf(also, alen, " in the buckets this run puts its images in%s", t->flips > 1 ? ", flipped and not" : "");
    free(t);
    return key;
}
