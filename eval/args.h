// args.h — the numbers on `cameo eval`'s and `cameo sample`'s command lines, parsed strictly: the
// whole argument a number in range, else a message naming the command, the option, the text and
// what is allowed (printed to stderr) and -1.
// defines: eval_arg_int, eval_arg_double, eval_arg_u64, eval_arg_size, eval_arg_list, eval_arg_missing
#pragma once
#include <stdint.h>

// a whole number in lo..hi
int eval_arg_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
// a finite number
int eval_arg_double(const char *cmd, const char *opt, const char *s, double *out);
// a whole number >= 0 (decimal digits only: "-1" is not 2^64 - 1)
int eval_arg_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
// WxH, both whole numbers in 1..16384 (the multiple the models need is checked when their config is read)
int eval_arg_size(const char *cmd, const char *opt, const char *s, int *w, int *h);
// a comma-separated list of at most max finite numbers, none twice (a value twice would make one
// image twice; under MPI two ranks would write the same file)
int eval_arg_list(const char *cmd, const char *opt, const char *s, double *out, int max, int *n);
// a is one of the NULL-terminated opts but the command line ends after it: says "OPT needs a
// value" (not "unknown argument", which a user reads as a misspelt option) and returns 1; else 0
int eval_arg_missing(const char *cmd, const char *a, const char *const *opts);
