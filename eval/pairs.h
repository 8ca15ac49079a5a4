// pairs.h — what an evaluation sweep and the trainer's periodic evaluation share: the (reference,
// prompt) pairs of a JSONL file, their references prepared once (the towers' views, the scores'
// embeddings), and one image made, saved and scored.
// defines: eval_pair, eval_scores, eval_pairs_read, eval_pairs_check, eval_pairs_prepare, eval_pairs_free, eval_make_image
#pragma once
#include <limits.h>
#include "eval/clip_score.h"
#include "eval/metrics.h"
#include "eval/sample.h"

typedef struct eval_pair {
    char ref[PATH_MAX];          // the reference image (relative paths resolved against the file's folder)
    char *prompt;
    int line;                    // its line in the pairs file (1-based; blank lines count): what messages name
    float *sig, *dino;           // the reference's views per tower [5, 3, R, R] (eval_reference_views)
    eval_embedding emb;          // its DINO-I / SigLIP-I embeddings
    float *clip_ref, *clip_txt;  // with CLIP: the reference's image embeds and the prompt's text embeds
} eval_pair;

typedef struct eval_scores {
    double dino_i, siglip_i;
    double clip_i, clip_t;       // NaN without CLIP
} eval_scores;

// PAIRS.jsonl: every line {"ref": "...", "prompt": "..."}; blank lines skipped; any other line
// without both is an error naming FILE:LINE. 0, or -1 with err.
int eval_pairs_read(const char *path, eval_pair **out, int *n, char *err, size_t errlen);
// every reference read (and dropped), so that a missing or broken one is named before any model
// is loaded. 0, or -1 with err naming the pairs file, the line and the image.
int eval_pairs_check(const char *path, const eval_pair *p, int n, char *err, size_t errlen);
// loads and prepares every reference (and CLIP's embeddings when clip is not NULL); errors name
// the pairs file, the line and the image. 0, or -1 with err.
int eval_pairs_prepare(ic_models *m, eval_clip *clip, const char *path, eval_pair *p, int n, char *err, size_t errlen);
void eval_pairs_free(eval_pair *p, int n);
// n pairs drawn from a cameo dataset (eval/pairs_dataset.c): n characters spread over its table;
// each pair's reference a character's first readable image (saved as out_dir/refs/pI-charC.png; with
// alpha on white, as the loader gives references),
// its prompt the first caption of the character's next image. Written to out_dir/pairs.jsonl
// (with "character", "ref_id", "prompt_id", "dataset" (absolute) and "pairs_n"), whose path goes to
// pairs_path; a later run finds the file and keeps it (the same pairs) when drawn from the same
// dataset and n, else fails naming both. Corrupt records are skipped and counted. 0, or -1 with err.
int eval_pairs_from_dataset(const char *data_dir, int n, const char *out_dir, char *pairs_path, size_t pathlen, int *skipped,
                            char *err, size_t errlen);
// samples pair p's image with o, writes it to png (PNG.tmp, then renamed; none left on failure) and scores the
// 8-bit image as saved against the reference. 0, or -1 with err.
int eval_make_image(ic_models *m, const vae_decoder *dec, eval_clip *clip, const eval_pair *p, const eval_sample_opts *o,
                    const char *png, eval_scores *sc, char *err, size_t errlen);
