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

// the non-empty lines of NAME.txt beside the image into it->captions; 0 when there is no such file
static int read_sidecar(const char *image_path, build_item *it) {
    char txt[4096];
    snprintf(txt, sizeof txt, "%s", image_path);
    char *dot = strrchr(txt, '.');
    if (!dot || (size_t)(dot - txt) + 5 > sizeof txt) return 0;
    strcpy(dot, ".txt");
    FILE *f = fopen(txt, "r");
    if (!f && errno == ENOENT) {  // IMG_0001.JPG / IMG_0001.TXT: cameras and Windows tools write upper case
        strcpy(dot, ".TXT");
        f = fopen(txt, "r");
    }
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool first = true;
    while ((len = getline(&line, &cap, f)) >= 0 && it->n_captions < 255) {
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = 0;
        char *s = line;
        if (first && len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3;  // a UTF-8 BOM (Windows editors) is no caption text
        first = false;
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        it->captions = realloc(it->captions, (size_t)(it->n_captions + 1) * sizeof *it->captions);
        it->captions[it->n_captions++] = strdup(s);
    }
    free(line);
    fclose(f);
    return it->n_captions;
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
    if (character && character[0]) snprintf(dflt, sizeof dflt, "%s", character);

    build_item *items = calloc(g_found.n + 1, sizeof *items);
    size_t n = 0;
    uint64_t no_caption = 0;
    for (size_t i = 0; i < g_found.n; i++) {
        const char *path = g_found.paths[i], *rel = path + root_len;
        while (*rel == '/') rel++;
        build_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->line = (long)i + 1;
        const char *slash = strchr(rel, '/');
        it->character = slash ? strndup(rel, (size_t)(slash - rel)) : strdup(dflt);
        if (!read_sidecar(path, it) && caption) {
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
        it->source = strdup(rel);
        n++;
    }
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
