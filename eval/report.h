// report.h — what a sweep leaves for people: summary.md (a row per checkpoint × size × steps ×
// scale × guidance: images and each score's mean ± sd) and a contact sheet per pair.
// defines: eval_summary_text, eval_contact_sheets
#pragma once
#include "eval/pairs.h"
#include "eval/results.h"

// summary.md's text (malloc'd): a row per group (setup included: the last column), in the order the
// records first show them
char *eval_summary_text(const eval_results *d, const char *title);
// DIR/sheets/pP.png per pair: the reference (with alpha: on white, as the adapter sees it), then a
// row per checkpoint x scale x guidance with a column per seed (the images under DIR/images/TAG/, named by eval_image_name
// as the line of their key in done made them — a pair moved in the pairs file keeps its earlier name —; a missing one grey).
// srcs: the sources as the keys name them; setup: this sweep's (eval_setup). 0, or -1 with err.
int eval_contact_sheets(const char *outdir, const eval_results *done, const eval_pair *pairs, char pair_ids[][EVAL_PAIR_ID_LEN], int np,
                        char srcs[][PATH_MAX + 8], char tags[][96],
                        int nck, const double *scales, int ns, const double *guids, int ng, const double *seeds, int nseed,
                        int steps, int W, int H, const char *setup, char *err, size_t errlen);
