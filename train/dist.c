// dist.c — see dist.h
#include "train/dist.h"
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "kernels/backend.h"

static bool launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("SLURM_STEP_NUM_TASKS");
}

void dist_init(dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    if (!launched_by_mpi()) return;
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);  // only the main thread talks MPI
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    d->mpi = true;
}

void dist_finalize(dist *d) {
    if (d->mpi) MPI_Finalize();
    d->mpi = false;
}

void dist_abort(const dist *d, int code) {
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void dist_average_grads(const dist *d, cm_params **regs, int n_regs) {
    if (d->world == 1) return;
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++) {
            cm_param *p = &regs[r]->items[i];
            if (!p->trainable) continue;
            cm_tensor *t = p->t;
            if (!t->grad) t->grad = tensor_zeros(t->dtype, t->ndim, t->shape, t->storage->dev);
            CM_CHECK(t->grad->dtype == CM_F32 && t->storage->dev.type == CM_CPU && tensor_is_contiguous(t->grad),
                     "dist_average_grads", "%s: MPI averages contiguous f32 CPU gradients (NCCL is for CUDA)", p->name);
            float *g = tensor_data(t->grad);
            int64_t n = tensor_numel(t->grad);
            for (int64_t off = 0; off < n; off += 1 << 30) {  // MPI counts are int
                int cnt = (int)(n - off < (1 << 30) ? n - off : (1 << 30));
                MPI_Allreduce(MPI_IN_PLACE, g + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            }
            float inv = 1.0f / (float)d->world;
            for (int64_t k = 0; k < n; k++) g[k] *= inv;
        }
}

double dist_mean(const dist *d, double x) {
    if (d->world == 1) return x;
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return x / d->world;
}

int dist_max_int(const dist *d, int x) {
    if (d->world == 1) return x;
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return x;
}

void dist_barrier(const dist *d) {
    if (d->world > 1) MPI_Barrier(MPI_COMM_WORLD);
}

int dist_agree(const dist *d, int rc) {
    if (d->world == 1) return rc;
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}
