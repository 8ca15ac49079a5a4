// main.c — the `cameo` command: dispatches to the subcommands of each module.
#include <stdio.h>
#include <string.h>
#include "data/data_cli.h"
#include "train/cli.h"
#include "train/torch_import.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo <command> [options]\n"
            "  train [CONFIG] [--resume DIR] [--set key=value]...  train an adapter (default: the embedded tiny config)\n"
            "  export CKPT --out FILE.safetensors                   write the adapter of a checkpoint\n"
            "  data <build|demo|verify|stats|show|bench> ...        make, check and read datasets\n"
            "  inspect PATH | --arch NAME                           list a weights file or an architecture\n"
            "  import-bin IN.bin OUT.safetensors                    convert the released PyTorch adapter (.bin)\n"
            "  bench <ops|gpu> ...                                  benchmarks (print tables)\n"
            "  help                                                 this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2) return train_cli(argc - 1, argv + 1);  // `cameo` alone runs the embedded demo
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return train_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return export_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return data_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return inspect_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "import-bin")) return torch_import_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return bench_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "cameo: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
