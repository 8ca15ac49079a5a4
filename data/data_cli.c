// data_cli.c — `cameo data <build|demo|verify|stats|show|bench>`.
#include "data/data_cli.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/build.h"
#include "data/demo.h"
#include "data/tools.h"
#include "data/verify.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo data <command> ...\n"
            "  build --images DIR --manifest FILE.jsonl --out DATASET [--quality Q | --lossless] [--max-side N]\n"
            "        [--max-aspect 8 (long/short side; 0: no limit)] [--shard-samples N] [--threads N]\n"
            "        JSONL lines: {\"image\": path, \"caption\": str | [str...], \"character\": id, \"mask\"?: path, \"bbox\"?: [x,y,w,h]}\n"
            "  build --images DIR --out DATASET [--character NAME] [--caption TEXT] [options as above]\n"
            "        without --manifest: every image under DIR; character = its first folder under DIR (else\n"
            "        --character, default DIR's name); captions = the lines of NAME.txt beside it (else --caption)\n"
            "  demo --out DATASET [--seed S] [--characters N] [--per-character M] [--size PX]\n"
            "        [--quality Q | --lossless (the default)] [--max-side N] [--shard-samples N] [--threads N]\n"
            "  verify DATASET [--no-decode]          check every checksum and decode every image\n"
            "  stats DATASET [--resolution N] [--step N] [--records N (100000; 0 = all)]\n"
            "  show DATASET --id N [--out FILE.png] [--paired] [--ref-size R] [--resolution N] [--step N] [--seed S]\n"
            "  bench DATASET [--threads N] [--samples N] [--ref-size R] [--resolution N] [--scale N]\n"
            "See docs/data.md and docs/dataset-format.md.\n");
}

// parses "--key value" pairs; returns the value or NULL; *i advanced
static const char *val(int argc, char **argv, int *i, const char *key) {
    if (strcmp(argv[*i], key)) return NULL;
    if (*i + 1 >= argc) { fprintf(stderr, "cameo data: %s needs a value\n", key); exit(2); }
    return argv[++*i];
}

static long num(const char *s, const char *key, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) { fprintf(stderr, "cameo data: %s %s (expected an integer in %ld..%ld)\n", key, s, lo, hi); exit(2); }
    return v;
}

// a seed: the whole argument a whole number >= 0 (strtoull alone takes "abc" as 0 and "-1" as 2^64-1)
static uint64_t seed_arg(const char *s, const char *key) {
    char *end;
    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (s[0] < '0' || s[0] > '9' || *end || errno) {
        fprintf(stderr, "cameo data: %s %s (expected a whole number >= 0)\n", key, s);
        exit(2);
    }
    return v;
}

// a ratio: the whole argument a number, 0 (no limit) or lo..hi ("2.5" is one; 0.5 would skip every image)
static double ratio(const char *s, const char *key, double lo, double hi) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v == 0 || (v >= lo && v <= hi))) {
        fprintf(stderr, "cameo data: %s %s (expected 0 for no limit, or a number in %g..%g)\n", key, s, lo, hi);
        exit(2);
    }
    return v;
}

static int cmd_build(int argc, char **argv, int demo) {
    build_options o = build_options_default();
    demo_options d = demo_options_default();
    const char *images = NULL, *jsonl = NULL, *out = NULL, *character = NULL, *caption = NULL, *v;
    int quality_set = 0, max_side_set = 0;
    for (int i = 1; i < argc; i++) {
        // demo draws its own images: --images / --manifest there were taken and ignored without a word
        if (!demo && (v = val(argc, argv, &i, "--images"))) images = v;
        else if (!demo && (v = val(argc, argv, &i, "--manifest"))) jsonl = v;
        else if ((v = val(argc, argv, &i, "--out"))) out = v;
        else if (!demo && (v = val(argc, argv, &i, "--character"))) character = v;
        else if (!demo && (v = val(argc, argv, &i, "--caption"))) caption = v;
        else if ((v = val(argc, argv, &i, "--quality"))) { o.quality = (int)num(v, "--quality", 0, 100); quality_set = 1; }
        else if (!strcmp(argv[i], "--lossless")) o.lossless = 1;
        else if ((v = val(argc, argv, &i, "--max-side"))) { o.max_side = (int)num(v, "--max-side", 0, 16383); max_side_set = 1; }
        else if ((v = val(argc, argv, &i, "--max-aspect"))) o.max_aspect = ratio(v, "--max-aspect", 1, 16384);
        else if ((v = val(argc, argv, &i, "--shard-samples"))) o.shard_samples = (uint64_t)num(v, "--shard-samples", 1, 1L << 40);
        else if ((v = val(argc, argv, &i, "--threads"))) o.threads = (int)num(v, "--threads", 0, 1024);
        else if (demo && (v = val(argc, argv, &i, "--seed"))) d.seed = seed_arg(v, "--seed");
        else if (demo && (v = val(argc, argv, &i, "--characters"))) d.characters = (int)num(v, "--characters", 1, 1000000);
        else if (demo && (v = val(argc, argv, &i, "--per-character"))) d.per_character = (int)num(v, "--per-character", 1, 65535);
        else if (demo && (v = val(argc, argv, &i, "--size"))) d.size = (int)num(v, "--size", 16, 4096);
        else { fprintf(stderr, "cameo data %s: unknown option '%s'\n", argv[0], argv[i]); usage(stderr); return 2; }
    }
    if (!out || (!demo && !images)) { fprintf(stderr, "cameo data %s: missing %s\n", argv[0], demo ? "--out" : "--images or --out"); usage(stderr); return 2; }
    if (jsonl && (character || caption)) { fprintf(stderr, "cameo data build: --character and --caption are for a folder without --manifest (the manifest names both)\n"); return 2; }
    build_report r;
    char err[2048];
    int rc;
    if (demo) {
        if (!quality_set) o.lossless = 1;  // small synthetic images: exact pixels, still small
        if (!max_side_set && d.size > o.max_side) o.max_side = d.size;  // the default 1024 must not shrink --size 2048; an explicit --max-side stands
        rc = demo_build(out, &d, &o, &r, err, sizeof err);
    } else if (jsonl) rc = build_from_jsonl(images, jsonl, out, &o, &r, err, sizeof err);
    else rc = build_from_folder(images, character, caption, out, &o, &r, err, sizeof err);
    if (rc) { fprintf(stderr, "cameo data %s: %s\n", argv[0], err); return 1; }
    build_report_print(&r, out);
    return 0;
}

int data_cli(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++)  // `cameo data stats --help`: the usage, not "missing DATASET"
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
    const char *cmd = argv[0], *v;
    if (!strcmp(cmd, "build")) return cmd_build(argc, argv, 0);
    if (!strcmp(cmd, "demo")) return cmd_build(argc, argv, 1);
    // a misspelt command is told as such, not as a missing dataset (`cameo data bogus`)
    if (strcmp(cmd, "verify") && strcmp(cmd, "stats") && strcmp(cmd, "show") && strcmp(cmd, "bench")) {
        fprintf(stderr, "cameo data: unknown command '%s' (allowed: build, demo, verify, stats, show, bench)\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc < 2 || argv[1][0] == '-') { fprintf(stderr, "cameo data %s: missing DATASET\n", cmd); usage(stderr); return 2; }
    const char *dir = argv[1];
    int resolution = 512, step = 64;
    if (!strcmp(cmd, "verify")) {
        int decode = 1;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--no-decode")) decode = 0;
            else { fprintf(stderr, "cameo data verify: unknown option '%s'\n", argv[i]); return 2; }
        }
        long bad = verify_dataset(dir, decode, stderr);
        if (bad == 0) { printf("%s: intact (every checksum%s verified)\n", dir, decode ? ", record and image" : " and record"); return 0; }
        fprintf(stderr, "%s: %ld problem(s)\n", dir, bad < 0 ? 1 : bad);
        return 1;
    }
    if (!strcmp(cmd, "stats")) {
        long records = 100000;
        for (int i = 2; i < argc; i++) {
            if ((v = val(argc, argv, &i, "--resolution"))) resolution = (int)num(v, "--resolution", 16, 16384);
            else if ((v = val(argc, argv, &i, "--step"))) step = (int)num(v, "--step", 1, 1024);
            else if ((v = val(argc, argv, &i, "--records"))) records = num(v, "--records", 0, 1L << 40);
            else { fprintf(stderr, "cameo data stats: unknown option '%s'\n", argv[i]); return 2; }
        }
        return stats_run(dir, resolution, step, (uint64_t)records);
    }
    if (!strcmp(cmd, "show")) {
        long id = -1;
        int paired = 0, R = 128;
        uint64_t seed = 0;
        const char *out = "sample.png";
        for (int i = 2; i < argc; i++) {
            if ((v = val(argc, argv, &i, "--id"))) id = num(v, "--id", 0, 1L << 40);
            else if ((v = val(argc, argv, &i, "--out"))) out = v;
            else if (!strcmp(argv[i], "--paired")) paired = 1;
            else if ((v = val(argc, argv, &i, "--ref-size"))) R = (int)num(v, "--ref-size", 1, 4096);
            else if ((v = val(argc, argv, &i, "--resolution"))) resolution = (int)num(v, "--resolution", 16, 16384);
            else if ((v = val(argc, argv, &i, "--step"))) step = (int)num(v, "--step", 1, 1024);
            else if ((v = val(argc, argv, &i, "--seed"))) seed = seed_arg(v, "--seed");
            else { fprintf(stderr, "cameo data show: unknown option '%s'\n", argv[i]); return 2; }
        }
        if (id < 0) { fprintf(stderr, "cameo data show: missing --id N\n"); return 2; }
        return show_run(dir, (uint64_t)id, out, paired, R, resolution, step, seed);
    }
    if (!strcmp(cmd, "bench")) {
        bench_options o = {.dir = dir, .threads = 0, .samples = 256, .ref_size = 384, .resolution = 512, .scale_samples = 10000000};
        for (int i = 2; i < argc; i++) {
            if ((v = val(argc, argv, &i, "--threads"))) o.threads = (int)num(v, "--threads", 0, 1024);
            else if ((v = val(argc, argv, &i, "--samples"))) o.samples = (int)num(v, "--samples", 1, 100000000);
            else if ((v = val(argc, argv, &i, "--ref-size"))) o.ref_size = (int)num(v, "--ref-size", 1, 4096);
            else if ((v = val(argc, argv, &i, "--resolution"))) o.resolution = (int)num(v, "--resolution", 16, 16384);
            else if ((v = val(argc, argv, &i, "--scale"))) o.scale_samples = (int)num(v, "--scale", 0, 2000000000);
            else { fprintf(stderr, "cameo data bench: unknown option '%s'\n", argv[i]); return 2; }
        }
        return bench_run(&o);
    }
    return 2;  // not reached: cmd was checked above
}
