// bench.c — `cameo bench <ops|gpu|...>`: benchmarks that print tables and never fail a test.
#define _GNU_SOURCE  // popen
#include <stdio.h>
#include <string.h>
#include "train/bench.h"
#include "train/bench_train.h"
#include "train/cli.h"

int bench_cli(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "help")) {
        fprintf(stderr, "usage: cameo bench ops [--quick] [--no-torch]   linear and attention fwd+bwd GFLOP/s vs OpenBLAS and PyTorch\n"
                        "       cameo bench train [CONFIG] [--steps N] [--medium] [--no-torch]   the training step, split, vs PyTorch\n"
                        "       cameo bench blocks [--device D] [--full-step] [--md FILE]   FLUX double + single block with the IP branch: MFU, the 512^2 step projected\n"
                        "       cameo bench gpu [--quick] [--tiny] [--md FILE]    bf16 GEMM and flash attention on the GPU (CUDA builds)\n");
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "ops")) return bench_ops_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "train")) return bench_train_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "blocks")) return bench_blocks_main(argc - 1, argv + 1);
#ifdef CAMEO_HAVE_CUDA
    if (!strcmp(argv[0], "gpu")) return cuda_bench_main(argc - 1, argv + 1);
#endif
    fprintf(stderr, "cameo bench: unknown benchmark '%s' (allowed: ops, train, blocks%s)\n", argv[0],
#ifdef CAMEO_HAVE_CUDA
            ", gpu"
#else
            "; gpu needs a CUDA build"
#endif
    );
    return 2;
}

cJSON *bench_python_json(const char *cmd, int *rc) {
    FILE *p = popen(cmd, "r");
    if (!p) {
        *rc = -1;
        return NULL;
    }
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
    *rc = pclose(p);
    return last[0] ? cJSON_Parse(last) : NULL;
}
