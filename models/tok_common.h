// tok_common.h — what the T5 and CLIP tokenizers share, read from a Hugging Face tokenizer.json:
// a string -> id map, the added (special) tokens split out of the raw text, the normalizer chain,
// the post-processor (special tokens around the ids), and FLUX's truncate + pad rule.
// defines: tok_map, tok_ids, tok_added, tok_norm, tok_post, tok_model_ids and their functions.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "models/tok_unicode.h"

// --- open-addressing string -> int map (keys copied) ---
typedef struct { char **keys; uint32_t *klen; int32_t *vals; size_t cap, n; } tok_map;
void tok_map_put(tok_map *m, const char *k, size_t n, int32_t v);
int32_t tok_map_get(const tok_map *m, const char *k, size_t n);  // -1 when absent
void tok_map_free(tok_map *m);

// --- a growing list of ids ---
typedef struct { int32_t *v; int n, cap; } tok_ids;
void tok_ids_push(tok_ids *a, int32_t x);

// --- reading ---
// reads a whole file (NUL-terminated); NULL and err on failure
char *tok_read_file(const char *path, size_t *n, char *err, size_t errlen);
// path may be the tokenizer.json or a folder holding one; the parsed JSON or NULL and err
cJSON *tok_load_json(const char *path, char *err, size_t errlen);
// prefixes err with "path: " unless it already names the file (the section parsers do not know it)
void tok_err_in_file(const char *path, char *err, size_t errlen);

// --- added tokens ("added_tokens"), split out before normalization (normalized=false) or after ---
typedef struct { char *content; size_t len; int32_t id; bool special, normalized, lstrip, rstrip, single_word; } tok_added_tok;
typedef struct { tok_added_tok *t; int n; } tok_added;
int tok_added_parse(tok_added *a, const cJSON *root, char *err, size_t errlen);
int32_t tok_added_id(const tok_added *a, const char *content);  // -1 when absent
void tok_added_free(tok_added *a);

// A text split into segments: either an added token (id >= 0) or text still to tokenize (id < 0).
typedef struct { size_t off, len; int32_t id; } tok_seg;
typedef struct { tok_seg *s; int n, cap; } tok_segs;
// splits [off, off+len) of text on the added tokens with normalized == want_normalized
// (leftmost-longest match, as the tokenizers library); appends to out
void tok_added_split(const tok_added *a, bool want_normalized, const char *text, size_t off, size_t len, tok_segs *out);
void tok_segs_free(tok_segs *s);

// --- normalizers: Sequence of Precompiled, NFC, Lowercase, Strip, Replace (literal, \s+, " {2,}") ---
typedef enum { TN_PRECOMPILED, TN_NFC, TN_LOWER, TN_STRIP, TN_REPLACE_LIT, TN_REPLACE_SPACES, TN_REPLACE_SPACE2 } tok_norm_kind;
typedef struct {
    tok_norm_kind kind;
    bool left, right;          // Strip
    char *pat, *content;       // Replace
    uint8_t *blob; size_t blob_len;  // Precompiled: the decoded charsmap
    const uint32_t *trie; size_t trie_units;
    const char *norm; size_t norm_len;
} tok_norm_step;
typedef struct { tok_norm_step *steps; int n; } tok_norm;
// parses root["normalizer"] (null ok: no normalization)
int tok_norm_parse(tok_norm *nm, const cJSON *root, char *err, size_t errlen);
void tok_norm_apply(const tok_norm *nm, const char *s, size_t n, ubuf *out);
void tok_norm_free(tok_norm *nm);

// --- post-processor: TemplateProcessing (single) or RobertaProcessing / BertProcessing ---
typedef struct { int32_t pre[4]; int npre; int32_t post[4]; int npost; } tok_post;
int tok_post_parse(tok_post *p, const cJSON *root, char *err, size_t errlen);

// ids -> the special tokens around them, truncated to max_len and padded with pad_id (max_len <= 0:
// neither). Truncation keeps the first tokens and the specials (HF "longest_first" on one sequence).
// Returns the count written (max_len when padding) and sets *truncated; out has room for
// max_len, or n + npre + npost when max_len <= 0.
int tok_post_finish(const tok_post *p, const int32_t *ids, int n, int max_len, int32_t pad_id, int32_t *out,
                    bool *truncated);

// --- the pipeline around a tokenizer's model ---
// text -> the model's ids: added tokens with normalized=false are split out of the raw text, each
// other segment is normalized, added tokens with normalized=true are split out of that, and every
// remaining piece goes to encode(model, piece, len, at_origin, out). at_origin: the piece starts
// the text (T5's Metaspace prepends its "▁" only there). The caller frees the result's v.
typedef void (*tok_encode_fn)(const void *model, const char *s, size_t n, bool at_origin, tok_ids *out);
tok_ids tok_model_ids(const tok_added *a, const tok_norm *nm, const char *text, tok_encode_fn encode, const void *model);
// ids with the specials around them, unpadded: malloc'd, length in *n. Frees ids.
int32_t *tok_post_all(const tok_post *p, tok_ids *ids, int32_t pad_id, int *n);
// ids with the specials, truncated and padded to max_len in out (tok_post_finish). Returns the count
// of non-pad ids; *truncated, and *full: the count before truncation (for the caller's warning).
// Frees ids.
int tok_post_padded(const tok_post *p, tok_ids *ids, int max_len, int32_t pad_id, int32_t *out, bool *truncated,
                    int *full);
