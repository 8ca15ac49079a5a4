// build_folder.c — the folder front end of the builder: a tree of images, no manifest to write.
// The character of an image is the first folder under DIR that holds it (DIR/<character>/...),
// or the given default for images directly in DIR; its captions are the non-empty lines of the
// text file beside it with the same stem (NAME.txt, the dreambooth / kohya convention), or the
// given default caption. An image with neither is skipped and named.
#define _GNU_SOURCE 1  // nftw's FTW_ACTIONRETVAL, strndup
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "data/build.h"

static int load_file(void *ctx, const build_item *it, image *out, char *err, size_t errlen) {
    (void)ctx;
    return image_load(it->image_path, out, err, errlen);
}

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return false;
    const char *ext[] = {"png", "jpg", "jpeg", "webp"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot + 1, ext[i])) return true;
    return false;
}

// a photo in a format the builder does not decode (phones write HEIC, editors GIF / TIFF): its
// format's name, so that it is named and counted instead of left out without a word
static const char *unsupported_image_format(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return NULL;
    static const char *const ext[][2] = {{"gif", "GIF"},   {"heic", "HEIC"}, {"heif", "HEIF"}, {"avif", "AVIF"},
                                         {"bmp", "BMP"},   {"tif", "TIFF"},  {"tiff", "TIFF"}, {"jxl", "JPEG XL"},
                                         {"jp2", "JPEG 2000"}, {"dng", "DNG (raw)"}, {"psd", "PSD"}};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot + 1, ext[i][0])) return ext[i][1];
    return NULL;
}

// the tree walk's findings (nftw takes no context pointer)
static struct { char **paths; size_t n, cap; uint64_t unreadable; int quiet; } g_found;

// a broken link, an unreadable folder or entry: named and counted, never silently dropped
static int on_unreadable(const char *path, int flag) {
    int e = errno;
    g_found.unreadable++;
    if (g_found.quiet) return FTW_CONTINUE;
    if (flag == FTW_SLN) fprintf(stderr, "%s: skipped: broken symbolic link (its target does not exist)\n", path);
    else if (flag == FTW_F) fprintf(stderr, "%s: skipped: not a regular file\n", path);
    else fprintf(stderr, "%s: skipped: cannot %s (%s)\n", path, flag == FTW_DNR ? "read the folder" : "stat", e ? strerror(e) : "no reason given");
    return FTW_CONTINUE;
}

// symbolic links are followed (no FTW_PHYS): glibc's nftw does not enter a folder twice, so a
// link back up the tree ends the walk there
static int on_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    bool hidden = ftw->level > 0 && path[ftw->base] == '.';
    if (flag == FTW_D && hidden) return FTW_SKIP_SUBTREE;  // hidden folders
    if (hidden) return FTW_CONTINUE;
    if (flag == FTW_SLN || flag == FTW_DNR || flag == FTW_NS) return on_unreadable(path, flag);
    if (flag != FTW_F) return FTW_CONTINUE;
    if (!is_image_name(path + ftw->base)) {
        const char *fmt = unsupported_image_format(path + ftw->base);
        if (fmt) {
            g_found.unreadable++;
            if (!g_found.quiet)
                fprintf(stderr, "%s: skipped: %s is not read (PNG, JPEG or WebP only): convert it, e.g. to PNG\n", path, fmt);
        }
        return FTW_CONTINUE;
    }
    if (!S_ISREG(sb->st_mode)) return on_unreadable(path, FTW_F);  // a FIFO or device named .png
    if (g_found.n == g_found.cap) {
        g_found.cap = g_found.cap ? 2 * g_found.cap : 256;
        g_found.paths = realloc(g_found.paths, g_found.cap * sizeof *g_found.paths);
        if (!g_found.paths) return FTW_STOP;
    }
    g_found.paths[g_found.n++] = strdup(path);
    return FTW_CONTINUE;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// UTF-16 text (BOM first: Windows Notepad's "Unicode", PowerShell 5's `echo ... > a1.txt`) as
// UTF-8 in out (capacity 3 bytes per code unit + 1); lone surrogates become U+FFFD
static size_t utf16_to_utf8(const uint8_t *b, size_t n, bool be, char *out) {
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t c = be ? (uint32_t)b[i] << 8 | b[i + 1] : (uint32_t)b[i + 1] << 8 | b[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 3 < n) {
            uint32_t d = be ? (uint32_t)b[i + 2] << 8 | b[i + 3] : (uint32_t)b[i + 3] << 8 | b[i + 2];
            if (d >= 0xDC00 && d < 0xE000) c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00), i += 2;
            else c = 0xFFFD;
        } else if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
        if (c < 0x80) out[o++] = (char)c;
        else if (c < 0x800) out[o++] = (char)(0xC0 | c >> 6), out[o++] = (char)(0x80 | (c & 0x3F));
        else if (c < 0x10000) out[o++] = (char)(0xE0 | c >> 12), out[o++] = (char)(0x80 | (c >> 6 & 0x3F)), out[o++] = (char)(0x80 | (c & 0x3F));
        else out[o++] = (char)(0xF0 | c >> 18), out[o++] = (char)(0x80 | (c >> 12 & 0x3F)), out[o++] = (char)(0x80 | (c >> 6 & 0x3F)),
             out[o++] = (char)(0x80 | (c & 0x3F));
    }
    out[o] = 0;
    return o;
}

// the non-empty lines of NAME.txt (else NAME.TXT) beside the image into it->captions: their
// count, 0 when there is no such file, -1 with why when its text is not UTF-8 (nor UTF-16 with
// a BOM, converted): a Windows-1252 "café" would reach the tokenizers as "caf\uFFFD" unsaid
static int read_sidecar(const char *image_path, build_item *it, char *why, size_t wl) {
    char txt[4096];
    snprintf(txt, sizeof txt, "%s", image_path);
    char *dot = strrchr(txt, '.');
    if (!dot || (size_t)(dot - txt) + 5 > sizeof txt) return 0;
    strcpy(dot, ".txt");
    FILE *f = fopen(txt, "rb");
    if (!f && errno == ENOENT) {  // IMG_0001.JPG / IMG_0001.TXT: cameras and Windows tools write upper case
        strcpy(dot, ".TXT");
        f = fopen(txt, "rb");
    }
    if (!f) return 0;
    size_t n = 0, cap = 4096;
    uint8_t *raw = malloc(cap);
    for (size_t k; raw && (k = fread(raw + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) raw = realloc(raw, cap *= 2);
    }
    fclose(f);
    if (!raw) return 0;
    char *text;
    if (n >= 2 && ((raw[0] == 0xFF && raw[1] == 0xFE) || (raw[0] == 0xFE && raw[1] == 0xFF))) {
        text = malloc(3 * (n / 2) + 1);
        utf16_to_utf8(raw + 2, n - 2, raw[0] == 0xFE, text);
    } else {
        size_t skip = n >= 3 && !memcmp(raw, "\xEF\xBB\xBF", 3) ? 3 : 0;  // a UTF-8 BOM (Windows editors) is no caption text
        text = malloc(n - skip + 1);
        memcpy(text, raw + skip, n - skip);
        text[n - skip] = 0;
        size_t bad = build_utf8_check(text, n - skip);
        if (bad < n - skip) {
            long line = 1;
            for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
            snprintf(why, wl, "%s:%ld: not UTF-8 text (byte 0x%02X; Windows-1252 / Latin-1?): save it as UTF-8", txt, line,
                     (unsigned)(uint8_t)text[bad]);
            free(raw), free(text);
            return -1;
        }
    }
    free(raw);
    for (char *line = text, *next; line && it->n_captions < 255; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        size_t len = strlen(line);
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = 0;
        while (*line && isspace((unsigned char)*line)) line++;
        if (!*line) continue;
        it->captions = realloc(it->captions, (size_t)(it->n_captions + 1) * sizeof *it->captions);
        it->captions[it->n_captions++] = strdup(line);
    }
    free(text);
    return it->n_captions;
}

// a file or folder name as UTF-8 (the format's strings are): bytes that are not UTF-8 (a
// Latin-1 / Windows-1252 name from an old zip or a Windows share) taken as Latin-1, as
// `convmv -f latin1` would rename them; malloc'd. *changed says whether any were
static char *name_utf8(const char *s, size_t n, bool *changed) {
    char *o = malloc(2 * n + 1), *q = o;
    for (size_t i = 0; i < n;) {
        size_t ok = build_utf8_check(s + i, n - i);
        memcpy(q, s + i, ok), q += ok, i += ok;
        if (i < n) {
            uint8_t b = (uint8_t)s[i++];
            *q++ = (char)(0xC0 | b >> 6), *q++ = (char)(0x80 | (b & 0x3F));
            *changed = true;
        }
    }
    *q = 0;
    return o;
}

int build_from_folder(const char *images_dir, const char *character, const char *caption, const char *out,
                      const build_options *o, build_report *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    memset(&g_found, 0, sizeof g_found);
    g_found.quiet = o->quiet;
    if (nftw(images_dir, on_file, 32, FTW_ACTIONRETVAL) != 0) {
        snprintf(err, errlen, "%s: cannot read the folder (%s)", images_dir, errno ? strerror(errno) : "out of memory");
        for (size_t i = 0; i < g_found.n; i++) free(g_found.paths[i]);
        free(g_found.paths);
        return -1;
    }
    if (g_found.n) qsort(g_found.paths, g_found.n, sizeof *g_found.paths, cmp_str);  // the same dataset from the same tree
    size_t root_len = strlen(images_dir);
    while (root_len > 1 && images_dir[root_len - 1] == '/') root_len--;
    const char *base = images_dir + root_len;
    while (base > images_dir && base[-1] != '/') base--;
    char dflt[256];
    snprintf(dflt, sizeof dflt, "%.*s", (int)(images_dir + root_len - base), base);  // the folder's own name
    if (!strcmp(dflt, ".") || !strcmp(dflt, "..") || !strcmp(dflt, "/")) {  // `--images .` in the photos' folder: its real name
        char *real = realpath(images_dir, NULL);
        const char *slash = real ? strrchr(real, '/') : NULL;
        if (slash && slash[1]) snprintf(dflt, sizeof dflt, "%s", slash + 1);
        free(real);
    }
    if (character && character[0]) snprintf(dflt, sizeof dflt, "%s", character);

    build_item *items = calloc(g_found.n + 1, sizeof *items);
    size_t n = 0;
    uint64_t no_caption = 0, renamed = 0;
    const char *first_renamed = NULL;
    for (size_t i = 0; i < g_found.n; i++) {
        const char *path = g_found.paths[i], *rel = path + root_len;
        while (*rel == '/') rel++;
        build_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->line = 0;  // no line to name: build_dataset's messages name the folder and the file
        const char *slash = strchr(rel, '/');
        bool changed = false;
        it->character = slash ? name_utf8(rel, (size_t)(slash - rel), &changed) : name_utf8(dflt, strlen(dflt), &changed);
        char why[4600];
        int got = read_sidecar(path, it, why, sizeof why);
        if (got < 0) {
            no_caption++;
            if (!o->quiet) fprintf(stderr, "%s: skipped: caption file %s\n", path, why);
            build_item_free(it);
            continue;
        }
        if (!got && caption) {
            it->captions = malloc(sizeof *it->captions);
            it->captions[0] = strdup(caption);
            it->n_captions = 1;
        }
        if (!it->n_captions) {
            no_caption++;
            if (!o->quiet)
                fprintf(stderr, "%s: skipped: no caption (write its captions into the .txt file beside it, one per line, "
                        "or give --caption)\n", path);
            build_item_free(it);
            continue;
        }
        it->image_path = strdup(path);
        it->source = name_utf8(rel, strlen(rel), &changed);
        if (changed && !renamed++) first_renamed = path;
        n++;
    }
    if (renamed && !o->quiet)
        fprintf(stderr, "%s: %llu image path(s) not in UTF-8, e.g. %s: their characters and sources are stored with those bytes read as "
                "Latin-1 (the dataset's strings are UTF-8)\n", images_dir, (unsigned long long)renamed, first_renamed);
    for (size_t i = 0; i < g_found.n; i++) free(g_found.paths[i]);
    free(g_found.paths);
    uint64_t unreadable = g_found.unreadable;
    memset(&g_found, 0, sizeof g_found);
    int rc;
    if (n == 0) {
        snprintf(err, errlen, "%s: no usable image (%.0f without a caption, %.0f unreadable; looked for .png, .jpg, .jpeg, .webp)", images_dir,
                 (double)no_caption, (double)unreadable);
        rc = -1;
    } else {
        build_options oo = *o;
        oo.input_name = images_dir;
        rc = build_dataset(out, items, n, load_file, NULL, &oo, r, err, errlen);
    }
    r->lines += no_caption + unreadable;
    r->skipped[BUILD_SKIP_FIELD] += no_caption;
    r->skipped[BUILD_SKIP_IMAGE] += unreadable;
    for (size_t i = 0; i < n; i++) build_item_free(&items[i]);
    free(items);
    return rc;
}
