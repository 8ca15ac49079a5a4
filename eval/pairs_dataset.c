// pairs_dataset.c — evaluation pairs drawn from a cameo dataset (eval/pairs.h, eval_pairs_from_dataset)
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "data/dataset.h"
#include "data/fsutil.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "eval/pairs.h"

// a readable record of character c at or after its image k (corrupt ones skipped and counted);
// -1 when none. rec and r->meta hold it.
static int64_t readable(dataset_reader *r, uint32_t c, uint32_t k, record_view *rec, int *skipped) {
    dataset *d = r->d;
    char e[512];
    for (; k < d->char_count[c]; k++) {
        uint64_t id = d->char_first[c] + k;
        if (dataset_get(r, id, rec, e, sizeof e) == DS_OK && dataset_get_meta(r, rec, e, sizeof e) == DS_OK) return (int64_t)id;
        (*skipped)++;
    }
    return -1;
}

// an earlier run's pairs.jsonl: kept when drawn from the same dataset and N (its lines say: "dataset",
// "pairs_n"; a file from before they were written is kept as it is); else an error naming both, as
// drawing anew would write over the references that earlier results point at. 0, or -1 with err.
static int same_draw(const char *pairs_path, const char *dataset, int n, char *err, size_t errlen) {
    size_t len;
    char *text = fs_read_file(pairs_path, &len, (size_t)64 << 20);
    if (!text) { snprintf(err, errlen, "%s: cannot read (%s)", pairs_path, strerror(errno)); return -1; }
    char *e = strchr(text, '\n');
    if (e) *e = 0;
    cJSON *j = cJSON_Parse(text);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(j, "dataset"), *pn = cJSON_GetObjectItemCaseSensitive(j, "pairs_n");
    int rc = 0;
    if (cJSON_IsString(ds) && cJSON_IsNumber(pn) && (strcmp(ds->valuestring, dataset) || pn->valueint != n)) {
        snprintf(err, errlen, "%s: drawn from %s with --pairs-n %d, not %s with --pairs-n %d: give those again, or another --out "
                              "(or remove it and refs/ beside it to draw anew)", pairs_path, ds->valuestring, pn->valueint, dataset, n);
        rc = -1;
    }
    cJSON_Delete(j);
    free(text);
    return rc;
}

int eval_pairs_from_dataset(const char *data_dir, int n, const char *out_dir, char *pairs_path, size_t pathlen, int *skipped,
                            char *err, size_t errlen) {
    *skipped = 0;
    snprintf(pairs_path, pathlen, "%s/pairs.jsonl", out_dir);
    char abs[PATH_MAX];
    const char *from = realpath(data_dir, abs) ? abs : data_dir;  // what the file records: a rerun from elsewhere matches
    struct stat st;
    if (stat(pairs_path, &st) == 0) return same_draw(pairs_path, from, n, err, errlen);  // drawn by an earlier run: the same pairs
    dataset d;
    if (dataset_open(&d, data_dir, DATASET_NO_SIZES, err, errlen)) return -1;
    dataset_reader r;
    char refs[4200];
    snprintf(refs, sizeof refs, "%s/refs", out_dir);
    int rc = dataset_reader_init(&r, &d) ? -1 : 0;
    if (rc) snprintf(err, errlen, "%s: cannot read the dataset", data_dir);
    if (!rc && fs_mkdirs(refs)) {
        snprintf(err, errlen, "%s: cannot create (%s)", refs, strerror(errno));
        rc = -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    int made = 0;
    uint32_t nc = d.n_chars;
    // n characters spread over the table; the reference: a character's first readable image; the
    // prompt: the first caption of its next readable image (another picture of the same character)
    for (int i = 0; !rc && text && i < n && i < (int)nc; i++) {
        uint32_t c = (uint32_t)((uint64_t)i * nc / (uint64_t)(n < (int)nc ? n : (int)nc));
        record_view rec;
        int64_t id = readable(&r, c, 0, &rec, skipped);
        if (id < 0) continue;
        image im = {0};
        char e[512], png[4400], name[64];
        if (image_decode_mem(rec.image, rec.image_len, &im, e, sizeof e)) { (*skipped)++; continue; }
        if (im.c == 4) {  // on white, as the loader gives the adapter its references (dropping the alpha
                          // would show what is behind a cut-out or outside a mask: another picture)
            preprocess_scratch ps = {0};
            if (preprocess_load(&im, &ps)) { free(im.px); snprintf(err, errlen, "out of host memory"); rc = -1; break; }
            memcpy(im.px, ps.src, (size_t)im.w * im.h * 3);
            im.c = 3;
            preprocess_scratch_free(&ps);
        }
        snprintf(name, sizeof name, "p%d-char%u.png", made, c);
        snprintf(png, sizeof png, "%s/%s", refs, name);
        int wrc = image_write_png(png, &im, e, sizeof e);
        free(im.px);
        if (wrc) { snprintf(err, errlen, "%s", e); rc = -1; break; }
        record_view rec2;
        int64_t id2 = readable(&r, c, (uint32_t)(id - (int64_t)d.char_first[c]) + 1, &rec2, skipped);
        if (id2 < 0) id2 = readable(&r, c, (uint32_t)(id - (int64_t)d.char_first[c]), &rec2, skipped);  // one picture only
        const char *caption = id2 >= 0 && r.meta.n_captions > 0 ? r.meta.captions[0] : "";
        cJSON *j = cJSON_CreateObject();
        char rel[96];
        snprintf(rel, sizeof rel, "refs/%s", name);
        cJSON_AddStringToObject(j, "ref", rel);
        cJSON_AddStringToObject(j, "prompt", caption);
        cJSON_AddStringToObject(j, "character", r.meta.character ? r.meta.character : "");
        cJSON_AddNumberToObject(j, "ref_id", (double)id);
        cJSON_AddNumberToObject(j, "prompt_id", (double)id2);
        cJSON_AddStringToObject(j, "dataset", from);
        cJSON_AddNumberToObject(j, "pairs_n", n);
        char *line = cJSON_PrintUnformatted(j);
        size_t l = line ? strlen(line) : 0;
        if (line && len + l + 2 > cap) {
            cap = 2 * (len + l + 2);
            char *g = realloc(text, cap);
            if (!g) { free(line); cJSON_Delete(j); snprintf(err, errlen, "out of host memory"); rc = -1; break; }
            text = g;
        }
        if (line) memcpy(text + len, line, l), text[len + l] = '\n', len += l + 1, made++;
        free(line);
        cJSON_Delete(j);
    }
    if (!rc && !text) { snprintf(err, errlen, "out of host memory"); rc = -1; }
    if (!rc && !made) { snprintf(err, errlen, "%s: no readable image to draw a pair from", data_dir); rc = -1; }
    if (!rc) rc = fs_write_atomic(pairs_path, text, len, err, errlen);
    free(text);
    dataset_reader_free(&r);
    dataset_close(&d);
    return rc;
}
