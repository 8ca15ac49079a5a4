// test_data_cli.c — `cameo data` as the command line parses it (data_cli in a child process): a
// fractional --max-aspect is taken as the ratio it is; values that are no ratio are refused; a
// --seed that is no whole number is refused; demo keeps an explicit --max-side below --size and
// refuses build's --images / --manifest; the build's progress line fits a narrow terminal.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include "data/data_cli.h"
#include "data/dataset.h"
#include "helpers.h"

static char **g_argv;
static int g_argc;
static int run_data_cli(const void *a) {
    (void)a;
    tmp_root[0] = 0;  // data_cli exit()s on a bad number: the child's atexit must not remove the parent's folder
    return data_cli(g_argc, g_argv);
}

// `cameo data ARGV...` in a child: its exit code, its stderr in log
static int data_cmd(char *log, size_t n, int argc, char **argv) {
    g_argc = argc, g_argv = argv;
    return run_captured(run_data_cli, NULL, log, n);
}

// samples of a built dataset, -1 when it does not open
static long dataset_samples(const char *path) {
    dataset ds;
    char err[1024];
    if (dataset_open(&ds, path, 0, err, sizeof err)) return -1;
    long n = (long)ds.m.samples;
    dataset_close(&ds);
    return n;
}

static void test_max_aspect(const char *root) {
    char imgs[512], p[700], out[600], log[4096], err[1024];
    snprintf(imgs, sizeof imgs, "%s/imgs", root);
    fs_mkdirs(imgs);
    int wh[2][2] = {{30, 10}, {20, 10}};  // 3:1 and 2:1
    for (int i = 0; i < 2; i++) {
        image im = {wh[i][0], wh[i][1], 3, calloc((size_t)wh[i][0] * wh[i][1] * 3, 1)};
        snprintf(p, sizeof p, "%s/im%d.png", imgs, i);
        TEST_CHECK(image_write_png(p, &im, err, sizeof err) == 0, "%s", err);
        image_free(&im);
    }
    // 2.5: 3:1 skipped, 2:1 kept (it was refused: "expected an integer")
    snprintf(out, sizeof out, "%s/ds25", root);
    int rc = data_cmd(log, sizeof log, 9, (char *[]){"build", "--images", imgs, "--out", out, "--caption", "x", "--max-aspect", "2.5"});
    TEST_CHECK(rc == 0 && dataset_samples(out) == 1 && strstr(log, "above --max-aspect 2.5"), "--max-aspect 2.5: exit %d, %ld samples\n%s", rc,
               dataset_samples(out), log);
    // 0 is no limit; a ratio below 1 would skip every image, a word is no number
    snprintf(out, sizeof out, "%s/ds0", root);
    rc = data_cmd(log, sizeof log, 9, (char *[]){"build", "--images", imgs, "--out", out, "--caption", "x", "--max-aspect", "0"});
    TEST_CHECK(rc == 0 && dataset_samples(out) == 2, "--max-aspect 0: exit %d, %ld samples\n%s", rc, dataset_samples(out), log);
    const char *bad[] = {"0.5", "abc", "2x", "-1"};
    for (int i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "%s/dsbad%d", root, i);
        rc = data_cmd(log, sizeof log, 9, (char *[]){"build", "--images", imgs, "--out", out, "--caption", "x", "--max-aspect", (char *)bad[i]});
        TEST_CHECK(rc == 2 && strstr(log, "--max-aspect") && dataset_samples(out) < 0, "--max-aspect %s: exit %d\n%s", bad[i], rc, log);
    }
}

// --seed of demo and show: a whole number; "abc" was seed 0 and "-1" 2^64-1, silently
static void test_seed(const char *root) {
    char out[600], log[4096];
    const char *bad[] = {"abc", "-1", "7x"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s/demo-bad%d", root, i);
        int rc = data_cmd(log, sizeof log, 5, (char *[]){"demo", "--out", out, "--seed", (char *)bad[i]});
        TEST_CHECK(rc == 2 && strstr(log, "--seed") && dataset_samples(out) < 0, "demo --seed %s: exit %d\n%s", bad[i], rc, log);
    }
    snprintf(out, sizeof out, "%s/demo-7", root);
    int rc = data_cmd(log, sizeof log, 9, (char *[]){"demo", "--out", out, "--seed", "7", "--characters", "2", "--per-character", "2"});
    TEST_CHECK(rc == 0 && dataset_samples(out) == 4, "demo --seed 7: exit %d\n%s", rc, log);
    rc = data_cmd(log, sizeof log, 6, (char *[]){"show", out, "--id", "0", "--seed", "abc"});
    TEST_CHECK(rc == 2 && strstr(log, "--seed"), "show --seed abc: exit %d\n%s", rc, log);
}

// demo --max-side N below --size: the stored images are N on their long side (the default 1024
// is raised to --size, an explicit value is not; --size 64 --max-side 32 used to store 64)
static void test_demo_max_side(const char *root) {
    char out[600], log[4096], err[1024];
    snprintf(out, sizeof out, "%s/demo-ms", root);
    int rc = data_cmd(log, sizeof log, 11, (char *[]){"demo", "--out", out, "--size", "64", "--max-side", "32", "--characters", "1", "--per-character", "3"});
    TEST_CHECK(rc == 0 && dataset_samples(out) == 3, "demo --max-side 32: exit %d\n%s", rc, log);
    dataset ds;
    if (dataset_open(&ds, out, 0, err, sizeof err) == 0) {
        int longest = 0;
        for (uint64_t i = 0; i < ds.m.samples; i++) {
            int l = ds.sizes[2 * i] > ds.sizes[2 * i + 1] ? ds.sizes[2 * i] : ds.sizes[2 * i + 1];
            if (l > longest) longest = l;
        }
        TEST_CHECK(longest == 32 && ds.m.max_side == 32, "demo --size 64 --max-side 32: long side %d, manifest max_side %d", longest, ds.m.max_side);
        dataset_close(&ds);
    } else TEST_CHECK(0, "open %s: %s", out, err);
    snprintf(out, sizeof out, "%s/demo-big", root);  // no --max-side: --size above the default 1024 stays whole
    rc = data_cmd(log, sizeof log, 9, (char *[]){"demo", "--out", out, "--size", "1100", "--characters", "1", "--per-character", "2"});
    TEST_CHECK(rc == 0 && dataset_samples(out) == 2, "demo --size 1100: exit %d\n%s", rc, log);
    if (dataset_open(&ds, out, 0, err, sizeof err) == 0) {
        TEST_CHECK(ds.sizes[0] == 1100 || ds.sizes[1] == 1100, "demo --size 1100 kept: %ux%u", ds.sizes[0], ds.sizes[1]);
        dataset_close(&ds);
    }
}

// demo makes its own images: --images and --manifest (build's) are refused, naming the option; both
// were taken and ignored, a synthetic dataset built where the user meant their images
static void test_demo_build_only(const char *root) {
    char out[600], log[4096];
    const char *opt[] = {"--images", "--manifest", "--character", "--caption"};
    for (int i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "%s/demo-only%d", root, i);
        int rc = data_cmd(log, sizeof log, 5, (char *[]){"demo", "--out", out, (char *)opt[i], "x"});
        TEST_CHECK(rc == 2 && strstr(log, "unknown option") && strstr(log, opt[i]) && dataset_samples(out) < 0, "demo %s x: exit %d\n%s",
                   opt[i], rc, log);
    }
}

// the widest stretch between two \r: what one redraw puts on a single terminal row (a line ended
// by \n is printed once and may wrap as any line)
static int widest_redraw(const char *s) {
    int w = 0;
    for (const char *r = strchr(s, '\r'); r; r = strchr(r + 1, '\r')) {
        const char *e = r + 1 + strcspn(r + 1, "\r\n");
        if (*e == '\r' && e - r - 1 > w) w = (int)(e - r - 1);
    }
    return w;
}

// `cameo data demo` on a terminal of 60 columns: its progress line (86 characters) was drawn whole,
// so each redraw wrapped and left a line behind; the skipped-image clear wrote 110 blanks
static void test_build_progress_narrow(const char *root) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    TEST_CHECK(master >= 0 && !grantpt(master) && !unlockpt(master), "a pty");
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    struct termios tio;
    if (tcgetattr(slave, &tio) == 0) cfmakeraw(&tio), tcsetattr(slave, TCSANOW, &tio);
    struct winsize ws = {.ws_row = 24, .ws_col = 60};
    TEST_CHECK(slave >= 0 && !ioctl(slave, TIOCSWINSZ, &ws), "a pty of 60 columns");
    char out[600];
    snprintf(out, sizeof out, "%s/demo-narrow", root);
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(slave, 2);
        if (!freopen("/dev/null", "w", stdout)) _exit(99);
        tmp_root[0] = 0;
        char *av[] = {"demo", "--out", out, "--characters", "40", "--per-character", "6", "--size", "256", "--quality", "90"};
        int rc = data_cli(11, av);
        fflush(stderr);
        _exit(rc);
    }
    close(slave);
    static char buf[1 << 16];
    size_t len = 0;
    for (;;) {  // drain until the child closes its end (EIO on Linux)
        ssize_t r = read(master, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = 0;
    close(master);
    int st = 0;
    waitpid(pid, &st, 0);
    int draws = 0;
    for (const char *b = strstr(buf, "build: "); b; b = strstr(b + 1, "build: ")) draws++;
    TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && dataset_samples(out) == 240, "demo on a pty: status %d", st);
    TEST_CHECK(draws >= 2, "the progress line redrawn at least once (%d lines; a faster machine needs a larger demo)", draws);
    int w = widest_redraw(buf);
    TEST_CHECK(w > 0 && w <= 59, "each redraw fits 60 columns less one: %d\n%.600s", w, buf);
}

int main(void) {
    const char *root = tmp_dir();
    test_max_aspect(root);
    test_seed(root);
    test_demo_max_side(root);
    test_demo_build_only(root);
    test_build_progress_narrow(root);
    return test_summary("test_data_cli");
}
