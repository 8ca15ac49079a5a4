// config_diff.c — see config_diff.h. Works on train_config_to_yaml's own output: two-space
// indentation, "key: value" and "key:" lines, "- " opening each stage.
#include "train/config_diff.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// value: a whole line's value (a quoted path of CFG_PATH, \xNN escapes included; 64 buckets; 8
// freeze prefixes), so two values that differ late compare unequal; cfg_change shows them cut short
typedef struct { char path[96]; char value[4 * CFG_PATH + 64]; } kv;

// dst = a + "." + b (or b alone when a is empty), cut to n - 1 bytes
static void join(char *dst, size_t n, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), k = 0;
    for (size_t i = 0; i < la && k + 1 < n; i++) dst[k++] = a[i];
    if (la && k + 1 < n) dst[k++] = '.';
    for (size_t i = 0; i < lb && k + 1 < n; i++) dst[k++] = b[i];
    dst[k] = 0;
}

// the resolved YAML as (path, value) pairs; *n pairs, the array malloc'ed
static kv *flatten(const train_config *c, int *n) {
    char *y = train_config_to_yaml(c);
    int cap = 256, len = 0;
    kv *out = malloc((size_t)cap * sizeof *out);
    CM_CHECK(y && out, "train_config_diff", "out of host memory");
    enum { LV = 8 };
    char parent[LV + 1][96] = {{0}};  // the path of the keys at each indentation level
    int item = -1;                     // the index of the current "- " list item
    for (char *line = strtok(y, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        int ind = 0;
        while (line[ind] == ' ') ind++;
        char *p = line + ind;
        if (p[0] == '-' && p[1] == ' ' && ind / 2 < LV) {  // a list item (a stage): "- key: value"
            char idx[24], tmp[96];
            snprintf(idx, sizeof idx, "[%d]", ++item);
            size_t k = strlen(parent[ind / 2]);
            snprintf(tmp, sizeof tmp, "%.*s%s", (int)(k < 70 ? k : 70), parent[ind / 2], idx);
            memcpy(parent[ind / 2 + 1], tmp, sizeof tmp);
            ind += 2;
            p += 2;
        }
        int lvl = ind / 2;
        if (lvl >= LV) continue;
        char *colon = strstr(p, ": "), key[96], path[96];
        size_t kl = colon ? (size_t)(colon - p) : strlen(p);
        if (!colon && kl && p[kl - 1] == ':') kl--;
        snprintf(key, sizeof key, "%.*s", (int)(kl < 95 ? kl : 95), p);
        join(path, sizeof path, parent[lvl], key);
        if (!colon) {  // "key:" opens a mapping or a list one level down
            memcpy(parent[lvl + 1], path, sizeof path);
            if (lvl == 0) item = -1;
            continue;
        }
        if (len == cap) {
            cap *= 2;
            out = realloc(out, (size_t)cap * sizeof *out);
            CM_CHECK(out, "train_config_diff", "out of host memory");
        }
        memcpy(out[len].path, path, sizeof path);
        snprintf(out[len].value, sizeof out[len].value, "%s", colon + 2);
        len++;
    }
    free(y);
    *n = len;
    return out;
}

static const kv *find(const kv *a, int n, const char *path) {
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].path, path)) return &a[i];
    return NULL;
}

static void add(cfg_change *out, int max, int *n, const char *path, const char *was, const char *now) {
    if (*n < max) {
        snprintf(out[*n].path, sizeof out[*n].path, "%s", path);
        snprintf(out[*n].was, sizeof out[*n].was, "%s", was);
        snprintf(out[*n].now, sizeof out[*n].now, "%s", now);
    }
    (*n)++;
}

int train_config_diff(const train_config *was, const train_config *now, cfg_change *out, int max) {
    int na, nb, n = 0;
    kv *a = flatten(was, &na), *b = flatten(now, &nb);
    for (int i = 0; i < nb; i++) {
        const kv *o = find(a, na, b[i].path);
        if (!o) add(out, max, &n, b[i].path, "(none)", b[i].value);
        else if (strcmp(o->value, b[i].value)) add(out, max, &n, b[i].path, o->value, b[i].value);
    }
    for (int i = 0; i < na; i++)
        if (!find(b, nb, a[i].path)) add(out, max, &n, a[i].path, a[i].value, "(none)");
    free(a);
    free(b);
    return n;
}

int train_config_resume_check(const cfg_change *ch, int n, int stage, long long step_in_stage, char *err, size_t errlen) {
    // what the data order of a stage depends on (the loader's resume state: seed, global batch,
    // mode, paired share, bucket table)
    static const char *const stage_keys[] = {"batch_size", "mode", "paired_share", "resolution", "buckets"};
    static const char *const data_keys[] = {"data.bucket_step", "data.max_aspect", "run.seed"};
    char pre[48];
    snprintf(pre, sizeof pre, "stages[%d].", stage);
    for (int i = 0; i < n; i++) {
        const cfg_change *c = &ch[i];
        bool hit = !strcmp(c->path, "adapter.freeze");
        for (size_t k = 0; k < sizeof data_keys / sizeof *data_keys; k++) hit |= !strcmp(c->path, data_keys[k]);
        if (!strncmp(c->path, pre, strlen(pre)))
            for (size_t k = 0; k < sizeof stage_keys / sizeof *stage_keys; k++) hit |= !strcmp(c->path + strlen(pre), stage_keys[k]);
        if (!hit) continue;
        if (!strcmp(c->path, "adapter.freeze")) {
            snprintf(err, errlen, "adapter.freeze: %s in the checkpoint, %s now — its optimizer state holds the weights it "
                     "trained; to train another set, start a new run from its weights (model.adapter_init: "
                     "CHECKPOINT/adapter.safetensors)", c->was, c->now);
            return -1;
        }
        if (!strcmp(c->path, "run.seed"))
            snprintf(err, errlen, "run.seed: %s in the checkpoint, %s now — noise, timesteps and the data order all follow the "
                     "seed, so a resumed run keeps it", c->was, c->now);
        else if (step_in_stage > 0)
            snprintf(err, errlen, "%s: %s in the checkpoint, %s now — stage %d (stages[%d]) is %lld step(s) in, and the order of its samples "
                     "follows this value; resume with the checkpoint's value (drop the --set), or resume from a checkpoint at a "
                     "stage boundary", c->path, c->was, c->now, stage + 1, stage, step_in_stage);
        else continue;
        return -1;
    }
    return 0;
}

int train_config_resume_check_all(const train_config *was, const train_config *now, int stage, long long step_in_stage,
                                  char *err, size_t errlen) {
    int n = train_config_diff(was, now, NULL, 0);
    cfg_change *ch = malloc((size_t)(n ? n : 1) * sizeof *ch);
    CM_CHECK(ch, "train_config_resume_check_all", "out of host memory (%d changes)", n);
    train_config_diff(was, now, ch, n);
    int rc = train_config_resume_check(ch, n, stage, step_in_stage, err, errlen);
    free(ch);
    return rc;
}
