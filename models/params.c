// params.c — the named-weight registry: creation, init, counting, loading and saving.
#include "models/params.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "kernels/backend.h"
#include "models/safetensors.h"

void params_init_registry(cm_params *ps, cm_device dev, cm_dtype dt, bool trainable) {
    memset(ps, 0, sizeof *ps);
    ps->dev = dev;
    ps->dtype = dt;
    ps->trainable = trainable;
}

void params_init_meta(cm_params *ps, cm_dtype dt) {
    params_init_registry(ps, CM_DEV_CPU, dt, false);
    ps->meta = true;
}

cm_tensor *params_new(cm_params *ps, const char *prefix, const char *name, int ndim, const int64_t *shape, cm_init init) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->items = realloc(ps->items, (size_t)ps->cap * sizeof *ps->items);
        CM_CHECK(ps->items, "params_new", "out of host memory");
    }
    cm_param *p = &ps->items[ps->n];
    memset(p, 0, sizeof *p);
    int len = prefix && *prefix ? snprintf(p->name, sizeof p->name, "%s.%s", prefix, name) : snprintf(p->name, sizeof p->name, "%s", name);
    CM_CHECK(len < (int)sizeof p->name, "params_new", "name too long: %s.%s", prefix ? prefix : "", name);
    for (int i = 0; i < ps->n; i++)
        CM_CHECK(strcmp(ps->items[i].name, p->name), "params_new", "duplicate parameter %s", p->name);
    p->t = ps->meta ? tensor_wrap_host(ps->dtype, ndim, shape, NULL) : tensor_zeros(ps->dtype, ndim, shape, ps->dev);
    snprintf(p->t->name, sizeof p->t->name, "%.63s", p->name);
    p->trainable = ps->trainable;
    p->init = init;
    p->init_std = 0.02;
    if (p->trainable && !ps->meta) tensor_set_requires_grad(p->t, true);
    ps->n++;
    return p->t;
}

void params_add(cm_params *ps, const char *name, cm_tensor *t) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->items = realloc(ps->items, (size_t)ps->cap * sizeof *ps->items);
        CM_CHECK(ps->items, "params_add", "out of host memory");
    }
    cm_param *p = &ps->items[ps->n++];
    memset(p, 0, sizeof *p);
    CM_CHECK(snprintf(p->name, sizeof p->name, "%s", name) < (int)sizeof p->name, "params_add", "name too long: %s", name);
    p->t = tensor_retain(t);
}

cm_tensor *params_find(const cm_params *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->items[i].name, name)) return ps->items[i].t;
    return NULL;
}

int64_t params_count(const cm_params *ps, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++)
        if (!trainable_only || ps->items[i].trainable) n += tensor_numel(ps->items[i].t);
    return n;
}

static uint64_t name_hash(const char *s, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void params_randomize(cm_params *ps, uint64_t seed) {
    if (ps->meta) return;
    for (int i = 0; i < ps->n; i++) {
        cm_param *p = &ps->items[i];
        uint64_t s = name_hash(p->name, seed);
        switch (p->init) {
        case CM_INIT_ZEROS: backend_get(ps->dev.type)->fill(backend_ctx(ps->dev), p->t->dtype, tensor_data(p->t), tensor_numel(p->t), 0.0); break;
        case CM_INIT_ONES: backend_get(ps->dev.type)->fill(backend_ctx(ps->dev), p->t->dtype, tensor_data(p->t), tensor_numel(p->t), 1.0); break;
        case CM_INIT_NORMAL: tensor_fill_randn(p->t, s, p->init_std); break;
        case CM_INIT_LINEAR_DEFAULT: {  // PyTorch nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            int64_t fan_in = p->t->ndim >= 2 ? tensor_numel(p->t) / p->t->shape[0] : p->t->shape[0];
            double bound = 1.0 / sqrt((double)(fan_in > 0 ? fan_in : 1));
            tensor_fill_uniform(p->t, s, -bound, bound);
            break;
        }
        }
    }
}

void params_set_trainable(cm_params *ps, bool trainable) {
    for (int i = 0; i < ps->n; i++) {
        ps->items[i].trainable = trainable;
        if (!ps->meta) tensor_set_requires_grad(ps->items[i].t, trainable);
    }
}

int params_freeze_prefix(cm_params *ps, const char *prefix) {
    size_t k = strlen(prefix);
    int n = 0;
    for (int i = 0; i < ps->n; i++) {
        cm_param *p = &ps->items[i];
        if (!p->trainable || strncmp(p->name, prefix, k) || (p->name[k] && p->name[k] != '.')) continue;
        p->frozen = true;
        if (!ps->meta) tensor_set_requires_grad(p->t, false);
        n++;
    }
    return n;
}

void params_set_info(cm_params *ps, const char *key, const char *value) {
    int i = 0;
    while (i < ps->n_info && strcmp(ps->info[i].key, key)) i++;
    CM_CHECK(i < (int)(sizeof ps->info / sizeof ps->info[0]), "params_set_info", "too many entries (at %s)", key);
    snprintf(ps->info[i].key, sizeof ps->info[i].key, "%s", key);
    snprintf(ps->info[i].value, sizeof ps->info[i].value, "%s", value);
    if (i == ps->n_info) ps->n_info++;
}

void params_free(cm_params *ps) {
    for (int i = 0; i < ps->n; i++) tensor_release(ps->items[i].t);
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

static void shape_str(int nd, const int64_t *s, char *b, size_t n) {
    size_t o = (size_t)snprintf(b, n, "[");
    for (int d = 0; d < nd && o < n; d++) o += (size_t)snprintf(b + o, n - o, d ? ", %lld" : "%lld", (long long)s[d]);
    if (o < n) snprintf(b + o, n - o, "]");
}

// copies a file tensor (any supported dtype) into the parameter, converting the dtype
static void load_into(cm_tensor *dst, const st_entry *e) {
    const cm_backend *cpu = backend_get(CM_CPU);
    int64_t n = tensor_numel(dst);
    int64_t shp[1] = {n}, st1[1] = {1};
    if (dst->storage->dev.type == CM_CPU) {
        cpu->copy_strided(backend_ctx(CM_DEV_CPU), 1, shp, dst->dtype, tensor_data(dst), st1, e->dtype, e->data, st1);
        return;
    }
    void *h = malloc(tensor_nbytes(dst) + 1);
    CM_CHECK(h, "params_load", "out of host memory");
    cpu->copy_strided(backend_ctx(CM_DEV_CPU), 1, shp, dst->dtype, h, st1, e->dtype, e->data, st1);
    backend_get(dst->storage->dev.type)->memcpy_h2d(backend_ctx(dst->storage->dev), tensor_data(dst), h, tensor_nbytes(dst));
    backend_get(dst->storage->dev.type)->sync(backend_ctx(dst->storage->dev));
    free(h);
}

int params_load(cm_params *ps, const char *path, const char *strip, bool strict, int *n_extra, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    size_t sl = strip ? strlen(strip) : 0;
    int extra = 0, rc = 0;
    bool *found = calloc((size_t)ps->n + 1, 1);
    for (int i = 0; i < st_index_count(ix) && !rc; i++) {
        const st_entry *e = st_index_at(ix, i);
        const char *key = e->name;
        if (sl) {
            if (strncmp(key, strip, sl)) { extra++; continue; }
            key += sl;
        }
        int j = 0;
        while (j < ps->n && strcmp(ps->items[j].name, key)) j++;
        if (j == ps->n) {
            if (strict) {
                snprintf(err, errlen, "%s: unexpected tensor '%s' (not a parameter of this model)", path, e->name);
                rc = -1;
            }
            extra++;
            continue;
        }
        cm_tensor *t = ps->items[j].t;
        bool ok = e->ndim == t->ndim;
        for (int d = 0; ok && d < t->ndim; d++) ok = e->shape[d] == t->shape[d];
        if (!ok) {
            char a[96], b[96];
            shape_str(t->ndim, t->shape, a, sizeof a);
            shape_str(e->ndim, e->shape, b, sizeof b);
            snprintf(err, errlen, "%s: tensor '%s' has shape %s, expected %s", path, e->name, b, a);
            rc = -1;
            break;
        }
        if (!dtype_is_float(e->dtype) && dtype_is_float(t->dtype)) {
            snprintf(err, errlen, "%s: tensor '%s' has dtype %s, expected F32, BF16, F16 or F64 (an FP8 or integer file needs "
                     "converting first)", path, e->name, e->dtype_str);
            rc = -1;
            break;
        }
        if (!ps->meta) load_into(t, e);
        found[j] = true;
    }
    for (int j = 0; j < ps->n && !rc; j++) {
        if (found[j]) continue;
        char a[96];
        shape_str(ps->items[j].t->ndim, ps->items[j].t->shape, a, sizeof a);
        snprintf(err, errlen, "%s: missing tensor '%s%s' (expected shape %s)", path, strip ? strip : "", ps->items[j].name, a);
        rc = -1;
    }
    free(found);
    st_index_close(ix);
    if (n_extra) *n_extra = extra;
    return rc;
}

int params_save(const cm_params *ps, const char *path, bool trainable_only, cm_dtype dt, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    for (int i = 0; i < ps->n; i++) {
        const cm_param *p = &ps->items[i];
        if (trainable_only && !p->trainable) continue;
        size_t nb = (size_t)tensor_numel(p->t) * dtype_size(dt);
        void *h = malloc(nb + 1);
        CM_CHECK(h, "params_save", "out of host memory");
        tensor_copy_to_host(p->t, dt, h);
        st_writer_add_copy(w, p->name, dt, p->t->ndim, p->t->shape, h);
        free(h);
    }
    st_writer_meta(w, "format", "pt");  // torch tensors: what save_file / from_pretrained write and check
    for (int i = 0; i < ps->n_info; i++) st_writer_meta(w, ps->info[i].key, ps->info[i].value);
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}
