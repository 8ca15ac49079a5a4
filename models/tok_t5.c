// tok_t5.c — SentencePiece unigram (T5) from tokenizer.json: added tokens, normalizer,
// WhitespaceSplit + Metaspace pre-tokenizer, Viterbi over piece scores, post-processor.
#include "models/tok_t5.h"

#include <stdatomic.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tensor.h"
#include "models/tok_common.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

enum { PREPEND_NEVER = 0, PREPEND_FIRST, PREPEND_ALWAYS };

struct t5_tok {
    tok_map vocab;       // piece -> id
    double *scores;      // [n_vocab]
    int n_vocab;
    int32_t unk_id;
    bool byte_fallback;
    size_t max_piece;    // longest piece in bytes
    double min_score;
    tok_added added;
    tok_norm norm;
    tok_post post;
    bool ws_split, metaspace, ms_split;
    char repl[8];
    int prepend;
    int32_t pad_id, eos_id;
};

// ---------------------------------------------------------------- loading

static int parse_pre(t5_tok *t, const cJSON *j, char *err, size_t errlen) {
    if (!j || cJSON_IsNull(j)) return 0;
    const cJSON *ty = cJSON_GetObjectItem(j, "type");
    const char *s = cJSON_IsString(ty) ? ty->valuestring : "?";
    if (!strcmp(s, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "pretokenizers"))
            if (parse_pre(t, e, err, errlen)) return -1;
        return 0;
    }
    if (!strcmp(s, "WhitespaceSplit")) {
        if (t->metaspace) return ERR("pre_tokenizer: WhitespaceSplit after Metaspace is not supported");
        t->ws_split = true;
        return 0;
    }
    if (!strcmp(s, "Metaspace")) {
        const cJSON *r = cJSON_GetObjectItem(j, "replacement"), *ps = cJSON_GetObjectItem(j, "prepend_scheme");
        const cJSON *ap = cJSON_GetObjectItem(j, "add_prefix_space"), *sp = cJSON_GetObjectItem(j, "split");
        t->metaspace = true;
        snprintf(t->repl, sizeof t->repl, "%s", cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81");
        if (cJSON_IsString(ps))
            t->prepend = !strcmp(ps->valuestring, "always") ? PREPEND_ALWAYS
                       : !strcmp(ps->valuestring, "first") ? PREPEND_FIRST : PREPEND_NEVER;
        else  // older files: add_prefix_space (true means always)
            t->prepend = (!ap || cJSON_IsTrue(ap)) ? PREPEND_ALWAYS : PREPEND_NEVER;
        t->ms_split = !sp || cJSON_IsTrue(sp);
        return 0;
    }
    return ERR("pre_tokenizer type %s is not supported for a unigram tokenizer (WhitespaceSplit, Metaspace)", s);
}

t5_tok *t5_tok_load(const char *path, char *err, size_t errlen) {
    cJSON *root = tok_load_json(path, err, errlen);
    if (!root) return NULL;
    t5_tok *t = calloc(1, sizeof(*t));
    const cJSON *model = cJSON_GetObjectItem(root, "model");
    const cJSON *ty = cJSON_GetObjectItem(model, "type");
    const cJSON *vocab = cJSON_GetObjectItem(model, "vocab");
    int rc = 0;
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "Unigram") || !cJSON_IsArray(vocab)) {
        rc = ERR("%s: model type is %s, a T5 tokenizer needs a Unigram model with a [piece, score] vocab",
                 path, cJSON_IsString(ty) ? ty->valuestring : "missing");
        goto done;
    }
    t->n_vocab = cJSON_GetArraySize(vocab);
    t->scores = calloc((size_t)t->n_vocab + 1, sizeof(double));
    t->min_score = DBL_MAX;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *sc = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsString(p) || !cJSON_IsNumber(sc)) { rc = ERR("%s: vocab entry %d is not [piece, score]", path, i); goto done; }
        size_t len = strlen(p->valuestring);
        tok_map_put(&t->vocab, p->valuestring, len, i);
        t->scores[i] = sc->valuedouble;
        if (sc->valuedouble < t->min_score) t->min_score = sc->valuedouble;
        if (len > t->max_piece) t->max_piece = len;
        i++;
    }
    const cJSON *unk = cJSON_GetObjectItem(model, "unk_id");
    t->unk_id = cJSON_IsNumber(unk) ? (int32_t)unk->valueint : -1;
    t->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItem(model, "byte_fallback"));
    if ((rc = tok_added_parse(&t->added, root, err, errlen))) goto done;
    if ((rc = tok_norm_parse(&t->norm, root, err, errlen))) goto done;
    if ((rc = parse_pre(t, cJSON_GetObjectItem(root, "pre_tokenizer"), err, errlen))) goto done;
    if ((rc = tok_post_parse(&t->post, root, err, errlen))) goto done;
    t->pad_id = tok_added_id(&t->added, "<pad>");
    if (t->pad_id < 0) t->pad_id = tok_map_get(&t->vocab, "<pad>", 5);
    if (t->pad_id < 0) t->pad_id = 0;
    t->eos_id = tok_added_id(&t->added, "</s>");
    if (t->eos_id < 0) t->eos_id = tok_map_get(&t->vocab, "</s>", 4);
done:
    cJSON_Delete(root);
    if (rc) { tok_err_in_file(path, err, errlen); t5_tok_free(t); return NULL; }
    return t;
}

void t5_tok_free(t5_tok *t) {
    if (!t) return;
    tok_map_free(&t->vocab);
    free(t->scores);
    tok_added_free(&t->added);
    tok_norm_free(&t->norm);
    free(t);
}

int t5_tok_vocab_size(const t5_tok *t) { return t->n_vocab; }
int32_t t5_tok_pad_id(const t5_tok *t) { return t->pad_id; }
int32_t t5_tok_eos_id(const t5_tok *t) { return t->eos_id; }
int32_t t5_tok_unk_id(const t5_tok *t) { return t->unk_id; }

// ---------------------------------------------------------------- unigram

static void piece_to_ids(const t5_tok *t, const char *s, size_t n, tok_ids *out) {
    int32_t id = tok_map_get(&t->vocab, s, n);
    if (id >= 0) { tok_ids_push(out, id); return; }
    if (t->byte_fallback) {
        tok_ids tmp = {0};
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            char b[8];
            snprintf(b, sizeof b, "<0x%02X>", (unsigned char)s[i]);
            int32_t bid = tok_map_get(&t->vocab, b, 6);
            if (bid < 0) ok = false;
            else tok_ids_push(&tmp, bid);
        }
        if (ok) {
            for (int i = 0; i < tmp.n; i++) tok_ids_push(out, tmp.v[i]);
            free(tmp.v);
            return;
        }
        free(tmp.v);
    }
    tok_ids_push(out, t->unk_id);
}

// best segmentation of one pre-token (tokenizers' Unigram::encode_optimized)
static void unigram_encode(const t5_tok *t, const char *s, size_t n, tok_ids *out) {
    if (!n) return;
    double *score = malloc((n + 1) * sizeof(double));
    int64_t *from = malloc((n + 1) * sizeof(int64_t));  // start of the best last piece, -1 = none
    int32_t *pid = malloc((n + 1) * sizeof(int32_t));
    for (size_t i = 0; i <= n; i++) { score[i] = 0; from[i] = -1; pid[i] = -1; }
    double unk_score = t->min_score - 10.0;
    for (size_t st = 0; st < n;) {
        double base = score[st];
        size_t mblen = (size_t)uni_char_len(s, n, st);
        bool single = false;
        for (size_t len = 1; len <= t->max_piece && st + len <= n; len++) {
            int32_t id = tok_map_get(&t->vocab, s + st, len);
            if (id < 0) continue;
            double c = base + t->scores[id];
            size_t e = st + len;
            if (from[e] < 0 || c > score[e]) { score[e] = c; from[e] = (int64_t)st; pid[e] = id; }
            if (len == mblen) single = true;
        }
        if (!single) {
            size_t e = st + mblen;
            double c = base + unk_score;
            if (from[e] < 0 || c > score[e]) { score[e] = c; from[e] = (int64_t)st; pid[e] = t->unk_id; }
        }
        st += mblen;
    }
    // backtrack; consecutive unknowns are fused into one piece (fuse_unk)
    typedef struct { size_t a, b; } span;
    span *sp = malloc((n + 1) * sizeof(span));
    int ns = 0;
    size_t e = n;
    bool prev_unk = false;
    while (e > 0) {
        size_t a = (size_t)from[e];
        bool is_unk = t->unk_id >= 0 && pid[e] == t->unk_id;
        if (is_unk && prev_unk) sp[ns - 1].a = a;
        else sp[ns++] = (span){a, e};
        prev_unk = is_unk;
        e = a;
    }
    for (int k = ns - 1; k >= 0; k--) piece_to_ids(t, s + sp[k].a, sp[k].b - sp[k].a, out);
    free(sp); free(score); free(from); free(pid);
}

// ---------------------------------------------------------------- pre-tokenizer

static void encode_word(const t5_tok *t, const char *w, size_t n, bool at_origin, tok_ids *out) {
    if (!t->metaspace) { unigram_encode(t, w, n, out); return; }
    size_t rl = strlen(t->repl);
    ubuf m = {0};
    ubuf_append(&m, "", 0);
    bool starts = n >= 1 && w[0] == ' ';
    if (!starts && n >= rl && !memcmp(w, t->repl, rl)) starts = true;
    if (n && !starts && (t->prepend == PREPEND_ALWAYS || (t->prepend == PREPEND_FIRST && at_origin)))
        ubuf_append(&m, t->repl, rl);
    for (size_t i = 0; i < n; i++) {
        if (w[i] == ' ') ubuf_append(&m, t->repl, rl);
        else ubuf_append(&m, w + i, 1);
    }
    if (!t->ms_split) { unigram_encode(t, m.p, m.n, out); ubuf_free(&m); return; }
    size_t a = 0;  // split before every replacement char (MergedWithNext)
    for (size_t i = 1; i + rl <= m.n; i++) {
        if (!memcmp(m.p + i, t->repl, rl)) {
            unigram_encode(t, m.p + a, i - a, out);
            a = i;
        }
    }
    unigram_encode(t, m.p + a, m.n - a, out);
    ubuf_free(&m);
}

static void encode_text(const t5_tok *t, const char *s, size_t n, bool at_origin, tok_ids *out) {
    if (!t->ws_split) { encode_word(t, s, n, at_origin, out); return; }
    size_t i = 0;
    while (i < n) {
        size_t q = i;
        if (uni_is_space(uni_next(s, n, &q))) { i = q; at_origin = false; continue; }
        size_t a = i;
        while (i < n) {
            q = i;
            if (uni_is_space(uni_next(s, n, &q))) break;
            i = q;
        }
        encode_word(t, s + a, i - a, at_origin, out);
        at_origin = false;
    }
}

static void encode_piece(const void *t, const char *s, size_t n, bool at_origin, tok_ids *out) {
    encode_text(t, s, n, at_origin, out);
}

static tok_ids model_ids(const t5_tok *t, const char *text) {
    return tok_model_ids(&t->added, &t->norm, text, encode_piece, t);
}

int32_t *t5_tok_encode(t5_tok *t, const char *text, int *n) {
    tok_ids ids = model_ids(t, text);
    return tok_post_all(&t->post, &ids, t->pad_id, n);
}

// once per process, not per tokenizer: eval and sample open one for each adapter they load
static atomic_bool t5_tok_truncation_warned;

int t5_tok_encode_padded(t5_tok *t, const char *text, int max_len, int32_t *out, bool *truncated) {
    tok_ids ids = model_ids(t, text);
    bool tr;
    int full, real = tok_post_padded(&t->post, &ids, max_len, t->pad_id, out, &tr, &full);
    if (tr && !atomic_exchange(&t5_tok_truncation_warned, true)) {
        cm_warn("T5 tokenizer: a prompt of %d tokens was truncated to %d (the FLUX pipeline's max_sequence_length); "
                "reported once", full, max_len);
    }
    if (truncated) *truncated = tr;
    return real;
}
