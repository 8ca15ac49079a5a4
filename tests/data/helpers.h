// helpers.h — shared by the data tests: temporary folders and small demo datasets.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/build.h"
#include "data/demo.h"
#include "data/fsutil.h"
#include "testutil.h"

static char tmp_root[256];

static inline void tmp_cleanup(void) { if (tmp_root[0]) fs_remove_tree(tmp_root); }

// a fresh folder removed at exit
static inline const char *tmp_dir(void) {
    if (!tmp_root[0]) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/cameo-data-test-XXXXXX");
        if (!mkdtemp(tmp_root)) { perror("mkdtemp"); exit(1); }
        atexit(tmp_cleanup);
    }
    return tmp_root;
}

// builds a demo dataset under the temp folder; returns its path (static buffer per call slot)
static inline const char *make_demo(const char *name, int chars, int per, int size, uint64_t shard_samples) {
    static char paths[8][512];
    static int k = 0;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", tmp_dir(), name);
    demo_options d = demo_options_default();
    d.characters = chars;
    d.per_character = per;
    d.size = size;
    build_options o = build_options_default();
    o.lossless = 1;
    o.quiet = 1;
    o.shard_samples = shard_samples;
    o.threads = 2;
    build_report r;
    char err[1024];
    if (demo_build(p, &d, &o, &r, err, sizeof err)) { fprintf(stderr, "demo build failed: %s\n", err); exit(1); }
    return p;
}
