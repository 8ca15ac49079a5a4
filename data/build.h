// build.h — the dataset builder: items (from a JSONL manifest or generated) → WebP records in
// immutable LMDB shards + manifest.json. Images of one character id become contiguous ids and
// form its pairs. Encoding runs on `threads` threads; writing is sequential (MDB_APPEND).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "data/image.h"

typedef struct {
    int quality;             // WebP quality 0..100 (default 90)
    int lossless;            // 1 = lossless WebP
    int max_side;            // longer side above this is resized down (0 = keep; default 1024)
    double max_aspect;       // longer/shorter side above this is skipped (0 = no limit; default 8): the loader
                             // scales an image to cover a bucket (aspect <= data.max_aspect, up to 16)
    uint64_t shard_samples;  // samples per shard (default 10000)
    uint64_t shard_bytes;    // also cut a shard when its records exceed this (default 2 GiB)
    int threads;             // encode threads (0 = usable CPUs, cpus_usable)
    int bucket_resolution;   // manifest bucket table: area resolution² (default 512)
    int bucket_step;         // its step (default 64)
    int quiet;               // 1: no per-line messages (counts still returned)
    const char *input_name;  // named in per-line messages (the JSONL path); NULL = "item"
} build_options;

typedef struct {
    long line;               // JSONL line number (or generated index) for messages; 0: none (a folder's file)
    char *image_path;        // file to read (NULL for generated images)
    char *mask_path;         // optional mask file (8-bit: its luminance or alpha → image alpha)
    char *source;            // as written in the manifest ("demo:..." for generated)
    char *character;         // character id (string)
    int n_captions;
    char **captions;         // [n_captions]
    int has_bbox;
    uint32_t bbox[4];        // x, y, w, h in original pixels
    uint64_t user;           // generator's own data
} build_item;

// Produces the item's 8-bit RGB/RGBA image. 0, or -1 with a reason in err.
typedef int (*build_image_fn)(void *ctx, const build_item *it, image *out, char *err, size_t errlen);

enum { BUILD_SKIP_JSON, BUILD_SKIP_FIELD, BUILD_SKIP_IMAGE, BUILD_SKIP_MASK, BUILD_SKIP_BBOX, BUILD_SKIP_ENCODE, BUILD_SKIP_ASPECT, BUILD_SKIP_REASONS };
extern const char *const build_skip_names[BUILD_SKIP_REASONS];

typedef struct {
    uint64_t lines, kept, skipped[BUILD_SKIP_REASONS];
    uint64_t shards, characters, bytes;
    int has_dict;
} build_report;

build_options build_options_default(void);
void build_item_free(build_item *it);
// Builds dataset `out` (must not hold a manifest.json yet). items are reordered (grouped by
// character). On a write failure (disk full, ...) the partial shard is removed, no manifest is
// written and -1 is returned with err naming the file; published shards are not touched.
int build_dataset(const char *out, build_item *items, size_t n, build_image_fn load, void *ctx, const build_options *o, build_report *r,
                  char *err, size_t errlen);
// JSONL front end: one object per line {image, caption: str|[str], character: str|int,
// mask?: str, bbox?: [x,y,w,h]}; image/mask paths relative to images_dir unless absolute.
int build_from_jsonl(const char *images_dir, const char *jsonl, const char *out, const build_options *o, build_report *r, char *err,
                     size_t errlen);
// Folder front end (data/build_folder.c): every .png / .jpg / .jpeg / .webp under images_dir
// (hidden folders skipped, sorted by path, symbolic links followed; broken links and unreadable
// folders named and counted under "image"). Character: the first folder under images_dir that
// holds the image, or `character` (NULL: images_dir's own name) for images directly in it.
// Captions: the non-empty lines of NAME.txt (else NAME.TXT) beside NAME.png — UTF-8, or UTF-16
// with a BOM —, else `caption` (NULL: none, and the image is skipped, named and counted under
// "field", as is one whose caption file is in another encoding).
int build_from_folder(const char *images_dir, const char *character, const char *caption, const char *out,
                      const build_options *o, build_report *r, char *err, size_t errlen);
void build_report_print(const build_report *r, const char *out);
// the offset of the first byte of s[0..n) that is not part of well-formed UTF-8 (no overlong
// forms, surrogates or code points past U+10FFFF); n when all of it is
size_t build_utf8_check(const char *s, size_t n);
