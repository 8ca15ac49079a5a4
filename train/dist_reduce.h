// dist_reduce.h — the gradient reducer of data parallelism: averages the trainable gradients over
// the ranks in buckets — into each parameter's owner (ZeRO-1, the optimizer sharded) or into every
// rank (replicated) — and launches each bucket during the last micro-batch's backward, the moment
// all of its gradients are final (autograd's leaf hook), so the communication runs beside the rest
// of backward instead of after it.
//
// Buckets: runs of consecutive parameters of the optimizer's flattened list (optim.h) with one
// owner and one gradient dtype, at most bucket_bytes each, numbered from the last parameter down
// (the order backward makes them final: FLUX's last blocks first, the projector last). Every rank
// launches them in that fixed order whatever its own backward did — MPI and NCCL want the same
// collectives in the same order everywhere, and a rank whose last micro-batch was empty (damaged
// records) runs no backward at all: a bucket that fills out of turn waits for the ones before it,
// and dist_reducer_finish launches what is left.
//
// MPI (CPU gradients): one MPI_Ireduce / MPI_Iallreduce per parameter, in place, f32 sums scaled
// by 1/world once complete — the bits of a blocking reduction. NCCL (CUDA gradients): a group of
// ncclReduce / ncclAllReduce (avg) per bucket on a communication stream of its own, which first
// waits for the compute stream's event recorded at launch (the gradients written); finish makes
// the compute stream wait for the communication stream.
// defines: dist_reducer, dist_reducer_*
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "train/dist.h"
#include "train/optim.h"

typedef struct dist_bucket {
    int first, last;          // parameters [first, last] of the flattened list
    int root;                 // the owner (ZeRO-1), or -1: every rank (all-reduce)
    int n_ready;              // members whose gradient is final this step (launched: index < next)
    int64_t bytes;
} dist_bucket;

typedef struct dist_reducer {
    const dist *d;
    optim *o;
    bool active;              // world > 1: there is something to reduce
    bool overlap;             // bucket_bytes > 0: buckets launch during backward
    bool armed;               // the leaf hook is on (dist_reducer_arm .. dist_reducer_finish)
    int n_buckets;
    dist_bucket *b;           // [n_buckets] in launch order
    int *bucket_of;           // [n_all] parameter → bucket
    bool *ready;              // [n_all] final this step
    int next;                 // the next bucket to launch
    void *req;                // MPI_Request[n_all] (MPI path)
    void *stream;             // cudaStream_t: the communication stream (NCCL path)
    void **ev;                // cudaEvent_t[n_buckets + 1]: each bucket's launch point, then the end
    // what the last steps launched, for the run's summary
    int64_t bytes_total;      // every bucket of every finished step
    int64_t bytes_early;      // of which launched during backward (by the leaf hook)
    int64_t steps;
    // CAMEO_CHECK_REDUCER=1 (tests, CPU gradients): a launch only fingerprints its gradients and
    // finish issues the MPI calls; finish then proves no launched gradient changed afterwards
    bool check;
    uint64_t *sig;            // [n_all] fingerprints at launch
} dist_reducer;

// buckets of at most bucket_bytes (0: no overlap — everything at dist_reducer_finish, one bucket
// per owner and dtype); to_owner: ZeRO-1 (optim_owner), else all-reduce. Tags the trainable
// tensors for autograd's leaf hook (world > 1 only; on one rank everything is a no-op).
// 0, or -1 with err (a gradient NCCL or MPI cannot move).
int dist_reducer_init(dist_reducer *r, const dist *d, optim *o, bool to_owner, size_t bucket_bytes, char *err,
                      size_t errlen);
// the next backward is the step's last: launch each bucket as soon as it is complete
void dist_reducer_arm(dist_reducer *r);
// launches the buckets not yet launched (every rank must call it, once per step, before any other
// collective), waits for all, scales: every owner (or every rank) holds the average of the ranks'
// gradients; a sharded run's other copies are released
void dist_reducer_finish(dist_reducer *r);
void dist_reducer_free(dist_reducer *r);
