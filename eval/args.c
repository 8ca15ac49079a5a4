// args.c — see args.h
#include "eval/args.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int eval_arg_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "cameo %s: %s '%s': want a whole number in %ld..%ld\n", cmd, opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int eval_arg_double(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "cameo %s: %s '%s': want a number\n", cmd, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int eval_arg_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;  // strtoull takes "-1" as 2^64 - 1
    if (s[0] < '0' || s[0] > '9' || *end || errno) {
        fprintf(stderr, "cameo %s: %s '%s': want a whole number >= 0\n", cmd, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int eval_arg_size(const char *cmd, const char *opt, const char *s, int *w, int *h) {
    char *x, *end;
    errno = 0;
    long a = strtol(s, &x, 10), b = x != s && (*x == 'x' || *x == 'X') ? strtol(x + 1, &end, 10) : 0;
    if (x == s || (*x != 'x' && *x != 'X') || end == x + 1 || *end || errno || a < 1 || b < 1 || a > 16384 || b > 16384) {
        fprintf(stderr, "cameo %s: %s '%s': want WxH, each a whole number in 1..16384\n", cmd, opt, s);
        return -1;
    }
    *w = (int)a, *h = (int)b;
    return 0;
}

int eval_arg_list(const char *cmd, const char *opt, const char *s, double *out, int max, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || *n == max || (*end && *end != ',')) {
            fprintf(stderr, "cameo %s: %s '%s': want a comma-separated list of at most %d numbers\n", cmd, opt, s, max);
            return -1;
        }
        if (v == 0) v = 0;  // -0 is 0: the keys and file names would write it "-0", another key for the same images
        for (int i = 0; i < *n; i++)
            if (out[i] == v) {
                fprintf(stderr, "cameo %s: %s '%s': %g is given twice (each value once)\n", cmd, opt, s, v);
                return -1;
            }
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (!*n) { fprintf(stderr, "cameo %s: %s is empty\n", cmd, opt); return -1; }
    return 0;
}

int eval_arg_missing(const char *cmd, const char *a, const char *const *opts) {
    for (int i = 0; opts[i]; i++)
        if (!strcmp(a, opts[i])) {
            fprintf(stderr, "cameo %s: %s needs a value after it\n", cmd, a);
            return 1;
        }
    return 0;
}
