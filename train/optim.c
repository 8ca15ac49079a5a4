// optim.c — AdamW with f32 masters and moments over a shard of the flattened trainable params.
#include "autograd/tensor.h"
#include "train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "kernels/backend.h"
#include "models/atomic_file.h"
#include "models/safetensors.h"
#include "kernels/sr_round.h"

#define OPTIM_FORMAT "cameo-adamw-1"


// what the optimizer updates: trainable parameters not held fixed this run
static bool optim_takes(const cm_param *p) { return p->trainable && !p->frozen; }

optim_config optim_config_default(void) {
    return (optim_config){.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .grad_clip = 1.0};
}

static void contig_strides(const cm_tensor *t, int64_t *st) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= t->shape[d];
    }
}

// dst (contiguous, dst_dt) = cast(src view)
static void copy_cast(cm_device dev, cm_dtype dst_dt, void *dst, const cm_tensor *src) {
    const cm_backend *be = backend_get(dev.type);
    int64_t dst_st[CM_MAX_DIMS];
    contig_strides(src, dst_st);
    int ndim = src->ndim;
    int64_t one = 1, zero = 0;
    if (ndim == 0)  // scalar: a 1-element index space
        be->copy_strided(backend_ctx(dev), 1, &one, dst_dt, dst, &zero, src->dtype, tensor_data(src), &zero);
    else
        be->copy_strided(backend_ctx(dev), ndim, src->shape, dst_dt, dst, dst_st, src->dtype, tensor_data(src), src->stride);
}

// param view = cast(src: the master, or the average; contiguous f32)
static void f32_to_param(optim_slot *s, const cm_tensor *src) {
    cm_tensor *p = s->param->t;
    cm_device dev = p->storage->dev;
    const cm_backend *be = backend_get(dev.type);
    int64_t src_st[CM_MAX_DIMS];
    contig_strides(p, src_st);
    int64_t one = 1, zero = 0;
    if (p->ndim == 0)
        be->copy_strided(backend_ctx(dev), 1, &one, p->dtype, tensor_data(p), &zero, CM_F32, tensor_data(src), &zero);
    else
        be->copy_strided(backend_ctx(dev), p->ndim, p->shape, p->dtype, tensor_data(p), p->stride, CM_F32,
                         tensor_data(src), src_st);
}
static void master_to_param(optim_slot *s) { f32_to_param(s, s->master); }

// the weight average set to the masters (a fresh start)
static void ema_reset(optim *o) {
    for (int i = 0; i < o->end - o->begin; i++) {
        optim_slot *s = &o->slot[i];
        if (!s->ema) continue;
        cm_device dev = s->master->storage->dev;
        backend_get(dev.type)->memcpy_d2d(backend_ctx(dev), tensor_data(s->ema), tensor_data(s->master), (size_t)s->n * 4);
    }
    o->ema_updates = 0;
}

// the decay d of this update's average, ema = d ema + (1 - d) master; -1 = no average. With warm-up
// as diffusers' EMAModel.get_decay: 0 at the first update (the average takes the updated weights),
// then (1 + u) / (10 + u) at the u-th (u from 0) while that is smaller than cfg.ema_decay
static double ema_decay_now(const optim *o) {
    if (o->cfg.ema_decay <= 0) return -1;
    double d = o->cfg.ema_decay, u = (double)o->ema_updates;
    if (o->cfg.ema_warmup && u == 0) return 0;
    if (o->cfg.ema_warmup && (1 + u) / (10 + u) < d) d = (1 + u) / (10 + u);
    return d;
}

// the averages AdamW did not make from its update (averaged[i] false): the owned parameters
// without a gradient, whose average still moves toward their unchanged master (as EMAModel's)
static void ema_rest(optim *o, double d, const bool *averaged) {
    for (int i = 0; i < o->end - o->begin; i++) {
        optim_slot *s = &o->slot[i];
        if (averaged[i]) continue;
        cm_device dev = s->master->storage->dev;
        backend_get(dev.type)->axpby(backend_ctx(dev), CM_F32, s->n, 1 - d, tensor_data(s->master), d, tensor_data(s->ema));
    }
    o->ema_updates++;
}

int optim_init(optim *o, cm_params **regs, int n_regs, const optim_config *cfg, int begin, int end, char *err,
               size_t errlen) {
    memset(o, 0, sizeof *o);
    o->cfg = cfg ? *cfg : optim_config_default();
    if (o->cfg.state_dtype != CM_F32 && o->cfg.state_dtype != CM_BF16) {
        cm_seterr(err, errlen, "optim: moment dtype %s (allowed: f32, bf16)", dtype_name(o->cfg.state_dtype));
        return -1;
    }
    if (!(o->cfg.ema_decay >= 0 && o->cfg.ema_decay < 1)) {
        cm_seterr(err, errlen, "optim: weight average decay %g (allowed: 0 = none, or in (0, 1))", o->cfg.ema_decay);
        return -1;
    }
    int n = 0;
    for (int r = 0; r < n_regs; r++) {
        if (regs[r]->meta) {
            cm_seterr(err, errlen, "optim: registry %d is a meta registry (names and shapes only, no memory)", r);
            return -1;
        }
        for (int i = 0; i < regs[r]->n; i++) n += optim_takes(&regs[r]->items[i]);
    }
    if (!n) {
        cm_seterr(err, errlen, "optim: no trainable parameters in the %d registr%s given", n_regs, n_regs == 1 ? "y" : "ies");
        return -1;
    }
    o->all = calloc((size_t)n, sizeof *o->all);
    o->ready = calloc((size_t)n, sizeof *o->ready);
    int k = 0;
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++)
            if (optim_takes(&regs[r]->items[i])) o->all[k++] = &regs[r]->items[i];
    o->n_all = n;
    if (end < 0) end = n;
    if (begin < 0 || begin > end || end > n) {
        cm_seterr(err, errlen, "optim: shard [%d, %d) is not inside the %d trainable parameters", begin, end, n);
        optim_free(o);
        return -1;
    }
    o->begin = begin, o->end = end;
    o->n_shards = 1;
    o->slot = calloc((size_t)(end - begin) + 1, sizeof *o->slot);
    for (int i = begin; i < end; i++) {
        optim_slot *s = &o->slot[i - begin];
        cm_tensor *p = o->all[i]->t;
        s->param = o->all[i];
        s->index = i;
        s->n = tensor_numel(p);
        cm_device dev = p->storage->dev;
        if (p->dtype == CM_F32 && tensor_is_contiguous(p)) {
            s->master = tensor_retain(p);
            s->master_is_param = true;
        } else {
            if (!dtype_is_float(p->dtype)) {
                cm_seterr(err, errlen, "optim: %s: dtype %s cannot be trained (allowed: f32, bf16, f16)", s->param->name,
                       dtype_name(p->dtype));
                optim_free(o);
                return -1;
            }
            s->master = tensor_empty(CM_F32, p->ndim, p->shape, dev);
            copy_cast(dev, CM_F32, tensor_data(s->master), p);
        }
        s->m = tensor_zeros(o->cfg.state_dtype, p->ndim, p->shape, dev);
        s->v = tensor_zeros(o->cfg.state_dtype, p->ndim, p->shape, dev);
        if (o->cfg.ema_decay > 0) s->ema = tensor_empty(CM_F32, p->ndim, p->shape, dev);
    }
    ema_reset(o);
    return 0;
}

void optim_master_registry(optim *o, cm_params *out) {
    params_init_registry(out, CM_DEV_CPU, CM_F32, false);
    for (int i = 0; i < o->end - o->begin; i++) {
        optim_slot *s = &o->slot[i];
        if (s->master_is_param) continue;
        out->dev = s->master->storage->dev;
        params_add(out, s->param->name, s->master);
    }
}

void optim_masters_loaded(optim *o) {
    for (int i = 0; i < o->end - o->begin; i++)
        if (!o->slot[i].master_is_param) master_to_param(&o->slot[i]);
    ema_reset(o);
}

int optim_init_sharded(optim *o, cm_params **regs, int n_regs, const optim_config *cfg, int shard, int n_shards,
                       char *err, size_t errlen) {
    if (n_shards < 1 || shard < 0 || shard >= n_shards) {
        cm_seterr(err, errlen, "optim: shard %d of %d does not exist", shard, n_shards);
        return -1;
    }
    int n = 0;
    int64_t total = 0;
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++)
            if (optim_takes(&regs[r]->items[i])) n++, total += tensor_numel(regs[r]->items[i].t);
    int *bounds = calloc((size_t)n_shards + 1, sizeof *bounds);
    int64_t *prefix = calloc((size_t)n + 1, sizeof *prefix);  // [n + 1] elements of params [0, k)
    CM_CHECK(bounds && prefix, "optim", "out of host memory for %d shards", n_shards);
    int k = 0;
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++)
            if (optim_takes(&regs[r]->items[i])) prefix[k + 1] = prefix[k] + tensor_numel(regs[r]->items[i].t), k++;
    // cut r ends where the prefix comes closest to r/n_shards of all elements (cuts never go back)
    bounds[n_shards] = n;
    for (int r = 1, c = 0; r < n_shards; r++) {
        double target = (double)total * r / n_shards;
        while (c < n && (double)prefix[c + 1] <= target) c++;
        if (c < n && (double)prefix[c + 1] - target < target - (double)prefix[c]) c++;
        bounds[r] = c;
    }
    free(prefix);
    int rc = optim_init(o, regs, n_regs, cfg, bounds[shard], bounds[shard + 1], err, errlen);
    if (rc) {
        free(bounds);
        return -1;
    }
    o->bounds = bounds, o->n_shards = n_shards, o->shard = shard;
    return 0;
}

int optim_owner(const optim *o, int i) {
    if (!o->bounds) return 0;
    int r = 0;
    while (r + 1 < o->n_shards && o->bounds[r + 1] <= i) r++;
    return r;
}

void optim_free(optim *o) {
    if (o->slot)
        for (int i = 0; i < o->end - o->begin; i++) {
            tensor_release(o->slot[i].master);
            tensor_release(o->slot[i].m);
            tensor_release(o->slot[i].v);
            tensor_release(o->slot[i].ema);
            tensor_release(o->slot[i].held);
        }
    free(o->slot);
    free(o->all);
    free(o->ready);
    free(o->bounds);
    memset(o, 0, sizeof *o);
}

int optim_n_params(const optim *o) { return o->n_all; }
cm_param *optim_param_at(const optim *o, int i) { return i >= 0 && i < o->n_all ? o->all[i] : NULL; }
int64_t optim_numel(const optim *o, bool owned_only) {
    int64_t n = 0;
    for (int i = owned_only ? o->begin : 0; i < (owned_only ? o->end : o->n_all); i++) n += tensor_numel(o->all[i]->t);
    return n;
}

void optim_grad_ready(optim *o, int param_index) {
    CM_CHECK(param_index >= 0 && param_index < o->n_all, "optim_grad_ready", "index %d outside 0..%d", param_index,
             o->n_all - 1);
    o->ready[param_index] = true;
}

// the gradient as a contiguous buffer of a dtype the backend's kernels read; *tmp owns a copy
static const void *grad_buffer(const cm_tensor *g, bool need_f32, cm_dtype *gdt, cm_tensor **tmp) {
    *tmp = NULL;
    bool ok_dtype = g->dtype == CM_F32 || (!need_f32 && g->dtype == CM_BF16);
    if (ok_dtype && tensor_is_contiguous(g)) {
        *gdt = g->dtype;
        return tensor_data(g);
    }
    cm_device dev = g->storage->dev;
    *tmp = tensor_empty(CM_F32, g->ndim, g->shape, dev);
    copy_cast(dev, CM_F32, tensor_data(*tmp), g);
    *gdt = CM_F32;
    return tensor_data(*tmp);
}

// the members of the (device, gradient dtype) group of entry i (itself first, then the later ones in
// list order) that are not done yet; marks them done and returns how many
static int group_of(int i, int nl, const cm_dtype *gdt, const cm_device *dev, bool *done, int *members) {
    int ng = 0;
    for (int j = i; j < nl; j++)
        if (!done[j] && gdt[j] == gdt[i] && device_eq(dev[j], dev[i])) members[ng++] = j, done[j] = true;
    return ng;
}

// one sumsq_multi per (device, gradient dtype) group: one host synchronisation per group, not
// per tensor. On the CPU (cheap to call per tensor) each tensor's own sum, so that a sharded run's
// parts add up to the bits of one rank's loop over all tensors.
void optim_local_sumsq_parts(const optim *o, double *parts) {
    for (int i = 0; i < o->n_all; i++) parts[i] = 0;
    int n = o->end - o->begin, nl = 0;
    const void **x = calloc((size_t)n + 1, sizeof *x), **gx = calloc((size_t)n + 1, sizeof *gx);
    int64_t *cnt = calloc((size_t)n + 1, sizeof *cnt), *gn = calloc((size_t)n + 1, sizeof *gn);
    cm_dtype *gdt = calloc((size_t)n + 1, sizeof *gdt);
    cm_device *dev = calloc((size_t)n + 1, sizeof *dev);
    cm_tensor **tmp = calloc((size_t)n + 1, sizeof *tmp);
    bool *done = calloc((size_t)n + 1, sizeof *done);
    int *mem = calloc((size_t)n + 1, sizeof *mem), *idx = calloc((size_t)n + 1, sizeof *idx);
    CM_CHECK(x && gx && cnt && gn && gdt && dev && tmp && done && mem && idx, "optim", "out of host memory for %d parameters", n);
    for (int i = o->begin; i < o->end; i++) {
        const cm_tensor *g = o->all[i]->t->grad;
        if (!g) continue;
        dev[nl] = g->storage->dev;
        // the CPU kernel reads f32/f64; CUDA reads f32/bf16
        x[nl] = grad_buffer(g, dev[nl].type == CM_CPU, &gdt[nl], &tmp[nl]);
        idx[nl] = i;
        cnt[nl++] = tensor_numel(g);
    }
    for (int i = 0; i < nl; i++) {
        if (done[i]) continue;
        const cm_backend *be = backend_get(dev[i].type);
        if (dev[i].type == CM_CPU) {
            parts[idx[i]] = be->sumsq_multi(backend_ctx(dev[i]), gdt[i], 1, &x[i], &cnt[i]);
            done[i] = true;
            continue;
        }
        int ng = group_of(i, nl, gdt, dev, done, mem);
        for (int j = 0; j < ng; j++) gx[j] = x[mem[j]], gn[j] = cnt[mem[j]];
        parts[idx[i]] += be->sumsq_multi(backend_ctx(dev[i]), gdt[i], ng, gx, gn);
    }
    for (int i = 0; i < nl; i++) tensor_release(tmp[i]);
    free(x), free(gx), free(cnt), free(gn), free(gdt), free(dev), free(tmp), free(done), free(mem), free(idx);
}

double optim_sum_parts(const optim *o, const double *parts) {
    double s = 0;
    for (int i = 0; i < o->n_all; i++) s += parts[i];
    return s;
}

double optim_local_sumsq(const optim *o) {
    double *parts = calloc((size_t)o->n_all + 1, sizeof *parts);
    CM_CHECK(parts, "optim", "out of host memory for %d parameters", o->n_all);
    optim_local_sumsq_parts(o, parts);
    double s = optim_sum_parts(o, parts);
    free(parts);
    return s;
}

static void zero_owned(optim *o) {
    for (int i = o->begin; i < o->end; i++) {
        tensor_zero_grad(o->all[i]->t);
        o->ready[i] = false;
    }
}

int optim_apply(optim *o, double lr, double grad_norm, optim_step_info *info) {
    return optim_apply_scaled(o, lr, grad_norm, 1.0, info);
}

int optim_apply_scaled(optim *o, double lr, double grad_norm, double grad_mult, optim_step_info *info) {
    grad_norm *= grad_mult;  // the norm of the gradients meant; the update scales the held ones by gscale
    optim_step_info inf = {.grad_norm = grad_norm, .gscale = grad_mult, .lr = lr};
    if (!isfinite(grad_norm)) {
        inf.skipped = true;
        o->skipped++;
        o->skipped_in_row++;
        zero_owned(o);
        if (info) *info = inf;
        return 1;
    }
    if (o->cfg.grad_clip > 0) {
        double c = o->cfg.grad_clip / (grad_norm + 1e-6);
        if (c < 1) inf.gscale = grad_mult * c;
    }
    const double t = (double)(o->step + 1);
    const double bc1 = 1 - pow(o->cfg.beta1, t), bc2 = 1 - pow(o->cfg.beta2, t);
    // one multi-tensor AdamW per (device, gradient dtype) group of the owned parameters with a
    // gradient — one launch per 64 tensors on CUDA instead of one per tensor; the same bits
    int n_own = o->end - o->begin, nl = 0;
    cm_adamw_tensor *list = calloc((size_t)n_own + 1, sizeof *list);
    cm_dtype *gdt = calloc((size_t)n_own + 1, sizeof *gdt);
    cm_device *dev = calloc((size_t)n_own + 1, sizeof *dev);
    cm_tensor **tmp = calloc((size_t)n_own + 1, sizeof *tmp);
    bool *fused = calloc((size_t)n_own + 1, sizeof *fused);  // slot's bf16 weights written by the update
    bool *averaged = calloc((size_t)n_own + 1, sizeof *averaged);  // slot's average made by the update
    CM_CHECK(list && gdt && dev && tmp && fused && averaged, "optim", "out of host memory for %d parameters", n_own);
    const double ema_d = ema_decay_now(o);
    for (int i = o->begin; i < o->end; i++) {
        optim_slot *s = &o->slot[i - o->begin];
        const cm_tensor *g = s->param->t->grad;
        if (!g) {  // as PyTorch: a parameter without a gradient is not touched
            inf.n_missing_grad++;
            continue;
        }
        CM_CHECK(tensor_numel(g) == s->n, "optim", "%s: gradient has %lld elements, parameter %lld", s->param->name,
                 (long long)tensor_numel(g), (long long)s->n);
        dev[nl] = s->master->storage->dev;
        const void *gp = grad_buffer(g, false, &gdt[nl], &tmp[nl]);
        // a contiguous bf16 parameter gets its copy of the master from the update itself (no cast
        // pass reading the master again); others go through master_to_param below
        cm_tensor *pt = s->param->t;
        fused[i - o->begin] = !s->master_is_param && pt->dtype == CM_BF16 && tensor_is_contiguous(pt);
        averaged[i - o->begin] = ema_d >= 0;  // the update makes the average from the new master in registers
        list[nl] = (cm_adamw_tensor){tensor_data(s->master), gp, tensor_data(s->m), tensor_data(s->v), s->n,
                                     cm_sr_key((uint64_t)s->index, (uint64_t)o->step),
                                     fused[i - o->begin] ? (uint16_t *)tensor_data(pt) : NULL,
                                     ema_d >= 0 ? (float *)tensor_data(s->ema) : NULL};
        nl++;
    }
    cm_adamw_tensor *group = calloc((size_t)nl + 1, sizeof *group);
    bool *done = calloc((size_t)nl + 1, sizeof *done);
    int *mem = calloc((size_t)nl + 1, sizeof *mem);
    CM_CHECK(group && done && mem, "optim", "out of host memory for %d parameters", nl);
    for (int i = 0; i < nl; i++) {
        if (done[i]) continue;
        int ng = group_of(i, nl, gdt, dev, done, mem);
        for (int j = 0; j < ng; j++) group[j] = list[mem[j]];
        backend_get(dev[i].type)->adamw_multi(backend_ctx(dev[i]), ng, group, gdt[i], o->cfg.state_dtype, lr, o->cfg.beta1, o->cfg.beta2,
                                              o->cfg.eps, o->cfg.weight_decay, bc1, bc2, inf.gscale, ema_d < 0 ? 0 : ema_d);
    }
    for (int i = 0; i < nl; i++) tensor_release(tmp[i]);
    for (int i = o->begin; i < o->end; i++) {
        optim_slot *s = &o->slot[i - o->begin];
        if (s->param->t->grad && !s->master_is_param && !fused[i - o->begin]) master_to_param(s);
    }
    if (ema_d >= 0) ema_rest(o, ema_d, averaged);
    free(averaged);
    free(fused);
    free(group);
    free(done);
    free(mem);
    free(list);
    free(gdt);
    free(dev);
    free(tmp);
    o->step++;
    o->skipped_in_row = 0;
    zero_owned(o);
    if (info) *info = inf;
    return 0;
}

int optim_step(optim *o, double lr, optim_step_info *info) {
    return optim_apply(o, lr, sqrt(optim_local_sumsq(o)), info);
}

void optim_swap_ema(optim *o, bool in) {
    for (int i = 0; i < o->end - o->begin; i++) {
        optim_slot *s = &o->slot[i];
        if (!s->ema) continue;
        cm_device dev = s->master->storage->dev;
        const cm_backend *be = backend_get(dev.type);
        size_t nb = (size_t)s->n * 4;
        if (!s->master_is_param) f32_to_param(s, in ? s->ema : s->master);
        else if (in) {
            CM_CHECK(!s->held, "optim", "%s: the weight average swapped in twice", s->param->name);
            s->held = tensor_empty(CM_F32, s->master->ndim, s->master->shape, dev);
            be->memcpy_d2d(backend_ctx(dev), tensor_data(s->held), tensor_data(s->master), nb);
            be->memcpy_d2d(backend_ctx(dev), tensor_data(s->master), tensor_data(s->ema), nb);
        } else {
            CM_CHECK(s->held, "optim", "%s: the weight average swapped out without being in", s->param->name);
            be->memcpy_d2d(backend_ctx(dev), tensor_data(s->master), tensor_data(s->held), nb);
            tensor_release(s->held);
            s->held = NULL;
        }
    }
}

void optim_zero_grad(optim *o) {
    for (int i = 0; i < o->n_all; i++) {
        tensor_zero_grad(o->all[i]->t);
        o->ready[i] = false;
    }
}

// --- state ---
int optim_save(const optim *o, const char *path, char *err, size_t errlen) { return optim_save_sum(o, path, NULL, err, errlen); }

int optim_save_sum(const optim *o, const char *path, af_sum *sum, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    int n_own = o->end - o->begin;
    void **host = calloc((size_t)n_own * 4 + 1, sizeof *host);  // device copies, freed after the save
    for (int i = 0; i < n_own; i++) {
        const optim_slot *s = &o->slot[i];
        const cm_tensor *parts[4] = {s->m, s->v, s->master, s->ema};
        const char *suffix[4] = {"m", "v", "master", "ema"};
        for (int k = 0; k < (s->ema ? 4 : 3); k++) {
            char name[200];
            snprintf(name, sizeof name, "%s.%s", s->param->name, suffix[k]);
            const void *data;
            if (parts[k]->storage->dev.type == CM_CPU) {
                data = tensor_data(parts[k]);
            } else {
                host[4 * i + k] = malloc((size_t)s->n * dtype_size(parts[k]->dtype) + 1);
                tensor_copy_to_host(parts[k], parts[k]->dtype, host[4 * i + k]);
                data = host[4 * i + k];
            }
            st_writer_add(w, name, parts[k]->dtype, parts[k]->ndim, parts[k]->shape, data);
        }
    }
    char buf[64];
    st_writer_meta(w, "optim.format", OPTIM_FORMAT);
    snprintf(buf, sizeof buf, "%lld", (long long)o->step);
    st_writer_meta(w, "optim.step", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)o->skipped);
    st_writer_meta(w, "optim.skipped", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)o->skipped_in_row);
    st_writer_meta(w, "optim.skipped_in_row", buf);
    snprintf(buf, sizeof buf, "%d:%d:%d", o->begin, o->end, o->n_all);
    st_writer_meta(w, "optim.shard", buf);
    if (o->cfg.ema_decay > 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)o->ema_updates);
        st_writer_meta(w, "optim.ema_updates", buf);
    }
    int rc = st_writer_save_sum(w, path, sum, err, errlen);
    st_writer_free(w);
    for (int i = 0; i < 4 * n_own; i++) free(host[i]);
    free(host);
    return rc;
}

static int meta_i64(const st_file *f, const char *key, int64_t *out, const char *path, char *err, size_t errlen) {
    const char *v = st_meta(f, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || !*v || x < 0) {
        cm_seterr(err, errlen, "%s: metadata '%s' is %s (expected a non-negative integer)", path, key, v ? v : "missing");
        return -1;
    }
    *out = x;
    return 0;
}

int optim_load(optim *o, const char *path, char *err, size_t errlen) { return optim_load_files(o, &path, 1, err, errlen); }

// the entry `name` in whichever file holds it; *which gets the file's index
static const st_entry *find_in(st_file *const *f, int n, const char *name, int *which) {
    for (int i = 0; i < n; i++) {
        const st_entry *e = st_find(f[i], name);
        if (e) return *which = i, e;
    }
    return NULL;
}

int optim_load_files(optim *o, const char *const *paths, int n_paths, char *err, size_t errlen) {
    st_file **f = calloc((size_t)n_paths + 1, sizeof *f);
    CM_CHECK(f, "optim", "out of host memory for %d files", n_paths);
    int rc = -1;
    int64_t cnt[4] = {0}, first[4] = {0};
    const char *keys[4] = {"optim.step", "optim.skipped", "optim.skipped_in_row", "optim.ema_updates"};
    // the files' weight average is taken when this optimizer keeps one and the files have one
    bool ema = o->cfg.ema_decay > 0 && n_paths > 0;
    for (int i = 0; i < n_paths; i++) {
        if (!(f[i] = st_open(paths[i], err, errlen))) goto done;
        const char *fmt = st_meta(f[i], "optim.format");
        if (!fmt || strcmp(fmt, OPTIM_FORMAT)) {
            cm_seterr(err, errlen, "%s: not a cameo optimizer state (optim.format is '%s', expected '%s')", paths[i],
                      fmt ? fmt : "missing", OPTIM_FORMAT);
            goto done;
        }
        if (ema && !st_meta(f[i], keys[3])) ema = false;
        for (int k = 0; k < 3 + ema; k++) {
            if (meta_i64(f[i], keys[k], &cnt[k], paths[i], err, errlen)) goto done;
            if (i == 0) first[k] = cnt[k];
            else if (cnt[k] != first[k]) {
                cm_seterr(err, errlen, "%s: %s is %lld, %s says %lld (shards of different checkpoints?)", paths[i], keys[k],
                          (long long)cnt[k], paths[0], (long long)first[k]);
                goto done;
            }
        }
    }
    // validate everything before writing anything
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < o->end - o->begin; i++) {
            optim_slot *s = &o->slot[i];
            cm_tensor *parts[4] = {s->m, s->v, s->master, s->ema};
            const char *suffix[4] = {"m", "v", "master", "ema"};
            for (int k = 0; k < 3 + ema; k++) {
                char name[200];
                snprintf(name, sizeof name, "%s.%s", s->param->name, suffix[k]);
                int w = 0;
                const st_entry *e = find_in(f, n_paths, name, &w);
                if (pass == 0) {
                    bool shape_ok = e && e->ndim == parts[k]->ndim;
                    for (int d = 0; shape_ok && d < e->ndim; d++) shape_ok = e->shape[d] == parts[k]->shape[d];
                    bool dt_ok = e && (e->dtype == CM_F32 || (k < 2 && e->dtype == CM_BF16));  // moments f32 or bf16
                    if (!e || !dt_ok || !shape_ok) {
                        char want[96];
                        tensor_shape_str(parts[k], want, sizeof want);
                        cm_seterr(err, errlen, "%s%s: %s: %s (expected %s)", e || n_paths == 1 ? paths[w] : "the optimizer files",
                                  e || n_paths == 1 ? "" : " (none of them)", name,
                                  !e ? "missing" : !dt_ok ? (k < 2 ? "not F32 or BF16" : "not F32") : "wrong shape", want);
                        goto done;
                    }
                    continue;
                }
                cm_device dev = parts[k]->storage->dev;
                if (e->dtype == parts[k]->dtype) {
                    backend_get(dev.type)->memcpy_h2d(backend_ctx(dev), tensor_data(parts[k]), e->data, e->nbytes);
                } else {  // moments saved in the other state dtype: cast (f32 -> bf16 rounds to nearest)
                    cm_tensor *src = tensor_from_host(e->dtype, parts[k]->ndim, parts[k]->shape, e->data, dev);
                    copy_cast(dev, parts[k]->dtype, tensor_data(parts[k]), src);
                    tensor_release(src);
                }
            }
            if (pass == 1 && !s->master_is_param) master_to_param(s);
        }
    }
    o->step = first[0], o->skipped = first[1], o->skipped_in_row = first[2];
    o->ema_fresh = o->cfg.ema_decay > 0 && !ema;
    if (o->ema_fresh) ema_reset(o);  // from the loaded masters
    else o->ema_updates = first[3];
    rc = 0;
done:
    for (int i = 0; i < n_paths; i++)
        if (f[i]) st_close(f[i]);
    free(f);
    return rc;
}
