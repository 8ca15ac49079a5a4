// tok_common.c — string map, tokenizer.json reading, added tokens, normalizers, post-processing.
#include "models/tok_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

// ---------------------------------------------------------------- map

static uint64_t hash_bytes(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

static void map_grow(tok_map *m) {
    tok_map g = {0};
    g.cap = m->cap ? m->cap * 2 : 1024;
    g.keys = calloc(g.cap, sizeof(char *));
    g.klen = calloc(g.cap, sizeof(uint32_t));
    g.vals = calloc(g.cap, sizeof(int32_t));
    if (!g.keys || !g.klen || !g.vals) abort();
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = hash_bytes(m->keys[i], m->klen[i]) & (g.cap - 1);
        while (g.keys[j]) j = (j + 1) & (g.cap - 1);
        g.keys[j] = m->keys[i];
        g.klen[j] = m->klen[i];
        g.vals[j] = m->vals[i];
        g.n++;
    }
    free(m->keys); free(m->klen); free(m->vals);
    *m = g;
}

void tok_map_put(tok_map *m, const char *k, size_t n, int32_t v) {
    if ((m->n + 1) * 2 > m->cap) map_grow(m);
    size_t j = hash_bytes(k, n) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->klen[j] == n && !memcmp(m->keys[j], k, n)) { m->vals[j] = v; return; }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = malloc(n + 1);
    if (!m->keys[j]) abort();
    memcpy(m->keys[j], k, n);
    m->keys[j][n] = 0;
    m->klen[j] = (uint32_t)n;
    m->vals[j] = v;
    m->n++;
}

int32_t tok_map_get(const tok_map *m, const char *k, size_t n) {
    if (!m->cap) return -1;
    size_t j = hash_bytes(k, n) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->klen[j] == n && !memcmp(m->keys[j], k, n)) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void tok_map_free(tok_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys); free(m->klen); free(m->vals);
    memset(m, 0, sizeof(*m));
}

// ---------------------------------------------------------------- ids

void tok_ids_push(tok_ids *a, int32_t x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, (size_t)a->cap * sizeof(int32_t));
        if (!a->v) abort();
    }
    a->v[a->n++] = x;
}

// ---------------------------------------------------------------- reading

char *tok_read_file(const char *path, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(sz < 0 ? 0 : sz) + 1);
    if (!buf || sz < 0 || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f); free(buf);
        snprintf(err, errlen, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    buf[sz] = 0;
    if (n) *n = (size_t)sz;
    return buf;
}

cJSON *tok_load_json(const char *path, char *err, size_t errlen) {
    char full[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(full, sizeof full, "%s/tokenizer.json", path);
    else snprintf(full, sizeof full, "%s", path);
    char *buf = tok_read_file(full, NULL, err, errlen);
    if (!buf) return NULL;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    if (!root) { snprintf(err, errlen, "%s: not valid JSON", full); return NULL; }
    if (!cJSON_IsObject(cJSON_GetObjectItem(root, "model"))) {
        cJSON_Delete(root);
        snprintf(err, errlen, "%s: not a tokenizers tokenizer.json (no \"model\" object)", full);
        return NULL;
    }
    return root;
}

void tok_err_in_file(const char *path, char *err, size_t errlen) {
    size_t pl = strlen(path);
    if (!errlen || !strncmp(err, path, pl)) return;
    char *msg = strdup(err);
    if (!msg) return;
    snprintf(err, errlen, "%s: %s", path, msg);
    free(msg);
}

// ---------------------------------------------------------------- added tokens

int tok_added_parse(tok_added *a, const cJSON *root, char *err, size_t errlen) {
    memset(a, 0, sizeof(*a));
    const cJSON *arr = cJSON_GetObjectItem(root, "added_tokens");
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return ERR("\"added_tokens\" is not a list");
    a->t = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(tok_added_tok));
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *c = cJSON_GetObjectItem(e, "content"), *id = cJSON_GetObjectItem(e, "id");
        if (!cJSON_IsString(c) || !cJSON_IsNumber(id)) return ERR("added token without content/id");
        tok_added_tok *t = &a->t[a->n++];
        t->content = strdup(c->valuestring);
        t->len = strlen(t->content);
        t->id = (int32_t)id->valueint;
        t->special = cJSON_IsTrue(cJSON_GetObjectItem(e, "special"));
        t->normalized = cJSON_IsTrue(cJSON_GetObjectItem(e, "normalized"));
        t->lstrip = cJSON_IsTrue(cJSON_GetObjectItem(e, "lstrip"));
        t->rstrip = cJSON_IsTrue(cJSON_GetObjectItem(e, "rstrip"));
        t->single_word = cJSON_IsTrue(cJSON_GetObjectItem(e, "single_word"));
    }
    return 0;
}

int32_t tok_added_id(const tok_added *a, const char *content) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->t[i].content, content)) return a->t[i].id;
    return -1;
}

void tok_added_free(tok_added *a) {
    for (int i = 0; i < a->n; i++) free(a->t[i].content);
    free(a->t);
    memset(a, 0, sizeof(*a));
}

static void segs_push(tok_segs *s, size_t off, size_t len, int32_t id) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->s = realloc(s->s, (size_t)s->cap * sizeof(tok_seg));
        if (!s->s) abort();
    }
    s->s[s->n++] = (tok_seg){off, len, id};
}

void tok_segs_free(tok_segs *s) { free(s->s); memset(s, 0, sizeof(*s)); }

static bool is_word_char(uint32_t cp) { return cp == '_' || uni_is_letter(cp) || uni_is_number(cp); }

static uint32_t last_cp(const char *s, size_t start, size_t end) {  // the char ending at end
    size_t i = end;
    while (i > start && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > start) i--;
    while (i > start && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    size_t j = i;
    return uni_next(s, end, &j);
}

void tok_added_split(const tok_added *a, bool want_normalized, const char *text, size_t off, size_t len,
                     tok_segs *out) {
    size_t end = off + len, start_off = off, p = off;
    while (p < end) {
        int best = -1;
        for (int k = 0; k < a->n; k++) {  // leftmost-longest
            const tok_added_tok *t = &a->t[k];
            if (t->normalized != want_normalized || !t->len || t->len > end - p) continue;
            if (memcmp(text + p, t->content, t->len)) continue;
            if (best < 0 || t->len > a->t[best].len) best = k;
        }
        if (best < 0) { p++; continue; }
        const tok_added_tok *t = &a->t[best];
        size_t ms = p, me = p + t->len;
        if (t->single_word) {
            bool ok_l = ms == off || !is_word_char(last_cp(text, off, ms));
            size_t q = me;
            bool ok_r = me == end || !is_word_char(uni_next(text, end, &q));
            if (!ok_l || !ok_r) { p++; continue; }
        }
        if (t->lstrip) {
            size_t q = ms;
            while (q > start_off) {
                size_t r = q;
                while (r > start_off && ((unsigned char)text[r - 1] & 0xC0) == 0x80) r--;
                if (r > start_off) r--;
                size_t tmp = r;
                if (!uni_is_space(uni_next(text, end, &tmp))) break;
                q = r;
            }
            ms = q;
        }
        if (t->rstrip) {
            while (me < end) {
                size_t q = me;
                if (!uni_is_space(uni_next(text, end, &q))) break;
                me = q;
            }
        }
        if (ms > start_off) segs_push(out, start_off, ms - start_off, -1);
        segs_push(out, ms, me - ms, t->id);
        start_off = p = me;
    }
    if (start_off < end) segs_push(out, start_off, end - start_off, -1);
}

// ---------------------------------------------------------------- normalizers

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static uint8_t *b64decode(const char *s, size_t *n) {
    size_t len = strlen(s), o = 0;
    uint8_t *out = malloc(len * 3 / 4 + 4);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue;  // '=' padding and whitespace
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; out[o++] = (uint8_t)(acc >> bits); }
    }
    *n = o;
    return out;
}

static int parse_step(tok_norm *nm, const cJSON *j, char *err, size_t errlen);

static int push_step(tok_norm *nm, tok_norm_step st) {
    nm->steps = realloc(nm->steps, (size_t)(nm->n + 1) * sizeof(tok_norm_step));
    nm->steps[nm->n++] = st;
    return 0;
}

static int parse_step(tok_norm *nm, const cJSON *j, char *err, size_t errlen) {
    if (!j || cJSON_IsNull(j)) return 0;
    const cJSON *ty = cJSON_GetObjectItem(j, "type");
    if (!cJSON_IsString(ty)) return ERR("normalizer without a \"type\"");
    const char *t = ty->valuestring;
    tok_norm_step st = {0};
    if (!strcmp(t, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "normalizers"))
            if (parse_step(nm, e, err, errlen)) return -1;
        return 0;
    }
    if (!strcmp(t, "NFC")) { st.kind = TN_NFC; return push_step(nm, st); }
    if (!strcmp(t, "Lowercase")) { st.kind = TN_LOWER; return push_step(nm, st); }
    if (!strcmp(t, "Strip")) {
        st.kind = TN_STRIP;
        st.left = cJSON_IsTrue(cJSON_GetObjectItem(j, "strip_left"));
        st.right = cJSON_IsTrue(cJSON_GetObjectItem(j, "strip_right"));
        return push_step(nm, st);
    }
    if (!strcmp(t, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItem(j, "pattern"), *content = cJSON_GetObjectItem(j, "content");
        if (!cJSON_IsString(content)) return ERR("Replace normalizer without content");
        const cJSON *ps = cJSON_GetObjectItem(pat, "String"), *pr = cJSON_GetObjectItem(pat, "Regex");
        st.content = strdup(content->valuestring);
        if (cJSON_IsString(ps)) { st.kind = TN_REPLACE_LIT; st.pat = strdup(ps->valuestring); }
        else if (cJSON_IsString(pr) && !strcmp(pr->valuestring, "\\s+")) st.kind = TN_REPLACE_SPACES;
        else if (cJSON_IsString(pr) && !strcmp(pr->valuestring, " {2,}")) st.kind = TN_REPLACE_SPACE2;
        else {
            free(st.content);
            return ERR("Replace normalizer: unsupported pattern %s (supported: literal strings, \\s+, \" {2,}\")",
                       cJSON_IsString(pr) ? pr->valuestring : "?");
        }
        return push_step(nm, st);
    }
    if (!strcmp(t, "Precompiled")) {
        const cJSON *cm = cJSON_GetObjectItem(j, "precompiled_charsmap");
        if (!cJSON_IsString(cm)) return ERR("Precompiled normalizer without precompiled_charsmap");
        st.kind = TN_PRECOMPILED;
        st.blob = b64decode(cm->valuestring, &st.blob_len);
        if (st.blob_len < 4) { free(st.blob); return ERR("precompiled_charsmap too short"); }
        uint32_t tsz = (uint32_t)st.blob[0] | (uint32_t)st.blob[1] << 8 | (uint32_t)st.blob[2] << 16 |
                       (uint32_t)st.blob[3] << 24;
        if ((size_t)tsz + 4 > st.blob_len || tsz % 4 || !tsz) {
            free(st.blob);
            return ERR("precompiled_charsmap: trie size %u exceeds the blob (%zu bytes)", tsz, st.blob_len);
        }
        st.trie = (const uint32_t *)(st.blob + 4);  // little-endian host assumed (x86, arm64)
        st.trie_units = tsz / 4;
        st.norm = (const char *)st.blob + 4 + tsz;
        st.norm_len = st.blob_len - 4 - tsz;
        return push_step(nm, st);
    }
    return ERR("normalizer type %s is not supported (supported: Sequence, Precompiled, NFC, Lowercase, Strip, "
               "Replace)", t);
}

int tok_norm_parse(tok_norm *nm, const cJSON *root, char *err, size_t errlen) {
    memset(nm, 0, sizeof(*nm));
    return parse_step(nm, cJSON_GetObjectItem(root, "normalizer"), err, errlen);
}

void tok_norm_free(tok_norm *nm) {
    for (int i = 0; i < nm->n; i++) {
        free(nm->steps[i].pat);
        free(nm->steps[i].content);
        free(nm->steps[i].blob);
    }
    free(nm->steps);
    memset(nm, 0, sizeof(*nm));
}

// darts-clone double array: the value of the SHORTEST key that is a prefix of k (as sentencepiece's
// and the tokenizers library's Precompiled do), or -1
static int64_t trie_first_prefix(const tok_norm_step *st, const unsigned char *k, size_t n) {
    const uint32_t *a = st->trie;
    size_t node = 0;
#define OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
    uint32_t unit = a[0];
    node ^= OFFSET(unit);
    for (size_t i = 0; i < n; i++) {
        if (!k[i]) return -1;
        node ^= k[i];
        if (node >= st->trie_units) return -1;
        unit = a[node];
        if ((unit & ((1u << 31) | 0xFFu)) != k[i]) return -1;
        node ^= OFFSET(unit);
        if (node >= st->trie_units) return -1;
        if ((unit >> 8) & 1) return (int64_t)(a[node] & ((1u << 31) - 1));
    }
#undef OFFSET
    return -1;
}

static bool precompiled_put(const tok_norm_step *st, const char *s, size_t n, ubuf *out) {
    int64_t v = trie_first_prefix(st, (const unsigned char *)s, n);
    if (v < 0 || (size_t)v >= st->norm_len) return false;
    const char *r = st->norm + v;
    ubuf_append(out, r, strnlen(r, st->norm_len - (size_t)v));
    return true;
}

static void apply_step(const tok_norm_step *st, const char *s, size_t n, ubuf *out) {
    switch (st->kind) {
    case TN_PRECOMPILED:
        for (size_t i = 0; i < n;) {
            size_t g = uni_grapheme_len(s, n, i);
            if (!(g < 6 && precompiled_put(st, s + i, g, out))) {
                for (size_t j = i; j < i + g;) {
                    size_t c = (size_t)uni_char_len(s, n, j);
                    size_t q = j;
                    uint32_t cp = uni_next(s, n, &q);
                    bool invalid = cp == 0xFFFD && !(q - j == 3 && !memcmp(s + j, "\xef\xbf\xbd", 3));
                    if (invalid) {  // a broken sequence is read as U+FFFD (lossy UTF-8)
                        if (!precompiled_put(st, "\xef\xbf\xbd", 3, out)) ubuf_putc(out, cp);
                    } else if (!precompiled_put(st, s + j, c, out)) {
                        ubuf_append(out, s + j, c);
                    }
                    j += c;
                }
            }
            i += g;
        }
        break;
    case TN_NFC: uni_nfc(s, n, out); break;
    case TN_LOWER:
        for (size_t i = 0; i < n;) {
            uint32_t lo[3];
            int k = uni_lower(uni_next(s, n, &i), lo);
            for (int m = 0; m < k; m++) ubuf_putc(out, lo[m]);
        }
        break;
    case TN_STRIP: {
        size_t a = 0, b = n;
        if (st->left)
            while (a < b) {
                size_t q = a;
                if (!uni_is_space(uni_next(s, n, &q))) break;
                a = q;
            }
        if (st->right)
            while (b > a) {
                size_t r = b - 1;
                while (r > a && ((unsigned char)s[r] & 0xC0) == 0x80) r--;
                size_t q = r;
                if (!uni_is_space(uni_next(s, n, &q))) break;
                b = r;
            }
        ubuf_append(out, s + a, b - a);
        break;
    }
    case TN_REPLACE_LIT: {
        size_t pl = strlen(st->pat);
        for (size_t i = 0; i < n;) {
            if (pl && i + pl <= n && !memcmp(s + i, st->pat, pl)) {
                ubuf_append(out, st->content, strlen(st->content));
                i += pl;
            } else {
                ubuf_append(out, s + i, 1);
                i++;
            }
        }
        break;
    }
    case TN_REPLACE_SPACES:
    case TN_REPLACE_SPACE2:
        for (size_t i = 0; i < n;) {
            size_t j = i, run = 0;
            if (st->kind == TN_REPLACE_SPACES) {
                for (;;) {
                    size_t q = j;
                    if (q >= n || !uni_is_space(uni_next(s, n, &q))) break;
                    j = q;
                    run++;
                }
            } else {
                while (j < n && s[j] == ' ') { j++; run++; }
            }
            if (run >= (st->kind == TN_REPLACE_SPACES ? 1u : 2u)) {
                ubuf_append(out, st->content, strlen(st->content));
                i = j;
            } else {
                size_t c = (size_t)uni_char_len(s, n, i);
                ubuf_append(out, s + i, c);
                i += c;
            }
        }
        break;
    }
}

void tok_norm_apply(const tok_norm *nm, const char *s, size_t n, ubuf *out) {
    ubuf cur = {0};
    ubuf_append(&cur, s, n);
    for (int k = 0; k < nm->n; k++) {
        ubuf next = {0};
        ubuf_append(&next, "", 0);
        apply_step(&nm->steps[k], cur.p, cur.n, &next);
        ubuf_free(&cur);
        cur = next;
    }
    ubuf_append(out, cur.p, cur.n);
    ubuf_free(&cur);
}

// ---------------------------------------------------------------- post-processor

static int parse_post(tok_post *p, const cJSON *pp, char *err, size_t errlen) {
    const cJSON *ty = cJSON_GetObjectItem(pp, "type");
    const char *t = cJSON_IsString(ty) ? ty->valuestring : "";
    if (!strcmp(t, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(pp, "processors")) {
            const cJSON *et = cJSON_GetObjectItem(e, "type");
            if (cJSON_IsString(et) && (!strcmp(et->valuestring, "ByteLevel"))) continue;  // offsets only
            if (parse_post(p, e, err, errlen)) return -1;
        }
        return 0;
    }
    if (!strcmp(t, "RobertaProcessing") || !strcmp(t, "BertProcessing")) {
        const cJSON *cls = cJSON_GetObjectItem(pp, "cls"), *sep = cJSON_GetObjectItem(pp, "sep");
        if (!cJSON_IsArray(cls) || !cJSON_IsArray(sep) || cJSON_GetArraySize(cls) != 2 || cJSON_GetArraySize(sep) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(cls, 1)) || !cJSON_IsNumber(cJSON_GetArrayItem(sep, 1)))
            return ERR("%s without cls/sep [token, id] pairs", t);
        // pre/post hold 4 ids each (tok_post): a Sequence of such processors could add more
        if (p->npre >= 4 || p->npost >= 4) return ERR("post_processor adds more than 4 special tokens before or after");
        p->pre[p->npre++] = (int32_t)cJSON_GetArrayItem(cls, 1)->valueint;
        p->post[p->npost++] = (int32_t)cJSON_GetArrayItem(sep, 1)->valueint;
        return 0;
    }
    if (!strcmp(t, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItem(pp, "single"), *sp = cJSON_GetObjectItem(pp, "special_tokens");
        const cJSON *e;
        bool seen_seq = false;
        cJSON_ArrayForEach(e, single) {
            if (cJSON_GetObjectItem(e, "Sequence")) { seen_seq = true; continue; }
            const cJSON *st = cJSON_GetObjectItem(e, "SpecialToken");
            const cJSON *id = cJSON_GetObjectItem(st, "id");
            const cJSON *def = cJSON_IsString(id) ? cJSON_GetObjectItem(sp, id->valuestring) : NULL;
            const cJSON *ids = cJSON_GetObjectItem(def, "ids"), *x;
            if (!cJSON_IsArray(ids)) return ERR("TemplateProcessing: special token %s has no ids",
                                                cJSON_IsString(id) ? id->valuestring : "?");
            cJSON_ArrayForEach(x, ids) {
                if (!cJSON_IsNumber(x)) return ERR("TemplateProcessing: special token %s has an id that is not a number",
                                                   id->valuestring);
                if ((seen_seq ? p->npost : p->npre) >= 4)  // dropping one would change every encoding
                    return ERR("post_processor adds more than 4 special tokens before or after");
                if (!seen_seq) p->pre[p->npre++] = (int32_t)x->valueint;
                else p->post[p->npost++] = (int32_t)x->valueint;
            }
        }
        return 0;
    }
    return ERR("post_processor type %s is not supported (TemplateProcessing, RobertaProcessing, BertProcessing)", t);
}

int tok_post_parse(tok_post *p, const cJSON *root, char *err, size_t errlen) {
    memset(p, 0, sizeof(*p));
    const cJSON *pp = cJSON_GetObjectItem(root, "post_processor");
    if (!pp || cJSON_IsNull(pp)) return 0;
    return parse_post(p, pp, err, errlen);
}

int tok_post_finish(const tok_post *p, const int32_t *ids, int n, int max_len, int32_t pad_id, int32_t *out,
                    bool *truncated) {
    int keep = n;
    if (truncated) *truncated = false;
    if (max_len > 0 && n + p->npre + p->npost > max_len) {
        keep = max_len - p->npre - p->npost;
        if (keep < 0) keep = 0;
        if (truncated) *truncated = true;
    }
    int o = 0;
    for (int i = 0; i < p->npre && (max_len <= 0 || o < max_len); i++) out[o++] = p->pre[i];
    for (int i = 0; i < keep; i++) out[o++] = ids[i];
    for (int i = 0; i < p->npost && (max_len <= 0 || o < max_len); i++) out[o++] = p->post[i];
    if (max_len > 0)
        while (o < max_len) out[o++] = pad_id;
    return o;
}

// ---------------------------------------------------------------- pipeline

tok_ids tok_model_ids(const tok_added *a, const tok_norm *nm, const char *text, tok_encode_fn encode, const void *model) {
    tok_ids ids = {0};
    size_t n = strlen(text);
    tok_segs raw = {0};
    tok_added_split(a, false, text, 0, n, &raw);
    for (int k = 0; k < raw.n; k++) {
        tok_seg sg = raw.s[k];
        if (sg.id >= 0) { tok_ids_push(&ids, sg.id); continue; }
        ubuf norm = {0};
        ubuf_append(&norm, "", 0);
        tok_norm_apply(nm, text + sg.off, sg.len, &norm);
        tok_segs ns = {0};
        tok_added_split(a, true, norm.p, 0, norm.n, &ns);
        for (int m = 0; m < ns.n; m++) {
            if (ns.s[m].id >= 0) tok_ids_push(&ids, ns.s[m].id);
            else encode(model, norm.p + ns.s[m].off, ns.s[m].len, sg.off == 0 && ns.s[m].off == 0, &ids);
        }
        tok_segs_free(&ns);
        ubuf_free(&norm);
    }
    tok_segs_free(&raw);
    return ids;
}

int32_t *tok_post_all(const tok_post *p, tok_ids *ids, int32_t pad_id, int *n) {
    int32_t *out = malloc((size_t)(ids->n + p->npre + p->npost + 1) * sizeof(int32_t));
    *n = tok_post_finish(p, ids->v, ids->n, 0, pad_id, out, NULL);
    free(ids->v);
    return out;
}

int tok_post_padded(const tok_post *p, tok_ids *ids, int max_len, int32_t pad_id, int32_t *out, bool *truncated,
                    int *full) {
    bool tr = false;
    tok_post_finish(p, ids->v, ids->n, max_len, pad_id, out, &tr);
    *full = ids->n + p->npre + p->npost;
    *truncated = tr;
    free(ids->v);
    return *full > max_len ? max_len : *full;
}
