// record.h — one sample's value in a shard's `samples` database: a 40-byte header, the WebP
// image bytes, the zstd-compressed metadata. Layout (little-endian) in docs/dataset-format.md.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC 0x31524D43u  // "CMR1"
#define RECORD_VERSION 1
#define RECORD_HEADER 40
#define RECORD_FLAG_META_DICT 1u  // metadata compressed with the dataset's zstd dictionary
#define RECORD_FLAG_ALPHA 2u      // the WebP image carries an alpha channel (character mask)
#define RECORD_FLAG_LOSSLESS 4u   // the WebP image is lossless
#define RECORD_MAX_CAPTIONS 255
#define RECORD_MAX_META (1u << 24)  // raw metadata bytes a reader accepts (255 captions of 64 KiB would pass it)

// a parsed record: pointers into the value (no copy)
typedef struct {
    uint16_t flags;
    uint64_t id;
    uint32_t character;
    uint16_t width, height;    // stored image size
    const uint8_t *image;      // [image_len] WebP bytes
    uint32_t image_len;
    const uint8_t *meta;       // [meta_len] zstd frame
    uint32_t meta_len, meta_raw_len;
} record_view;

// decoded metadata; strings are NUL-terminated and live in `arena` (reused between decodes)
typedef struct {
    int n_captions;
    const char *captions[RECORD_MAX_CAPTIONS];
    const char *character;     // the character id as given in the build manifest
    const char *source;        // the image path as given in the build manifest (or "demo:...")
    uint32_t orig_w, orig_h;   // original image size before any resize
    int has_bbox;
    uint32_t bbox[4];          // x, y, w, h in stored-image pixels
    char *arena;
    size_t arena_cap;
} record_meta;

// metadata to encode
typedef struct {
    int n_captions;
    const char *const *captions;
    const char *character, *source;
    uint32_t orig_w, orig_h;
    int has_bbox;
    uint32_t bbox[4];
} record_meta_in;

// Parses and checks a record value: magic, version, lengths, CRC-32C. Returns 0, or -1 with a
// reason in err ("checksum mismatch: stored 0x… computed 0x…", "length …").
int record_parse(const void *value, size_t len, record_view *out, char *err, size_t errlen);
// Same without the CRC (for speed where the caller verified it before).
int record_parse_nocrc(const void *value, size_t len, record_view *out, char *err, size_t errlen);

// Serialises metadata into a malloc'd buffer (*out, *out_len). Returns 0 or -1 (a string over
// 65535 bytes, not 1..255 captions, or more than RECORD_MAX_META bytes in all).
int record_meta_encode(const record_meta_in *in, uint8_t **out, size_t *out_len);
// Decodes raw metadata into m (reusing m->arena). Returns 0 or -1 with err.
int record_meta_decode(const void *raw, size_t len, record_meta *m, char *err, size_t errlen);
void record_meta_free(record_meta *m);

// Assembles header + image + compressed metadata into a malloc'd value.
uint8_t *record_assemble(uint64_t id, uint32_t character, uint16_t flags, int width, int height,
                         const void *image, size_t image_len, const void *meta, size_t meta_len,
                         size_t meta_raw_len, size_t *out_len);

// zstd wrappers. cdict/ddict may be NULL (plain zstd). Decompress checks the raw length.
// ctx is a ZSTD_CCtx* / ZSTD_DCtx* (void* keeps zstd.h out of this header).
int record_meta_compress(void *cctx, const void *cdict, const void *raw, size_t raw_len, uint8_t **out,
                         size_t *out_len);
int record_meta_decompress(void *dctx, const void *ddict, const record_view *r, uint8_t **buf, size_t *cap,
                           char *err, size_t errlen);
