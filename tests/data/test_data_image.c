// test_data_image.c — decoding details of the input formats: a 16-bit PNG without gAMA keeps its
// sRGB values (libpng's simplified API would otherwise take it as linear light); a JPEG's EXIF
// orientation is applied (phone photos are stored sideways with Orientation = 6), from a PNG's
// eXIf chunk and a WebP's EXIF chunk too; a CMYK JPEG (Adobe's
// inverted inks) decodes to RGB as Pillow converts it.
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include <string.h>
#include "data/image.h"
#include "helpers.h"

// a w x h RGB PNG of one colour (samples of `depth` bits: 8 or 16), written with the low-level
// API so it carries no gAMA/sRGB unless gamma1 asks for gAMA 1.0 (linear light, as some tools write)
static int write_png_solid(const char *path, int w, int h, int depth, const uint16_t rgb[3], int gamma1) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) { png_destroy_write_struct(&p, &info); fclose(f); return -1; }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (gamma1) png_set_gAMA_fixed(p, info, PNG_FP_1);
    png_write_info(p, info);
    int bps = depth / 8;  // bytes a sample
    uint8_t *row = malloc((size_t)w * 3 * bps);
    for (int x = 0; x < w; x++)
        for (int k = 0; k < 3; k++) {
            uint8_t *q = row + (3 * x + k) * bps;
            if (bps == 2) q[0] = (uint8_t)(rgb[k] >> 8), q[1] = (uint8_t)rgb[k];  // big-endian
            else q[0] = (uint8_t)rgb[k];
        }
    for (int y = 0; y < h; y++) png_write_row(p, row);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
    return fclose(f);
}
static int write_png16(const char *path, int w, int h, const uint16_t rgb[3]) { return write_png_solid(path, w, h, 16, rgb, 0); }
static int write_png_gamma1(const char *path, int w, int h, const uint8_t rgb[3]) {
    const uint16_t v[3] = {rgb[0], rgb[1], rgb[2]};
    return write_png_solid(path, w, h, 8, v, 1);
}

// the stored samples, as Pillow reads them: gAMA is not applied (libpng's simplified API turned
// a gAMA 1.0 PNG's 64 into 136), a 16-bit sample keeps its high byte (0x80FF: 128, not 129)
static void test_png_raw_samples(const char *root) {
    char p[600], err[1024];
    snprintf(p, sizeof p, "%s/gamma1.png", root);
    const uint8_t rgb[3] = {64, 128, 200};
    TEST_CHECK(write_png_gamma1(p, 4, 3, rgb) == 0, "write %s", p);
    image im;
    TEST_CHECK(image_load(p, &im, err, sizeof err) == 0, "gAMA 1.0 PNG: %s", err);
    if (im.px) TEST_CHECK(im.c == 3 && !memcmp(im.px + 3 * 5, rgb, 3), "gAMA 1.0 PNG (64,128,200) read as (%d,%d,%d)", im.px[15], im.px[16], im.px[17]);
    image_free(&im);
    snprintf(p, sizeof p, "%s/rgb16hi.png", root);
    const uint16_t rgb16[3] = {0x80FF, 0x0001, 0xFF80};
    TEST_CHECK(write_png16(p, 2, 2, rgb16) == 0, "write %s", p);
    TEST_CHECK(image_load(p, &im, err, sizeof err) == 0, "16-bit PNG: %s", err);
    if (im.px) TEST_CHECK(im.px[0] == 0x80 && im.px[1] == 0 && im.px[2] == 0xFF, "16-bit PNG (0x80FF,0x0001,0xFF80) read as (%d,%d,%d), expected the high bytes",
                          im.px[0], im.px[1], im.px[2]);
    image_free(&im);
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

// decodes an image whose EXIF says orientation, checks it is shown want_w x want_h with its red half
// first (top or left) when first_red
static void check_upright(const uint8_t *file, size_t len, const char *fmt, int orientation, int be, int want_w, int want_h,
                          int first_red) {
    char err[1024];
    image im;
    TEST_CHECK(image_decode_mem(file, len, &im, err, sizeof err) == 0, "%s with EXIF: %s", fmt, err);
    TEST_CHECK(im.w == want_w && im.h == want_h, "%s, Orientation %d (%s): %dx%d, expected %dx%d", fmt, orientation, be ? "MM" : "II",
               im.w, im.h, want_w, want_h);
    if (im.w == want_w && im.h == want_h) {
        int tall = want_h > want_w;  // the halves are top/bottom when displayed tall
        const uint8_t *a = im.px + (8 * im.w + 8) * im.c, *b = im.px + (tall ? (24 * im.w + 8) : (8 * im.w + 24)) * im.c;
        const uint8_t *red = first_red ? a : b, *blue = first_red ? b : a;
        TEST_CHECK(red[0] > 180 && red[2] < 70 && blue[2] > 180 && blue[0] < 70, "%s, Orientation %d (%s): red half (%d,%d,%d), blue half (%d,%d,%d)",
                   fmt, orientation, be ? "MM" : "II", red[0], red[1], red[2], blue[0], blue[1], blue[2]);
    }
    image_free(&im);
}

// a 32x16 JPEG, left half red, right half blue (16x16 MCUs: no colour bleeds across the edge),
// with an APP1 EXIF segment (IFD0 holding only Orientation; big- or little-endian TIFF) after
// JFIF's APP0. first_red: whether the first half (top or left, as displayed) should be red.
static void check_orientation(const uint8_t *jpg, size_t len, int orientation, int be, int want_w, int want_h, int first_red) {
    size_t at = 4 + (size_t)(jpg[4] << 8 | jpg[5]);  // after APP0
    uint8_t app1[] = {0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,  // TIFF header, IFD0 at 8
                      0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (uint8_t)orientation, 0, 0,     // Orientation, SHORT, 1 value
                      0, 0, 0, 0};                                                           // no next IFD
    if (!be) {  // the same in Intel byte order
        static const uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0};
        memcpy(app1 + 10, le, sizeof le);
        app1[28] = (uint8_t)orientation, app1[29] = 0;
    }
    uint8_t *withexif = malloc(len + sizeof app1);
    memcpy(withexif, jpg, at);
    memcpy(withexif + at, app1, sizeof app1);
    memcpy(withexif + at + sizeof app1, jpg + at, len - at);
    check_upright(withexif, len + sizeof app1, "JPEG", orientation, be, want_w, want_h, first_red);
    free(withexif);
}

// 32x16, left half red, right half blue (16x16 MCUs: no colour bleeds across the edge in a JPEG)
static image red_blue(void) {
    image src = {32, 16, 3, malloc(32 * 16 * 3)};
    for (int i = 0; i < 32 * 16; i++) {
        int red = i % 32 < 16;
        src.px[3 * i] = red ? 230 : 20, src.px[3 * i + 1] = 20, src.px[3 * i + 2] = red ? 20 : 230;
    }
    return src;
}

static void test_exif_orientation(const char *root) {
    char p[600], err[1024];
    image src = red_blue();
    snprintf(p, sizeof p, "%s/plain.jpg", root);
    TEST_CHECK(image_write_jpeg(p, &src, 95, err, sizeof err) == 0, "%s", err);
    image_free(&src);
    size_t len;
    uint8_t *jpg = (uint8_t *)fs_read_file(p, &len, 1 << 20);
    TEST_CHECK(jpg && len > 20 && jpg[2] == 0xFF && jpg[3] == 0xE0, "a JFIF JPEG");
    if (!jpg) return;
    check_orientation(jpg, len, 1, 1, 32, 16, 1);  // as stored
    check_orientation(jpg, len, 3, 0, 32, 16, 0);  // 180°: red on the right
    check_orientation(jpg, len, 6, 1, 16, 32, 1);  // the phone case: shown rotated 90° clockwise, red on top
    check_orientation(jpg, len, 6, 0, 16, 32, 1);
    check_orientation(jpg, len, 8, 1, 16, 32, 0);  // 90° counter-clockwise: red at the bottom
    free(jpg);
}

// PNG's chunk CRC (CRC-32, as zip's)
static uint32_t png_crc(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

static void put32be(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v; }
static void put32le(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24); }

// a big-endian TIFF block whose IFD0 holds only Orientation (26 bytes), behind "Exif\0\0" when prefix
static size_t tiff_orientation(uint8_t *out, int orientation, int prefix) {
    static const uint8_t t[26] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t at = prefix ? 6 : 0;
    memcpy(out, "Exif\0\0", at);
    memcpy(out + at, t, sizeof t);
    out[at + 19] = (uint8_t)orientation;
    return at + sizeof t;
}

// the image of test_exif_orientation saved as PNG and as WebP, an EXIF block put in each as the
// formats carry it (PNG: an eXIf chunk after IHDR; WebP: the extended format's EXIF chunk, flagged in
// VP8X): decoded upright as the JPEG is
static void test_exif_png_webp(const char *root) {
    char p[600], err[1024];
    image src = red_blue();
    snprintf(p, sizeof p, "%s/plain.png", root);
    TEST_CHECK(image_write_png(p, &src, err, sizeof err) == 0, "%s", err);
    size_t plen, wlen;
    uint8_t *png = (uint8_t *)fs_read_file(p, &plen, 1 << 20), *webp = image_webp_encode(&src, 100, 1, &wlen);
    image_free(&src);
    TEST_CHECK(png && plen > 33 && !memcmp(png + 12, "IHDR", 4), "a PNG with IHDR first");
    TEST_CHECK(webp && wlen > 20 && !memcmp(webp + 12, "VP8L", 4), "a simple lossless WebP");
    if (!png || !webp) { free(png); free(webp); return; }
    static const int cases[][4] = {{6, 16, 32, 1}, {8, 16, 32, 0}, {3, 32, 16, 0}, {1, 32, 16, 1}};  // orientation, w, h, red first
    for (int c = 0; c < 4; c++) {
        for (int prefix = 0; prefix < 2; prefix++) {
            uint8_t tiff[40], *f = malloc(plen + 64);
            size_t n = tiff_orientation(tiff, cases[c][0], prefix), at = 33;  // after the signature and IHDR
            memcpy(f, png, at);
            put32be(f + at, (uint32_t)n);
            memcpy(f + at + 4, "eXIf", 4);
            memcpy(f + at + 8, tiff, n);
            put32be(f + at + 8 + n, png_crc(f + at + 4, n + 4));
            memcpy(f + at + 12 + n, png + at, plen - at);
            check_upright(f, plen + 12 + n, prefix ? "PNG (Exif prefix)" : "PNG", cases[c][0], 1, cases[c][1], cases[c][2], cases[c][3]);
            free(f);
            // RIFF size WEBP | VP8X: flags (EXIF 0x08), 3 reserved, canvas w-1, h-1 (24 bits each) | VP8L ... | EXIF
            size_t body = wlen - 12, en = n + (n & 1), total = 12 + 18 + body + 8 + en;
            f = calloc(1, total);
            memcpy(f, "RIFF", 4);
            put32le(f + 4, (uint32_t)(total - 8));
            memcpy(f + 8, "WEBPVP8X", 8);
            put32le(f + 16, 10);
            f[20] = 0x08;
            f[24] = 31, f[27] = 15;  // 32 x 16
            memcpy(f + 30, webp + 12, body);
            memcpy(f + 30 + body, "EXIF", 4);
            put32le(f + 34 + body, (uint32_t)n);
            memcpy(f + 38 + body, tiff, n);
            check_upright(f, total, prefix ? "WebP (Exif prefix)" : "WebP", cases[c][0], 1, cases[c][1], cases[c][2], cases[c][3]);
            free(f);
        }
    }
    free(png);
    free(webp);
}

// a CMYK JPEG as Photoshop / libjpeg / Pillow write it (an Adobe marker, the inks stored inverted)
// decodes to Pillow's RGB: its left half red ink-free of cyan, its right half 50% black
static void test_cmyk_jpeg(const char *root) {
    char p[600], err[1024];
    snprintf(p, sizeof p, "%s/cmyk.jpg", root);
    FILE *f = fopen(p, "wb");
    TEST_CHECK(f != NULL, "open %s", p);
    if (!f) return;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr je;
    c.err = jpeg_std_error(&je);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = 32, c.image_height = 16, c.input_components = 4, c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[32 * 4];  // inverted inks: red = C 0 M 255 Y 255 K 0; grey = K 128
    for (int x = 0; x < 32; x++) {
        static const uint8_t red[4] = {255, 0, 0, 255}, grey[4] = {255, 255, 255, 127};
        memcpy(row + 4 * x, x < 16 ? red : grey, 4);
    }
    for (int y = 0; y < 16; y++) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    image im = {0};
    TEST_CHECK(image_load(p, &im, err, sizeof err) == 0, "a CMYK JPEG: %s", err);
    if (!im.px) return;
    TEST_CHECK(im.w == 32 && im.h == 16 && im.c == 3, "%dx%d c%d", im.w, im.h, im.c);
    const uint8_t *a = im.px + (8 * 32 + 8) * 3, *b = im.px + (8 * 32 + 24) * 3;
    TEST_CHECK(a[0] >= 252 && a[1] <= 3 && a[2] <= 3, "red ink: %d %d %d", a[0], a[1], a[2]);
    TEST_CHECK(abs(b[0] - 127) <= 2 && abs(b[1] - 127) <= 2 && abs(b[2] - 127) <= 2, "50%% black: %d %d %d", b[0], b[1], b[2]);
    image_free(&im);
}

// a w x h grey JPEG in memory (progressive when asked), through libjpeg; malloc'd
static uint8_t *jpeg_mem(int w, int h, int progressive, size_t *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr je;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&je);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 3, c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    memset(row, 128, (size_t)w * 3);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    uint8_t *out = malloc(n);  // jpeg_mem_dest's buffer is libjpeg's; hand back a plain malloc'd copy
    memcpy(out, buf, n);
    free(buf);
    *len = n;
    return out;
}

// sizes: a phone panorama (wider than 16384, within --max-aspect) decodes; a header claiming
// 65000x65000 is refused by its size before anything is allocated — for a progressive JPEG,
// jpeg_start_decompress would reserve 25 GB of coefficients (seen as "Insufficient memory"
// under a 3 GB ulimit -v, or a truncation error after the reservation)
static void test_sizes(void) {
    char err[1024];
    size_t len;
    image im;
    uint8_t *jpg = jpeg_mem(17000, 8, 0, &len);
    TEST_CHECK(image_decode_mem(jpg, len, &im, err, sizeof err) == 0, "a 17000x8 JPEG: %s", err);
    TEST_CHECK(im.w == 17000 && im.h == 8 && im.c == 3 && im.px[3 * 16999] == 128, "17000x8 JPEG read as %dx%dx%d", im.w, im.h, im.c);
    image_free(&im);
    free(jpg);
    image wide = {17000, 2, 3, calloc(17000 * 2, 3)};
    png_image p = {.version = PNG_IMAGE_VERSION, .width = 17000, .height = 2, .format = PNG_FORMAT_RGB};
    png_alloc_size_t plen = 0;
    TEST_CHECK(png_image_write_to_memory(&p, NULL, &plen, 0, wide.px, 0, NULL), "size a PNG");
    uint8_t *png = malloc(plen);
    TEST_CHECK(png_image_write_to_memory(&p, png, &plen, 0, wide.px, 0, NULL), "write a PNG");
    image_free(&wide);
    TEST_CHECK(image_decode_mem(png, plen, &im, err, sizeof err) == 0, "a 17000x2 PNG: %s", err);
    TEST_CHECK(im.w == 17000 && im.h == 2, "17000x2 PNG read as %dx%d", im.w, im.h);
    image_free(&im);
    free(png);
    for (int progressive = 0; progressive < 2; progressive++) {
        jpg = jpeg_mem(16, 16, progressive, &len);
        size_t sof = 2;
        while (sof + 9 < len && !(jpg[sof] == 0xFF && (jpg[sof + 1] == 0xC0 || jpg[sof + 1] == 0xC2))) sof++;
        TEST_CHECK(sof + 9 < len && jpg[sof + 1] == (progressive ? 0xC2 : 0xC0), "SOF%d found", progressive ? 2 : 0);
        jpg[sof + 5] = jpg[sof + 7] = 65000 >> 8, jpg[sof + 6] = jpg[sof + 8] = 65000 & 0xFF;  // height, width
        int rc = image_decode_mem(jpg, len, &im, err, sizeof err);
        TEST_CHECK(rc == -1 && strstr(err, "size 65000x65000"), "%s JPEG claiming 65000x65000: rc %d, '%s' (expected its size refused)",
                   progressive ? "progressive" : "baseline", rc, err);
        image_free(&im);
        free(jpg);
    }
}

static void put24le(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16); }

// an animated WebP (VP8X with the animation flag, ANIM, two 8x8 ANMF frames: red, then blue) gives
// its first frame, RGB as the file has no alpha (as Pillow opens it; WebPDecode refuses
// animations: it was skipped as "decode failed"); a still WebP cut in half is named as truncated
static void test_webp_animated(void) {
    char err[1024];
    size_t fl[2];
    uint8_t *fr[2];
    for (int k = 0; k < 2; k++) {
        image one = {8, 8, 3, malloc(8 * 8 * 3)};
        for (int i = 0; i < 64; i++) one.px[3 * i] = k ? 0 : 255, one.px[3 * i + 1] = 0, one.px[3 * i + 2] = k ? 255 : 0;
        fr[k] = image_webp_encode(&one, 100, 1, &fl[k]);  // RIFF, size, WEBP, then the VP8L chunk
        image_free(&one);
    }
    size_t body[2] = {fl[0] - 12, fl[1] - 12}, total = 12 + 18 + 14 + 2 * (8 + 16) + body[0] + body[1];
    uint8_t *f = calloc(1, total), *q = f;
    memcpy(q, "RIFF", 4), put32le(q + 4, (uint32_t)(total - 8)), memcpy(q + 8, "WEBP", 4), q += 12;
    memcpy(q, "VP8X", 4), put32le(q + 4, 10), q[8] = 0x02, put24le(q + 12, 7), put24le(q + 15, 7), q += 18;  // animation, 8x8
    memcpy(q, "ANIM", 4), put32le(q + 4, 6), q += 14;  // background 0, loop forever
    for (int k = 0; k < 2; k++) {
        memcpy(q, "ANMF", 4), put32le(q + 4, (uint32_t)(16 + body[k]));
        put24le(q + 14, 7), put24le(q + 17, 7), put24le(q + 20, 100);  // at 0,0; 8x8; 100 ms; blend, no dispose
        memcpy(q + 24, fr[k] + 12, body[k]);
        q += 24 + body[k];
    }
    image im;
    TEST_CHECK(image_decode_mem(f, total, &im, err, sizeof err) == 0, "an animated WebP: %s", err);
    if (im.px) {
        TEST_CHECK(im.w == 8 && im.h == 8 && im.c == 3, "animated WebP read as %dx%dx%d, expected 8x8x3", im.w, im.h, im.c);
        TEST_CHECK(im.px[0] == 255 && im.px[2] == 0, "animated WebP: pixel (%d,%d,%d), expected the first frame's red", im.px[0], im.px[1], im.px[2]);
    }
    image_free(&im);
    TEST_CHECK(image_decode_mem(fr[0], fl[0] - 10, &im, err, sizeof err) == -1 && strstr(err, "truncated"), "a cut WebP: '%s'", err);
    free(f), free(fr[0]), free(fr[1]);
}

// junk between two markers ("Corrupt JPEG data: 2 extraneous bytes before marker 0xdb", left by
// some cameras and editors; the pixels are whole) is passed over as Pillow does, it failed the
// image; the same file cut short still fails (the warning passed over must not hide the truncation)
static void test_jpeg_junk(void) {
    char err[1024];
    size_t len;
    uint8_t *jpg = jpeg_mem(16, 16, 0, &len), *f = malloc(len + 2);
    size_t at = 4 + (size_t)(jpg[4] << 8 | jpg[5]);  // after APP0 (JFIF)
    memcpy(f, jpg, at), f[at] = f[at + 1] = 0, memcpy(f + at + 2, jpg + at, len - at);
    image im;
    TEST_CHECK(image_decode_mem(f, len + 2, &im, err, sizeof err) == 0, "a JPEG with 2 bytes between markers: %s", err);
    if (im.px) TEST_CHECK(im.w == 16 && im.h == 16 && im.px[0] == 128, "read as %dx%d, pixel %d", im.w, im.h, im.px[0]);
    image_free(&im);
    TEST_CHECK(image_decode_mem(f, len + 2 - 40, &im, err, sizeof err) == -1 && strstr(err, "Premature end"), "the same cut short: '%s'", err);
    image_free(&im);
    free(f), free(jpg);
}

// a GIF or HEIC renamed .png / .jpg (phones and chat apps do): named by its content, with what to do
static void test_other_formats(void) {
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;", heic[] = "\0\0\0\x18" "ftypheic\0\0\0\0mif1heic";
    char err[1024];
    image im;
    TEST_CHECK(image_decode_mem(gif, sizeof gif - 1, &im, err, sizeof err) == -1 && strstr(err, "a GIF file") && strstr(err, "convert"),
               "a GIF named .png: '%s'", err);
    TEST_CHECK(image_decode_mem(heic, sizeof heic - 1, &im, err, sizeof err) == -1 && strstr(err, "a HEIC file"), "a HEIC named .jpg: '%s'", err);
}

int main(void) {
    const char *root = tmp_dir();
    test_png16(root);
    test_png_raw_samples(root);
    test_exif_orientation(root);
    test_exif_png_webp(root);
    test_cmyk_jpeg(root);
    test_sizes();
    test_webp_animated();
    test_other_formats();
    test_jpeg_junk();
    return test_summary("test_data_image");
}
