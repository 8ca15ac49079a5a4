// text_cache.h — the frozen text encoders' outputs for every caption a run can draw, computed once
// (`cameo cache-text CONFIG`) and read by each step instead of running T5 and CLIP: at full size
// T5-XXL is 4.86 of the 512² step's 82.7 model TFLOP a sample and 8.9 GiB of bf16 weights on the
// card. A caption's T5 states depend on the caption alone (FLUX passes no attention mask, pads to
// 512), so the cached rows are exactly what the encoders would give on that device and dtype.
// defines: text_cache, text_cache_id and the text_cache_* functions.
//
// On disk: a feature store (train/feature_store.h) of kind "cameo-text-cache": sizes t5_len, joint_dim,
// pooled_dim; each entry keyed by two 64-bit hashes of its caption, named by the caption (checked on
// every read), magic "CTX1", holding T5 [t5_len, joint_dim] then CLIP [pooled_dim]. Written in one
// transaction a batch: an interrupted build keeps what it committed and its rerun goes on from there
// (a dataset counts as covered once all its records were read).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"
#include "train/config.h"

#include "train/feature_store.h"

// which text encoders made (or would make) the cached outputs: dim = {T5 tokens a caption, T5
// width, CLIP pooled width}
typedef fstore_id text_cache_id;
typedef fstore text_cache;  // env (MDB_env*), id as stored, the datasets covered: sets[n_sets]
extern const fstore_kind TEXT_CACHE_KIND;

// the text encoders config c trains with (model.t5 / model.clip, or the tiny preset and run.seed)
int text_cache_identity(const train_config *c, text_cache_id *id, char *err, size_t errlen);
// Opens the cache at path: read-only (write false; it must exist), or for writing (made when
// missing). want != NULL: its encoders must be the cache's, else an error names both. 0 or -1.
int text_cache_open(text_cache *tc, const char *path, const text_cache_id *want, bool write, char *err, size_t errlen);
void text_cache_close(text_cache *tc);
// whether caption is in the cache (its key present); and present with an entry that passes every
// check a lookup makes (sizes, checksum, caption)
bool text_cache_has(text_cache *tc, const char *caption);
bool text_cache_sound(text_cache *tc, const char *caption);
// captions [B] -> *txt [B, t5_len, joint_dim], *pooled [B, pooled_dim] on the CPU, in bf16 when
// every entry is (a cache built on a GPU: half the bytes to move), else f32. A caption
// not in the cache, or an entry whose checksum, caption or sizes are wrong, is an error naming it.
int text_cache_lookup(text_cache *tc, const char *const *captions, int B, cm_tensor **txt, cm_tensor **pooled, char *err,
                      size_t errlen);
// stores captions [B] with their outputs txt [B, t5_len, joint_dim], pooled [B, pooled_dim] (any
// device; f32 or bf16, kept as given), in one transaction. 0 or -1.
int text_cache_put(text_cache *tc, const char *const *captions, int B, const cm_tensor *txt, const cm_tensor *pooled, char *err,
                   size_t errlen);
// the dataset at path (its manifest hash, samples) is covered now: recorded in "meta"
int text_cache_add_set(text_cache *tc, const char *path, uint64_t manifest_hash, uint64_t samples, char *err, size_t errlen);
bool text_cache_covers(const text_cache *tc, uint64_t manifest_hash);
// captions stored (the environment's entries less "meta")
uint64_t text_cache_count(text_cache *tc);

// every entry read and checked (its key against its caption, sizes, checksum)
typedef fstore_check text_cache_check;
int text_cache_verify(text_cache *tc, text_cache_check *r, char *err, size_t errlen);
// whether path is a text cache's folder (a data.mdb whose "meta" says so)
bool text_cache_applies(const char *path);
// `cameo inspect CACHE_DIR`: its encoders, rows, datasets, and every entry verified; exit code
int text_cache_inspect_cli(const char *path);

// `cameo cache-text`: every caption of the datasets config c trains and validates on, "" (caption
// dropout), and the evaluation prompts, through the config's text encoders into out (or
// model.text_cache); batch captions at a time. repair: datasets already covered are read again and
// every entry checked; a damaged one is encoded and written anew. 0 or -1 with err.
int text_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                     size_t errlen);
