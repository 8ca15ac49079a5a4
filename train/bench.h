// bench.h — benchmark entry points behind `cameo bench`.
#pragma once
int bench_ops_main(int argc, char **argv);
#ifdef CAMEO_HAVE_CUDA
int cuda_bench_main(int argc, char **argv);  // kernels/cuda/cuda_bench.cu
#endif
