// profile.h — the op profiler: where a stretch of work spends its device time, per backend call.
// While it runs, backend_get hands out tables whose entries time each call on its device (a mark
// on the compute stream before and after: CUDA timing events, the CPU's clock) and sum the times
// per entry and variant (gemm_ex[gelu_tanh], binary[mul]). Calls a backend entry makes through
// the table itself are counted once, in the outer call. CAMEO_PROFILE=1 profiles a whole cameo
// command and prints the table at its end; `cameo bench blocks --profile` one pass of each block
// and one training step.
// defines: prof_start, prof_stop, prof_format, cm_prof_row, prof_shapes, prof_format_shapes
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels/backend.h"

typedef struct cm_prof_row {
    char name[48];   // entry[variant]
    cm_devtype dev;  // where it ran
    int64_t calls;
    double ms;       // device time summed over the calls
} cm_prof_row;

extern volatile int cm_prof_active;  // read by backend_get
// the timed table for a real backend (backend_get, while the profiler runs)
const cm_backend *prof_table(cm_devtype t, const cm_backend *real);

// clears the sums and starts timing every backend call
void prof_start(void);
// stops timing; the sums since prof_start (folded: this waits for the marks), most time first, in
// rows[max]; returns how many rows there are in all (the extra ones are not written)
int prof_stop(cm_prof_row *rows, int max);
// a markdown table of rows[n] (most first, at most `top` rows, the rest summed into one): calls,
// ms, share of wall_ms, µs per call; then all ops against wall_ms (the rest: the host's time
// between calls, the allocator, synchronisation). Returns what snprintf returns.
int prof_format(char *buf, size_t n, const char *title, const cm_prof_row *rows, int nrows, double wall_ms, int top);

// the GEMM and attention calls of the last run, summed per shape: which of them run below the
// device's rate (a cuBLAS algorithm at a small M, an attention grid short of a wave)
typedef struct cm_prof_shape_row {
    char name[48];   // entry[variant]
    char shape[64];  // GEMM "NT 1536×3072×3072" (op(A) op(B) M×N×K, "×8" batches); attention "B1 H24 1536×1536 D128"
    cm_devtype dev;
    int64_t calls;
    double ms;
    double flop;  // per call: GEMM 2·M·N·K·batch; attention 4·B·H·Lq·Lk·D forward, 2.5× that backward (the model's count)
} cm_prof_shape_row;
// after prof_stop: the shapes, most time first, in rows[max]; returns how many there are in all (a
// last "other shapes" row, flop 0, when more shapes ran than the profiler keeps apart)
int prof_shapes(cm_prof_shape_row *rows, int max);
// a markdown table of rows[n]: calls, ms, µs per call, TFLOP/s (at most `top` rows, the rest summed)
int prof_format_shapes(char *buf, size_t n, const cm_prof_shape_row *rows, int nrows, int top);

// prof_stop, then prof_format of every row and prof_format_shapes of the top `top` shapes: what a
// command or a benchmark prints
int prof_stop_format(char *buf, size_t n, const char *title, double wall_ms, int top);
