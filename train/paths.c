// paths.c — see paths.h
#include "train/paths.h"
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exists(const char *p) { return access(p, R_OK) == 0; }

int cameo_asset(char *out, size_t n, const char *rel, char *err, size_t errlen) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *d = dirname(exe);        // .../build
        char up[PATH_MAX];
        snprintf(up, sizeof up, "%s", d);
        for (int i = 0; i < 3; i++) {  // build/, build/tests/, ... up to the repository root
            snprintf(out, n, "%s/%s", up, rel);
            if (exists(out)) return 0;
            char tmp[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%s", up);
            snprintf(up, sizeof up, "%s", dirname(tmp));
        }
    }
    const char *home = getenv("CAMEO_HOME");
    if (home) {
        snprintf(out, n, "%s/%s", home, rel);
        if (exists(out)) return 0;
    }
    snprintf(out, n, "%s", rel);
    if (exists(out)) return 0;
    snprintf(err, errlen, "cannot find cameo's file %s (looked beside the executable, in $CAMEO_HOME and in the working folder)", rel);
    return -1;
}
