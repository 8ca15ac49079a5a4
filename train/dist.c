// dist.c — see dist.h
#include "train/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "kernels/backend.h"
#ifdef CAMEO_HAVE_MPI
#include <mpi.h>
#endif
#include "train/dist_internal.h"
#ifdef CAMEO_HAVE_CUDA
int cuda_device_count(void);  // kernels/cuda/cuda_backend.cu
#endif

// how many tasks the launcher started (its own count first; srun's last: mpirun inside an srun
// step of one task is mpirun's world), where that was read, and the variable beside it that holds
// this task's rank; 0 when none says
static int launcher_tasks(const char **from, const char **rank_var) {
    static const char *vars[][2] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"}, {"PMI_SIZE", "PMI_RANK"},
                                    {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"}};
    for (int i = 0; i < 3; i++)
        if (getenv(vars[i][0])) {
            *from = vars[i][0];
            if (rank_var) *rank_var = vars[i][1];
            return atoi(getenv(vars[i][0]));
        }
    return 0;
}

// several tasks, or a PMIx launcher that does not say how many. A single task is a world of 1
// without MPI: `srun -n 1` (a one-GPU job, srun's default --mpi=none) is a step Open MPI's MPI_Init
// refuses to start in ("direct launched using srun, but OMPI was not built with SLURM's PMI support")
static bool launched_by_mpi(void) {
    const char *from = NULL;
    int tasks = launcher_tasks(&from, NULL);
    return from ? tasks > 1 : getenv("PMIX_RANK") != NULL;
}

static int proc_rank = -1, proc_world = 1;  // what dist_init decided (-1: it has not run)

int dist_process_rank(int *world) {
    if (proc_rank >= 0) {
        *world = proc_world;
        return proc_rank;
    }
    // not run: the launcher's rank variable beside the task count dist_init goes by (a Slurm batch
    // shell's SLURM_PROCID 0 and job-wide SLURM_NTASKS name no task of a step)
    const char *from = NULL, *rv = NULL;
    int tasks = launcher_tasks(&from, &rv);
    const char *r = from && tasks > 1 ? getenv(rv) : NULL;
    *world = r ? tasks : 1;
    return r ? atoi(r) : 0;
}

void dist_init(dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->world = d->local_world = 1;
    d->dev = CM_DEV_CPU;
    proc_rank = 0, proc_world = 1;
    if (!launched_by_mpi()) return;
#ifdef CAMEO_HAVE_MPI
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);  // only the main thread talks MPI
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    MPI_Comm node;  // the ranks of this node: their order picks each one's GPU
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);
    d->mpi = true;
    proc_rank = d->rank, proc_world = d->world;
    // srun without a PMI plugin its MPI uses: each task a world of 1 of its own, N runs of the same
    // batches writing one run folder
    const char *from = "";
    int tasks = launcher_tasks(&from, NULL);
    if (tasks > 1 && d->world == 1) {
        fprintf(stderr, "cameo: started as one of %d tasks (%s), but MPI sees a world of 1: this MPI did not join the launcher's "
                        "tasks (srun: launch with --mpi=pmix or --mpi=pmi2, whichever `srun --mpi=list` offers and the MPI was "
                        "built with; or use mpirun)\n", tasks, from);
        MPI_Finalize();
        exit(1);
    }
#else
    // an srun of a single-process build would train the same batches N times over
    const char *from = "";
    int tasks = launcher_tasks(&from, NULL);
    if (tasks > 1) {
        fprintf(stderr, "cameo: started as one of %d tasks (%s), but this cameo was built without MPI "
                        "(install an MPI, e.g. libopenmpi-dev, and rebuild)\n", tasks, from);
        exit(1);
    }
#endif
}

int dist_cuda_index(int index, int local_rank, int have) {
    int want = index + local_rank;
    // a launcher that gives each rank its own GPU leaves one device visible: that one. Two ranks
    // on one GPU NCCL itself refuses
    if (want >= have && have == 1 && index == 0) want = 0;
    return want;
}

int dist_bind_device(dist *d, cm_device *dev, char *err, size_t errlen) {
    d->dev = *dev;
    if (dev->type != CM_CUDA || d->world == 1) return 0;
#ifdef CAMEO_HAVE_NCCL
    int have = cuda_device_count(), want = dist_cuda_index(dev->index, d->local_rank, have);
    if (want >= have) {
        cm_seterr(err, errlen, "run.device: rank %d is local rank %d of %d on its node, so it takes cuda:%d, but the node has %d GPU(s)",
                  d->rank, d->local_rank, d->local_world, want, have);
        return -1;
    }
    dev->index = want;
    d->dev = *dev;
    // cuda_backend_ctx, not backend_ctx: a device it turns down (too old, no memory for its buffers)
    // is NULL here, after it has said why, rather than an exit of this rank alone while the others
    // wait in ncclCommInitRank for it; NCCL takes the current device
    if (!cuda_backend_ctx(want) || cudaSetDevice(want) != cudaSuccess) {
        cm_seterr(err, errlen, "run.device: cuda:%d (rank %d) is not usable", want, d->rank);
        return -1;  // the caller aborts every rank
    }
    ncclUniqueId id;
    if (d->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclComm_t comm;
    NCCL_CHECK(ncclCommInitRank(&comm, d->world, id, d->rank));
    d->nccl = comm;
    return 0;
#else
    cm_seterr(err, errlen, "run.device: %d ranks on CUDA need NCCL, and this cameo was built without it "
                           "(configure where nccl.h and libnccl are found, or with NCCL_ROOT set)", d->world);
    return -1;
#endif
}

void dist_finalize(dist *d) {
#ifdef CAMEO_HAVE_NCCL
    if (d->nccl) ncclCommDestroy((ncclComm_t)d->nccl);
    d->nccl = NULL;
#endif
#ifdef CAMEO_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = false;
}

void dist_abort(const dist *d, int code) {
#ifdef CAMEO_HAVE_MPI
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

#ifdef CAMEO_HAVE_NCCL
static ncclDataType_t nccl_type(const cm_tensor *t, const char *name, const char *what) {
    CM_CHECK((t->dtype == CM_F32 || t->dtype == CM_BF16) && tensor_is_contiguous(t), "dist", "%s: NCCL moves contiguous f32 "
             "or bf16 %s", name, what);
    return t->dtype == CM_F32 ? ncclFloat32 : ncclBfloat16;
}
#endif
#ifdef CAMEO_HAVE_MPI
static float *mpi_f32(const cm_tensor *t, const char *name, const char *what) {
    CM_CHECK(t->dtype == CM_F32 && t->storage->dev.type == CM_CPU && tensor_is_contiguous(t), "dist",
             "%s: MPI moves contiguous f32 CPU %s (CUDA ones go through NCCL)", name, what);
    return tensor_data(t);
}
#define MPI_CHUNK (1 << 30)  // MPI counts are int
#endif

#ifdef CAMEO_HAVE_NCCL
// ZeRO-1 over NCCL, one group per step: each parameter broadcast from its owner, on the device's stream
static void nccl_broadcast_owned(const dist *d, const optim *o) {
    const cm_kctx *k = backend_ctx(d->dev);
    NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < optim_n_params(o); i++) {
        cm_param *p = optim_param_at(o, i);
        void *x = tensor_data(p->t);
        size_t n = (size_t)tensor_numel(p->t);
        NCCL_CHECK(ncclBroadcast(x, x, n, nccl_type(p->t, p->name, "parameters"), optim_owner(o, i), (ncclComm_t)d->nccl,
                                 (cudaStream_t)k->stream));
    }
    NCCL_CHECK(ncclGroupEnd());
}
#endif

void dist_broadcast_params(const dist *d, const optim *o) {
    if (d->world == 1) return;
#ifdef CAMEO_HAVE_NCCL
    if (d->nccl) {
        nccl_broadcast_owned(d, o);
        return;
    }
#endif
#ifdef CAMEO_HAVE_MPI
    for (int i = 0; i < optim_n_params(o); i++) {
        cm_param *p = optim_param_at(o, i);
        float *x = mpi_f32(p->t, p->name, "parameters");
        int64_t cnt = tensor_numel(p->t);
        for (int64_t off = 0; off < cnt; off += MPI_CHUNK) {
            int c = (int)(cnt - off < MPI_CHUNK ? cnt - off : MPI_CHUNK);
            MPI_Bcast(x + off, c, MPI_FLOAT, optim_owner(o, i), MPI_COMM_WORLD);
        }
    }
#endif
}

void dist_sum_doubles(const dist *d, double *x, int n) {
    if (d->world == 1 || n <= 0) return;
#ifdef CAMEO_HAVE_MPI
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)x;
#endif
}

double dist_mean(const dist *d, double x) {
    if (d->world == 1) return x;
#ifdef CAMEO_HAVE_MPI
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
    return x / d->world;
}

int dist_max_int(const dist *d, int x) {
    if (d->world == 1) return x;
#ifdef CAMEO_HAVE_MPI
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
    return x;
}

void dist_broadcast_text(const dist *d, char *buf, size_t cap) {
    if (d->world == 1 || cap == 0) return;
#ifdef CAMEO_HAVE_MPI
    int n = d->rank == 0 ? (int)strnlen(buf, cap - 1) : 0;
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(buf, n, MPI_CHAR, 0, MPI_COMM_WORLD);
    buf[n] = 0;
#endif
}

void dist_barrier(const dist *d) {
#ifdef CAMEO_HAVE_MPI
    if (d->world > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

int dist_agree(const dist *d, int rc) {
    if (d->world == 1) return rc;
#ifdef CAMEO_HAVE_MPI
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
#endif
    return rc;
}
