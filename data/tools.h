// tools.h — the `cameo data` subcommands beyond build/demo/verify (each returns an exit code).
#pragma once
#include <stdint.h>

int stats_run(const char *dir, int resolution, int step, uint64_t records);  // records: per-record lines from at most this many (0 = all)
// writes a PNG strip: target | full view | TL | TR | BL | BR; prints the caption(s)
int show_run(const char *dir, uint64_t id, const char *out_png, int paired, int ref_size, int resolution, int step, uint64_t seed);
typedef struct {
    const char *dir;
    int threads;        // loader threads (0 = usable CPUs, cpus_usable)
    int samples;        // samples per timed loop (default 256)
    int ref_size;       // default 384
    int resolution;     // default 512
    int scale_samples;  // simulated index size (default 10,000,000; 0 = skip)
} bench_options;
int bench_run(const bench_options *o);
