// dist.h — data parallelism: every rank holds the whole adapter, computes its slice of each
// global batch, and gradients are averaged before the optimizer step, so all ranks stay
// identical. The optimizer state is either replicated (the gradients all-reduced: every rank
// updates everything) or sharded, ZeRO-1 (optimizer.shard_state): each gradient is averaged into
// its owner rank only, the owner updates it, and broadcasts the new values (dist_broadcast_params)
// — the same traffic as an all-reduce, 1/world of the AdamW state each. The gradients move in
// buckets during backward (train/dist_reduce.h). Started by mpirun / srun (detected from their environment); MPI
// carries the host-side agreement (losses, stops) and the CPU gradients, NCCL (bootstrapped over
// MPI) the CUDA gradients. Without a launcher — or in a build without MPI — the world is 1.
// defines: dist_*
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "models/params.h"
#include "train/optim.h"

typedef struct dist {
    int rank, world;
    int local_rank, local_world;  // on this node (ranks sharing memory)
    bool mpi;                     // MPI was initialised here
    void *nccl;                   // ncclComm_t once dist_bind_device chose a CUDA device with world > 1
    cm_device dev;                // where the gradients live
} dist;

// MPI_Init when launched as one of several tasks by mpirun / srun / a PMI launcher; else rank 0 of
// 1 without MPI (a launcher's single task too: `srun -n 1` may have no PMI for MPI_Init to use)
void dist_init(dist *d, int *argc, char ***argv);
// picks this rank's device: with world > 1 on CUDA, `cuda:N` means cuda:(N + local rank) — or
// cuda:0 where each rank sees a single GPU (the launcher bound one to each) — and the NCCL
// communicator is made. Non-zero with err set when that device does not exist or the
// build lacks NCCL. The same call on every rank.
int dist_bind_device(dist *d, cm_device *dev, char *err, size_t errlen);
// the CUDA device a rank of local rank local_rank takes for cuda:index, where have devices are
// visible to it: index + local_rank, or 0 where the launcher left one GPU to each rank (srun
// --gpus-per-task=1, a CUDA_VISIBLE_DEVICES per rank). May be >= have: the caller refuses it
int dist_cuda_index(int index, int local_rank, int have);
void dist_finalize(dist *d);
// this process's rank (and *world) as the last dist_init decided it (kept after dist_finalize), so a
// per-rank file (CAMEO_PROFILE's) goes by the trainer's rank; before any dist_init, the launcher's
// rank variable beside the task count dist_init reads (0 of 1 alone)
int dist_process_rank(int *world);
_Noreturn void dist_abort(const dist *d, int code);  // ends every rank
// the gradients: train/dist_reduce.h
// ZeRO-1: each trainable parameter's values sent from its owner to every other rank
void dist_broadcast_params(const dist *d, const optim *o);
// x[n] summed element by element over the ranks, in place (the ranks' parts of the grad norm)
void dist_sum_doubles(const dist *d, double *x, int n);
double dist_mean(const dist *d, double x);   // mean of x over the ranks
int dist_max_int(const dist *d, int x);      // max of x over the ranks (agreeing on a stop)
void dist_barrier(const dist *d);
// rank 0's string (at most cap - 1 bytes) into every rank's buf
void dist_broadcast_text(const dist *d, char *buf, size_t cap);
// 0 on every rank when rank 0's rc is 0; the error text is rank 0's
int dist_agree(const dist *d, int rc);
