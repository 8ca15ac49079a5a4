#include "testutil.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int test_failures = 0, test_checks = 0;

int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_checks - test_failures, test_failures);
    return test_failures ? 1 : 0;
}

void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

int test_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int test_metrics_losses(const char *path, double *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\":");
        if (p) out[n++] = atof(p + 7);
    }
    fclose(f);
    return n;
}

int test_run_losses(const char *dir, const char *run, double *out, int max) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/tiny/metrics.jsonl", dir, run);
    return test_metrics_losses(p, out, max);
}

int test_run_validation_key(const char *dir, const char *run, const char *key, int64_t *steps, double *val, int max) {
    char p[1024], line[4096], k[64];
    snprintf(p, sizeof p, "%s/%s/tiny/validation.jsonl", dir, run);
    snprintf(k, sizeof k, "\"%s\":", key);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f && n < max && fgets(line, sizeof line, f)) {
        const char *st = strstr(line, "\"step\":"), *lo = strstr(line, k);
        long long x;
        if (st && lo && sscanf(st + 7, "%lld", &x) == 1 && sscanf(lo + strlen(k), "%lf", &val[n]) == 1) steps[n++] = x;
    }
    if (f) fclose(f);
    return n;
}

int test_run_validation(const char *dir, const char *run, int64_t *steps, double *loss, int max) {
    return test_run_validation_key(dir, run, "loss", steps, loss, max);
}

void test_same_runs(const char *dir, const char *a, const char *b, int n, int nval, double rtol) {
    double la[64], lb[64];
    int na = test_run_losses(dir, a, la, 64), nb = test_run_losses(dir, b, lb, 64);
    TEST_CHECK(na == n && nb == n, "%s, %s: %d logged losses each (%d, %d)", a, b, n, na, nb);
    for (int i = 0; i < na && i < nb; i++) TEST_NEAR(lb[i], la[i], 0, rtol, "loss");
    int64_t sa[16], sb[16];
    double va[16], vb[16];
    na = test_run_validation(dir, a, sa, va, 16), nb = test_run_validation(dir, b, sb, vb, 16);
    TEST_CHECK(na == nval && nb == nval, "%s, %s: %d validations each (%d, %d)", a, b, nval, na, nb);
    for (int i = 0; i < na && i < nb; i++) TEST_NEAR(vb[i], va[i], 0, rtol, "validation loss");
}

int test_damage_records(const char *dataset_dir, int every) {
    char p[1024];
    snprintf(p, sizeof p, "%s/shard-00000/data.mdb", dataset_dir);
    FILE *f = fopen(p, "r+b");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    unsigned char *buf = malloc((size_t)len + 1);
    fseek(f, 0, SEEK_SET);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        return -1;
    }
    int seen = 0, hit = 0;
    for (long i = 0; i + 48 < len; i++) {
        if (memcmp(buf + i, "CMR1", 4) || ++seen % every) continue;
        fseek(f, i + 44, SEEK_SET);  // a byte of the image: the record's checksum no longer matches
        fputc(buf[i + 44] ^ 0x5a, f);
        hit++;
    }
    free(buf);
    fclose(f);
    return hit;
}

int test_fork_stdout(int (*fn)(void *), void *arg, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = tmpfile();
    if (!f) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(f), 1);
        int rc = fn(arg);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) st = -1;
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void __lsan_disable(void) __attribute__((weak));  // LeakSanitizer's, when linked

void test_expect_death(const char *name, void (*fn)(void), const char *must1, const char *must2) {
    int fds[2];
    TEST_CHECK(pipe(fds) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (__lsan_disable) __lsan_disable();
        alarm(10);
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);  // no error raised
    }
    close(fds[1]);
    char buf[1024] = {0};
    ssize_t n = 0, r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0) n += r;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: status %d (expected a clean exit 1; signal %d)", name, st,
               WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    TEST_CHECK(strstr(buf, must1) && (!must2 || strstr(buf, must2)), "%s: message '%s' lacks '%s' / '%s'", name, buf, must1,
               must2 ? must2 : "");
    printf("%-16s -> %s", name, buf);
}
