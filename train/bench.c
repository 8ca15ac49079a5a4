// bench.c — `cameo bench <ops|gpu|...>`: benchmarks that print tables and never fail a test.
#include <stdio.h>
#include <string.h>
#include "train/bench.h"
#include "train/cli.h"

int bench_cli(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "help")) {
        fprintf(stderr, "usage: cameo bench ops [--quick] [--no-torch]   linear and attention fwd+bwd GFLOP/s vs OpenBLAS and PyTorch\n");
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "ops")) return bench_ops_main(argc - 1, argv + 1);
    fprintf(stderr, "cameo bench: unknown benchmark '%s' (allowed: ops)\n", argv[0]);
    return 2;
}
