// test_val_skip_log.c — the validation's damaged records are logged once per stage, not at every
// validation: each validation reads the same samples, so meets the same damaged records, and a
// run of days printed them again at every validation (twice with a weight average). The counts
// stay in validation.jsonl.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/data_cli.h"
#include "testutil.h"
#include "train_child.h"

// the lines of text equal to the len bytes at line
static int count_line(const char *text, const char *line, size_t len) {
    char want[1024];
    snprintf(want, sizeof want, "%.*s", (int)len, line);
    int n = 0;
    for (const char *p = text; (p = strstr(p, want)); p += len)
        if ((p == text || p[-1] == '\n') && p[len] == '\n') n++;
    return n;
}

int main(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/cameo-val-skip-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char data[128], held[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(held, sizeof held, "%s/held", dir);
    for (int k = 0; k < 2; k++)  // the training set, and a held-out one to damage
        TEST_CHECK(demo_child(k ? held : data, 4, 4, 64) == 0, "cameo data demo");
    TEST_CHECK(test_damage_records(held, 3) > 0, "damaging the held-out set");

    char sets[10][200], log[200];
    snprintf(sets[0], sizeof sets[0], "data.path=%s", data);
    snprintf(sets[1], sizeof sets[1], "validation.path=%s", held);
    snprintf(sets[2], sizeof sets[2], "run.out_dir=%s/runs", dir);
    snprintf(sets[3], sizeof sets[3], "stages.0.steps=6");
    snprintf(sets[4], sizeof sets[4], "stages.1.steps=0");
    snprintf(sets[5], sizeof sets[5], "stages.2.steps=0");
    snprintf(sets[6], sizeof sets[6], "validation.every=2");  // 3 validations
    snprintf(sets[7], sizeof sets[7], "validation.batch_size=1");
    snprintf(sets[8], sizeof sets[8], "optimizer.ema=0.9");  // each validation reads the set twice
    snprintf(sets[9], sizeof sets[9], "run.threads=1");
    snprintf(log, sizeof log, "%s/train.log", dir);
    TEST_CHECK(train_child(sets, 10, log, NULL) == 0, "the tiny run (see %s)", log);

    FILE *f = fopen(log, "r");
    static char text[1 << 20];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    int lines = 0, repeated = 0;
    for (char *p = text; (p = strstr(p, "loader: skipped: ")); p++) {
        char *e = strchr(p, '\n');
        if (!e) break;
        lines++;
        int c = count_line(text, p, (size_t)(e - p));
        if (c > 1 && !repeated) printf("logged %d times: %.*s\n", c, (int)(e - p), p);
        repeated += c > 1;
    }
    TEST_CHECK(lines > 0, "no damaged record logged (see %s)", log);
    TEST_CHECK(repeated == 0, "%d of %d damaged-record lines repeated over the validations (see %s)", repeated, lines, log);
    char vj[200];
    snprintf(vj, sizeof vj, "%s/runs/tiny/validation.jsonl", dir);
    TEST_CHECK(test_sh("test $(grep -c '\"samples_damaged\"' %s) -eq 3", vj) == 0, "3 validation lines counting the damaged samples");
    int rc = test_summary("test_val_skip_log");
    if (!rc) test_sh("rm -rf %s", dir);
    return rc;
}
