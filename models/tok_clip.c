// tok_clip.c — CLIP byte-level BPE: loading (tokenizer.json or vocab.json + merges.txt), the CLIP
// and GPT-2 splits, the byte -> unicode map, merges by rank, bos/eos, truncation and padding.
#include "models/tok_clip.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/tensor.h"
#include "models/tok_common.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static const char *CLIP_SPLIT =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
static const char *CLIP_SPLIT_SHORT = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

struct clip_tok {
    tok_map vocab;            // symbol -> id
    int n_vocab;
    tok_map merges;           // 8-byte key (id_a, id_b) -> rank
    int32_t *merge_new;       // [n_merges] id of the merged symbol
    int n_merges;
    int32_t unk_id;
    bool fuse_unk, ignore_merges;
    char suffix[16];          // end_of_word_suffix ("</w>")
    char prefix[16];          // continuing_subword_prefix ("")
    char byte_char[256][4];   // GPT-2 byte -> unicode char (UTF-8)
    tok_added added;
    tok_norm norm;
    tok_post post;
    int32_t bos_id, eos_id, pad_id;
};

// ---------------------------------------------------------------- loading

static void init_bytes(clip_tok *t) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)(256 + n++);
        memset(t->byte_char[b], 0, 4);
        uni_encode(cp, t->byte_char[b]);
    }
}

static int add_merge(clip_tok *t, const char *a, const char *b, char *err, size_t errlen) {
    int32_t ia = tok_map_get(&t->vocab, a, strlen(a)), ib = tok_map_get(&t->vocab, b, strlen(b));
    size_t pl = strlen(t->prefix);
    const char *b2 = b;  // the right part loses the continuing prefix in the merged symbol
    if (pl && !strncmp(b, t->prefix, pl)) b2 = b + pl;
    char *m = malloc(strlen(a) + strlen(b2) + 1);
    strcpy(m, a);
    strcat(m, b2);
    int32_t im = tok_map_get(&t->vocab, m, strlen(m));
    free(m);
    if (ia < 0 || ib < 0 || im < 0)
        return ERR("merge %d (\"%s\" \"%s\"): a part or the merged symbol is not in the vocabulary", t->n_merges, a, b);
    int32_t key[2] = {ia, ib};
    if (tok_map_get(&t->merges, (const char *)key, sizeof key) >= 0) return 0;  // first rank wins
    tok_map_put(&t->merges, (const char *)key, sizeof key, t->n_merges);
    t->merge_new = realloc(t->merge_new, (size_t)(t->n_merges + 1) * sizeof(int32_t));
    t->merge_new[t->n_merges++] = im;
    return 0;
}

static int load_vocab_obj(clip_tok *t, const cJSON *vocab, char *err, size_t errlen) {
    if (!cJSON_IsObject(vocab)) return ERR("BPE vocab is not a {symbol: id} object");
    const cJSON *e;
    int maxid = -1;
    cJSON_ArrayForEach(e, vocab) {
        // ids index the token embedding: [0, INT32_MAX) keeps n_vocab = maxid + 1 an int
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= INT32_MAX || e->valuedouble != e->valueint)
            return ERR("vocab entry \"%s\": id must be an integer in [0, %d)", e->string, INT32_MAX);
        tok_map_put(&t->vocab, e->string, strlen(e->string), (int32_t)e->valueint);
        if (e->valueint > maxid) maxid = e->valueint;
    }
    t->n_vocab = maxid + 1;
    return 0;
}

static int check_pre(const cJSON *pre, char *err, size_t errlen) {
    // the CLIP pipeline only: Sequence[Split(CLIP regex, Removed, invert), ByteLevel(no prefix space)]
    const cJSON *ty = cJSON_GetObjectItem(pre, "type");
    bool ok = cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence");
    const cJSON *list = cJSON_GetObjectItem(pre, "pretokenizers");
    if (ok && cJSON_GetArraySize(list) == 2) {
        const cJSON *sp = cJSON_GetArrayItem(list, 0), *bl = cJSON_GetArrayItem(list, 1);
        const cJSON *rx = cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "pattern"), "Regex");
        ok = cJSON_IsString(rx) && (!strcmp(rx->valuestring, CLIP_SPLIT) || !strcmp(rx->valuestring, CLIP_SPLIT_SHORT)) &&
             cJSON_IsTrue(cJSON_GetObjectItem(sp, "invert")) &&
             cJSON_IsString(cJSON_GetObjectItem(bl, "type")) &&  // a second step without a type is not ByteLevel
             !strcmp(cJSON_GetObjectItem(bl, "type")->valuestring, "ByteLevel") &&
             !cJSON_IsTrue(cJSON_GetObjectItem(bl, "add_prefix_space"));
    } else ok = false;
    return ok ? 0 : ERR("pre_tokenizer is not CLIP's (Sequence[Split(CLIP regex, invert), ByteLevel])");
}

static clip_tok *load_json(const char *path, char *err, size_t errlen) {
    cJSON *root = tok_load_json(path, err, errlen);
    if (!root) return NULL;
    clip_tok *t = calloc(1, sizeof(*t));
    init_bytes(t);
    const cJSON *model = cJSON_GetObjectItem(root, "model");
    const cJSON *ty = cJSON_GetObjectItem(model, "type");
    int rc = 0;
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "BPE")) {
        rc = ERR("%s: model type is %s, a CLIP tokenizer needs a BPE model", path,
                 cJSON_IsString(ty) ? ty->valuestring : "missing");
        goto done;
    }
    const cJSON *sfx = cJSON_GetObjectItem(model, "end_of_word_suffix"),
                *pfx = cJSON_GetObjectItem(model, "continuing_subword_prefix"),
                *unk = cJSON_GetObjectItem(model, "unk_token");
    snprintf(t->suffix, sizeof t->suffix, "%s", cJSON_IsString(sfx) ? sfx->valuestring : "");
    snprintf(t->prefix, sizeof t->prefix, "%s", cJSON_IsString(pfx) ? pfx->valuestring : "");
    t->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItem(model, "fuse_unk"));
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItem(model, "ignore_merges"));
    if (cJSON_IsTrue(cJSON_GetObjectItem(model, "byte_fallback"))) {
        rc = ERR("%s: byte_fallback BPE is not supported (CLIP has none)", path);
        goto done;
    }
    if ((rc = load_vocab_obj(t, cJSON_GetObjectItem(model, "vocab"), err, errlen))) goto done;
    t->unk_id = cJSON_IsString(unk) ? tok_map_get(&t->vocab, unk->valuestring, strlen(unk->valuestring)) : -1;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(model, "merges")) {
        char *a = NULL, *b = NULL;
        if (cJSON_IsString(m)) {
            a = strdup(m->valuestring);
            char *sp = strchr(a, ' ');
            if (!sp) { free(a); rc = ERR("%s: merge \"%s\" has no space", path, m->valuestring); goto done; }
            *sp = 0;
            b = sp + 1;
            rc = add_merge(t, a, b, err, errlen);
            free(a);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            rc = add_merge(t, cJSON_GetArrayItem(m, 0)->valuestring, cJSON_GetArrayItem(m, 1)->valuestring, err, errlen);
        } else rc = ERR("%s: a merge is neither \"a b\" nor [a, b] of two strings", path);
        if (rc) goto done;
    }
    if ((rc = tok_added_parse(&t->added, root, err, errlen))) goto done;
    if ((rc = tok_norm_parse(&t->norm, root, err, errlen))) goto done;
    if ((rc = check_pre(cJSON_GetObjectItem(root, "pre_tokenizer"), err, errlen))) goto done;
    if ((rc = tok_post_parse(&t->post, root, err, errlen))) goto done;
done:
    cJSON_Delete(root);
    if (rc) { tok_err_in_file(path, err, errlen); clip_tok_free(t); return NULL; }
    return t;
}

// vocab.json + merges.txt: the pipeline CLIPTokenizer builds around them
static clip_tok *load_pair(const char *dir, char *err, size_t errlen) {
    char p[4096];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    char *vbuf = tok_read_file(p, NULL, err, errlen);
    if (!vbuf) return NULL;
    cJSON *vocab = cJSON_Parse(vbuf);
    free(vbuf);
    clip_tok *t = calloc(1, sizeof(*t));
    init_bytes(t);
    snprintf(t->suffix, sizeof t->suffix, "</w>");
    int rc = 0;
    char *mbuf = NULL;
    if (!vocab) { rc = ERR("%s: not valid JSON", p); goto done; }
    if ((rc = load_vocab_obj(t, vocab, err, errlen))) { tok_err_in_file(p, err, errlen); goto done; }
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    size_t mn;
    if (!(mbuf = tok_read_file(p, &mn, err, errlen))) { rc = -1; goto done; }
    for (char *line = strtok(mbuf, "\n"); line; line = strtok(NULL, "\n")) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        if (!l || !strncmp(line, "#version", 8)) continue;
        char *sp = strchr(line, ' ');
        if (!sp) { rc = ERR("%s: merge line \"%s\" has no space", p, line); goto done; }
        *sp = 0;
        if ((rc = add_merge(t, line, sp + 1, err, errlen))) goto done;
    }
    const char *specials[2] = {"<|startoftext|>", "<|endoftext|>"};
    t->added.t = calloc(2, sizeof(tok_added_tok));
    for (int k = 0; k < 2; k++) {
        int32_t id = tok_map_get(&t->vocab, specials[k], strlen(specials[k]));
        if (id < 0) { rc = ERR("%s/vocab.json: %s is missing", dir, specials[k]); goto done; }
        t->added.t[t->added.n++] = (tok_added_tok){.content = strdup(specials[k]), .len = strlen(specials[k]),
                                                   .id = id, .special = true};
    }
    t->unk_id = t->added.t[1].id;
    t->post.pre[t->post.npre++] = t->added.t[0].id;
    t->post.post[t->post.npost++] = t->added.t[1].id;
    static const char *norm_json = "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
                                   "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"content\": \" \"}, "
                                   "{\"type\": \"Lowercase\"}]}}";
    cJSON *nj = cJSON_Parse(norm_json);
    rc = tok_norm_parse(&t->norm, nj, err, errlen);
    cJSON_Delete(nj);
done:
    cJSON_Delete(vocab);
    free(mbuf);
    if (rc) { clip_tok_free(t); return NULL; }
    return t;
}

clip_tok *clip_tok_load(const char *path, char *err, size_t errlen) {
    struct stat st;
    clip_tok *t;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        t = stat(p, &st) == 0 ? load_json(p, err, errlen) : load_pair(path, err, errlen);
    } else {
        t = load_json(path, err, errlen);
    }
    if (!t) return NULL;
    t->bos_id = tok_added_id(&t->added, "<|startoftext|>");
    t->eos_id = tok_added_id(&t->added, "<|endoftext|>");
    if (t->bos_id < 0) t->bos_id = t->post.npre ? t->post.pre[0] : -1;
    if (t->eos_id < 0) t->eos_id = t->post.npost ? t->post.post[0] : -1;
    t->pad_id = t->eos_id;
    return t;
}

void clip_tok_free(clip_tok *t) {
    if (!t) return;
    tok_map_free(&t->vocab);
    tok_map_free(&t->merges);
    free(t->merge_new);
    tok_added_free(&t->added);
    tok_norm_free(&t->norm);
    free(t);
}

int clip_tok_vocab_size(const clip_tok *t) { return t->n_vocab; }
int32_t clip_tok_bos_id(const clip_tok *t) { return t->bos_id; }
int32_t clip_tok_eos_id(const clip_tok *t) { return t->eos_id; }
int32_t clip_tok_pad_id(const clip_tok *t) { return t->pad_id; }
void clip_tok_set_pad_id(clip_tok *t, int32_t id) { t->pad_id = id; }

// ---------------------------------------------------------------- BPE on one word

static int32_t merge_rank(const clip_tok *t, int32_t a, int32_t b) {
    int32_t key[2] = {a, b};
    return tok_map_get(&t->merges, (const char *)key, sizeof key);
}

// w: the byte-level mapped word (UTF-8 of the mapped chars)
static void bpe_word(const clip_tok *t, const char *w, size_t n, tok_ids *out) {
    if (t->ignore_merges) {
        int32_t id = tok_map_get(&t->vocab, w, n);
        if (id >= 0) { tok_ids_push(out, id); return; }
    }
    tok_ids sym = {0};
    bool pending_unk = false;
    ubuf s = {0};
    for (size_t i = 0; i < n;) {
        size_t c = (size_t)uni_char_len(w, n, i);
        s.n = 0;
        ubuf_append(&s, "", 0);
        if (i > 0) ubuf_append(&s, t->prefix, strlen(t->prefix));
        ubuf_append(&s, w + i, c);
        if (i + c >= n) ubuf_append(&s, t->suffix, strlen(t->suffix));
        int32_t id = tok_map_get(&t->vocab, s.p, s.n);
        if (id >= 0) {
            pending_unk = false;
            tok_ids_push(&sym, id);
        } else if (t->unk_id >= 0) {
            if (!(pending_unk && t->fuse_unk)) tok_ids_push(&sym, t->unk_id);
            pending_unk = true;
        }
        i += c;
    }
    ubuf_free(&s);
    for (;;) {  // merge the lowest-rank pair (leftmost on ties) until none applies
        int best = -1;
        int32_t best_rank = 0;
        for (int i = 0; i + 1 < sym.n; i++) {
            int32_t r = merge_rank(t, sym.v[i], sym.v[i + 1]);
            if (r >= 0 && (best < 0 || r < best_rank)) { best = i; best_rank = r; }
        }
        if (best < 0) break;
        sym.v[best] = t->merge_new[best_rank];
        memmove(sym.v + best + 1, sym.v + best + 2, (size_t)(sym.n - best - 2) * sizeof(int32_t));
        sym.n--;
    }
    for (int i = 0; i < sym.n; i++) tok_ids_push(out, sym.v[i]);
    free(sym.v);
}

// ---------------------------------------------------------------- splits

// the next match of CLIP's split regex (clip = true) or GPT-2's (use_regex ByteLevel) at or after *p;
// returns false when none is left. Whitespace between matches is dropped.
static bool next_piece(const char *s, size_t n, size_t *p, size_t *a, size_t *b, bool clip) {
    static const char *contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    static const char *lit[] = {"<|startoftext|>", "<|endoftext|>"};
    size_t i = *p;
    while (i < n) {
        if (clip)
            for (int k = 0; k < 2; k++) {
                size_t l = strlen(lit[k]);
                if (i + l <= n && !memcmp(s + i, lit[k], l)) { *a = i; *b = *p = i + l; return true; }
            }
        for (int k = 0; k < 7; k++) {
            size_t l = strlen(contr[k]);
            if (i + l <= n && !memcmp(s + i, contr[k], l)) { *a = i; *b = *p = i + l; return true; }
        }
        size_t q = i;
        uint32_t c = uni_next(s, n, &q);
        if (uni_is_space(c)) { i = q; continue; }
        size_t j = q;
        if (uni_is_letter(c)) {
            while (j < n) { size_t r = j; if (!uni_is_letter(uni_next(s, n, &r))) break; j = r; }
        } else if (uni_is_number(c)) {
            if (!clip)
                while (j < n) { size_t r = j; if (!uni_is_number(uni_next(s, n, &r))) break; j = r; }
        } else {
            while (j < n) {
                size_t r = j;
                uint32_t d = uni_next(s, n, &r);
                if (uni_is_space(d) || uni_is_letter(d) || uni_is_number(d)) break;
                j = r;
            }
        }
        *a = i; *b = *p = j;
        return true;
    }
    *p = n;
    return false;
}

static void encode_text(const clip_tok *t, const char *s, size_t n, tok_ids *out) {
    size_t p = 0, a, b;
    ubuf w = {0};
    while (next_piece(s, n, &p, &a, &b, true)) {
        size_t p2 = a, a2, b2;
        while (next_piece(s, b, &p2, &a2, &b2, false)) {  // ByteLevel's own GPT-2 split (use_regex)
            w.n = 0;
            ubuf_append(&w, "", 0);
            for (size_t k = a2; k < b2; k++) {
                const char *bc = t->byte_char[(unsigned char)s[k]];
                ubuf_append(&w, bc, strlen(bc));
            }
            bpe_word(t, w.p, w.n, out);
        }
    }
    ubuf_free(&w);
}

static void encode_piece(const void *t, const char *s, size_t n, bool at_origin, tok_ids *out) {
    (void)at_origin;
    encode_text(t, s, n, out);
}

static tok_ids model_ids(const clip_tok *t, const char *text) {
    return tok_model_ids(&t->added, &t->norm, text, encode_piece, t);
}

int32_t *clip_tok_encode(clip_tok *t, const char *text, int *n) {
    tok_ids ids = model_ids(t, text);
    return tok_post_all(&t->post, &ids, t->pad_id, n);
}

// once per process, not per tokenizer: eval and sample open one for each adapter they load
static atomic_bool clip_tok_truncation_warned;

int clip_tok_encode_padded(clip_tok *t, const char *text, int max_len, int32_t *out, bool *truncated) {
    tok_ids ids = model_ids(t, text);
    bool tr;
    int full, real = tok_post_padded(&t->post, &ids, max_len, t->pad_id, out, &tr, &full);
    if (tr && !atomic_exchange(&clip_tok_truncation_warned, true)) {
        cm_warn("CLIP tokenizer: a prompt of %d tokens was truncated to %d (CLIP's limit); reported once", full, max_len);
    }
    if (truncated) *truncated = tr;
    return real;
}
