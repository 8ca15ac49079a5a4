// pairs.c — see pairs.h
#include "eval/pairs.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/fsutil.h"
#include "eval/sample_io.h"

int eval_pairs_read(const char *path, eval_pair **out, int *n, char *err, size_t errlen) {
    size_t len;
    char *text = fs_read_file(path, &len, (size_t)64 << 20);
    if (!text) { snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno)); return -1; }
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    const char *base = dirname(dirbuf);
    int cap = 0, line = 0, rc = 0;
    *out = NULL, *n = 0;
    for (char *s = text, *e; s && *s && !rc; s = e ? e + 1 : NULL) {
        e = strchr(s, '\n');
        if (e) *e = 0;
        line++;
        if (strspn(s, " \t\r") == strlen(s)) continue;
        cJSON *j = cJSON_ParseWithOpts(s, NULL, true);  // the whole line: two objects glued (a lost newline) are an error, not one pair
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "ref"), *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (!cJSON_IsString(r) || !cJSON_IsString(p) || !r->valuestring[0]) {
            snprintf(err, errlen, "%s:%d: want {\"ref\": \"image file\", \"prompt\": \"text\"}%s", path, line, j ? "" : " (not one JSON object)");
            rc = -1;
        } else {
            if (*n == cap) {
                eval_pair *g = realloc(*out, sizeof **out * (size_t)(cap ? 2 * cap : 16));
                if (!g) {
                    snprintf(err, errlen, "out of host memory");
                    cJSON_Delete(j);
                    rc = -1;
                    break;
                }
                *out = g;
                cap = cap ? 2 * cap : 16;
            }
            eval_pair *q = &(*out)[(*n)++];
            memset(q, 0, sizeof *q);
            if (r->valuestring[0] == '/') snprintf(q->ref, sizeof q->ref, "%s", r->valuestring);
            else snprintf(q->ref, sizeof q->ref, "%s/%s", base, r->valuestring);
            q->prompt = strdup(p->valuestring);
            q->line = line;
        }
        cJSON_Delete(j);
    }
    free(text);
    if (!rc && !*n) { snprintf(err, errlen, "%s: no pairs", path); rc = -1; }
    return rc;
}

int eval_pairs_check(const char *path, const eval_pair *p, int n, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        char e[512];
        image im = {0};
        if (image_load(p[i].ref, &im, e, sizeof e)) {
            snprintf(err, errlen, "%s, line %d's reference: %s: %s", path, p[i].line, p[i].ref, e);
            return -1;
        }
        image_free(&im);
    }
    return 0;
}

int eval_pairs_prepare(ic_models *m, eval_clip *clip, const char *path, eval_pair *p, int n, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        char e[PATH_MAX + 512];
        image im = {0};  // read once: the towers' views, and CLIP's when asked
        int rc = image_load(p[i].ref, &im, e, sizeof e) || eval_reference_views(&im, m->ref_size, &p[i].sig, &p[i].dino, e, sizeof e) ||
                 eval_embed(m, p[i].sig, p[i].dino, &p[i].emb, e, sizeof e);
        if (rc) snprintf(err, errlen, "%s, line %d's reference: %s: %s", path, p[i].line, p[i].ref, e);
        if (!rc && clip) {  // CLIP's embeddings of the reference image and of the prompt
            int cd = eval_clip_dim(clip);
            p[i].clip_ref = malloc(sizeof(float) * (size_t)cd);
            p[i].clip_txt = malloc(sizeof(float) * (size_t)cd);
            rc = !p[i].clip_ref || !p[i].clip_txt || eval_clip_image(clip, &im, p[i].clip_ref, e, sizeof e) ||
                 eval_clip_text(clip, p[i].prompt, p[i].clip_txt, e, sizeof e);
            if (rc) snprintf(err, errlen, "%s, line %d: CLIP: %s", path, p[i].line, e);
        }
        free(im.px);
        if (rc) return -1;
    }
    return 0;
}

void eval_pairs_free(eval_pair *p, int n) {
    for (int i = 0; p && i < n; i++) {
        free(p[i].prompt), free(p[i].sig), free(p[i].dino), free(p[i].clip_ref), free(p[i].clip_txt);
        eval_embedding_free(&p[i].emb);
    }
    free(p);
}

int eval_make_image(ic_models *m, const vae_decoder *dec, eval_clip *clip, const eval_pair *p, const eval_sample_opts *o,
                    const char *png, eval_scores *sc, char *err, size_t errlen) {
    const char *prompts[1] = {p->prompt};
    cm_tensor *img = eval_sample(m, dec, 1, prompts, p->sig, p->dino, o);
    image im = {0};
    eval_embedding emb = {0};
    float *vs = NULL, *vd = NULL, *ce = NULL;
    int rc = 0;
    // the image as saved (8 bits) is what is scored; image_write_png writes PNG.tmp and renames it
    if (eval_image_from_tensor(img, 0, &im, err, errlen) || image_write_png(png, &im, err, errlen)) rc = -1;
    if (!rc && (eval_reference_views(&im, m->ref_size, &vs, &vd, err, errlen) || eval_embed(m, vs, vd, &emb, err, errlen))) rc = -1;
    if (!rc) {
        sc->dino_i = eval_cosine(emb.dino, p->emb.dino, emb.dd);
        sc->siglip_i = eval_cosine(emb.siglip, p->emb.siglip, emb.ds);
        sc->clip_i = sc->clip_t = NAN;
        if (clip) {
            ce = malloc(sizeof(float) * (size_t)eval_clip_dim(clip));
            if (!ce || eval_clip_image(clip, &im, ce, err, errlen)) rc = -1;
            else {
                sc->clip_i = eval_cosine(ce, p->clip_ref, eval_clip_dim(clip));
                sc->clip_t = eval_cosine(ce, p->clip_txt, eval_clip_dim(clip));
            }
        }
    }
    free(im.px), free(vs), free(vd), free(ce);
    eval_embedding_free(&emb);
    tensor_release(img);
    return rc;
}
