// cpu_gather.c — embedding lookup (gather rows by int32 index) and its scatter-add backward.
#include "kernels/cpu/cpu_internal.h"

static size_t esize(const char *op, cm_dtype dt) {
    if (dt == CM_F32) return 4;
    if (dt == CM_F64) return 8;
    cpu_bad_dtype(op, dt);
}

// y [n, D] = table[idx[i]]
void cpu_gather_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *y, const void *table,
                     const int32_t *idx) {
    size_t row = (size_t)D * esize("gather_rows", dt);
#pragma omp parallel for schedule(static) if (n * D >= CPU_PAR_MIN && n > 1) num_threads(cpu_par_threads(n * D))
    for (int64_t i = 0; i < n; i++) memcpy((char *)y + i * row, (const char *)table + (int64_t)idx[i] * row, row);
}

// dtable[idx[i]] += dy[i], i in order. Threads split the D columns, never the rows, so repeated
// indices add in the same order whatever the thread count.
#define SCATTER(T)                                                                                  \
    do {                                                                                            \
        T *dt_ = dtable;                                                                            \
        const T *g = dy;                                                                            \
        int64_t nch = (D + 63) / 64;                                                                \
        _Pragma("omp parallel for schedule(static) if (n * D >= CPU_PAR_MIN && nch > 1) num_threads(cpu_par_threads(n * D))")           \
        for (int64_t c = 0; c < nch; c++) {                                                         \
            int64_t j0 = c * 64, j1 = j0 + 64 < D ? j0 + 64 : D;                                    \
            for (int64_t i = 0; i < n; i++) {                                                       \
                T *dr = dt_ + (int64_t)idx[i] * D;                                                  \
                const T *gr = g + i * D;                                                            \
                for (int64_t j = j0; j < j1; j++) dr[j] += gr[j];                                   \
            }                                                                                       \
        }                                                                                           \
    } while (0)

void cpu_scatter_add_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *dtable, const void *dy,
                          const int32_t *idx) {
    if (dt == CM_F32) SCATTER(float);
    else if (dt == CM_F64) SCATTER(double);
    else cpu_bad_dtype("scatter_add_rows", dt);
}
