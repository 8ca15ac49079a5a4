// latent_cache.h — the VAE encoder's output for every target a run can draw, computed once
// (`cameo cache-latents CONFIG`) and read by each step instead of running the VAE on the target:
// with the text and reference caches, a step then runs no frozen encoder at all and the loader
// makes no pixels. A target is its record resized to cover its bucket and cut from the centre
// (data.random_crop: false; the loader's random crop moves with every epoch, so the cache needs the
// centre crop), flipped or not (with data.random_flip both are cached), so the cached moments are
// what the VAE would give on that device and dtype. The entry holds the distribution's mean and
// clamped logvar: train.vae_sample draws from them with the step's own noise, exactly as
// vae_encode_sample does.
// defines: latent_cache, LATENT_CACHE_KIND and the latent_cache_* functions.
//
// On disk: a feature store (train/feature_store.h) of kind "cameo-latent-cache": sizes channels
// (2 x the latent's: mean, then logvar), factor (pixels a latent) and layout (the version of the
// entries and of the target's preprocessing); each entry named by 21 bytes, the dataset's manifest hash, the record's id
// (little-endian u64 each), the bucket's width and height (u16 each) and whether the target is
// flipped (u8: data.random_flip), keyed by a hash of (hash, width, height, flipped) and the id,
// magic "CLT1", holding [channels, H / factor, W / factor] — a store whose entries have sizes of
// their own (fstore_kind.entry_dims).
#pragma once
#include "data/buckets.h"
#include "train/feature_store.h"

extern const fstore_kind LATENT_CACHE_KIND;

typedef struct latent_cache {
    fstore s;                // env, id as stored, the datasets covered
} latent_cache;

// the VAE config c trains with (model.vae, or the tiny preset and run.seed): its fingerprint and
// the sizes {2 x latent channels, pixels a latent, LATENT_TARGET_VERSION}
int latent_cache_identity(const train_config *c, fstore_id *id, char *err, size_t errlen);
// as fstore_open (want: the config's VAE, or NULL)
int latent_cache_open(latent_cache *lc, const char *path, const fstore_id *want, bool write, char *err, size_t errlen);
void latent_cache_close(latent_cache *lc);
// whether the target of record id of dataset mh in the W x H bucket (flipped or not) is in the
// cache; and sound
bool latent_cache_has(latent_cache *lc, uint64_t mh, uint64_t id, int W, int H, int flip, bool check);
// the moments [B, channels, H / f, W / f] of B targets ids[i] of dataset mh in the W x H bucket,
// flipped where flipped[i] (NULL: none), on the CPU, bf16 when every entry is, else f32. A target
// not in the cache, or an entry whose checks fail, is an error naming it. 0 or -1.
int latent_cache_lookup(latent_cache *lc, uint64_t mh, const int64_t *ids, const uint8_t *flipped, int B, int W, int H, cm_tensor **out,
                        char *err, size_t errlen);
// stores moments [B, channels, H / f, W / f] (any device; f32 or bf16, kept as given) of B targets
// ids[i] of dataset mh in the W x H bucket, flipped or not, in one transaction. 0 or -1.
int latent_cache_put(latent_cache *lc, uint64_t mh, const uint64_t *ids, int B, int W, int H, int flip, const cm_tensor *moments,
                     char *err, size_t errlen);
// the bucket tables a run of c puts the records of the dataset at path in: each stage's that reads it
// (steps > 0), and the validation's there (at each stage's table); identical tables once; and
// whether the targets are flipped too
typedef struct latent_tables {
    int n;                                       // tables
    int nb[2 * CFG_MAX_STAGES];                  // buckets in each
    int bk[2 * CFG_MAX_STAGES][BUCKETS_MAX][2];  // (W, H)
    int flips;                                   // 2 with data.random_flip: each target flipped too; else 1
} latent_tables;
void latent_tables_of(const train_config *c, const char *path, latent_tables *t);
// what the cache records a dataset as covered by: its manifest hash and the tables' buckets (a
// change of a stage's resolution or buckets asks for new entries, which a rebuild adds)
uint64_t latent_cover_key(const latent_tables *t, uint64_t manifest_hash);
// the key a dataset at path is covered under for a run of c (latent_cover_key of its tables), and
// what the key holds besides the manifest, for a message: fstore_covers_run's cover
uint64_t latent_cover_of(const train_config *c, const char *path, uint64_t manifest_hash, char *also, size_t alen);
bool latent_cache_applies(const char *path);     // whether path is a latent cache's folder
int latent_cache_inspect_cli(const char *path);  // `cameo inspect DIR`: exit code

// `cameo cache-latents`: every record of the datasets config c trains and validates on, in each
// bucket a stage (or its validation) puts it in, through the config's VAE into out (or
// model.latent_cache); batch targets of one bucket at a time. repair: covered datasets read again
// and every entry checked; a damaged one written anew.
int latent_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                       size_t errlen);
