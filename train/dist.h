// dist.h — data parallelism over MPI (the CPU path; NCCL for CUDA tensors comes with the GPU
// work): every rank holds the whole adapter and its optimizer state, computes its slice of each
// global batch, and gradients are averaged before the optimizer step, so all ranks stay identical.
// Started by mpirun / srun (detected from their environment); without them the world is 1.
// defines: dist_*
#pragma once
#include <stdbool.h>
#include "models/params.h"

typedef struct dist {
    int rank, world;
    bool mpi;            // MPI was initialised here
} dist;

// MPI_Init when launched by mpirun / srun / a PMI launcher; else rank 0 of 1
void dist_init(dist *d, int *argc, char ***argv);
void dist_finalize(dist *d);
_Noreturn void dist_abort(const dist *d, int code);  // ends every rank
// averages every trainable parameter's .grad over the ranks (a missing .grad counts as zeros);
// in registration order, so every rank issues the same calls
void dist_average_grads(const dist *d, cm_params **regs, int n_regs);
double dist_mean(const dist *d, double x);   // mean of x over the ranks
int dist_max_int(const dist *d, int x);      // max of x over the ranks (agreeing on a stop)
void dist_barrier(const dist *d);
// 0 on every rank when rank 0's rc is 0; the error text is rank 0's
int dist_agree(const dist *d, int rc);
