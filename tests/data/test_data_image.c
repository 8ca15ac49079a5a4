// test_data_image.c — decoding details of the input formats: a 16-bit PNG without gAMA keeps its
// sRGB values (libpng's simplified API would otherwise take it as linear light).
#include <png.h>
#include <string.h>
#include "data/image.h"
#include "helpers.h"

// a w x h 16-bit RGB PNG of one colour, written with the low-level API so it carries no gAMA/sRGB
static int write_png16(const char *path, int w, int h, const uint16_t rgb[3]) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) { png_destroy_write_struct(&p, &info); fclose(f); return -1; }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    uint8_t *row = malloc((size_t)w * 6);
    for (int x = 0; x < w; x++)
        for (int k = 0; k < 3; k++) row[6 * x + 2 * k] = (uint8_t)(rgb[k] >> 8), row[6 * x + 2 * k + 1] = (uint8_t)rgb[k];  // big-endian
    for (int y = 0; y < h; y++) png_write_row(p, row);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
    return fclose(f);
}

static void test_png16(const char *root) {
    char p[600], err[1024];
    snprintf(p, sizeof p, "%s/rgb16.png", root);
    const uint16_t rgb[3] = {0x8080, 0x4040, 0xC0C0};
    TEST_CHECK(write_png16(p, 4, 3, rgb) == 0, "write %s", p);
    image im;
    TEST_CHECK(image_load(p, &im, err, sizeof err) == 0, "16-bit PNG: %s", err);
    TEST_CHECK(im.w == 4 && im.h == 3 && im.c == 3, "16-bit PNG: %dx%dx%d", im.w, im.h, im.c);
    if (im.px) TEST_CHECK(im.px[0] == 128 && im.px[1] == 64 && im.px[2] == 192, "16-bit PNG (0x8080,0x4040,0xC0C0) read as (%d,%d,%d), expected (128,64,192)",
                          im.px[0], im.px[1], im.px[2]);
    image_free(&im);
}

int main(void) {
    const char *root = tmp_dir();
    test_png16(root);
    return test_summary("test_data_image");
}
