// test_data_png_full.c — a PNG written onto a full disk (RLIMIT_FSIZE with SIGXFSZ ignored: writes
// past the limit fail with EFBIG): image_write_png names the cause, leaves no PATH.tmp, and the PNG
// that was at PATH before (an earlier sample, sheet) is still there, whole; once there is room the
// same call writes the new one. (libpng's own writer said "Write Error" and removed PATH.)
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "data/image.h"
#include "helpers.h"

int main(void) {
    char path[512], tmp[600], err[1024];
    snprintf(path, sizeof path, "%s/out.png", tmp_dir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t small_px[8 * 8 * 3];  // [8, 8, 3]
    memset(small_px, 200, sizeof small_px);
    image small = {8, 8, 3, small_px};
    TEST_CHECK(image_write_png(path, &small, err, sizeof err) == 0, "the first image: %s", err);

    image big = {256, 256, 3, malloc(256 * 256 * 3)};  // [256, 256, 3] noise: ~190 KB, past the limit
    uint32_t s = 12345;
    for (size_t i = 0; i < 256 * 256 * 3; i++) s = s * 1664525u + 1013904223u, big.px[i] = (uint8_t)(s >> 24);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 16 * 1024;
    TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    err[0] = 0;
    int rc = image_write_png(path, &big, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    TEST_CHECK(rc == -1, "a write past the limit fails");
    TEST_CHECK(strstr(err, path) && strstr(err, strerror(EFBIG)), "the error names the file and the cause: %s", err);
    struct stat st;
    TEST_CHECK(stat(tmp, &st) != 0, "no %s left behind", tmp);
    image back = {0};
    char e2[512];
    TEST_CHECK(image_load(path, &back, e2, sizeof e2) == 0 && back.w == 8 && back.h == 8, "the earlier PNG is still whole (%s, %dx%d)",
               back.px ? "read" : e2, back.w, back.h);
    image_free(&back);

    TEST_CHECK(image_write_png(path, &big, err, sizeof err) == 0, "with room again: %s", err);
    TEST_CHECK(image_load(path, &back, e2, sizeof e2) == 0 && back.w == 256 && !memcmp(back.px, big.px, 256 * 256 * 3),
               "the new PNG, whole");
    image_free(&back);
    free(big.px);
    return test_summary("test_data_png_full");
}
