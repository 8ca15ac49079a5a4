// test_progress_tty.c — train/progress on a terminal: the \r-redrawn bar fits the terminal's width
// (a line as wide as the terminal wraps, and each redraw leaves a line behind). A pseudo-terminal
// of 60 columns stands in for the user's; COLUMNS is the fallback for a TTY that does not say.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include "testutil.h"
#include "train/progress.h"

typedef struct { int master; FILE *slave; } pty;

// a pty of cols columns (0: unsized), raw (no \n -> \r\n), its master non-blocking to drain it
static int pty_open(pty *t, int cols) {
    t->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (t->master < 0 || grantpt(t->master) || unlockpt(t->master)) return -1;
    int s = open(ptsname(t->master), O_RDWR | O_NOCTTY);
    if (s < 0) return -1;
    struct termios tio;
    if (tcgetattr(s, &tio) == 0) cfmakeraw(&tio), tcsetattr(s, TCSANOW, &tio);
    struct winsize ws = {.ws_row = 24, .ws_col = (unsigned short)cols};
    if (ioctl(s, TIOCSWINSZ, &ws)) return -1;
    fcntl(t->master, F_SETFL, fcntl(t->master, F_GETFL) | O_NONBLOCK);
    t->slave = fdopen(s, "w");
    return t->slave ? 0 : -1;
}

// appends what the terminal received to buf (len: its bytes so far)
static void pty_drain(pty *t, char *buf, size_t cap, size_t *len) {
    for (;;) {
        ssize_t r = read(t->master, buf + *len, cap - 1 - *len);
        if (r <= 0) break;
        *len += (size_t)r;
    }
    buf[*len] = 0;
}

// the widest stretch that starts after a \r, up to the next \r or \n: what one redraw puts on a
// single terminal row (the lines after a \n, e.g. "stage 1/3 ... done", may wrap as any line)
static int widest_row(const char *s) {
    int w = 0, cur = 0;
    bool redraw = false;
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n') cur = 0, redraw = *s == '\r';
        else if (redraw && ((unsigned char)*s & 0xc0) != 0x80 && ++cur > w) w = cur;
    }
    return w;
}

static void run_bar(pty *t, const char *stage, char *buf, size_t cap, size_t *len) {
    progress p;
    progress_init(&p, t->slave, false, 5);
    TEST_CHECK(p.tty, "a pty is a TTY");
    progress_stage_begin(&p, stage, 0, 3, 20000, 0);
    for (int s = 1; s <= 40; s++) {
        p.last_draw = 0;  // every step redraws (not 10 a second)
        progress_update(&p, s * 500, 1.0 / s, 0.5, 1e-4, 0.9, 8.0);
        pty_drain(t, buf, cap, len);
    }
    progress_message(&p, "saved %s", "step-20000");  // shorter than any width tried: a whole line
    progress_stage_end(&p);
    fflush(t->slave);
    pty_drain(t, buf, cap, len);
}

int main(void) {
    static char buf[1 << 16];
    size_t len = 0;
    pty t;
    unsetenv("COLUMNS");
    if (pty_open(&t, 60)) test_skip("no pseudo-terminal here");
    run_bar(&t, "unpaired", buf, sizeof buf, &len);
    TEST_CHECK(strstr(buf, "unpaired [1/3] ") != NULL, "the bar was drawn: %.120s", buf);
    TEST_CHECK(strstr(buf, "\rsaved step-20000\n") != NULL, "the message is whole: %.200s", buf);
    TEST_CHECK(widest_row(buf) <= 59, "60 columns: a row of %d chars", widest_row(buf));
    fclose(t.slave), close(t.master);

    // a UTF-8 stage name: cut by characters, never inside one
    len = 0;
    if (pty_open(&t, 30)) test_skip("no pseudo-terminal here");
    run_bar(&t, "étape-ünpaired-ß-ø-long-name", buf, sizeof buf, &len);
    TEST_CHECK(widest_row(buf) <= 29, "30 columns: a row of %d chars", widest_row(buf));
    TEST_CHECK(strstr(buf, "étape-ünpaired-ß-ø-long-name"), "the name is whole in 29 columns: %.80s", buf);
    fclose(t.slave), close(t.master);

    // a pty nobody sized (0 columns): COLUMNS says the width
    setenv("COLUMNS", "50", 1);
    len = 0;
    if (pty_open(&t, 0)) test_skip("no pseudo-terminal here");
    run_bar(&t, "unpaired", buf, sizeof buf, &len);
    TEST_CHECK(widest_row(buf) <= 49, "COLUMNS=50: a row of %d chars", widest_row(buf));
    TEST_CHECK(strstr(buf, "unpaired [1/3] ") != NULL, "the bar was drawn: %.120s", buf);
    fclose(t.slave), close(t.master);

    // neither says: the whole line, as before
    unsetenv("COLUMNS");
    len = 0;
    if (pty_open(&t, 0)) test_skip("no pseudo-terminal here");
    run_bar(&t, "unpaired", buf, sizeof buf, &len);
    TEST_CHECK(strstr(buf, "ETA ") != NULL, "unknown width: the whole line: %.200s", buf);
    fclose(t.slave), close(t.master);
    return test_summary("test_progress_tty");
}
