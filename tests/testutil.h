// testutil.h — a tiny test harness: CHECK macros that count failures and say where.
// defines: TEST_CHECK, TEST_NEAR, test_summary, test_skip
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

extern int test_failures, test_checks;

#define TEST_CHECK(cond, ...)                                                  \
    do {                                                                       \
        test_checks++;                                                         \
        if (!(cond)) {                                                         \
            test_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
        }                                                                      \
    } while (0)

// |a-b| <= atol + rtol*|b|
#define TEST_NEAR(a, b, atol, rtol, what)                                                        \
    do {                                                                                         \
        double _a = (a), _b = (b);                                                               \
        TEST_CHECK(fabs(_a - _b) <= (atol) + (rtol)*fabs(_b), "%s: got %.9g expected %.9g", what, _a, _b); \
    } while (0)

// max that keeps a NaN (fmax drops it): a worst error summed up with it fails its `<= tol` check
static inline double test_max(double worst, double e) { return worst != worst || e != e ? NAN : e > worst ? e : worst; }

// fn(arg) in a forked child with its stdout in out (NUL-terminated, cut at cap - 1); the child's
// exit code, 128 + the signal that ended it, or -1 when it could not run. Runs code that uses
// OpenMP only in the child: libgomp does not survive a fork of a process that started it.
int test_fork_stdout(int (*fn)(void *), void *arg, char *out, size_t cap);
// fn() in a forked child (LeakSanitizer off: it dies holding its memory; killed after 10 s, so a
// hang fails) must end with exit status 1 and a message on stderr holding must1 (and must2 unless
// NULL); prints "name -> message"
void test_expect_death(const char *name, void (*fn)(void), const char *must1, const char *must2);
// prints "N passed, N failed" and returns the exit code
int test_summary(const char *name);
// runs a printf-formatted shell command; its exit status (-1 when it did not exit normally)
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// the "loss" of every line of a run's metrics.jsonl, in order; how many (0 when unreadable)
int test_metrics_losses(const char *path, double *out, int max);
// the same for the tiny run written under DIR/RUN (DIR/RUN/tiny/metrics.jsonl)
int test_run_losses(const char *dir, const char *run, double *out, int max);
// DIR/RUN/tiny/validation.jsonl: each line's step and loss; the count
int test_run_validation(const char *dir, const char *run, int64_t *steps, double *loss, int max);
// the same for another number of the lines, e.g. "loss_ema"
int test_run_validation_key(const char *dir, const char *run, const char *key, int64_t *steps, double *val, int max);
// runs DIR/A and DIR/B (tiny) log n losses each and nval validations each, each within rtol relative
// (B's against A's): checked
void test_same_runs(const char *dir, const char *a, const char *b, int n, int nval, double rtol);
// damages every every-th record of a dataset's first shard (a byte of its image: the checksum
// fails, the loader skips it); how many, or -1 when the shard cannot be read
int test_damage_records(const char *dataset_dir, int every);
// prints a skip line and exits 77 (ctest SKIP_RETURN_CODE)
_Noreturn void test_skip(const char *why);
