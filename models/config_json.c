// config_json.c — reading the config.json beside a weights path, and its numbers.
#include "models/config_json.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/tok_common.h"

cJSON *cjson_beside(const char *weights_path) {
    char dir[4096], cfg[4200], err[64];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", weights_path);
    // dirname may modify dir and may return a pointer into it: read it from there, never copy over it
    const char *d = (stat(weights_path, &st) == 0 && !S_ISDIR(st.st_mode)) ? dirname(dir) : dir;
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    char *buf = tok_read_file(cfg, NULL, err, sizeof err);
    if (!buf) return NULL;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

double cjson_number(const cJSON *j, const char *section, const char *key, double def) {
    const cJSON *s = section ? cJSON_GetObjectItem(j, section) : NULL;
    const cJSON *v = cJSON_GetObjectItem(s ? s : j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int cjson_clip_quick_gelu(const cJSON *j, const char *section, char *err, size_t errlen) {
    const cJSON *s = section ? cJSON_GetObjectItem(j, section) : NULL;
    const cJSON *a = cJSON_GetObjectItem(s ? s : j, "hidden_act");
    if (!cJSON_IsString(a) || !strcmp(a->valuestring, "quick_gelu")) return 0;
    snprintf(err, errlen, "config.json: %s%shidden_act is \"%.64s\", but cameo's CLIP computes quick_gelu (OpenAI's CLIP models, e.g. "
             "openai/clip-vit-large-patch14, and FLUX's text encoder): it would compute wrongly", s ? section : "", s ? "." : "",
             a->valuestring);
    return -1;
}
