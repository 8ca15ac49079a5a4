// image.c — PNG (libpng), JPEG (libjpeg), WebP (libwebp, its demuxer for EXIF and animations) in and out.
#include "data/image.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: the warning codes
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include "data/fsutil.h"
#include "data/resize.h"

// What a decoder may allocate for: a side up to 65535 (JPEG's own limit: phone panoramas run past
// 16384 and --max-side brings them down) and 2^28 pixels (16384², 1 GiB as RGBA; Pillow refuses
// half that as a decompression bomb). Checked on the header, before any pixel buffer exists.
#define IMAGE_MAX_SIDE 65535
#define IMAGE_MAX_PIXELS (1ull << 28)

// 0 when a w x h image may be decoded; else -1 with err naming the format, the size and the limit
static int image_size_ok(const char *fmt, uint64_t w, uint64_t h, char *err, size_t errlen) {
    if (w >= 1 && h >= 1 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE && w * h <= IMAGE_MAX_PIXELS) return 0;
    snprintf(err, errlen, "%s: size %llux%llu (allowed 1..%d per side and up to %llu pixels)", fmt, (unsigned long long)w,
             (unsigned long long)h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    return -1;
}

void image_free(image *im) { free(im->px); im->px = NULL; im->w = im->h = im->c = 0; }

int image_has_alpha(const image *im) {
    if (im->c != 4) return 0;
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) if (im->px[4 * i + 3] != 255) return 1;
    return 0;
}

static int orient(image *im, int o);
static int png_orientation(const uint8_t *data, size_t len);

// libpng's reading state: the file in memory, and where an error longjmps to with its message
typedef struct { const uint8_t *data; size_t len, at; jmp_buf jb; char msg[200]; } png_src;

static void png_fail(png_structp p, png_const_charp msg) {
    png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jb, 1);
}
static void png_warn(png_structp p, png_const_charp msg) { (void)p, (void)msg; }  // a bad ancillary chunk: read on, as Pillow does
static void png_read_mem(png_structp p, png_bytep to, size_t n) {
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->at) png_error(p, "truncated file (read beyond its end)");
    memcpy(to, s->data + s->at, n);
    s->at += n;
}

// The stored samples as Pillow reads them: palette, grey and tRNS expanded to RGB / RGBA, 16-bit
// samples cut to their high byte ("RGB;16B"), and no colour management: gAMA, cHRM, sRGB and
// iCCP are not applied. (libpng's simplified API applied gAMA: a PNG marked gAMA 1.0, or 1/1.8 by
// old Mac tools, came out up to 72 levels brighter than the pixels the file holds.)
static int decode_png(const uint8_t *data, size_t len, image *out, char *err, size_t errlen) {
    png_src src = {.data = data, .len = len, .at = 0};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *volatile rows = NULL;  // [h] into out->px
    if (!info) { snprintf(err, errlen, "PNG: out of memory"); png_destroy_read_struct(&p, NULL, NULL); return -1; }
    if (setjmp(src.jb)) {
        snprintf(err, errlen, "PNG: %s", src.msg);
        png_destroy_read_struct(&p, &info, NULL);
        free(rows);
        image_free(out);
        return -1;
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    if (image_size_ok("PNG", w, h, err, errlen)) { png_destroy_read_struct(&p, &info, NULL); return -1; }
    int type = png_get_color_type(p, info);
    int alpha = (type & PNG_COLOR_MASK_ALPHA) || png_get_valid(p, info, PNG_INFO_tRNS);
    png_set_expand(p);      // palette → RGB, grey 1/2/4 → 8 bits, tRNS → alpha
    png_set_strip_16(p);    // Pillow keeps the high byte
    png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    out->w = (int)w, out->h = (int)h, out->c = alpha ? 4 : 3;
    if (png_get_rowbytes(p, info) != (size_t)w * out->c) png_error(p, "unexpected row layout after expansion");
    out->px = malloc((size_t)w * h * out->c);  // [h, w, c]
    rows = malloc(sizeof *rows * h);
    if (!out->px || !rows) png_error(p, "out of memory for the image");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = out->px + (size_t)y * w * out->c;
    png_read_image(p, rows);
    png_destroy_read_struct(&p, &info, NULL);  // what follows the pixels (text, IEND) is not needed
    free(rows);
    if (orient(out, png_orientation(data, len))) { snprintf(err, errlen, "PNG: out of memory turning a %dx%d image upright", out->w, out->h); image_free(out); return -1; }
    return 0;
}

struct jerr { struct jpeg_error_mgr mgr; jmp_buf jb; char msg[JMSG_LENGTH_MAX]; };
static void jpeg_fail(j_common_ptr c) {
    struct jerr *e = (struct jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}
// libjpeg's warnings: corrupt or missing data (a truncated file, a broken scan) fails the image;
// bytes between two markers (junk some cameras and editors leave, "N extraneous bytes before
// marker") do not touch the pixels and are passed over, as Pillow does. Every warning comes here
// (output_message is only told the first one, so an ignored first would hide a truncation).
static void jpeg_warn(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code != JWRN_EXTRANEOUS_DATA) jpeg_fail(c);
}

// EXIF Orientation (tag 0x0112 of IFD0) from an EXIF block: a TIFF header and IFDs, after an
// optional "Exif\0\0" (JPEG's APP1 has it; WebP's and PNG's EXIF chunks have it from some writers).
// 1 (as stored) when absent or malformed. Every read is bounds-checked: the block is untrusted input.
static int exif_orientation(const uint8_t *t, size_t n) {
    if (n >= 6 && !memcmp(t, "Exif\0\0", 6)) t += 6, n -= 6;
    if (n < 8) return 1;
    int be = t[0] == 'M';
    if (memcmp(t, be ? "MM" : "II", 2)) return 1;
#define EXIF16(o) (uint32_t)(be ? t[o] << 8 | t[(o) + 1] : t[(o) + 1] << 8 | t[o])
#define EXIF32(o) (EXIF16(be ? (o) : (o) + 2) << 16 | EXIF16(be ? (o) + 2 : (o)))
    if (EXIF16(2) != 42) return 1;
    uint32_t ifd = EXIF32(4);
    if (ifd > n || n - ifd < 2) return 1;
    uint32_t count = EXIF16(ifd);
    for (uint32_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; i++) {
        uint32_t e = ifd + 2 + 12 * i;
        if (EXIF16(e) == 0x0112 && EXIF16(e + 2) == 3) {  // SHORT
            uint32_t v = EXIF16(e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
#undef EXIF16
#undef EXIF32
    return 1;
}

// the orientation in a JPEG's saved APP1 "Exif" marker
static int jpeg_orientation(j_decompress_ptr cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6))
            return exif_orientation(m->data, m->data_length);
    return 1;
}

// the orientation in a PNG's eXIf chunk (PNG 1.5; Pillow and phones' editors write it): the chunks
// walked by their lengths up to IEND, each length checked against the bytes left
static int png_orientation(const uint8_t *data, size_t len) {
    size_t at = 8;  // past the signature
    while (len - at >= 12) {
        uint32_t n = (uint32_t)data[at] << 24 | (uint32_t)data[at + 1] << 16 | (uint32_t)data[at + 2] << 8 | data[at + 3];
        const uint8_t *type = data + at + 4;
        if (n > len - at - 12) return 1;
        if (!memcmp(type, "eXIf", 4)) return exif_orientation(data + at + 8, n);
        if (!memcmp(type, "IEND", 4)) return 1;
        at += 12 + (size_t)n;
    }
    return 1;
}

// the orientation in a WebP's EXIF chunk (extended format), through libwebp's demuxer
static int webp_orientation(const uint8_t *data, size_t len) {
    WebPData wd = {data, len};
    WebPDemuxer *dm = WebPDemux(&wd);
    if (!dm) return 1;
    int o = 1;
    WebPChunkIterator it;
    if ((WebPDemuxGetI(dm, WEBP_FF_FORMAT_FLAGS) & EXIF_FLAG) && WebPDemuxGetChunk(dm, "EXIF", 1, &it)) {
        o = exif_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(dm);
    return o;
}

// turns a decoded image upright by its EXIF orientation (2..8: flips, rotations, transpositions)
static int orient(image *im, int o) {
    if (o <= 1) return 0;
    int w = im->w, h = im->h, c = im->c, swap = o >= 5;
    int W = swap ? h : w, H = swap ? w : h;
    uint8_t *dst = malloc((size_t)W * H * c);
    if (!dst) return -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx, sy;  // the stored pixel shown at (x, y)
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;          // stored rotated 90° counter-clockwise
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break;         // 8: stored rotated 90° clockwise
            }
            memcpy(dst + ((size_t)y * W + x) * c, im->px + ((size_t)sy * w + sx) * c, (size_t)c);
        }
    free(im->px);
    im->px = dst;
    im->w = W, im->h = H;
    return 0;
}

static int decode_jpeg(const uint8_t *data, size_t len, image *out, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jerr je;
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_warn;
    out->px = NULL;
    if (setjmp(je.jb)) {
        snprintf(err, errlen, "JPEG: %s", je.msg);
        jpeg_destroy_decompress(&cinfo);
        image_free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);  // EXIF: phone photos are stored sideways with an orientation tag
    jpeg_read_header(&cinfo, TRUE);
    // before jpeg_start_decompress: for a progressive JPEG it allocates the whole image's
    // coefficients (6 bytes a pixel), 25 GB for a header claiming 65000x65000
    if (image_size_ok("JPEG", cinfo.image_width, cinfo.image_height, err, errlen)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int orientation = jpeg_orientation(&cinfo);
    // CMYK / YCCK (print-made JPEGs): libjpeg gives no RGB of them, so read the inks and convert
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
        snprintf(je.msg, sizeof je.msg, "%d components decoded (want %d)", cinfo.output_components, cmyk ? 4 : 3);
        longjmp(je.jb, 1);
    }
    out->w = (int)cinfo.output_width; out->h = (int)cinfo.output_height; out->c = 3;
    out->px = malloc((size_t)out->w * out->h * 3 + (cmyk ? (size_t)out->w * 4 : 0));  // [h, w, 3], then a CMYK row [w, 4]
    if (!out->px) { snprintf(je.msg, sizeof je.msg, "out of memory for a %dx%d image", out->w, out->h); longjmp(je.jb, 1); }
    // Adobe's CMYK JPEGs (Photoshop's, and what libjpeg and Pillow write) store the inks inverted
    int inv = cmyk && cinfo.saw_Adobe_marker ? 255 : 0;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *rgb = out->px + (size_t)cinfo.output_scanline * out->w * 3;  // [w, 3]
        JSAMPROW row = cmyk ? out->px + (size_t)out->w * out->h * 3 : rgb;    // [w, 4] CMYK or [w, 3]
        jpeg_read_scanlines(&cinfo, &row, 1);
        for (int x = 0; cmyk && x < out->w; x++) {  // Pillow's cmyk2rgb: (255 - ink) * (255 - k) / 255, rounded
            int nk = 255 - (row[4 * x + 3] ^ inv);
            for (int c = 0; c < 3; c++) {
                int t = (row[4 * x + c] ^ inv) * nk + 128;
                rgb[3 * x + c] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (orient(out, orientation)) { snprintf(err, errlen, "JPEG: out of memory turning a %dx%d image upright", out->w, out->h); image_free(out); return -1; }
    return 0;
}

static const char *webp_status(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file (not enough data)";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    default: return "decode failed";
    }
}

// an animated WebP's first frame on its canvas, as Pillow's Image.open shows it (WebPDecode
// refuses animations): out [h, w, 4], the canvas transparent where the frame does not cover it
static int decode_webp_first_frame(const uint8_t *data, size_t len, image *out, char *err, size_t errlen) {
    WebPAnimDecoderOptions ao;
    if (!WebPAnimDecoderOptionsInit(&ao)) { snprintf(err, errlen, "WebP: libwebp's animation decoder is of another version"); return -1; }
    ao.color_mode = MODE_RGBA;
    ao.use_threads = 0;
    WebPData wd = {data, len};
    WebPAnimDecoder *d = WebPAnimDecoderNew(&wd, &ao);
    WebPAnimInfo info;
    uint8_t *canvas;  // [h, w, 4], libwebp's
    int ts;
    if (!d || !WebPAnimDecoderGetInfo(d, &info) || !WebPAnimDecoderGetNext(d, &canvas, &ts)) {
        snprintf(err, errlen, "WebP: animation: its first frame cannot be decoded (truncated or corrupt)");
        WebPAnimDecoderDelete(d);
        return -1;
    }
    size_t n = (size_t)info.canvas_width * info.canvas_height * 4;
    if (!(out->px = malloc(n))) { snprintf(err, errlen, "WebP: out of memory for a %ux%u canvas", info.canvas_width, info.canvas_height); WebPAnimDecoderDelete(d); return -1; }
    memcpy(out->px, canvas, n);
    out->w = (int)info.canvas_width, out->h = (int)info.canvas_height, out->c = 4;
    WebPAnimDecoderDelete(d);
    return 0;
}

static int decode_webp(const uint8_t *data, size_t len, image *out, char *err, size_t errlen) {
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(data, len, &f);
    if (st != VP8_STATUS_OK) { snprintf(err, errlen, "WebP: bad header: %s", webp_status(st)); return -1; }
    if (image_size_ok("WebP", (uint64_t)f.width, (uint64_t)f.height, err, errlen)) return -1;
    out->px = NULL;
    if (f.has_animation) {
        if (decode_webp_first_frame(data, len, out, err, errlen)) return -1;
        if (!f.has_alpha) {  // no alpha in the file: RGB, as Pillow opens it
            for (size_t i = 0; i < (size_t)out->w * out->h; i++) memmove(out->px + 3 * i, out->px + 4 * i, 3);
            out->c = 3;
        }
    } else {
        WebPDecoderConfig cfg;
        if (!WebPInitDecoderConfig(&cfg)) { snprintf(err, errlen, "WebP: libwebp's decoder is of another version"); return -1; }
        int c = f.has_alpha ? 4 : 3;
        size_t n = (size_t)f.width * f.height * c;
        if (!(out->px = malloc(n))) { snprintf(err, errlen, "WebP: out of memory for a %dx%d image", f.width, f.height); return -1; }
        cfg.output.colorspace = f.has_alpha ? MODE_RGBA : MODE_RGB;
        cfg.output.is_external_memory = 1;
        cfg.output.u.RGBA.rgba = out->px, cfg.output.u.RGBA.stride = f.width * c, cfg.output.u.RGBA.size = n;
        if ((st = WebPDecode(data, len, &cfg)) != VP8_STATUS_OK) {
            snprintf(err, errlen, "WebP: %s", webp_status(st));
            WebPFreeDecBuffer(&cfg.output);
            image_free(out);
            return -1;
        }
        WebPFreeDecBuffer(&cfg.output);
        out->w = f.width, out->h = f.height, out->c = c;
    }
    if (orient(out, webp_orientation(data, len))) { snprintf(err, errlen, "WebP: out of memory turning a %dx%d image upright", out->w, out->h); image_free(out); return -1; }
    return 0;
}

int image_decode_mem(const uint8_t *data, size_t len, image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return decode_png(data, len, out, err, errlen);
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, len, out, err, errlen);
    if (len >= 12 && !memcmp(data, "RIFF", 4) && !memcmp(data + 8, "WEBP", 4)) return decode_webp(data, len, out, err, errlen);
    // a file named .png / .jpg that is something else (a GIF or HEIC renamed): named by its content
    static const struct { const char *magic; size_t at, n; const char *name; } other[] = {
        {"GIF8", 0, 4, "GIF"}, {"BM", 0, 2, "BMP"}, {"II*\0", 0, 4, "TIFF"}, {"MM\0*", 0, 4, "TIFF"}, {"ftypheic", 4, 8, "HEIC"},
        {"ftypheix", 4, 8, "HEIC"}, {"ftypmif1", 4, 8, "HEIF"}, {"ftypavif", 4, 8, "AVIF"}, {"\xFF\x0A", 0, 2, "JPEG XL"},
        {"8BPS", 0, 4, "PSD"}};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        if (len >= other[i].at + other[i].n && !memcmp(data + other[i].at, other[i].magic, other[i].n)) {
            snprintf(err, errlen, "a %s file by its content, not read (PNG, JPEG or WebP only): convert it, e.g. to PNG", other[i].name);
            return -1;
        }
    snprintf(err, errlen, "not a PNG, JPEG or WebP file (%zu bytes)", len);
    return -1;
}

int image_load(const char *path, image *out, char *err, size_t errlen) {
    size_t len;
    uint8_t *data = (uint8_t *)fs_read_file(path, &len, 512u << 20);
    if (!data) { memset(out, 0, sizeof *out); snprintf(err, errlen, "cannot read (%s)", strerror(errno)); return -1; }
    int rc = image_decode_mem(data, len, out, err, errlen);
    free(data);
    return rc;
}

int image_webp_decode_into(const uint8_t *data, size_t len, int keep_alpha, image *out, size_t *cap) {
    int w, h;
    if (!WebPGetInfo(data, len, &w, &h)) return -1;
    int c = keep_alpha ? 4 : 3;
    size_t need = (size_t)w * h * c;
    if (*cap < need) {
        uint8_t *p = realloc(*cap ? out->px : NULL, need);
        if (!p) return -1;
        out->px = p;
        *cap = need;
    }
    uint8_t *r = keep_alpha ? WebPDecodeRGBAInto(data, len, out->px, need, w * 4) : WebPDecodeRGBInto(data, len, out->px, need, w * 3);
    if (!r) return -1;
    out->w = w; out->h = h; out->c = c;
    return 0;
}

uint8_t *image_webp_encode(const image *im, int quality, int lossless, size_t *len) {
    uint8_t *out = NULL;
    size_t n;
    if (im->c == 4)
        n = lossless ? WebPEncodeLosslessRGBA(im->px, im->w, im->h, im->w * 4, &out) : WebPEncodeRGBA(im->px, im->w, im->h, im->w * 4, (float)quality, &out);
    else
        n = lossless ? WebPEncodeLosslessRGB(im->px, im->w, im->h, im->w * 3, &out) : WebPEncodeRGB(im->px, im->w, im->h, im->w * 3, (float)quality, &out);
    if (!n) { WebPFree(out); return NULL; }
    // hand back a malloc'd copy so callers free() uniformly
    uint8_t *copy = malloc(n);
    memcpy(copy, out, n);
    WebPFree(out);
    *len = n;
    return copy;
}

// PATH.tmp, fsync, rename: a full disk (or a failed write) reports its cause and leaves the file
// that was at PATH (an earlier sample, sheet, reference) as it was, never a cut-off PNG
int image_write_png(const char *path, const image *im, char *err, size_t errlen) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) { snprintf(err, errlen, "%.200s...: path too long", path); return -1; }
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot create %s (%s)", path, tmp, strerror(errno)); return -1; }
    png_image p;
    memset(&p, 0, sizeof p);
    p.version = PNG_IMAGE_VERSION;
    p.width = (png_uint_32)im->w;
    p.height = (png_uint_32)im->h;
    p.format = im->c == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    int ok = png_image_write_to_stdio(&p, f, 0, im->px, 0, NULL);
    int e = errno;  // of the write libpng's "Write Error" stands for
    if (ok && fflush(f)) ok = 0, e = errno;
    bool wrote = !ferror(f);
    if (ok && fsync(fileno(f))) ok = 0, e = errno, wrote = false;
    if (fclose(f) && ok) ok = 0, e = errno, wrote = false;
    if (!ok) {
        if (wrote) snprintf(err, errlen, "%s: PNG encode failed: %s", path, p.message);
        else snprintf(err, errlen, "%s: writing %s failed (%s)", path, tmp, strerror(e));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        snprintf(err, errlen, "%s: renaming %s over it failed (%s)", path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    fs_fsync_parent(path);
    return 0;
}

int image_write_jpeg(const char *path, const image *im, int quality, char *err, size_t errlen) {
    FILE *f = fopen(path, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot create (%s)", path, strerror(errno)); return -1; }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)im->w;
    cinfo.image_height = (JDIMENSION)im->h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    uint8_t *row = malloc((size_t)im->w * 3);
    while (cinfo.next_scanline < cinfo.image_height) {
        const uint8_t *src = im->px + (size_t)cinfo.next_scanline * im->w * im->c;
        for (int x = 0; x < im->w; x++) memcpy(row + 3 * x, src + im->c * x, 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    free(row);
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (fclose(f)) { snprintf(err, errlen, "%s: write failed (%s)", path, strerror(errno)); return -1; }
    return 0;
}

// RGBA is resampled premultiplied (as Pillow's resize does through "RGBa"): straight-alpha
// taps would mix the colour of invisible pixels (often black) into the edge of a cut-out, a
// dark halo once the loader composites it on white.
int image_resize(const image *src, int dw, int dh, image *dst) {
    resize_scratch s = {0};
    uint8_t *out = malloc((size_t)dw * dh * src->c), *pm = NULL;  // out [dh, dw, c]
    if (!out) return -1;
    const uint8_t *in = src->px;
    if (src->c == 4) {
        size_t n = (size_t)src->w * src->h;
        if (!(pm = malloc(n * 4))) { free(out); return -1; }  // [h, w, 4] premultiplied
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = src->px + 4 * i;
            uint8_t *q = pm + 4 * i;
            for (int k = 0; k < 3; k++) { unsigned t = (unsigned)p[k] * p[3] + 128; q[k] = (uint8_t)((t + (t >> 8)) >> 8); }
            q[3] = p[3];
        }
        in = pm;
    }
    int rc = resize_u8(in, src->w, src->h, src->c, dw, dh, 0, 0, dw, dh, out, &s);
    resize_scratch_free(&s);
    free(pm);
    if (rc) { free(out); return -1; }
    if (src->c == 4)
        for (size_t i = 0; i < (size_t)dw * dh; i++) {
            uint8_t *q = out + 4 * i;
            unsigned a = q[3];
            if (a == 0 || a == 255) continue;
            for (int k = 0; k < 3; k++) { unsigned v = (255u * q[k] + a / 2) / a; q[k] = (uint8_t)(v > 255 ? 255 : v); }
        }
    *dst = (image){dw, dh, src->c, out};
    return 0;
}
