// test_bench_ops.c — `cameo bench ops --tiny` (every table at 1/16 of the widths; no timing
// assertions): it runs through, and every row of its markdown tables has as many cells as the
// table's header (a '|' inside a cell must be escaped, or the row gets a column more).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "train/bench.h"

static char out[1 << 16];

// bench_ops_main in a child with stdout in out[] (libgomp does not survive a fork: this process
// never starts OpenMP itself); its exit code
static int run_ops(int argc, char **argv) {
    FILE *f = tmpfile();
    TEST_CHECK(f != NULL, "tmpfile");
    if (!f) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(f), 1);
        int rc = bench_ops_main(argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    rewind(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// the cells of a markdown table line: its unescaped '|' less one
static int cells(const char *line, const char *end) {
    int bars = 0;
    for (const char *p = line; p < end; p++)
        if (*p == '|' && (p == line || p[-1] != '\\')) bars++;
    return bars - 1;
}

int main(void) {
    char *argv[] = {"--tiny"};
    int rc = run_ops(1, argv);
    TEST_CHECK(rc == 0, "bench ops --tiny returned %d:\n%s", rc, out);
    int tables = 0, rows = 0, want = -1;
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (*line != '|') want = -1;  // a blank line ends a table
        else if (want < 0) want = cells(line, end), tables++;
        else {
            rows++;
            TEST_CHECK(cells(line, end) == want, "a row with %d cells under a header of %d: %.*s", cells(line, end), want,
                       (int)(end - line), line);
        }
        line = *end ? end + 1 : end;
    }
    // linear + attention, adaLN, the two MLPs; rows counted with the separator lines
    TEST_CHECK(tables == 3 && rows == 3 + 1 + 1 + 1 + 2 + 1, "%d tables, %d rows:\n%s", tables, rows, out);
    TEST_CHECK(strstr(out, "| mlp_gelu_cat ([attn \\| MLP] proj_out) | B=1 L=4 C=192 H=768 |"), "the MLP rows at 1/16:\n%s", out);
    return test_summary("test_bench_ops");
}
