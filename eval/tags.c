// tags.c — see tags.h
#include "eval/tags.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/fsutil.h"

// the tag map's entry whose source is src, or NULL
static const cJSON *tag_of(const cJSON *map, const char *src) {
    const cJSON *e;
    cJSON_ArrayForEach(e, map) if (cJSON_IsString(e) && !strcmp(e->valuestring, src)) return e;
    return NULL;
}

// the tags results.jsonl's lines give their sources (a folder made before tags.json existed)
static void seed_from_results(cJSON *map, const char *outdir) {
    char path[PATH_MAX + 32];
    size_t len;
    snprintf(path, sizeof path, "%s/results.jsonl", outdir);
    char *text = fs_read_file(path, &len, (size_t)1 << 30);
    for (char *s = text, *e; s && *s; s = e ? e + 1 : NULL) {
        e = strchr(s, '\n');
        if (e) *e = 0;
        cJSON *j = cJSON_Parse(s);
        const cJSON *ck = cJSON_GetObjectItemCaseSensitive(j, "checkpoint"), *t = cJSON_GetObjectItemCaseSensitive(j, "checkpoint_tag"),
                    *w = cJSON_GetObjectItemCaseSensitive(j, "weights");
        if (cJSON_IsString(ck) && cJSON_IsString(t) && t->valuestring[0] && !cJSON_GetObjectItemCaseSensitive(map, t->valuestring)) {
            char src[PATH_MAX + 8];
            snprintf(src, sizeof src, "%.4000s%s", ck->valuestring, cJSON_IsString(w) && !strcmp(w->valuestring, "ema") ? "#ema" : "");
            cJSON_AddStringToObject(map, t->valuestring, src);
        }
        cJSON_Delete(j);
    }
    free(text);
}

int eval_tags_assign(const char *outdir, int n, char srcs[][PATH_MAX + 8], char bases[][96], bool write, char tags[][96], char *err,
                     size_t errlen) {
    char path[PATH_MAX + 32];
    size_t len;
    snprintf(path, sizeof path, "%s/tags.json", outdir);
    char *text = fs_read_file(path, &len, (size_t)64 << 20);
    if (!text && errno != ENOENT) { snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno)); return -1; }
    cJSON *map = text ? cJSON_Parse(text) : cJSON_CreateObject();
    free(text);
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(map);
        snprintf(err, errlen, "%s: want a JSON object {\"tag\": \"checkpoint\"}", path);
        return -1;
    }
    seed_from_results(map, outdir);
    bool added = false;
    for (int i = 0; i < n; i++) {
        const cJSON *e = tag_of(map, srcs[i]);
        if (e) { snprintf(tags[i], sizeof tags[i], "%s", e->string); continue; }
        snprintf(tags[i], sizeof tags[i], "%s", bases[i]);  // taken by another source: -2, -3, ...
        for (int dup = 2; cJSON_GetObjectItemCaseSensitive(map, tags[i]); dup++) snprintf(tags[i], sizeof tags[i], "%.80s-%d", bases[i], dup);
        cJSON_AddStringToObject(map, tags[i], srcs[i]);
        added = true;
    }
    int rc = 0;
    if (added && write) {
        char *out = cJSON_Print(map);
        rc = out && !fs_write_atomic(path, out, strlen(out), err, errlen) ? 0 : -1;
        if (!out) snprintf(err, errlen, "out of host memory for %s", path);
        free(out);
    }
    cJSON_Delete(map);
    return rc;
}
