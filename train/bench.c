// bench.c — `cameo bench <ops|gpu|...>`: benchmarks that print tables and never fail a test.
#define _GNU_SOURCE  // popen
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/bench.h"
#include "train/bench_train.h"
#include "train/cli.h"
#include "train/paths.h"

#ifdef CAMEO_HAVE_CUDA
// `cameo bench gpu`: PyTorch's scaled_dot_product_attention at the benchmark's attention shapes
// (scripts/bench_attn_torch.py, run first, while this process holds no GPU memory) goes to the
// CUDA benchmark as --torch-attn FWD_MS,BWD_MS,SIGLIP_FWD_MS,VERSION; argv[0] is "gpu"
static int bench_gpu(int argc, char **argv) {
    int skip = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--tiny") || !strcmp(argv[i], "--no-torch") || !strcmp(argv[i], "-h") ||
            !strcmp(argv[i], "--help") || (!strcmp(argv[i], "--only") && i + 1 < argc && strcmp(argv[i + 1], "attention")))
            skip = 1;
    char script[4096], err[512], cmd[8192], fig[256] = "";
    if (!skip && cameo_asset(script, sizeof script, "scripts/bench_attn_torch.py", err, sizeof err) == 0) {
        snprintf(cmd, sizeof cmd, "python3 '%s' 2>/dev/null", script);
        int rc;
        cJSON *j = bench_python_json(cmd, &rc), *f = cJSON_GetObjectItemCaseSensitive(j, "fwd_ms"),
              *b = cJSON_GetObjectItemCaseSensitive(j, "bwd_ms"), *s = cJSON_GetObjectItemCaseSensitive(j, "siglip_fwd_ms"),
              *v = cJSON_GetObjectItemCaseSensitive(j, "version");
        if (cJSON_IsNumber(f) && cJSON_IsNumber(b) && cJSON_IsNumber(s) && cJSON_IsString(v))
            snprintf(fig, sizeof fig, "%.6f,%.6f,%.6f,%s", f->valuedouble, b->valuedouble, s->valuedouble, v->valuestring);
        else
            fprintf(stderr, "cameo bench gpu: no PyTorch attention figures (python3 with torch on a GPU: exit %d)\n", rc);
        cJSON_Delete(j);
    }
    char *av[64];
    int n = 0;
    for (int i = 0; i < argc && n < 60; i++)
        if (strcmp(argv[i], "--no-torch")) av[n++] = argv[i];
    if (fig[0]) av[n++] = "--torch-attn", av[n++] = fig;
    av[n] = NULL;
    return cuda_bench_main(n, av);
}
#endif

int bench_cli(int argc, char **argv) {
    bool help = argc >= 1 && (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
    if (argc < 1 || help) {
        fprintf(help ? stdout : stderr, "usage: cameo bench ops [--quick] [--tiny] [--no-torch]   linear and attention fwd+bwd GFLOP/s vs OpenBLAS and PyTorch\n"
                        "       cameo bench train [CONFIG] [--steps N] [--medium] [--no-torch]   the training step, split, vs PyTorch\n"
                        "       cameo bench blocks [--device D] [--full-step] [--md FILE]   FLUX double + single block with the IP branch: MFU, the 512^2 step projected\n"
                        "       cameo bench text-cache [--device D] [--batch N]   reading text embeddings from a text cache vs memcpy\n"
                        "       cameo bench ref-cache [--device D] [--batch N]    reading reference features from a reference cache vs memcpy\n"
                        "       cameo bench train --help, cameo bench blocks --help: all their options\n"
                        "       cameo bench gpu [--quick] [--tiny] [--no-torch] [--md FILE]    bf16 GEMM and flash attention on the GPU vs cuBLAS and PyTorch (CUDA builds)\n");
        return help ? 0 : 2;
    }
    if (!strcmp(argv[0], "ops")) return bench_ops_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "train")) return bench_train_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "blocks")) return bench_blocks_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "text-cache")) return bench_text_cache_main(argc - 1, argv + 1);
    if (!strcmp(argv[0], "ref-cache")) return bench_ref_cache_main(argc - 1, argv + 1);
#ifdef CAMEO_HAVE_CUDA
    if (!strcmp(argv[0], "gpu")) return bench_gpu(argc, argv);
#endif
    fprintf(stderr, "cameo bench: unknown benchmark '%s' (allowed: ops, train, blocks, text-cache, ref-cache%s)\n", argv[0],
#ifdef CAMEO_HAVE_CUDA
            ", gpu"
#else
            "; gpu needs a CUDA build"
#endif
    );
    return 2;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
