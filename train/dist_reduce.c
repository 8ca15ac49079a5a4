// dist_reduce.c — see dist_reduce.h
#include "train/dist_reduce.h"
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "train/dist_internal.h"
#ifdef CAMEO_HAVE_MPI
#include <mpi.h>
#endif

static int64_t param_bytes(const cm_param *p) { return tensor_numel(p->t) * (int64_t)dtype_size(p->t->dtype); }

static int bucket_root(const dist_reducer *r, bool to_owner, int i) { return to_owner ? optim_owner(r->o, i) : -1; }

// from the last parameter down: a new bucket where the owner or the dtype changes or the cap is hit
static void make_buckets(dist_reducer *r, bool to_owner, size_t cap) {
    int n = optim_n_params(r->o);
    r->b = calloc((size_t)(n > 0 ? n : 1), sizeof *r->b);
    r->bucket_of = calloc((size_t)(n > 0 ? n : 1), sizeof *r->bucket_of);
    CM_CHECK(r->b && r->bucket_of, "dist_reducer_init", "out of host memory");
    r->n_buckets = 0;
    for (int i = n - 1; i >= 0; i--) {
        cm_param *p = optim_param_at(r->o, i);
        dist_bucket *cur = r->n_buckets ? &r->b[r->n_buckets - 1] : NULL;
        bool same = cur && cur->root == bucket_root(r, to_owner, i) &&
                    optim_param_at(r->o, cur->first)->t->dtype == p->t->dtype &&
                    (cap == 0 || cur->bytes + param_bytes(p) <= (int64_t)cap);
        if (!same) {
            cur = &r->b[r->n_buckets++];
            *cur = (dist_bucket){.first = i, .last = i, .root = bucket_root(r, to_owner, i)};
        }
        cur->first = i;
        cur->bytes += param_bytes(p);
        r->bucket_of[i] = (int)(cur - r->b);
    }
}

#ifdef CAMEO_HAVE_NCCL
static ncclDataType_t nccl_dtype(const cm_tensor *g, const char *name) {
    CM_CHECK((g->dtype == CM_F32 || g->dtype == CM_BF16) && tensor_is_contiguous(g), "dist_reducer",
             "%s: NCCL averages contiguous f32 or bf16 gradients", name);
    return g->dtype == CM_F32 ? ncclFloat32 : ncclBfloat16;
}
#endif

// FNV-1a over a CPU gradient's bytes
static uint64_t fingerprint(const cm_tensor *g) {
    const unsigned char *p = tensor_data(g);
    size_t n = (size_t)tensor_numel(g) * dtype_size(g->dtype);
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ull;
    return h;
}

static void issue_mpi(dist_reducer *r, const dist_bucket *bk);

static void launch(dist_reducer *r, int bi) {
    dist_bucket *bk = &r->b[bi];
    r->bytes_total += bk->bytes;
    if (r->armed) r->bytes_early += bk->bytes;
    if (r->check) {  // fingerprints now, the MPI calls at finish (in this order)
        for (int i = bk->first; i <= bk->last; i++) r->sig[i] = fingerprint(dist_grad_of(optim_param_at(r->o, i)));
        return;
    }
#ifdef CAMEO_HAVE_NCCL
    if (r->d->nccl) {
        const cm_kctx *k = backend_ctx(r->d->dev);
        for (int i = bk->first; i <= bk->last; i++) dist_grad_of(optim_param_at(r->o, i));  // zeros filled first
        cudaStream_t cs = (cudaStream_t)r->stream;
        DIST_CUDA_CHECK(cudaEventRecord((cudaEvent_t)r->ev[bi], (cudaStream_t)k->stream));  // the gradients are written
        DIST_CUDA_CHECK(cudaStreamWaitEvent(cs, (cudaEvent_t)r->ev[bi], 0));
        NCCL_CHECK(ncclGroupStart());
        for (int i = bk->first; i <= bk->last; i++) {
            cm_param *p = optim_param_at(r->o, i);
            cm_tensor *g = p->t->grad;
            void *x = tensor_data(g);
            size_t n = (size_t)tensor_numel(g);
            if (bk->root >= 0) NCCL_CHECK(ncclReduce(x, x, n, nccl_dtype(g, p->name), ncclAvg, bk->root, (ncclComm_t)r->d->nccl, cs));
            else NCCL_CHECK(ncclAllReduce(x, x, n, nccl_dtype(g, p->name), ncclAvg, (ncclComm_t)r->d->nccl, cs));
        }
        NCCL_CHECK(ncclGroupEnd());
        return;
    }
#endif
    issue_mpi(r, bk);
}

static void issue_mpi(dist_reducer *r, const dist_bucket *bk) {
#ifdef CAMEO_HAVE_MPI
    MPI_Request *req = r->req;
    for (int i = bk->first; i <= bk->last; i++) {
        cm_param *p = optim_param_at(r->o, i);
        cm_tensor *g = dist_grad_of(p);
        CM_CHECK(g->dtype == CM_F32 && g->storage->dev.type == CM_CPU && tensor_is_contiguous(g), "dist_reducer",
                 "%s: MPI averages contiguous f32 CPU gradients (CUDA ones go through NCCL)", p->name);
        float *x = tensor_data(g);
        int n = (int)tensor_numel(g);  // < 2^31: checked by dist_reducer_init
        if (bk->root < 0) MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req[i]);
        else MPI_Ireduce(r->d->rank == bk->root ? MPI_IN_PLACE : x, x, n, MPI_FLOAT, MPI_SUM, bk->root, MPI_COMM_WORLD, &req[i]);
    }
#else
    (void)r, (void)bk;
#endif
}

// launches, in order, every complete bucket from r->next on
static void launch_complete(dist_reducer *r) {
    while (r->next < r->n_buckets) {
        dist_bucket *bk = &r->b[r->next];
        if (bk->n_ready < bk->last - bk->first + 1) break;
        launch(r, r->next++);
    }
}

static void mark_ready(dist_reducer *r, int i) {
    if (r->ready[i]) return;
    r->ready[i] = true;
    r->b[r->bucket_of[i]].n_ready++;
}

static void on_leaf(cm_tensor *leaf, void *ctx) {
    dist_reducer *r = ctx;
    int i = leaf->hook_tag - 1;
    cm_param *p = optim_param_at(r->o, i);
    CM_CHECK(p && p->t == leaf, "dist_reducer", "a tagged tensor '%s' that is no trainable parameter (internal error)", leaf->name);
    // a second "final" means a later use would add to a gradient already on its way
    CM_CHECK(!r->ready[i], "dist_reducer", "%s: its gradient became final twice in one backward (used in two recompute "
             "scopes?), so its reduction would miss a part; train with optimizer.reduce_bucket_mb: 0", p->name);
    mark_ready(r, i);
    launch_complete(r);
#ifdef CAMEO_HAVE_MPI
    if (!r->d->nccl && r->next > 0) {  // Open MPI moves non-blocking collectives on only inside MPI calls
        int flag;
        MPI_Testall(optim_n_params(r->o), (MPI_Request *)r->req, &flag, MPI_STATUSES_IGNORE);
    }
#endif
}

int dist_reducer_init(dist_reducer *r, const dist *d, optim *o, bool to_owner, size_t bucket_bytes, char *err,
                      size_t errlen) {
    memset(r, 0, sizeof *r);
    r->d = d;
    r->o = o;
    r->active = d->world > 1;
    if (!r->active) return 0;
    r->overlap = bucket_bytes > 0;
    int n = optim_n_params(o);
    for (int i = 0; i < n; i++)
        if (tensor_numel(optim_param_at(o, i)->t) >= ((int64_t)1 << 31)) {
            cm_seterr(err, errlen, "%s: %lld elements, more than one MPI / NCCL call of this reducer moves (2^31 - 1)",
                      optim_param_at(o, i)->name, (long long)tensor_numel(optim_param_at(o, i)->t));
            return -1;
        }
    make_buckets(r, to_owner, bucket_bytes);
    r->ready = calloc((size_t)(n > 0 ? n : 1), sizeof *r->ready);
    CM_CHECK(r->ready, "dist_reducer_init", "out of host memory");
    const char *chk = getenv("CAMEO_CHECK_REDUCER");
    r->check = chk && *chk && *chk != '0' && !d->nccl;
    if (r->check) {
        r->sig = calloc((size_t)(n > 0 ? n : 1), sizeof *r->sig);
        CM_CHECK(r->sig, "dist_reducer_init", "out of host memory");
    }
#ifdef CAMEO_HAVE_NCCL
    if (d->nccl) {
        cudaStream_t s;
        DIST_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        r->stream = s;
        r->ev = calloc((size_t)r->n_buckets + 1, sizeof *r->ev);
        CM_CHECK(r->ev, "dist_reducer_init", "out of host memory");
        for (int b = 0; b <= r->n_buckets; b++) {
            cudaEvent_t e;
            DIST_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
            r->ev[b] = e;
        }
    }
#endif
#ifdef CAMEO_HAVE_MPI
    if (!d->nccl) {
        MPI_Request *req = malloc((size_t)(n > 0 ? n : 1) * sizeof *req);
        CM_CHECK(req, "dist_reducer_init", "out of host memory");
        for (int i = 0; i < n; i++) req[i] = MPI_REQUEST_NULL;
        r->req = req;
    }
#endif
    for (int i = 0; i < n; i++) {  // for autograd's leaf hook: tag = index + 1
        cm_tensor *t = optim_param_at(o, i)->t;
        CM_CHECK(t->pending_uses == 0 && !t->hook_tag, "dist_reducer_init", "%s: tagged while on a tape or by another reducer",
                 optim_param_at(o, i)->name);
        t->hook_tag = i + 1;
    }
    return 0;
}

void dist_reducer_arm(dist_reducer *r) {
    if (!r->active || !r->overlap) return;
    r->armed = true;
    autograd_set_leaf_hook(on_leaf, r);
}

void dist_reducer_finish(dist_reducer *r) {
    if (!r->active) return;
    if (r->armed) autograd_set_leaf_hook(NULL, NULL);
    r->armed = false;
    int n = optim_n_params(r->o);
    for (int i = 0; i < n; i++) mark_ready(r, i);
    launch_complete(r);
    CM_CHECK(r->next == r->n_buckets, "dist_reducer_finish", "%d of %d buckets launched (internal error)", r->next, r->n_buckets);
    bool to_owner = r->n_buckets && r->b[0].root >= 0;
#ifdef CAMEO_HAVE_NCCL
    if (r->d->nccl) {
        const cm_kctx *k = backend_ctx(r->d->dev);
        cudaEvent_t end = (cudaEvent_t)r->ev[r->n_buckets];
        DIST_CUDA_CHECK(cudaEventRecord(end, (cudaStream_t)r->stream));
        DIST_CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)k->stream, end, 0));
        // released after the wait: the allocator reuses them on the compute stream only, behind it
        if (to_owner)
            for (int i = 0; i < n; i++)
                if (optim_owner(r->o, i) != r->d->rank) tensor_zero_grad(optim_param_at(r->o, i)->t);
    }
#endif
    if (r->check) {  // every gradient as it was at its launch; then the calls, in launch order
        for (int i = 0; i < n; i++)
            CM_CHECK(fingerprint(optim_param_at(r->o, i)->t->grad) == r->sig[i], "dist_reducer", "%s: its gradient changed "
                     "after its bucket was launched (a bucket launched before backward was done with it)", optim_param_at(r->o, i)->name);
        for (int b = 0; b < r->n_buckets; b++) issue_mpi(r, &r->b[b]);
    }
#ifdef CAMEO_HAVE_MPI
    if (!r->d->nccl) {
        MPI_Waitall(n, (MPI_Request *)r->req, MPI_STATUSES_IGNORE);
        float inv = 1.0f / (float)r->d->world;
        for (int i = 0; i < n; i++) {
            cm_param *p = optim_param_at(r->o, i);
            if (to_owner && optim_owner(r->o, i) != r->d->rank) {
                tensor_zero_grad(p->t);
                continue;
            }
            float *g = tensor_data(p->t->grad);
            int64_t cnt = tensor_numel(p->t->grad);
            for (int64_t k = 0; k < cnt; k++) g[k] *= inv;
        }
    }
#endif
    (void)to_owner;
    for (int b = 0; b < r->n_buckets; b++) r->b[b].n_ready = 0;
    memset(r->ready, 0, (size_t)n * sizeof *r->ready);
    r->next = 0;
    r->steps++;
}

void dist_reducer_free(dist_reducer *r) {
    if (r->armed) autograd_set_leaf_hook(NULL, NULL);
    if (r->active)
        for (int i = 0; i < optim_n_params(r->o); i++) optim_param_at(r->o, i)->t->hook_tag = 0;
#ifdef CAMEO_HAVE_NCCL
    if (r->stream) {
        for (int b = 0; b <= r->n_buckets; b++) cudaEventDestroy((cudaEvent_t)r->ev[b]);
        cudaStreamDestroy((cudaStream_t)r->stream);
    }
#endif
    free(r->ev);
    free(r->sig);
    free(r->req);
    free(r->b);
    free(r->bucket_of);
    free(r->ready);
    memset(r, 0, sizeof *r);
}
