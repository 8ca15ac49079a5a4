// build_jsonl.c — the JSONL front end of the builder (one cJSON object per line).
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/build.h"

static char *join(const char *dir, const char *p) {
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (p[0] == '/' || !dir[0]) snprintf(s, n, "%s", p);
    else snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static int load_file(void *ctx, const build_item *it, image *out, char *err, size_t errlen) {
    (void)ctx;
    return image_load(it->image_path, out, err, errlen);
}

// parses one line into it; returns 0, or the skip reason with why filled
static int parse_line(const char *dir, const char *line, long no, build_item *it, char *why, size_t wl) {
    memset(it, 0, sizeof *it);
    it->line = no;
    // the whole line: cJSON_Parse stops after one value, so {...}{...} (a lost newline) kept the first
    // object and dropped the second without a word
    cJSON *o = cJSON_ParseWithOpts(line, NULL, 1);
    if (!o || !cJSON_IsObject(o)) {
        cJSON *first = o ? NULL : cJSON_Parse(line);
        if (cJSON_IsObject(first)) snprintf(why, wl, "text after the JSON object (two objects on one line? a lost newline)");
        else snprintf(why, wl, "not a JSON object");
        cJSON_Delete(first);
        cJSON_Delete(o);
        return BUILD_SKIP_JSON + 1;
    }
    int rc = BUILD_SKIP_FIELD + 1;
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(o, "image"), *cap = cJSON_GetObjectItemCaseSensitive(o, "caption"),
                *ch = cJSON_GetObjectItemCaseSensitive(o, "character"), *mask = cJSON_GetObjectItemCaseSensitive(o, "mask"),
                *bbox = cJSON_GetObjectItemCaseSensitive(o, "bbox");
    if (!cJSON_IsString(img) || !img->valuestring[0]) { snprintf(why, wl, "\"image\" must be a non-empty string (a path under --images)"); goto out; }
    if (cJSON_IsString(ch) && ch->valuestring[0]) it->character = strdup(ch->valuestring);
    else if (cJSON_IsNumber(ch)) { char b[64]; snprintf(b, sizeof b, "%.17g", ch->valuedouble); it->character = strdup(b); }
    else { snprintf(why, wl, "\"character\" must be a non-empty string or a number"); goto out; }
    if (cJSON_IsString(cap)) {
        it->n_captions = 1;
        it->captions = malloc(sizeof(char *));
        it->captions[0] = strdup(cap->valuestring);
    } else if (cJSON_IsArray(cap) && cJSON_GetArraySize(cap) >= 1 && cJSON_GetArraySize(cap) <= 255) {
        int k = cJSON_GetArraySize(cap);
        it->captions = calloc((size_t)k, sizeof(char *));
        for (int i = 0; i < k; i++) {
            const cJSON *c = cJSON_GetArrayItem(cap, i);
            if (!cJSON_IsString(c)) { snprintf(why, wl, "\"caption\"[%d] must be a string", i); goto out; }
            it->captions[it->n_captions++] = strdup(c->valuestring);
        }
    } else { snprintf(why, wl, "\"caption\" must be a string or a list of 1..255 strings"); goto out; }
    if (mask && !cJSON_IsNull(mask)) {
        if (!cJSON_IsString(mask) || !mask->valuestring[0]) { snprintf(why, wl, "\"mask\" must be a path string"); goto out; }
        it->mask_path = join(dir, mask->valuestring);
    }
    if (bbox && !cJSON_IsNull(bbox)) {
        if (!cJSON_IsArray(bbox) || cJSON_GetArraySize(bbox) != 4) { snprintf(why, wl, "\"bbox\" must be [x, y, w, h]"); goto out; }
        for (int i = 0; i < 4; i++) {
            const cJSON *v = cJSON_GetArrayItem(bbox, i);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9) { snprintf(why, wl, "\"bbox\"[%d] must be a non-negative number", i); goto out; }
            it->bbox[i] = (uint32_t)v->valuedouble;
        }
        it->has_bbox = 1;
    }
    it->image_path = join(dir, img->valuestring);
    it->source = strdup(img->valuestring);
    rc = 0;
out:
    cJSON_Delete(o);
    if (rc) build_item_free(it);
    return rc;
}

int build_from_jsonl(const char *images_dir, const char *jsonl, const char *out, const build_options *o, build_report *r, char *err,
                     size_t errlen) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(jsonl, "r");
    if (!f) { snprintf(err, errlen, "%s: cannot open (%s)", jsonl, strerror(errno)); return -1; }
    build_item *items = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long no = 0;
    uint64_t bad_lines = 0, bad[BUILD_SKIP_REASONS] = {0};
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        no++;
        char *text = line;
        // a UTF-8 BOM (Windows editors) is not part of line 1, whatever this cJSON makes of it
        if (no == 1 && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
        if (len == 0) continue;
        if (n == cap) { cap = cap ? 2 * cap : 256; items = realloc(items, cap * sizeof *items); }
        char why[256];
        // JSON is UTF-8; cJSON passes other bytes through, and a Windows-1252 caption would be
        // stored as broken UTF-8 (the tokenizers read U+FFFD)
        size_t bad_at = build_utf8_check(text, (size_t)len);
        int rc = BUILD_SKIP_JSON + 1;
        if (bad_at < (size_t)len)
            snprintf(why, sizeof why, "not UTF-8 text (byte 0x%02X at column %zu; Windows-1252 / Latin-1?): save the file as UTF-8",
                     (unsigned)(uint8_t)text[bad_at], bad_at + 1);
        else rc = parse_line(images_dir, text, no, &items[n], why, sizeof why);
        if (rc) {
            bad_lines++;
            bad[rc - 1]++;
            if (!o->quiet) fprintf(stderr, "%s:%ld: skipped: %s\n", jsonl, no, why);
            continue;
        }
        n++;
    }
    free(line);
    fclose(f);
    build_options oo = *o;
    oo.input_name = jsonl;
    int rc = build_dataset(out, items, n, load_file, NULL, &oo, r, err, errlen);
    r->lines += bad_lines;
    for (int k = 0; k < BUILD_SKIP_REASONS; k++) r->skipped[k] += bad[k];
    for (size_t i = 0; i < n; i++) build_item_free(&items[i]);
    free(items);
    return rc;
}
