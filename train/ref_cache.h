// ref_cache.h — the frozen vision towers' features of every reference a run can draw, computed once
// (`cameo cache-refs CONFIG`) and read by each step instead of running SigLIP and DINOv2 on its 5
// views: at full size the towers are 12.26 of the 512² step's 82.7 model TFLOP a sample. A
// reference's views depend on its record alone (resized, no random crop or flip; a dropped
// reference's are zeros), so the cached features are what the towers would give on that device and
// dtype. A fine-tuning tool: an entry is 31 MB in bf16 at full size (5832 tokens x 2688).
// defines: ref_cache, REF_CACHE_KIND and the ref_cache_* functions.
//
// On disk: a feature store (train/feature_store.h) of kind "cameo-ref-cache": sizes tokens (N, a
// view's patches), width (SigLIP's + DINOv2's) and shallow (layers); each entry named and keyed by
// 16 bytes, the dataset's manifest hash and the record's id (little-endian u64 each; the dropped
// reference's: 0 and REF_CACHE_DROPPED), magic "CRF1", holding the projector's three feature sets
// low_res_deep [N, W], low_res_shallow [shallow N, W], high_res_deep [4N, W].
#pragma once
#include "models/vision_features.h"
#include "train/feature_store.h"

#define REF_CACHE_DROPPED UINT64_MAX  // the id of the dropped reference's entry (the features of zero views)

extern const fstore_kind REF_CACHE_KIND;

typedef struct ref_cache {
    fstore s;                // env, id as stored, the datasets covered
    uint64_t fallbacks;      // paired references read as their target's (the reference was damaged at the build)
} ref_cache;

// the towers config c trains with (model.siglip / model.dinov2 and the views' side, or the tiny
// preset and run.seed): their fingerprint and the features' sizes {tokens, width, shallow}
int ref_cache_identity(const train_config *c, fstore_id *id, char *err, size_t errlen);
// as fstore_open (want: the config's towers, or NULL)
int ref_cache_open(ref_cache *rc, const char *path, const fstore_id *want, bool write, char *err, size_t errlen);
void ref_cache_close(ref_cache *rc);
// whether record id of the dataset with manifest hash mh is in the cache; and sound (passes every check)
bool ref_cache_has(ref_cache *rc, uint64_t mh, uint64_t id, bool check);
// the features of B references of the dataset mh on the CPU, bf16 when every entry is, else f32:
// dropped[i] the dropped reference's; else ref_ids[i]'s, or (a paired reference damaged at the
// build, so not in the cache) self_ids[i]'s, counted in rc->fallbacks. A reference in neither,
// or an entry whose checks fail, is an error naming it.
int ref_cache_lookup(ref_cache *rc, uint64_t mh, const int64_t *ref_ids, const int64_t *self_ids, const uint8_t *dropped, int B,
                     vision_features *out, char *err, size_t errlen);
// stores the features f of B references ids[i] of the dataset mh (any device; f32 or bf16, kept as
// given; REF_CACHE_DROPPED with mh 0 for the dropped reference's) in one transaction. 0 or -1.
int ref_cache_put(ref_cache *rc, uint64_t mh, const uint64_t *ids, int B, const vision_features *f, char *err, size_t errlen);
bool ref_cache_applies(const char *path);     // whether path is a reference cache's folder
int ref_cache_inspect_cli(const char *path);  // `cameo inspect DIR`: exit code

// `cameo cache-refs`: every record of the datasets config c trains and validates on, and the dropped
// reference, through the config's vision towers into out (or model.ref_cache); batch references at
// a time. repair: covered datasets read again and every entry checked; a damaged one written anew.
int ref_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                    size_t errlen);
