// report.c — see report.h
#include "eval/report.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/fsutil.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "data/resize.h"
#include "autograd/tensor.h"

// "mean ± sd" of the values that are not NaN (n/a when none; no ± for one). When only some of the
// row's images have the score (CLIP's, of lines made with and without --clip), "(k of n)" after it:
// else a mean over a subset would read as the row's
static void mean_sd(const double *x, int n, char *out, size_t len) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], k++;
    if (!k) { snprintf(out, len, "n/a"); return; }
    double m = s / k;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) q += (x[i] - m) * (x[i] - m);
    int at = k > 1 ? snprintf(out, len, "%.4f ± %.4f", m, sqrt(q / (k - 1))) : snprintf(out, len, "%.4f", m);
    if (k < n && at >= 0 && (size_t)at < len) snprintf(out + at, len - (size_t)at, " (%d of %d)", k, n);
}

// summary.md: a row per (checkpoint, size, steps, scale, guidance, setup), in the order the records first
// show them; grouped by the source itself (two checkpoints under one tag stay apart), labelled by its
// tag; a setup apart (images made on another device or dtype, or with other --set) a row of its own
char *eval_summary_text(const eval_results *d, const char *title) {
    size_t cap = 4096 + (size_t)d->n * 256, at = 0;
    char *b = malloc(cap);
    double *x[4];
    for (int k = 0; k < 4; k++) x[k] = malloc(sizeof(double) * (size_t)(d->n + 1));
    bool *seen = calloc((size_t)d->n + 1, 1);
    CM_CHECK(b && x[0] && x[1] && x[2] && x[3] && seen, "eval", "out of host memory");
    at += (size_t)snprintf(b + at, cap - at,
                           "# %s\n\n| checkpoint | size | steps | scale | guidance | images | DINO-I | SigLIP-I | CLIP-I | CLIP-T | s / image | setup |\n"
                           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n", title);
    for (int i = 0; i < d->n; i++) {
        if (seen[i]) continue;
        int n = 0;
        double secs = 0;
        for (int j = i; j < d->n; j++) {
            const eval_rec *a = &d->v[i], *c = &d->v[j];
            if (seen[j] || a->src != c->src || a->scale != c->scale || a->guidance != c->guidance || a->steps != c->steps ||
                a->w != c->w || a->h != c->h || a->setup != c->setup)
                continue;
            seen[j] = true;
            x[0][n] = c->dino, x[1][n] = c->siglip, x[2][n] = c->clip_i, x[3][n] = c->clip_t, secs += c->seconds, n++;
        }
        char m[4][80];
        for (int k = 0; k < 4; k++) mean_sd(x[k], n, m[k], sizeof m[k]);
        const eval_rec *r = &d->v[i];
        at += (size_t)snprintf(b + at, cap - at, "| %s | %dx%d | %d | %.9g | %.9g | %d | %s | %s | %s | %s | %.2f | %s |\n", r->tag, r->w,
                               r->h, r->steps, r->scale, r->guidance, n, m[0], m[1], m[2], m[3], secs / n,
                               r->setup ? r->setup_label : "n/a");
    }
    snprintf(b + at, cap - at,
             "\nDINO-I: cosine of the DINOv2 CLS embeddings of reference and image; SigLIP-I: cosine of SigLIP's "
             "mean-pooled last hidden states; both through the adapter's towers and reference view. CLIP-I: cosine of "
             "reference's and image's CLIP image embeddings; CLIP-T: of the image's and the prompt's (n/a: no --clip; "
             "(k of n): only k of the row's n images were made with --clip). ± is the sample standard deviation over "
             "the row's images. setup: device type and dtype, and with --config its file and --set overrides (n/a: lines "
             "from before results named it).\n");
    for (int k = 0; k < 4; k++) free(x[k]);
    free(seen);
    return b;
}

// DIR/sheets/pP.png per pair: the reference, then a row per checkpoint x scale x guidance with a
// column per seed (this sweep's images; a missing one grey), 4-pixel white gaps — for the eye.
// 0, or -1 with err.
int eval_contact_sheets(const char *outdir, const eval_results *done, const eval_pair *pairs, char pair_ids[][EVAL_PAIR_ID_LEN], int np,
                        char srcs[][PATH_MAX + 8], char tags[][96],
                        int nck, const double *scales, int ns, const double *guids, int ng, const double *seeds, int nseed,
                        int steps, int W, int H, const char *setup, char *err, size_t errlen) {
    const int gap = 4, cols = 1 + nseed, rows = nck * ns * ng;
    int SW = cols * W + (cols + 1) * gap, SH = rows * H + (rows + 1) * gap;
    if ((int64_t)SW * SH > (int64_t)1 << 28) return 0;  // a sweep too large for one sheet: none
    char dir[PATH_MAX + 16], path[PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/sheets", outdir);
    if (fs_mkdirs(dir)) { snprintf(err, errlen, "%s: cannot create (%s)", dir, strerror(errno)); return -1; }
    image sheet = {SW, SH, 3, malloc((size_t)SW * SH * 3)};
    uint8_t *cell = malloc((size_t)W * H * 3);
    if (!sheet.px || !cell) { free(sheet.px), free(cell); snprintf(err, errlen, "out of host memory for a sheet"); return -1; }
    int rc = 0;
    resize_scratch rs = {0};
    preprocess_scratch ps = {0};
    for (int p = 0; p < np && !rc; p++) {
        memset(sheet.px, 255, (size_t)SW * SH * 3);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                image im = {0};
                char e[256];
                int ci = r / (ns * ng), si = r / ng % ns, gi = r % ng;
                if (c == 0) snprintf(path, sizeof path, "%s", pairs[p].ref);  // the reference, in every row
                else {
                    // the name its line gave it: a pair reused after a move in the pairs file was made under
                    // its old line number (and its key, not its number, finds it)
                    char rel[400], *key = eval_key(srcs[ci], pair_ids[p], scales[si], guids[gi], seeds[c - 1], steps, W, H, setup);
                    int at = eval_results_find(done, key);
                    free(key);
                    const eval_rec *rec = at >= 0 ? &done->v[at] : NULL;
                    eval_image_name(rel, sizeof rel, rec ? rec->tag : tags[ci], rec && rec->pair >= 0 ? rec->pair : p, pair_ids[p],
                                    scales[si], guids[gi], seeds[c - 1], steps, W, H, setup);
                    snprintf(path, sizeof path, "%s/%s", outdir, rel);
                }
                bool ok = image_load(path, &im, e, sizeof e) == 0;
                const uint8_t *rgb = im.px;  // [h, w, 3]
                if (ok && im.c == 4) {       // on white, as the loader shows a reference to the adapter (its bare
                                             // colours would show what is behind a cut-out: another picture)
                    if (preprocess_load(&im, &ps)) ok = false;
                    else rgb = ps.src;
                }
                if (ok && resize_u8(rgb, im.w, im.h, 3, W, H, 0, 0, W, H, cell, &rs)) ok = false;
                if (!ok) memset(cell, 128, (size_t)W * H * 3);
                free(im.px);
                int x0 = gap + c * (W + gap), y0 = gap + r * (H + gap);
                for (int y = 0; y < H; y++) memcpy(sheet.px + ((size_t)(y0 + y) * SW + x0) * 3, cell + (size_t)y * W * 3, (size_t)W * 3);
            }
        snprintf(path, sizeof path, "%s/p%d.png", dir, p);
        rc = image_write_png(path, &sheet, err, errlen);
    }
    resize_scratch_free(&rs);
    preprocess_scratch_free(&ps);
    free(sheet.px), free(cell);
    return rc;
}

