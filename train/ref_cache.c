// ref_cache.c — see ref_cache.h. The towers' identity, and references in and out of the feature
// store (train/feature_store.c) that holds their features.
#include "train/ref_cache.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/ops.h"
#include "data/checksum.h"
#include "data/le.h"
#include "train/models.h"

#define REF_VIEWS_VERSION 1  // of data/preprocess.c's reference views: a change to them changes every feature

// {tokens N, width W, shallow S}: low N + shallow S·N + high 4N rows of W
static size_t rc_values(const int64_t d[3]) { return (size_t)(d[0] * d[1] * (1 + d[2] + 4)); }

static void name_of(uint64_t mh, uint64_t id, uint8_t name[16]) { le_put64(name, mh), le_put64(name + 8, id); }
static void key_of(const uint8_t *name, size_t n, uint8_t key[16]) {
    memset(key, 0, 16);
    memcpy(key, name, n < 16 ? n : 16);
}
static const char *ref_shown(const uint8_t *name, size_t n, char *buf, size_t len) {
    if (n != 16) snprintf(buf, len, "an entry of a %zu-byte name", n);
    else if (le_get64(name + 8) == REF_CACHE_DROPPED) snprintf(buf, len, "the dropped reference (zero views)");
    else snprintf(buf, len, "reference %llu of the dataset of manifest %016llx", (unsigned long long)le_get64(name + 8),
                  (unsigned long long)le_get64(name));
    return buf;
}

const fstore_kind REF_CACHE_KIND = {
    .format = "cameo-ref-cache", .what = "reference cache", .build = "cameo cache-refs", .setting = "model.ref_cache",
    .dims = {"tokens", "width", "shallow"}, .magic = 0x31465243u /* "CRF1" */, .values = rc_values, .key_of = key_of,
    .shown = ref_shown,
};

int ref_cache_identity(const train_config *c, fstore_id *id, char *err, size_t errlen) {
    memset(id, 0, sizeof *id);
    const train_tiny_dims *d = c->model.tiny ? &c->model.tiny_dims : NULL;
    int64_t tokens, width;
    vision_feat_config vfc;
    int side;
    if (ic_models_vision_shape(d, c->model.siglip, c->model.dinov2, c->data.ref_size, &tokens, &width, &vfc, &side, err, errlen))
        return -1;
    uint64_t h = hash64_update(HASH64_INIT, "vision", 6);
    if (d) {
        const int64_t v[6] = {d->vision_hidden, d->vision_layers, d->vision_heads, d->vision_patch, d->vision_image, (int64_t)c->run.seed};
        h = hash64_update(h, v, sizeof v);
        snprintf(id->encoders, sizeof id->encoders, "the tiny preset's SigLIP and DINOv2 (%d wide, %d layers) of run.seed %llu, on "
                 "%d px views", d->vision_hidden, d->vision_layers, (unsigned long long)c->run.seed, side);
    } else {
        if (fstore_hash_folder(c->model.siglip, &h, err, errlen) || fstore_hash_folder(c->model.dinov2, &h, err, errlen)) return -1;
        snprintf(id->encoders, sizeof id->encoders, "SigLIP %.540s and DINOv2 %.540s on %d px views", c->model.siglip, c->model.dinov2,
                 side);
    }
    const int64_t v[5] = {side, REF_VIEWS_VERSION, tokens, width, vfc.n_shallow};
    h = hash64_update(h, v, sizeof v);
    h = hash64_update(h, vfc.siglip_layers, sizeof vfc.siglip_layers);
    id->fingerprint = hash64_update(h, vfc.dino_layers, sizeof vfc.dino_layers);
    id->dim[0] = tokens, id->dim[1] = width, id->dim[2] = vfc.n_shallow;
    return 0;
}

int ref_cache_open(ref_cache *rc, const char *path, const fstore_id *want, bool write, char *err, size_t errlen) {
    rc->fallbacks = 0;
    return fstore_open(&rc->s, &REF_CACHE_KIND, path, want, write, err, errlen);
}
void ref_cache_close(ref_cache *rc) { fstore_close(&rc->s); }
bool ref_cache_applies(const char *path) { return fstore_applies(&REF_CACHE_KIND, path); }

bool ref_cache_has(ref_cache *rc, uint64_t mh, uint64_t id, bool check) {
    uint8_t name[16];
    name_of(id == REF_CACHE_DROPPED ? 0 : mh, id, name);
    return fstore_has(&rc->s, name, 16, check);
}

int ref_cache_lookup(ref_cache *rc, uint64_t mh, const int64_t *ref_ids, const int64_t *self_ids, const uint8_t *dropped, int B,
                     vision_features *out, char *err, size_t errlen) {
    int64_t N = rc->s.id.dim[0], W = rc->s.id.dim[1], S = rc->s.id.dim[2];
    fstore_entry *e = calloc((size_t)B, sizeof *e);
    CM_CHECK(e, "ref_cache", "out of host memory");
    void *txn;
    int rc_ = fstore_begin(&rc->s, false, &txn, err, errlen), all_bf16 = 1;
    uint64_t fell = 0;
    for (int i = 0; i < B && !rc_; i++) {  // every entry found and checked before any is copied
        uint8_t name[16];
        uint64_t id = dropped && dropped[i] ? REF_CACHE_DROPPED : (uint64_t)ref_ids[i];
        name_of(id == REF_CACHE_DROPPED ? 0 : mh, id, name);
        rc_ = fstore_get(&rc->s, txn, name, 16, &e[i], err, errlen);
        if (rc_ == FSTORE_MISSING && id != REF_CACHE_DROPPED && self_ids && self_ids[i] != ref_ids[i]) {
            name_of(mh, (uint64_t)self_ids[i], name);  // a paired reference the build found damaged: the target's, as the loader does
            if ((rc_ = fstore_get(&rc->s, txn, name, 16, &e[i], err, errlen)) == 0) fell++;
        }
        if (rc_ == FSTORE_MISSING) {
            char sn[120];
            snprintf(err, errlen, "reference cache %s holds no entry for %s: the cache was built before it was in the data (or from "
                     "another dataset); run `cameo cache-refs CONFIG` again to add it", rc->s.path, ref_shown(name, 16, sn, sizeof sn));
            rc_ = -1;
        }
        if (!rc_) all_bf16 &= e[i].dt == CM_BF16;
    }
    if (!rc_) {  // bf16 as stored (half the bytes to the device), f32 when any entry is f32
        cm_dtype dt = all_bf16 ? CM_BF16 : CM_F32;
        cm_tensor **t[3] = {&out->low_res_deep, &out->low_res_shallow, &out->high_res_deep};
        const int64_t rows[3] = {N, S * N, 4 * N};
        size_t es = dtype_size(dt), from = 0;
        for (int k = 0; k < 3; k++) {
            *t[k] = tensor_empty(dt, 3, (int64_t[]){B, rows[k], W}, CM_DEV_CPU);  // [B, rows, W]
            uint8_t *d = tensor_data(*t[k]);
            size_t n = (size_t)(rows[k] * W);
            for (int i = 0; i < B; i++) fstore_entry_copy(&e[i], from, n, dt, d + (size_t)i * n * es);
            from += n;
        }
        rc->fallbacks += fell;
    }
    fstore_abort(txn);  // the entries point into the map until here
    free(e);
    return rc_ ? -1 : 0;
}

int ref_cache_put(ref_cache *rc, uint64_t mh, const uint64_t *ids, int B, const vision_features *f, char *err, size_t errlen) {
    int64_t N = rc->s.id.dim[0], W = rc->s.id.dim[1], S = rc->s.id.dim[2];
    const cm_tensor *t[3] = {f->low_res_deep, f->low_res_shallow, f->high_res_deep};
    const int64_t rows[3] = {N, S * N, 4 * N};
    cm_dtype dt = t[0]->dtype;
    for (int k = 0; k < 3; k++)
        CM_CHECK(t[k]->ndim == 3 && t[k]->shape[0] == B && t[k]->shape[1] == rows[k] && t[k]->shape[2] == W && t[k]->dtype == dt &&
                 (dt == CM_F32 || dt == CM_BF16), "ref_cache_put", "features %d do not match the cache's [%d, %lld, %lld]", k, B,
                 (long long)rows[k], (long long)W);
    size_t es = dtype_size(dt);
    uint8_t *h[3];
    for (int k = 0; k < 3; k++) {
        h[k] = malloc((size_t)B * (size_t)(rows[k] * W) * es);
        CM_CHECK(h[k], "ref_cache_put", "out of host memory");
        tensor_copy_to_host(t[k], dt, h[k]);
    }
    void *txn;
    int rc_ = fstore_begin(&rc->s, true, &txn, err, errlen);
    for (int i = 0; i < B && !rc_; i++) {
        uint8_t name[16];
        name_of(ids[i] == REF_CACHE_DROPPED ? 0 : mh, ids[i], name);
        const size_t bytes[3] = {(size_t)(rows[0] * W) * es, (size_t)(rows[1] * W) * es, (size_t)(rows[2] * W) * es};
        const void *parts[3] = {h[0] + (size_t)i * bytes[0], h[1] + (size_t)i * bytes[1], h[2] + (size_t)i * bytes[2]};
        rc_ = fstore_put(&rc->s, txn, name, 16, dt, parts, bytes, 3, err, errlen);
    }
    for (int k = 0; k < 3; k++) free(h[k]);
    if (rc_) {
        fstore_abort(txn);
        return -1;
    }
    return fstore_commit(&rc->s, txn, err, errlen);
}

static void ref_rows(const fstore *s, const fstore_check *r) {
    printf("  features: %lld tokens a view x %lld wide, %lld shallow layers: %lld rows a reference; %llu in bf16, %llu in f32\n",
           (long long)s->id.dim[0], (long long)s->id.dim[1], (long long)s->id.dim[2], (long long)(s->id.dim[0] * (5 + s->id.dim[2])),
           (unsigned long long)r->bf16, (unsigned long long)(r->entries - r->bf16));
}

int ref_cache_inspect_cli(const char *path) { return fstore_inspect_cli(&REF_CACHE_KIND, path, "references", ref_rows); }
