// main.c — the `cameo` command: dispatches to the subcommands of each module.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/data_cli.h"
#include "kernels/profile.h"
#include "train/progress.h"
#include "train/cli.h"
#include "train/latent_cache.h"
#include "train/ref_cache.h"
#include "train/text_cache.h"
#include "train/dist.h"
#include "train/torch_import.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo <command> [options]   (cameo <command> --help: all of its options)\n"
            "  train [CONFIG] [--resume DIR|auto] [--set k=v]... [--quiet]\n"
            "                                                       train an adapter (default: the embedded tiny config)\n"
            "  export CKPT --out FILE.safetensors|FILE.bin [--ema]  write the adapter of a checkpoint (.bin: torch.load)\n"
            "  sample CKPT --ref IMG --prompt TEXT --out OUT.png [options]\n"
            "                                                       generate an image with a checkpoint's adapter\n"
            "  eval CKPT... --pairs PAIRS.jsonl --out DIR [options]\n"
            "                                                       an evaluation sweep: images and DINO-I / SigLIP-I scores\n"
            "  data <build|demo|verify|stats|show|bench> ...        make, check and read datasets\n"
            "  cache-text [CONFIG] [--out DIR] [--set k=v]...       run T5 / CLIP once over every caption a config can draw;\n"
            "                                                       train with --set model.text_cache=DIR (no text encoders loaded)\n"
            "  cache-refs [CONFIG] [--out DIR] [--set k=v]...       run SigLIP / DINOv2 once over every reference a config can draw;\n"
            "                                                       train with --set model.ref_cache=DIR (no towers run a step)\n"
            "  cache-latents [CONFIG] [--out DIR] [--set k=v]...    run the VAE once over every target a config can draw (centre crops);\n"
            "                                                       train with --set model.latent_cache=DIR (no VAE runs a step)\n"
            "  inspect PATH [--quiet] | --arch NAME [--quiet]       list a weights file (.safetensors, .bin), a checkpoint, a feature cache, an architecture\n"
            "  import-bin IN.bin OUT.safetensors | --list IN.bin    convert (or list) the released PyTorch adapter (.bin)\n"
            "  bench <ops|train|blocks|text-cache|ref-cache|gpu> ... benchmarks (print tables; gpu: CUDA builds)\n"
            "  help                                                 this text\n");
}

// OpenMP's idle workers spin by default, taking the cores OpenBLAS and the loader threads need
// (on 2 cores the training step ran 2x slower). libgomp reads its settings when it loads, before
// main, so the process re-executes itself once with passive waiting unless the user chose.
static void threads_passive_once(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    execv("/proc/self/exe", argv);  // on failure, carry on as we are
}

// CAMEO_PROFILE=1: the op profiler's table (kernels/profile.h) on stderr when the command ends;
// CAMEO_PROFILE=FILE: appended to FILE (markdown; FILE.rankN for each rank of several)
static void profile_report(const char *to, const char *cmd, double wall_s) {
    static char buf[32768];
    int world, rank = dist_process_rank(&world);  // the trainer's rank: one file per rank
    char title[200], path[4200];
    if (world > 1) snprintf(title, sizeof title, "### cameo %s, rank %d of %d: where the time went", cmd, rank, world);
    else snprintf(title, sizeof title, "### cameo %s: where the time went", cmd);
    prof_stop_format(buf, sizeof buf, title, wall_s * 1e3, 30);
    if (world > 1) snprintf(path, sizeof path, "%s.rank%d", to, rank);
    else snprintf(path, sizeof path, "%s", to);
    FILE *f = strcmp(to, "1") ? fopen(path, "a") : stderr;
    if (!f) {
        fprintf(stderr, "cameo: CAMEO_PROFILE: cannot append to '%s' (a file path, or 1 for stderr)\n", path);
        f = stderr;
    }
    int bad = fprintf(f, "\n%s\n", buf) < 0;
    if (f != stderr) bad |= fclose(f) != 0;
    if (bad && f != stderr) {  // a full disk: the table goes to stderr rather than nowhere
        fprintf(stderr, "cameo: CAMEO_PROFILE: writing '%s' failed (%s); the table follows here\n%s\n", path,
                strerror(errno), buf);
    }
}

static int dispatch(int argc, char **argv);

// `cameo inspect PATH [-q]`: a checkpoint, a torch.save file, or (models/inspect.c) weights and architectures.
// -q / --quiet may stand before or after PATH, as inspect_cli takes it: the one PATH picks the reader
static int inspect(int argc, char **argv) {
    const char *path = NULL;
    bool q = false, other = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) q = true;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else other = true;
    }
    if (path && !other && ckpt_info_applies(path)) return ckpt_info_cli(path);  // a summary already: -q changes nothing
    if (path && !other && torch_import_is_torch_file(path)) return torch_import_inspect("inspect", path, q);
    if (path && !other && text_cache_applies(path)) return text_cache_inspect_cli(path);  // cameo cache-text's folder
    if (path && !other && ref_cache_applies(path)) return ref_cache_inspect_cli(path);    // cameo cache-refs' folder
    if (path && !other && latent_cache_applies(path)) return latent_cache_inspect_cli(path);  // cameo cache-latents' folder
    return inspect_cli(argc, argv);
}

int main(int argc, char **argv) {
    threads_passive_once(argv);
    // past a file-size limit (`ulimit -f`, a job's RLIMIT_FSIZE) a write fails with EFBIG, which
    // every writer reports by file name; the default SIGXFSZ killed the process mid-checkpoint
    // without a word ("File size limit exceeded") and left the half-written folder behind
    signal(SIGXFSZ, SIG_IGN);
    const char *prof = getenv("CAMEO_PROFILE");
    if (prof && (!*prof || !strcmp(prof, "0"))) prof = NULL;
    double t0 = progress_now();
    if (prof) prof_start();
    int rc = dispatch(argc, argv);
    if (prof) profile_report(prof, argc < 2 ? "train" : argv[1], progress_now() - t0);
    return rc;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) return train_cli(argc - 1, argv + 1);  // `cameo` alone runs the embedded demo
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return train_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return export_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample")) return sample_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return eval_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return data_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "cache-text")) return cache_text_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "cache-refs")) return cache_refs_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "cache-latents")) return cache_latents_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "import-bin")) return torch_import_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return bench_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "cameo: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
