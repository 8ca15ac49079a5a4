// results.h — a sweep's results.jsonl: the finished images (one JSON line each, identified by a key
// of checkpoint, pair, scale, guidance, seed, steps and size), read back with damaged lines dropped,
// indexed for lookup, appended one fsynced line at a time, and the per-rank files of a distributed
// sweep merged into it.
// defines: eval_rec, eval_results, eval_key, eval_results_*, eval_append_line
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

// a finished image (clip_i, clip_t NaN when the sweep had no --clip); src: eval_src_hash of its source;
// pair: the pairs file's line index it was made under (its file name has it; -1: not known); clip:
// eval_src_hash of the CLIP model (its absolute path) that gave clip_i, clip_t (0: none, or a line from
// before lines named it)
// setup: eval_src_hash of what the images were made on (eval_key's setup; 0: a line from before lines
// named it), setup_label: its text as far as the summary shows it
typedef struct {
    char tag[96], setup_label[256];
    double scale, guidance, dino, siglip, clip_i, clip_t, seconds;
    int steps, w, h, pair;
    uint64_t src, clip, setup;
} eval_rec;
// the finished images: records, their keys, and a hash index of the keys (open addressing,
// slot -1 empty) so that a sweep of many thousands of images looks each one up at once
typedef struct { eval_rec *v; int n, cap; char **keys; int *slot; int nslot; } eval_results;


#define EVAL_PAIR_ID_LEN 17
// a pair's identity: a hash (16 hex digits) of its reference's absolute path and its prompt
void eval_pair_id(const char *ref, const char *prompt, char out[EVAL_PAIR_ID_LEN]);
// a source's identity in eval_rec.src: a hash of its key string (the absolute folder or file, "#ema" after it)
uint64_t eval_src_hash(const char *src);
// what a sweep's images are made on, beyond its key's other parts (malloc'd): the device type (not its
// index: each rank of a sweep has its own) and dtype, and with --config the config file and its --set
// overrides, in order: "cuda bf16", "cpu f32 config /abs/c.yaml --set run.seed=5"
char *eval_setup(const char *device_type, const char *dtype, const char *config, const char *const *sets, int n_sets);
// the key of one image of a sweep (malloc'd): source, pair id, scale, guidance, seed, steps, size and
// setup (NULL or "": the key of a line from before lines named it)
char *eval_key(const char *src, const char *pair_id, double scale, double guid, double seed, int steps, int w, int h, const char *setup);
// an image's path under the sweep's folder: images/TAG/pP-ID_sS_gG_seedK_Nsteps_WxH[_oX].png (ID: the pair
// id's first 8 digits; X: 8 hex digits of the setup's hash, none without one), so that images of
// different keys never share a file
void eval_image_name(char *out, size_t len, const char *tag, int pair, const char *pair_id, double scale, double guid, double seed,
                     int steps, int w, int h, const char *setup);
// the index of key's record, or -1
int eval_results_find(const eval_results *d, const char *key);
// adds the record of key (taking key); a key already there has its record replaced (the newest
// line of an image counts)
void eval_results_add(eval_results *d, char *key, const eval_rec *r);
// made already, with the CLIP scores when the sweep asks for them (clip: eval_src_hash of its CLIP model;
// 0: no --clip): scores of another CLIP model do not count (a line that does not name its model does)
bool eval_results_has(const eval_results *d, const char *key, uint64_t clip);
void eval_results_free(eval_results *d);
// results.jsonl as left by an earlier run into d: complete lines kept; damaged ones (a write cut
// off) counted in *damaged, dropped, and the file rewritten without them. A missing file is empty.
// 0, or -1 with err.
int eval_results_read(const char *path, eval_results *d, int *damaged, char *err, size_t errlen);
// keeps the lines of a JSONL file for which keep(parsed line, ctx) is true; the others, and any
// line cut off mid-write (no newline) or not JSON, are counted in *dropped and the file is
// rewritten without them (atomically). A missing file is empty. 0, or -1 with err.
int eval_jsonl_filter(const char *path, bool (*keep)(const cJSON *line, void *ctx), void *ctx, int *dropped, char *err,
                      size_t errlen);
// 0 when path (a missing file is empty) holds no line of cameo train's evaluation ("step", no
// "key": RUN/eval/results.jsonl); else -1 with err naming it (a sweep would drop them as damaged)
int eval_results_check_ours(const char *path, char *err, size_t errlen);
// one line appended and fsynced: it survives a kill right after. 0, or -1 with err.
int eval_append_line(const char *path, const char *line, char *err, size_t errlen);
// the lines other ranks wrote (DIR/results.rank-R.jsonl), complete ones only, appended to results,
// then the rank files removed; results' own damaged lines (a write cut off) dropped first and
// counted in *dropped. The number of lines moved, or -1 with err.
int eval_results_merge_ranks(const char *outdir, const char *results, int *dropped, char *err, size_t errlen);
