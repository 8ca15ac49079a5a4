// bench.h — benchmark entry points behind `cameo bench`.
#pragma once
#include <stdint.h>
#include <cjson/cJSON.h>
int bench_ops_main(int argc, char **argv);
int bench_blocks_main(int argc, char **argv);  // train/bench_blocks.c
int bench_text_cache_main(int argc, char **argv);  // train/bench_cache.c
int bench_ref_cache_main(int argc, char **argv);   // train/bench_cache.c
// runs a PyTorch twin (a shell command) and parses the last stdout line that starts with '{';
// NULL when there is none (rc: its exit status, -1 when it could not start)
cJSON *bench_python_json(const char *cmd, int *rc);
// the median of v[0..n) (n >= 1; the mean of the middle two for even n), v sorted in place
double bench_median(double *v, int n);
// OpenBLAS SGEMM n x n x n in GFLOP/s, best of reps (train/bench_ops.c): the CPU matrix peak
double bench_sgemm_peak(int n, int reps);
#ifdef CAMEO_HAVE_CUDA
int cuda_bench_main(int argc, char **argv);  // kernels/cuda/cuda_bench.cu
// the measured bf16 matrix peak (kernels/cuda/cuda_gemm.cu): the best time in ms of row-major
// C[M, N] = A[M, K] B[K, N] (bf16 device pointers) over cuBLASLt's top max_algos algorithms and
// cuBLAS's default, iters runs each
struct cm_kctx;
int cuda_device_count(void);               // kernels/cuda/cuda_backend.cu: usable GPUs (0 without one)
const char *cuda_unavailable_reason(void);  // why there are none (NULL when there are)
double cuda_gemm_best_ms(const struct cm_kctx *k, int64_t M, int64_t N, int64_t K, const void *A, const void *B, void *C,
                         int max_algos, int iters);
#endif
