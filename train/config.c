// config.c — YAML → tree → --set overrides → typed train_config; and back to YAML.
#include "autograd/tensor.h"
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>
#include "data/buckets.h"
#include "models/atomic_file.h"

// ---------------------------------------------------------------------------------------------
// the generic tree
enum { Y_SCALAR = 0, Y_MAP, Y_SEQ };
typedef struct ynode {
    int kind;
    char *s;        // scalar text
    bool plain;     // scalar written without quotes (so "null", "~" mean null)
    int line;       // 1-based line in the source; 0 = from --set
    int n, cap;
    char **keys;    // map keys
    bool *used;     // map: key consumed by the typing pass
    int *klines;    // map: the line of each key (0 = from --set): a value in a block below it starts a line later
    struct ynode **v;
} ynode;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) cm_die("config", "out of memory (%zu bytes)", n);
    return q;
}
static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xrealloc(NULL, n);
    memcpy(d, s, n);
    return d;
}

// the length (2..4) of the valid UTF-8 sequence at p and its code point, or 0 when p does not start
// one (a stray byte, an overlong form, a surrogate, past U+10FFFF)
static int cfg_utf8_len(const unsigned char *p, uint32_t *cp) {
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? (p[0] < 0xf0 ? 3 : 0) : p[0] >= 0xc2 ? 2 : 0;
    if (!n) return 0;
    uint32_t c = p[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return n;
}

static ynode *ynew(int kind, int line) {
    ynode *n = xrealloc(NULL, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}
static void yfree(ynode *n) {
    if (!n) return;
    free(n->s);
    for (int i = 0; i < n->n; i++) {
        if (n->keys) free(n->keys[i]);
        yfree(n->v[i]);
    }
    free(n->keys);
    free(n->used);
    free(n->klines);
    free(n->v);
    free(n);
}
static void ypush(ynode *n, const char *key, int kline, ynode *v) {
    if (n->n == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 8;
        n->v = xrealloc(n->v, (size_t)n->cap * sizeof *n->v);
        if (n->kind == Y_MAP) {
            n->keys = xrealloc(n->keys, (size_t)n->cap * sizeof *n->keys);
            n->used = xrealloc(n->used, (size_t)n->cap * sizeof *n->used);
            n->klines = xrealloc(n->klines, (size_t)n->cap * sizeof *n->klines);
        }
    }
    if (n->kind == Y_MAP) {
        n->keys[n->n] = xstrdup(key);
        n->used[n->n] = false;
        n->klines[n->n] = kline;
    }
    n->v[n->n++] = v;
}
static int yfind(const ynode *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->keys[i], key)) return i;
    return -1;
}
static bool yis_null(const ynode *n) {
    return !n || (n->kind == Y_SCALAR && n->plain &&
                  (!n->s[0] || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
                   !strcmp(n->s, "NULL")));
}

static const char *kind_name(int k) { return k == Y_MAP ? "a mapping" : k == Y_SEQ ? "a list" : "a scalar"; }


// converts a libyaml document node into a tree
// nodes a config may expand to: aliases copy their anchor's subtree, so ten lists of ten aliases
// each to the one before would otherwise build 10^10 nodes and exhaust memory (a config has ~200)
#define CFG_MAX_NODES 100000
static ynode *from_doc(yaml_document_t *d, yaml_node_t *yn, const char *name, int depth, int *budget, char *err,
                       size_t errlen) {
    int line = (int)yn->start_mark.line + 1;
    if (depth > 64) {
        cm_seterr(err, errlen, "%s:%d: nesting deeper than 64 levels (an alias inside its own anchor?)", name, line);
        return NULL;
    }
    if (--*budget < 0) {
        cm_seterr(err, errlen, "%s:%d: the config expands to more than %d values (aliases of aliases?); not a config", name,
                  line, CFG_MAX_NODES);
        return NULL;
    }
    if (yn->type == YAML_SCALAR_NODE) {
        ynode *n = ynew(Y_SCALAR, line);
        n->s = xrealloc(NULL, yn->data.scalar.length + 1);
        memcpy(n->s, yn->data.scalar.value, yn->data.scalar.length);
        n->s[yn->data.scalar.length] = 0;
        n->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return n;
    }
    if (yn->type == YAML_SEQUENCE_NODE) {
        ynode *n = ynew(Y_SEQ, line);
        for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top; it++) {
            ynode *c = from_doc(d, yaml_document_get_node(d, *it), name, depth + 1, budget, err, errlen);
            if (!c) { yfree(n); return NULL; }
            ypush(n, NULL, 0, c);
        }
        return n;
    }
    if (yn->type == YAML_MAPPING_NODE) {
        ynode *n = ynew(Y_MAP, line);
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                cm_seterr(err, errlen, "%s:%d: mapping keys must be plain names", name, (int)(k ? k->start_mark.line + 1 : 0));
                yfree(n);
                return NULL;
            }
            char key[256];
            size_t kl = k->data.scalar.length < sizeof key - 1 ? k->data.scalar.length : sizeof key - 1;
            memcpy(key, k->data.scalar.value, kl);
            key[kl] = 0;
            if (yfind(n, key) >= 0) {
                cm_seterr(err, errlen, "%s:%d: key '%s' appears twice in the same mapping", name, (int)k->start_mark.line + 1, key);
                yfree(n);
                return NULL;
            }
            ynode *c = from_doc(d, yaml_document_get_node(d, p->value), name, depth + 1, budget, err, errlen);
            if (!c) { yfree(n); return NULL; }
            ypush(n, key, (int)k->start_mark.line + 1, c);
        }
        return n;
    }
    return ynew(Y_SCALAR, line);  // empty node
}

// parses YAML text into a tree; an empty document is an empty mapping
static ynode *yparse(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p)) {
        cm_seterr(err, errlen, "%s: cannot start the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &d)) {
        // libyaml's words for a tab in the indentation ("found character that cannot start any
        // token") do not say what the character is
        size_t at = p.problem_mark.index;
        bool tab = at < len && text[at] == '\t';
        cm_seterr(err, errlen, "%s:%d:%d: YAML syntax error: %s%s%s%s", name, (int)p.problem_mark.line + 1,
               (int)p.problem_mark.column + 1, p.problem ? p.problem : "unknown", p.context ? " " : "",
               p.context ? p.context : "", tab ? " (a tab: YAML indents with spaces only)" : "");
        yaml_parser_delete(&p);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&d);
    int budget = CFG_MAX_NODES;
    ynode *t = root ? from_doc(&d, root, name, 0, &budget, err, errlen) : ynew(Y_MAP, 1);
    yaml_document_delete(&d);
    // a second document (after a "---") would be dropped without a word: its keys never typed
    if (t) {
        yaml_document_t d2;
        if (!yaml_parser_load(&p, &d2)) {
            cm_seterr(err, errlen, "%s:%d:%d: YAML syntax error: %s%s%s", name, (int)p.problem_mark.line + 1,
                      (int)p.problem_mark.column + 1, p.problem ? p.problem : "unknown", p.context ? " " : "",
                      p.context ? p.context : "");
            yfree(t);
            t = NULL;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&d2);
            bool empty = r2 && r2->type == YAML_SCALAR_NODE && !r2->data.scalar.length;  // a lone trailing "---"
            if (r2 && !empty) {
                cm_seterr(err, errlen, "%s:%d: a second YAML document (after '---'); a config is one document", name,
                          (int)d2.start_mark.line + 1);
                yfree(t);
                t = NULL;
            }
            yaml_document_delete(&d2);
        }
    }
    yaml_parser_delete(&p);
    return t;
}

// ---------------------------------------------------------------------------------------------
// --set overrides

// the offset in text of a comment YAML would drop (a '#' after a blank, past the last token), or -1.
// A --set value comes from a shell, where a '#' inside a word is text: `model.flux=/w/run #2/flux`
// read as YAML is "/w/run" with a comment, the rest lost without a word
static long set_comment_at(const char *text, size_t len) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    size_t end = 0;
    bool ok = true;
    for (;;) {
        yaml_token_t tok;
        if (!yaml_parser_scan(&p, &tok)) {
            ok = false;
            break;
        }
        yaml_token_type_t ty = tok.type;
        // a block's end is marked where the scanner stood, past any comment
        if (ty != YAML_STREAM_END_TOKEN && ty != YAML_BLOCK_END_TOKEN && tok.end_mark.index > end) end = tok.end_mark.index;
        yaml_token_delete(&tok);
        if (ty == YAML_STREAM_END_TOKEN) break;
    }
    yaml_parser_delete(&p);
    if (!ok) return -1;
    while (end < len && (text[end] == ' ' || text[end] == '\t')) end++;
    return end < len && text[end] == '#' ? (long)end : -1;
}

static void mark_set(ynode *n) {
    if (!n) return;
    n->line = 0;
    for (int i = 0; i < n->n; i++) {
        if (n->kind == Y_MAP) n->klines[i] = 0;  // a key of a --set value: its line is the value's text's, not the file's
        mark_set(n->v[i]);
    }
}
// the node a --set path creates where it goes on through a missing or empty key: a list when the
// next part is an index ("stages.0.steps=5" into a config without stages), else a mapping — a
// mapping there was refused as "stages: expected a list of stages, found a mapping"
static ynode *ynew_under(const char *next) {
    bool index = *next;
    for (const char *c = next; *c; c++) index &= *c >= '0' && *c <= '9';
    return ynew(index ? Y_SEQ : Y_MAP, 0);
}
static int apply_set(ynode *root, const char *set, char *err, size_t errlen) {
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) {
        cm_seterr(err, errlen, "--set '%s': expected key.path=value (e.g. stages.1.steps=200)", set);
        return -1;
    }
    // normalise "stages[1].steps" to "stages.1.steps"
    char path[512];
    size_t pl = 0;
    for (const char *c = set; c < eq && pl < sizeof path - 2; c++) {
        if (*c == '[') path[pl++] = '.';
        else if (*c == ']') continue;
        else path[pl++] = *c;
    }
    path[pl] = 0;
    const char *val = eq + 1;
    char verr[256];
    ynode *v = yparse(val, strlen(val), "--set value", verr, sizeof verr);
    if (!v) {  // not valid YAML: take the raw text as a string
        // unless it is not UTF-8 (a Latin-1 path): YAML cannot hold it, so the config.yaml each
        // checkpoint stores would not read back and every resume from it would be refused
        for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
            uint32_t cp;
            int k = *p >= 0x80 ? cfg_utf8_len(p, &cp) : 1;
            if (!k) {
                cm_seterr(err, errlen, "--set %.*s: byte 0x%02x at offset %d of the value is not UTF-8 text; a config is "
                          "UTF-8 YAML (rename the file or folder, or link it under a UTF-8 name)", (int)(eq - set), set, *p,
                          (int)((const char *)p - val));
                return -1;
            }
            p += k - 1;
        }
        v = ynew(Y_SCALAR, 0);
        v->s = xstrdup(val);
    }
    // a '#' YAML would take for a comment: a single word is the whole text (a name, a path); a list
    // or a quoted value with a comment behind it is refused (which part was meant is not clear)
    long cm = v->kind != Y_MAP || v->n ? set_comment_at(val, strlen(val)) : -1;
    if (cm >= 0 && v->kind == Y_SCALAR && v->plain) {
        yfree(v);
        v = ynew(Y_SCALAR, 0);
        v->s = xstrdup(val);
    } else if (cm >= 0) {
        cm_seterr(err, errlen, "--set %.*s: '%s' ends in a YAML comment ('%s'), which would be dropped; quote the whole "
                  "value (--set '%.*s=\"...\"') or leave the comment out", (int)(eq - set), set, val, val + cm, (int)(eq - set), set);
        yfree(v);
        return -1;
    }
    // "key=" → the empty string; a value YAML reads as nothing but a comment or blanks ("#1", "  ")
    // → its text: an empty document is a mapping, and "expected a single value, found a mapping"
    // named nothing the user wrote
    if (v->kind == Y_MAP && v->n == 0) {
        yfree(v);
        v = ynew(Y_SCALAR, 0);
        v->s = xstrdup(val);
        v->plain = false;
    }
    // mark the whole value as coming from --set (line 0)
    mark_set(v);

    ynode *cur = root;
    char *save = NULL, *tok = strtok_r(path, ".", &save);
    char done[512] = "";
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        ynode **slot = NULL;
        if (cur->kind == Y_MAP) {
            int i = yfind(cur, tok);
            if (i < 0) {
                ypush(cur, tok, 0, next ? ynew_under(next) : NULL);
                i = cur->n - 1;
            }
            slot = &cur->v[i];
        } else if (cur->kind == Y_SEQ) {
            char *end;
            long idx = strtol(tok, &end, 10);
            if (*end || end == tok || idx < 0 || idx > cur->n) {
                cm_seterr(err, errlen, "--set %s: '%s' is not an index of %s%s (a list of %d; use 0..%d)", set, tok,
                       done[0] ? done : "the root", "", cur->n, cur->n);
                yfree(v);
                return -1;
            }
            if (idx == cur->n) ypush(cur, NULL, 0, next ? ynew_under(next) : NULL);
            slot = &cur->v[idx];
        } else {
            cm_seterr(err, errlen, "--set %s: %s is a scalar and has no key '%s'", set, done[0] ? done : "the root", tok);
            yfree(v);
            return -1;
        }
        if (!next) {
            yfree(*slot);
            *slot = v;
            return 0;
        }
        if ((*slot)->kind == Y_SCALAR) {
            if (yis_null(*slot)) {  // "key:" with no value: becomes a mapping (or a list)
                yfree(*slot);
                *slot = ynew_under(next);
            }
        }
        size_t dl = strlen(done);
        snprintf(done + dl, sizeof done - dl, "%s%s", dl ? "." : "", tok);
        cur = *slot;
        tok = next;
    }
    yfree(v);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// typing
typedef struct {
    const char *src;
    char *err;
    size_t errlen;
    int failed;
} tctx;

static void terr(tctx *t, const ynode *n, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void terr(tctx *t, const ynode *n, const char *path, const char *fmt, ...) {
    if (t->failed++) return;  // keep the first error
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n && n->line > 0) cm_seterr(t->err, t->errlen, "%s:%d: %s: %s", t->src, n->line, path, msg);
    else if (n) cm_seterr(t->err, t->errlen, "%s (--set): %s: %s", t->src, path, msg);
    else cm_seterr(t->err, t->errlen, "%s: %s: %s", t->src, path, msg);
}

typedef struct {
    tctx *t;
    ynode *map;        // NULL when the section is absent
    char path[256];    // "" at the root
    char allowed[1024];
} msec;

static void kpath(const msec *s, const char *key, char *out, size_t n) {
    if (s->path[0]) snprintf(out, n, "%s.%s", s->path, key);
    else snprintf(out, n, "%s", key);
}

static msec sec_open(tctx *t, ynode *node, const char *path) {
    msec s = {.t = t, .map = NULL};
    snprintf(s.path, sizeof s.path, "%s", path);
    if (yis_null(node)) return s;
    if (node->kind != Y_MAP) {
        terr(t, node, path[0] ? path : "(root)", "expected a mapping of keys, found %s", kind_name(node->kind));
        return s;
    }
    s.map = node;
    return s;
}

static ynode *sec_get(msec *s, const char *key) {
    size_t al = strlen(s->allowed);
    snprintf(s->allowed + al, sizeof s->allowed - al, "%s%s", al ? ", " : "", key);
    if (!s->map) return NULL;
    int i = yfind(s->map, key);
    if (i < 0) return NULL;
    s->map->used[i] = true;
    return yis_null(s->map->v[i]) && s->map->v[i]->kind == Y_SCALAR && s->map->v[i]->plain ? NULL : s->map->v[i];
}

static void sec_close(msec *s) {
    if (!s->map) return;
    for (int i = 0; i < s->map->n; i++) {
        if (s->map->used[i]) continue;
        char p[300];
        kpath(s, s->map->keys[i], p, sizeof p);
        ynode at = {.line = s->map->klines[i]};  // the key's line, not its value's (a block starts on the next)
        terr(s->t, &at, p, "unknown key (allowed here: %s)", s->allowed);
    }
}

static const char *scalar_of(msec *s, ynode *n, const char *p) {
    if (n->kind != Y_SCALAR) {
        terr(s->t, n, p, "expected a single value, found %s", kind_name(n->kind));
        return NULL;
    }
    return n->s;
}

// the scalar at key (NULL when absent, or not a scalar — that one reported); *n and p (its key
// path) are set for the caller's own messages
static const char *scalar_at(msec *s, const char *key, ynode **n, char *p, size_t pn) {
    *n = sec_get(s, key);
    if (!*n) return NULL;
    kpath(s, key, p, pn);
    return scalar_of(s, *n, p);
}

static void get_str(msec *s, const char *key, char *dst, size_t cap) {
    ynode *n = sec_get(s, key);
    char p[300];
    kpath(s, key, p, sizeof p);
    if (!n) {
        if (s->map && yfind(s->map, key) >= 0) dst[0] = 0;  // explicit null → empty
        return;
    }
    const char *v = scalar_of(s, n, p);
    if (!v) return;
    if (strlen(v) >= cap) {
        terr(s->t, n, p, "value is %zu bytes long (at most %zu allowed)", strlen(v), cap - 1);
        return;
    }
    snprintf(dst, cap, "%s", v);
}

static bool parse_i64(const char *v, int64_t *out) {
    if (!v || !*v) return false;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) {
        // allow integral floats written like 1e4
        double d = strtod(v, &end);
        if (*end || !isfinite(d) || d != floor(d) || fabs(d) > 9e15) return false;
        x = (long long)d;
    }
    *out = x;
    return true;
}

static void get_i64(msec *s, const char *key, int64_t *dst, int64_t lo, int64_t hi) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, key, &n, p, sizeof p);
    if (!v) return;
    int64_t x;
    if (!parse_i64(v, &x)) {
        // digits past int64 (or 9e15 written as a float) are an integer out of range, not "not an integer"
        char *end;
        double d = strtod(v, &end);
        if (*v && !*end && d == floor(d) && fabs(d) > 9e15)
            terr(s->t, n, p, "%s is out of range (allowed: %lld..%lld)", v, (long long)lo, (long long)hi);
        else terr(s->t, n, p, "'%s' is not an integer", v);
        return;
    }
    if (x < lo || x > hi) {
        terr(s->t, n, p, "%lld is out of range (allowed: %lld..%lld)", (long long)x, (long long)lo, (long long)hi);
        return;
    }
    *dst = x;
}
static void get_int(msec *s, const char *key, int *dst, int lo, int hi) {
    int64_t x = *dst;
    get_i64(s, key, &x, lo, hi);
    *dst = (int)x;
}
static void get_u64(msec *s, const char *key, uint64_t *dst) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, key, &n, p, sizeof p);
    if (!v) return;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || !*v || v[0] == '-') {
        terr(s->t, n, p, "'%s' is not an unsigned integer (allowed: 0..18446744073709551615)", v);
        return;
    }
    *dst = x;
}

// a number in lo..hi, or in [lo, hi) when hi_open (told as such: a bound just below 1 printed
// with %g read "1 is out of range (allowed: 0..1)")
static void get_num_in(msec *s, const char *key, double *dst, double lo, double hi, bool hi_open) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, key, &n, p, sizeof p);
    if (!v) return;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(x)) {
        terr(s->t, n, p, "'%s' is not a finite number", v);
        return;
    }
    if (x < lo || x > hi || (hi_open && x == hi)) {
        if (hi_open) terr(s->t, n, p, "%s is out of range (allowed: %g <= x < %g)", v, lo, hi);
        else terr(s->t, n, p, "%g is out of range (allowed: %g..%g)", x, lo, hi);
        return;
    }
    *dst = x;
}
static void get_num(msec *s, const char *key, double *dst, double lo, double hi) { get_num_in(s, key, dst, lo, hi, false); }

static bool parse_bool(const char *v, bool *out) {
    static const char *t[] = {"true", "yes", "on", "1"}, *f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, t[i])) { *out = true; return true; }
        if (!strcasecmp(v, f[i])) { *out = false; return true; }
    }
    return false;
}
static void get_bool(msec *s, const char *key, bool *dst) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, key, &n, p, sizeof p);
    if (!v) return;
    if (!parse_bool(v, dst)) terr(s->t, n, p, "'%s' is not a boolean (allowed: true, false)", v);
}

// train.recompute (and a stage's): true (every FLUX block under a recompute scope: -1), false
// (none: 0), N (the first N blocks; the rest keep their activations — the speed / memory middle
// ground) or auto (CFG_RECOMPUTE_AUTO: N chosen from the stage's first step, train/recompute_auto.h)
static void get_recompute(msec *s, int *dst) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, "recompute", &n, p, sizeof p);
    if (!v) return;
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x >= 0 && x <= 100000) { *dst = (int)x; return; }
    bool b;
    if (parse_bool(v, &b)) { *dst = b ? -1 : 0; return; }
    if (!strcasecmp(v, "all")) { *dst = -1; return; }
    if (!strcasecmp(v, "auto")) { *dst = CFG_RECOMPUTE_AUTO; return; }
    terr(s->t, n, p, "'%s' is not true, false, auto or a number of blocks (the first N FLUX blocks recompute)", v);
}

static void get_enum(msec *s, const char *key, int *dst, const char *const *names, int count) {
    ynode *n;
    char p[300];
    const char *v = scalar_at(s, key, &n, p, sizeof p);
    if (!v) return;
    for (int i = 0; i < count; i++)
        if (!strcmp(v, names[i])) { *dst = i; return; }
    char allowed[256] = "";
    for (int i = 0; i < count; i++) {
        size_t l = strlen(allowed);
        snprintf(allowed + l, sizeof allowed - l, "%s%s", i ? ", " : "", names[i]);
    }
    terr(s->t, n, p, "'%s' is not one of %s", v, allowed);
}

// ---------------------------------------------------------------------------------------------
// names
static const char *const MODE_N[] = {"unpaired", "paired", "mixed"};
static const char *const LR_N[] = {"constant", "cosine"};
static const char *const T_N[] = {"logit_normal", "flux_shift", "uniform"};
static const char *const W_N[] = {"none", "sigma_sqrt", "cosmap"};
static const char *const KV_N[] = {"zero_v", "default"};
static const char *const DT_N[] = {"auto", "f32", "bf16"};
static const char *const SIZES_N[] = {"tiny", "full"};
static const char *const TEXT_DEV_N[] = {"model", "cpu"};
const char *cfg_mode_name(cfg_mode m) { return (unsigned)m < 3 ? MODE_N[m] : "?"; }
const char *cfg_lr_kind_name(cfg_lr_kind k) { return (unsigned)k < 2 ? LR_N[k] : "?"; }
const char *cfg_timestep_name(cfg_timestep t) { return (unsigned)t < 3 ? T_N[t] : "?"; }
const char *cfg_weighting_name(cfg_weighting w) { return (unsigned)w < 3 ? W_N[w] : "?"; }
const char *cfg_init_kv_name(cfg_init_kv k) { return (unsigned)k < 2 ? KV_N[k] : "?"; }
const char *cfg_dtype_name(cfg_dtype d) { return (unsigned)d < 3 ? DT_N[d] : "?"; }

cm_dtype cfg_model_dtype(const train_config *c, cm_device dev) {
    return c->model.dtype == CFG_DTYPE_BF16 ? CM_BF16 : c->model.dtype == CFG_DTYPE_F32 ? CM_F32 : dev.type == CM_CUDA ? CM_BF16 : CM_F32;
}

// ---------------------------------------------------------------------------------------------
// defaults
void train_stage_defaults(train_stage *s, int index) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "stage%d", index + 1);
    s->mode = CFG_MODE_UNPAIRED;
    s->paired_share = 0.5;
    s->resolution = 512;
    s->n_buckets = 0;
    s->batch_size = 1;
    s->grad_accum = 1;
    s->steps = 1000;
    s->lr_schedule = CFG_LR_CONSTANT;
    s->warmup_steps = 0;
    s->lr = 0;
    s->min_lr_ratio = 0.1;
    s->recompute = CFG_RECOMPUTE_INHERIT;
}

void train_config_defaults(train_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->source, sizeof c->source, "(defaults)");
    snprintf(c->run.name, sizeof c->run.name, "run");
    snprintf(c->run.out_dir, sizeof c->run.out_dir, "runs");
    c->run.seed = 0;
    snprintf(c->run.device, sizeof c->run.device, "cpu");
    c->run.dev = CM_DEV_CPU;
    c->run.threads = 0;
    c->run.quiet = false;
    c->run.log_every = 10;
    c->run.ckpt_every = 1000;
    c->run.keep_last = 3;
    c->run.max_bad_steps = 10;
    c->run.step_timeout = -1;

    snprintf(c->model.sizes, sizeof c->model.sizes, "tiny");
    c->model.tiny = true;
    c->model.dtype = CFG_DTYPE_AUTO;
    train_tiny_dims *d = &c->model.tiny_dims;
    d->flux_double = 2, d->flux_single = 2, d->flux_heads = 2, d->flux_head_dim = 16;
    d->vision_hidden = 32, d->vision_layers = 2, d->vision_heads = 2, d->vision_patch = 7, d->vision_image = 28;
    d->text_dim = 32, d->text_len = 16, d->pooled_dim = 16;
    d->proj_heads = 2, d->proj_head_dim = 16, d->proj_layers = 1, d->proj_queries = 8, d->proj_depth = 1;
    d->vae_channels = 16, d->latent_channels = 16;

    snprintf(c->data.path, sizeof c->data.path, "runs/demo-data");
    c->data.generate_demo_if_missing = false;
    c->data.demo_characters = 12, c->data.demo_per_character = 6, c->data.demo_size = 128;
    c->data.ref_size = 384;
    c->data.threads = 0;
    c->data.prefetch = 2;
    c->data.bucket_step = 64;
    c->data.max_aspect = 2.0;
    c->data.random_crop = true;
    c->data.random_flip = false;

    c->eval.scale = 0.9;
    c->eval.guidance = 3.5;
    c->eval.steps = 28;
    c->eval.seeds = 1;
    c->validation.samples = 16;
    c->validation.n_sigmas = 3;
    c->validation.sigmas[0] = 0.25, c->validation.sigmas[1] = 0.5, c->validation.sigmas[2] = 0.75;
    c->adapter.ip_scale = 1.0;
    c->adapter.init_kv = CFG_INIT_KV_ZERO_V;

    c->train.caption_drop = 0.1;
    c->train.ref_drop = 0.1;
    c->train.timestep = CFG_T_LOGIT_NORMAL;
    c->train.logit_mean = 0.0;
    c->train.logit_std = 1.0;
    c->train.shift_base = 0.5;
    c->train.shift_max = 1.15;
    c->train.guidance = 1.0;
    c->train.weighting = CFG_W_NONE;
    c->train.vae_sample = true;
    c->train.recompute = 0;

    c->optimizer.lr = 1e-4;
    c->optimizer.beta1 = 0.9;
    c->optimizer.beta2 = 0.999;
    c->optimizer.eps = 1e-8;
    c->optimizer.weight_decay = 0.01;
    c->optimizer.grad_clip = 1.0;
    c->optimizer.shard_state = true;
    c->optimizer.reduce_bucket_mb = 25;
    c->optimizer.ema_warmup = true;
    c->n_stages = 0;
}

// ---------------------------------------------------------------------------------------------
// sections
int cfg_parse_device(const char *s, cm_device *d) {
    if (!strcmp(s, "cpu")) { *d = CM_DEV_CPU; return 0; }
    if (!strcmp(s, "cuda")) { *d = (cm_device){CM_CUDA, 0}; return 0; }
    if (!strncmp(s, "cuda:", 5) && s[5]) {
        char *end;
        long i = strtol(s + 5, &end, 10);
        if (*end || i < 0 || i > 255) return -1;
        *d = (cm_device){CM_CUDA, (int)i};
        return 0;
    }
    return -1;
}

static void type_run(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "run");
    get_str(&s, "name", c->run.name, sizeof c->run.name);
    get_str(&s, "out_dir", c->run.out_dir, sizeof c->run.out_dir);
    get_u64(&s, "seed", &c->run.seed);
    get_str(&s, "device", c->run.device, sizeof c->run.device);
    get_int(&s, "threads", &c->run.threads, 0, 4096);
    get_bool(&s, "quiet", &c->run.quiet);
    get_int(&s, "log_every", &c->run.log_every, 1, 1000000000);
    get_int(&s, "ckpt_every", &c->run.ckpt_every, 0, 1000000000);
    get_int(&s, "keep_last", &c->run.keep_last, 0, 1000000);
    get_int(&s, "max_bad_steps", &c->run.max_bad_steps, 1, 1000000000);
    ynode *to = sec_get(&s, "step_timeout");
    if (to) {
        char *end;
        const char *v = to->kind == Y_SCALAR ? to->s : "";
        double x = strtod(v, &end);
        if (!strcmp(v, "auto")) c->run.step_timeout = -1;
        else if (*v && !*end && x >= 0 && x <= 1e9) c->run.step_timeout = x;
        else terr(t, to, "run.step_timeout", "'%s' is not 'auto' or a number of seconds >= 0 (0: off)", v);
    }
    sec_close(&s);
    if (!c->run.name[0] || strchr(c->run.name, '/') || !strcmp(c->run.name, ".") || !strcmp(c->run.name, ".."))
        terr(t, s.map, "run.name", "'%s' must be a non-empty name without '/' (and not . or ..: the run folder is "
             "run.out_dir/run.name)", c->run.name);
    if (!c->run.out_dir[0]) terr(t, s.map, "run.out_dir", "must not be empty");
    if (cfg_parse_device(c->run.device, &c->run.dev))
        terr(t, s.map, "run.device", "'%s' is not a device (allowed: cpu, cuda, cuda:N)", c->run.device);
}

static void type_tiny(tctx *t, ynode *node, train_tiny_dims *d) {
    msec s = sec_open(t, node, "model.tiny");
#define TD(k, lo, hi) get_int(&s, #k, &d->k, lo, hi)
    TD(flux_double, 0, 64); TD(flux_single, 0, 128); TD(flux_heads, 1, 64); TD(flux_head_dim, 4, 256);
    TD(vision_hidden, 4, 4096); TD(vision_layers, 1, 64); TD(vision_heads, 1, 64); TD(vision_patch, 1, 64);
    TD(vision_image, 4, 1024);
    TD(text_dim, 4, 8192); TD(text_len, 1, 1024); TD(pooled_dim, 4, 4096);
    TD(proj_heads, 1, 64); TD(proj_head_dim, 4, 256); TD(proj_layers, 1, 16); TD(proj_queries, 1, 4096);
    TD(proj_depth, 1, 16);
    TD(vae_channels, 4, 512); TD(latent_channels, 1, 64);
#undef TD
    sec_close(&s);
    if (d->flux_head_dim % 4) terr(t, node, "model.tiny.flux_head_dim", "%d must be a multiple of 4 (RoPE axes)", d->flux_head_dim);
    if (d->vision_hidden % d->vision_heads)
        terr(t, node, "model.tiny.vision_hidden", "%d is not divisible by vision_heads %d", d->vision_hidden, d->vision_heads);
}

static void type_model(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "model");
    int sizes = c->model.tiny ? 0 : 1;
    get_enum(&s, "sizes", &sizes, SIZES_N, 2);
    snprintf(c->model.sizes, sizeof c->model.sizes, "%s", SIZES_N[sizes]);
    c->model.tiny = sizes == 0;
    ynode *tn = sec_get(&s, "tiny");
    if (tn || (s.map && yfind(s.map, "tiny") >= 0)) type_tiny(t, tn, &c->model.tiny_dims);
    get_str(&s, "flux", c->model.flux, CFG_PATH);
    get_str(&s, "siglip", c->model.siglip, CFG_PATH);
    get_str(&s, "dinov2", c->model.dinov2, CFG_PATH);
    get_str(&s, "vae", c->model.vae, CFG_PATH);
    get_str(&s, "t5", c->model.t5, CFG_PATH);
    get_str(&s, "clip", c->model.clip, CFG_PATH);
    get_str(&s, "adapter_init", c->model.adapter_init, CFG_PATH);
    get_str(&s, "text_cache", c->model.text_cache, CFG_PATH);
    get_str(&s, "ref_cache", c->model.ref_cache, CFG_PATH);
    get_str(&s, "latent_cache", c->model.latent_cache, CFG_PATH);
    int dt = c->model.dtype;
    get_enum(&s, "dtype", &dt, DT_N, 3);
    c->model.dtype = dt;
    int td = c->model.text_cpu;
    get_enum(&s, "text_device", &td, TEXT_DEV_N, 2);
    c->model.text_cpu = td == 1;
    sec_close(&s);
    if (!c->model.tiny) {
        struct { const char *k; const char *v; const char *what; } req[] = {
            {"flux", c->model.flux, "the FLUX.1-dev transformer (diffusers folder or single file)"},
            {"siglip", c->model.siglip, "google/siglip-so400m-patch14-384"},
            {"dinov2", c->model.dinov2, "facebook/dinov2-giant"},
            {"vae", c->model.vae, "the FLUX VAE (ae.safetensors or the diffusers vae/ folder)"},
            {"t5", c->model.t5, "the T5-XXL text encoder"},
            {"clip", c->model.clip, "the CLIP-L text encoder"},
        };
        for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
            if (req[i].v[0]) continue;
            char p[64];
            snprintf(p, sizeof p, "model.%s", req[i].k);
            terr(t, s.map, p, "required when model.sizes is full: a path to %s", req[i].what);
        }
    }
}

static void type_data(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "data");
    get_str(&s, "path", c->data.path, CFG_PATH);
    get_bool(&s, "generate_demo_if_missing", &c->data.generate_demo_if_missing);
    get_int(&s, "demo_characters", &c->data.demo_characters, 1, 100000);
    get_int(&s, "demo_per_character", &c->data.demo_per_character, 2, 10000);
    get_int(&s, "demo_size", &c->data.demo_size, 16, 4096);
    get_int(&s, "ref_size", &c->data.ref_size, 4, 4096);
    get_int(&s, "threads", &c->data.threads, 0, 1024);
    get_int(&s, "prefetch", &c->data.prefetch, 1, 64);
    get_int(&s, "bucket_step", &c->data.bucket_step, 1, 1024);
    get_num(&s, "max_aspect", &c->data.max_aspect, 1.0, 16.0);
    get_bool(&s, "random_crop", &c->data.random_crop);
    get_bool(&s, "random_flip", &c->data.random_flip);
    sec_close(&s);
    // bucket sides are multiples of the step; FLUX packs 2x2 latent patches of the VAE's 8x cut,
    // so a side off 16 gives an odd latent grid and the first batch in that bucket stops the run
    if (c->data.bucket_step % 16) {
        int i = s.map ? yfind(s.map, "bucket_step") : -1;
        terr(t, i >= 0 ? s.map->v[i] : s.map, "data.bucket_step",
             "%d must be a multiple of 16 (bucket sides feed the VAE's 8x downsampling and FLUX's 2x2 patches, as "
             "stages[].buckets and stages[].resolution)", c->data.bucket_step);
    }
}

static void type_adapter(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "adapter");
    get_num(&s, "ip_scale", &c->adapter.ip_scale, 0.0, 100.0);
    int kv = c->adapter.init_kv;
    get_enum(&s, "init_kv", &kv, KV_N, 2);
    c->adapter.init_kv = kv;
    ynode *n = sec_get(&s, "freeze");
    if (n) {
        if (n->kind != Y_SEQ || n->n > CFG_MAX_FREEZE) {
            terr(t, n, "adapter.freeze", "expected a list of at most %d weight-name prefixes, e.g. [image_proj] or "
                 "[ip_adapter]", CFG_MAX_FREEZE);
        } else {
            c->adapter.n_freeze = n->n;
            for (int i = 0; i < n->n; i++) {
                char p[48];
                snprintf(p, sizeof p, "adapter.freeze[%d]", i);
                const char *v = n->v[i]->kind == Y_SCALAR ? n->v[i]->s : "";
                if (!*v || strlen(v) >= CFG_NAME) terr(t, n->v[i], p, "expected a weight-name prefix such as image_proj");
                else snprintf(c->adapter.freeze[i], CFG_NAME, "%s", v);
            }
        }
    }
    sec_close(&s);
}

static void type_validation(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "validation");
    get_int(&s, "every", &c->validation.every, 0, 1000000000);
    get_str(&s, "path", c->validation.path, CFG_PATH);
    get_int(&s, "samples", &c->validation.samples, 1, 1000000);
    get_int(&s, "batch_size", &c->validation.batch_size, 0, 1000000);
    ynode *n = sec_get(&s, "sigmas");
    if (n) {
        if (n->kind != Y_SEQ || n->n < 1 || n->n > CFG_MAX_SIGMAS) {
            terr(t, n, "validation.sigmas", "expected a list of 1 to %d noise levels in (0, 1), e.g. [0.25, 0.5, 0.75]", CFG_MAX_SIGMAS);
        } else {
            c->validation.n_sigmas = n->n;
            for (int i = 0; i < n->n; i++) {
                char *end, p[48];
                const char *v = n->v[i]->kind == Y_SCALAR ? n->v[i]->s : "";
                double x = strtod(v, &end);
                snprintf(p, sizeof p, "validation.sigmas[%d]", i);
                if (!*v || *end || !(x > 0 && x < 1)) {
                    terr(t, n->v[i], p, "'%s' is not a noise level in (0, 1)", v);
                    continue;
                }
                c->validation.sigmas[i] = x;
                // each σ names a key of loss_by_sigma and a TensorBoard tag (printed with %g): two that
                // print alike would write one JSON key twice and mix two curves under one tag
                char a[32], b[32];
                snprintf(a, sizeof a, "%g", x);
                for (int k = 0; k < i; k++) {
                    snprintf(b, sizeof b, "%g", c->validation.sigmas[k]);
                    if (!strcmp(a, b)) {
                        terr(t, n->v[i], p, "%s repeats validation.sigmas[%d] (%s); each noise level once (they are told apart "
                             "to 6 significant digits)", v, k, b);
                        break;
                    }
                }
            }
        }
    }
    sec_close(&s);
}

static void type_eval(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "eval");
    get_int(&s, "every", &c->eval.every, 0, 1000000000);
    get_str(&s, "pairs", c->eval.pairs, CFG_PATH);
    get_num(&s, "scale", &c->eval.scale, 0.0, 100.0);
    get_num(&s, "guidance", &c->eval.guidance, 0.0, 100.0);
    get_int(&s, "steps", &c->eval.steps, 1, 1024);
    get_int(&s, "seeds", &c->eval.seeds, 1, 1024);
    get_int(&s, "size", &c->eval.size, 0, 8192);
    get_str(&s, "clip", c->eval.clip, CFG_PATH);
    get_bool(&s, "ema", &c->eval.ema);
    if (c->eval.ema && !(c->optimizer.ema > 0))  // (optimizer: typed before eval)
        terr(t, root, "eval.ema", "true needs a weight average to score: set optimizer.ema (e.g. 0.9999)");
    if (c->eval.every > 0 && !c->eval.pairs[0]) terr(t, root, "eval.pairs", "needed when eval.every is above 0 (a JSONL of {\"ref\", \"prompt\"} lines)");
    sec_close(&s);
}

static void type_train(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "train");
    get_num(&s, "caption_drop", &c->train.caption_drop, 0.0, 1.0);
    get_num(&s, "ref_drop", &c->train.ref_drop, 0.0, 1.0);
    int ts = c->train.timestep;
    get_enum(&s, "timestep", &ts, T_N, 3);
    c->train.timestep = ts;
    get_num(&s, "logit_mean", &c->train.logit_mean, -10.0, 10.0);
    get_num(&s, "logit_std", &c->train.logit_std, 1e-6, 10.0);
    get_num(&s, "shift_base", &c->train.shift_base, -10.0, 10.0);
    get_num(&s, "shift_max", &c->train.shift_max, -10.0, 10.0);
    get_num(&s, "guidance", &c->train.guidance, 0.0, 100.0);
    int w = c->train.weighting;
    get_enum(&s, "weighting", &w, W_N, 3);
    c->train.weighting = w;
    get_bool(&s, "vae_sample", &c->train.vae_sample);
    get_recompute(&s, &c->train.recompute);
    sec_close(&s);
}

static void type_optimizer(tctx *t, ynode *root, train_config *c) {
    msec s = sec_open(t, root, "optimizer");
    get_num(&s, "lr", &c->optimizer.lr, 0.0, 1.0);
    // betas: a list [b1, b2] or beta1 / beta2
    ynode *b = sec_get(&s, "betas");
    if (b) {
        if (b->kind != Y_SEQ || b->n != 2) {
            terr(t, b, "optimizer.betas", "expected a list of two numbers [beta1, beta2], e.g. [0.9, 0.999]");
        } else {
            for (int i = 0; i < 2; i++) {
                char *end;
                const char *v = b->v[i]->kind == Y_SCALAR ? b->v[i]->s : "";
                double x = strtod(v, &end);
                char p[40];
                snprintf(p, sizeof p, "optimizer.betas[%d]", i);
                if (!*v || *end || !(x >= 0 && x < 1)) terr(t, b->v[i], p, "'%s' is not a number in [0, 1)", v);
                else if (i == 0) c->optimizer.beta1 = x;
                else c->optimizer.beta2 = x;
            }
        }
    }
    get_num_in(&s, "beta1", &c->optimizer.beta1, 0.0, 1.0, true);
    get_num_in(&s, "beta2", &c->optimizer.beta2, 0.0, 1.0, true);
    get_num(&s, "eps", &c->optimizer.eps, 1e-30, 1.0);
    get_num(&s, "weight_decay", &c->optimizer.weight_decay, 0.0, 10.0);
    get_num(&s, "grad_clip", &c->optimizer.grad_clip, 0.0, 1e9);
    get_bool(&s, "shard_state", &c->optimizer.shard_state);
    get_num(&s, "reduce_bucket_mb", &c->optimizer.reduce_bucket_mb, 0.0, 65536.0);
    static const char *const SDT_N[] = {"f32", "bf16"};
    int sdt = c->optimizer.state_bf16;
    get_enum(&s, "state_dtype", &sdt, SDT_N, 2);
    c->optimizer.state_bf16 = sdt == 1;
    get_num_in(&s, "ema", &c->optimizer.ema, 0.0, 1.0, true);
    get_bool(&s, "ema_warmup", &c->optimizer.ema_warmup);
    sec_close(&s);
}

static void type_buckets(tctx *t, ynode *n, const char *path, train_stage *st) {
    st->n_buckets = 0;
    if (n->kind == Y_SCALAR) {
        if (!strcmp(n->s, "auto")) return;
        terr(t, n, path, "'%s' is not 'auto' or a list of [W, H] pairs", n->s);
        return;
    }
    if (n->kind != Y_SEQ) {
        terr(t, n, path, "expected 'auto' or a list of [W, H] pairs, found %s", kind_name(n->kind));
        return;
    }
    if (n->n == 0 || n->n > CFG_MAX_BUCKETS) {  // [] is not auto: an emptied list would train on buckets nobody gave
        terr(t, n, path, "%d buckets (allowed: 1..%d, or 'auto')", n->n, CFG_MAX_BUCKETS);
        return;
    }
    for (int i = 0; i < n->n; i++) {
        ynode *b = n->v[i];
        char p[320];
        snprintf(p, sizeof p, "%s[%d]", path, i);
        int64_t wh[2];
        bool ok = false;
        if (b->kind == Y_SEQ && b->n == 2 && b->v[0]->kind == Y_SCALAR && b->v[1]->kind == Y_SCALAR)
            ok = parse_i64(b->v[0]->s, &wh[0]) && parse_i64(b->v[1]->s, &wh[1]);
        else if (b->kind == Y_SCALAR) {
            long long w = 0, h = 0;
            char x;
            int used = 0;  // the whole text: "512x768 768x512" (a missing comma) is not 512x768
            ok = sscanf(b->s, "%lld%c%lld%n", &w, &x, &h, &used) == 3 && (x == 'x' || x == 'X') && !b->s[used];
            wh[0] = w, wh[1] = h;
        }
        if (!ok) {
            terr(t, b, p, "expected [W, H] (or \"WxH\")");
            return;
        }
        if (wh[0] < 16 || wh[0] > 8192 || wh[1] < 16 || wh[1] > 8192 || wh[0] % 16 || wh[1] % 16) {
            terr(t, b, p, "%lldx%lld: sides must be multiples of 16 in 16..8192", (long long)wh[0], (long long)wh[1]);
            return;
        }
        st->buckets[i][0] = (int)wh[0];
        st->buckets[i][1] = (int)wh[1];
        st->n_buckets = i + 1;
    }
}

static void type_stages(tctx *t, ynode *n, train_config *c) {
    if (!n) {
        terr(t, NULL, "stages", "required: a list of at least one stage (name, mode, resolution, batch_size, steps, ...)");
        return;
    }
    if (n->kind != Y_SEQ) {
        terr(t, n, "stages", "expected a list of stages, found %s", kind_name(n->kind));
        return;
    }
    if (n->n < 1 || n->n > CFG_MAX_STAGES) {
        terr(t, n, "stages", "%d stages (allowed: 1..%d)", n->n, CFG_MAX_STAGES);
        return;
    }
    c->n_stages = n->n;
    for (int i = 0; i < n->n; i++) {
        train_stage *st = &c->stages[i];
        train_stage_defaults(st, i);
        char path[64];
        snprintf(path, sizeof path, "stages[%d]", i);
        msec s = sec_open(t, n->v[i], path);
        if (!s.map && !t->failed) terr(t, n->v[i], path, "expected a mapping (name, mode, resolution, ...)");
        get_str(&s, "name", st->name, sizeof st->name);
        get_str(&s, "data", st->data, sizeof st->data);
        int m = st->mode;
        get_enum(&s, "mode", &m, MODE_N, 3);
        st->mode = m;
        get_num(&s, "paired_share", &st->paired_share, 0.0, 1.0);
        get_int(&s, "resolution", &st->resolution, 16, 8192);
        ynode *b = sec_get(&s, "buckets");
        if (b) {
            char p[80];
            snprintf(p, sizeof p, "%s.buckets", path);
            type_buckets(t, b, p, st);
        }
        get_int(&s, "batch_size", &st->batch_size, 1, 1 << 20);
        get_int(&s, "grad_accum", &st->grad_accum, 1, 1 << 16);
        get_i64(&s, "steps", &st->steps, 0, (int64_t)1 << 40);
        int lk = st->lr_schedule;
        get_enum(&s, "lr_schedule", &lk, LR_N, 2);
        st->lr_schedule = lk;
        get_i64(&s, "warmup_steps", &st->warmup_steps, 0, (int64_t)1 << 40);
        get_num(&s, "lr", &st->lr, 0.0, 1.0);
        get_num(&s, "min_lr_ratio", &st->min_lr_ratio, 0.0, 1.0);
        get_recompute(&s, &st->recompute);
        sec_close(&s);
        char p[80];
        if (st->resolution % 16) {
            snprintf(p, sizeof p, "%s.resolution", path);
            terr(t, n->v[i], p, "%d must be a multiple of 16", st->resolution);
        }
        // auto buckets are W x H <= resolution² in bucket_step multiples within max_aspect: where none
        // fits, the loader would stop the run only when the stage begins, after the stages before it
        int bk[BUCKETS_MAX][2];
        if (!st->n_buckets && st->steps > 0 && !(c->data.bucket_step % 16) &&
            buckets_make(st->resolution, c->data.bucket_step, c->data.max_aspect, bk, BUCKETS_MAX) < 1) {
            snprintf(p, sizeof p, "%s.resolution", path);
            int r = s.map ? yfind(s.map, "resolution") : -1;
            terr(t, r >= 0 ? s.map->v[r] : n->v[i], p,
                 "%d makes no aspect bucket (buckets: auto) with sides multiples of data.bucket_step %d, W x H <= %d² "
                 "and aspect <= data.max_aspect %g; use a resolution that is a multiple of the step (e.g. %d), a smaller data.bucket_step, or "
                 "give %s.buckets", st->resolution, c->data.bucket_step, st->resolution, c->data.max_aspect,
                 c->data.bucket_step * ((st->resolution + c->data.bucket_step - 1) / c->data.bucket_step), path);
        }
        if (!st->name[0]) {
            snprintf(p, sizeof p, "%s.name", path);
            terr(t, n->v[i], p, "must not be empty");
        }
        if (st->mode == CFG_MODE_MIXED && st->paired_share <= 0) {
            snprintf(p, sizeof p, "%s.paired_share", path);
            terr(t, n->v[i], p, "a mixed stage needs a share of paired samples in (0, 1]");
        }
    }
}

static int type_root(ynode *root, train_config *c, const char *name, char *err, size_t errlen) {
    tctx t = {.src = name, .err = err, .errlen = errlen};
    msec s = sec_open(&t, root, "");
    type_run(&t, sec_get(&s, "run"), c);
    type_model(&t, sec_get(&s, "model"), c);
    type_data(&t, sec_get(&s, "data"), c);
    type_adapter(&t, sec_get(&s, "adapter"), c);
    type_train(&t, sec_get(&s, "train"), c);
    type_optimizer(&t, sec_get(&s, "optimizer"), c);
    type_eval(&t, sec_get(&s, "eval"), c);
    type_validation(&t, sec_get(&s, "validation"), c);
    type_stages(&t, sec_get(&s, "stages"), c);
    // a cached latent is its target's centre cut: a random crop moves with every epoch
    if (c->model.latent_cache[0] && c->data.random_crop)
        terr(&t, s.map, "model.latent_cache", "needs data.random_crop: false — the cache holds each target's latent cut from the "
             "centre of its bucket's resize, and a random crop moves every epoch (--set data.random_crop=false, here and for "
             "`cameo cache-latents`)");
    // after the stages: when each names its own dataset, data.path is not read and may be empty
    if (!c->data.path[0] && cfg_data_path_used(c))
        terr(&t, s.map, "data.path", "must name the dataset folder (one holding manifest.json) that the stages without "
             "their own stages[].data read");
    sec_close(&s);
    return t.failed ? -1 : 0;
}

int train_config_parse(train_config *c, const char *yaml, size_t len, const char *name, const char *const *sets,
                       int n_sets, char *err, size_t errlen) {
    train_config_defaults(c);
    snprintf(c->source, sizeof c->source, "%s", name);
    ynode *root = yparse(yaml, len, name, err, errlen);
    if (!root) return -1;
    if (root->kind == Y_SCALAR && yis_null(root)) {
        yfree(root);
        root = ynew(Y_MAP, 1);
    }
    if (root->kind != Y_MAP) {
        cm_seterr(err, errlen, "%s: the config must be a mapping (run:, model:, data:, ..., stages:), found %s", name,
               kind_name(root->kind));
        yfree(root);
        return -1;
    }
    for (int i = 0; i < n_sets; i++) {
        if (apply_set(root, sets[i], err, errlen)) {
            yfree(root);
            return -1;
        }
    }
    int rc = type_root(root, c, name, err, errlen);
    yfree(root);
    return rc;
}

int train_config_load(train_config *c, const char *path, const char *const *sets, int n_sets, char *err, size_t errlen) {
    if (!path || !path[0])
        return train_config_parse(c, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "<embedded configs/tiny.yaml>",
                                  sets, n_sets, err, errlen);
    FILE *f = fopen(path, "rb");
    if (!f) {
        cm_seterr(err, errlen, "%s: cannot open the config: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 14, n = 0;
    char *buf = xrealloc(NULL, cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            if (cap > ((size_t)64 << 20)) {
                cm_seterr(err, errlen, "%s: larger than 64 MiB; not a config", path);
                fclose(f);
                free(buf);
                return -1;
            }
            buf = xrealloc(buf, cap *= 2);
        }
    }
    fclose(f);
    int rc = train_config_parse(c, buf, n, path, sets, n_sets, err, errlen);
    free(buf);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// checks against the file system
static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// where each published model comes from: a missing one's error says what to download
#define CFG_FLUX_HUB "huggingface.co/black-forest-labs/FLUX.1-dev (gated: accept its licence there first)"
static const struct { const char *key, *what, *hub; } cfg_weights_src[] = {
    {"flux", "FLUX.1-dev's transformer/ folder (diffusers layout) or flux1-dev.safetensors", CFG_FLUX_HUB},
    {"siglip", "the SigLIP so400m folder", "huggingface.co/google/siglip-so400m-patch14-384"},
    {"dinov2", "the DINOv2 giant folder", "huggingface.co/facebook/dinov2-giant"},
    {"vae", "FLUX.1-dev's vae/ folder", CFG_FLUX_HUB},
    {"t5", "FLUX.1-dev's text_encoder_2/ folder (T5-XXL)", CFG_FLUX_HUB},
    {"clip", "FLUX.1-dev's text_encoder/ folder (CLIP-L)", CFG_FLUX_HUB},
};

int train_config_check_paths(const train_config *c, char *err, size_t errlen) {
    if (!c->model.tiny) {
        const char *v[] = {c->model.flux, c->model.siglip, c->model.dinov2, c->model.vae, c->model.t5, c->model.clip};
        int first = -1;
        char also[128] = "";  // the other missing keys, so one message lists every download
        for (int i = 0; i < 6; i++) {
            if (!v[i][0]) {
                cm_seterr(err, errlen, "%s: model.%s: required when model.sizes is full (%s, from %s)", c->source,
                          cfg_weights_src[i].key, cfg_weights_src[i].what, cfg_weights_src[i].hub);
                return -1;
            }
            if (exists(v[i])) continue;
            if (first < 0) first = i;
            else {
                size_t n = strlen(also);
                snprintf(also + n, sizeof also - n, "%smodel.%s", n ? ", " : "", cfg_weights_src[i].key);
            }
        }
        if (first >= 0 && c->model.adapter_init[0] && !exists(c->model.adapter_init)) {
            size_t n = strlen(also);
            snprintf(also + n, sizeof also - n, "%smodel.adapter_init", n ? ", " : "");
        }
        if (first >= 0) {
            cm_seterr(err, errlen, "%s: model.%s: '%s' does not exist: it should be %s, from %s%s%s (README.md, \"The published "
                      "weights\"; or point model.%s at your copy)", c->source, cfg_weights_src[first].key, v[first],
                      cfg_weights_src[first].what, cfg_weights_src[first].hub, also[0] ? "; also missing: " : "", also,
                      cfg_weights_src[first].key);
            return -1;
        }
    }
    if (c->model.adapter_init[0] && !exists(c->model.adapter_init)) {
        cm_seterr(err, errlen, "%s: model.adapter_init: '%s' does not exist: it should be the released "
               "instantcharacter_ip-adapter.bin, from huggingface.co/tencent/InstantCharacter (or an adapter .safetensors: "
               "cameo export's, a checkpoint's; or leave adapter_init empty to start from a fresh adapter)", c->source,
               c->model.adapter_init);
        return -1;
    }
    char man[CFG_PATH + 32];
    snprintf(man, sizeof man, "%s/manifest.json", c->data.path);
    if (cfg_data_path_used(c) && !exists(man) && !c->data.generate_demo_if_missing) {
        cm_seterr(err, errlen, "%s: data.path: '%s' holds no dataset (no manifest.json); build one with `cameo data build` "
               "or set data.generate_demo_if_missing: true", c->source, c->data.path);
        return -1;
    }
    for (int i = 0; i < c->n_stages; i++) {
        snprintf(man, sizeof man, "%s/manifest.json", c->stages[i].data);
        if (c->stages[i].data[0] && !exists(man)) {
            cm_seterr(err, errlen, "%s: stages[%d].data: '%s' holds no dataset (no manifest.json); build it with `cameo data "
                      "build`, or leave it out to read data.path", c->source, i, c->stages[i].data);
            return -1;
        }
    }
    snprintf(man, sizeof man, "%s/manifest.json", c->validation.path);
    if (c->validation.every > 0 && c->validation.path[0] && !exists(man)) {
        cm_seterr(err, errlen, "%s: validation.path: '%s' holds no dataset (no manifest.json); build the held-out set with "
                  "`cameo data build`, or leave validation.path empty to validate on samples of data.path", c->source,
                  c->validation.path);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// writing
typedef struct { char *s; size_t n, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k >= 0 && b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)(k > 0 ? k : 0) + 256) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
}
// YAML double-quoted string. What YAML does not keep as written is escaped: C0 controls, DEL and
// C1 controls (U+0080..U+009F) are not allowed raw in a stream (the file would not read back: a
// checkpoint's config.yaml and every resume from it refused), and the line breaks NEL, LS and PS
// would be folded into spaces. Values are valid UTF-8 (libyaml checks files; --set checks its own).
static void sb_str(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        uint32_t cp;
        int k = *p >= 0x80 ? cfg_utf8_len(p, &cp) : 0;
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02x", *p);
        else if (k && cp <= 0x9f) sb_printf(b, "\\x%02x", (unsigned)cp), p += k - 1;
        else if (k && (cp == 0x2028 || cp == 0x2029)) sb_printf(b, "\\u%04x", (unsigned)cp), p += k - 1;
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}
// shortest text that reads back to the same double
static void sb_num(sbuf *b, double x) {
    char t[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, x);
        if (strtod(t, NULL) == x) break;
    }
    sb_printf(b, "%s", t);
}

bool cfg_data_path_used(const train_config *c) {
    for (int s = 0; s < c->n_stages; s++)
        if (!c->stages[s].data[0]) return true;
    return false;
}

const char *cfg_stage_data(const train_config *c, int s) {
    return s >= 0 && s < c->n_stages && c->stages[s].data[0] ? c->stages[s].data : c->data.path;
}

int cfg_run_datasets(const train_config *c, const char *paths[CFG_MAX_STAGES + 1]) {
    int n = 0;
    for (int s = 0; s <= c->n_stages; s++) {
        const char *p = s < c->n_stages ? (c->stages[s].steps > 0 ? cfg_stage_data(c, s) : NULL)
                                        : (c->validation.every > 0 ? (c->validation.path[0] ? c->validation.path : c->data.path) : NULL);
        bool seen = !p;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(paths[i], p);
        if (!seen) paths[n++] = p;
    }
    return n;
}

char *train_config_to_yaml(const train_config *c) {
    sbuf b = {0};
    // the source is a file name, any bytes: a comment must stay one valid UTF-8 line to read back
    sb_printf(&b, "# resolved cameo training config (from ");
    for (const unsigned char *p = (const unsigned char *)c->source; *p; p++) {
        uint32_t cp;
        int k = *p >= 0x80 ? cfg_utf8_len(p, &cp) : 0;
        if (k && cp > 0x9f && cp != 0x2028 && cp != 0x2029) sb_printf(&b, "%.*s", k, (const char *)p), p += k - 1;
        else sb_printf(&b, "%c", *p >= 0x20 && *p < 0x7f ? *p : '?');
    }
    sb_printf(&b, "); every field, defaults filled in\n");
    sb_printf(&b, "run:\n  name: "); sb_str(&b, c->run.name);
    sb_printf(&b, "\n  out_dir: "); sb_str(&b, c->run.out_dir);
    sb_printf(&b, "\n  seed: %llu\n  device: ", (unsigned long long)c->run.seed); sb_str(&b, c->run.device);
    sb_printf(&b, "\n  threads: %d\n  quiet: %s\n  log_every: %d\n  ckpt_every: %d\n  keep_last: %d\n  max_bad_steps: %d\n",
              c->run.threads, c->run.quiet ? "true" : "false", c->run.log_every, c->run.ckpt_every, c->run.keep_last,
              c->run.max_bad_steps);
    if (c->run.step_timeout < 0) sb_printf(&b, "  step_timeout: auto\n");
    else {
        sb_printf(&b, "  step_timeout: ");
        sb_num(&b, c->run.step_timeout);
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "model:\n  sizes: %s\n  dtype: %s\n  text_device: %s\n  tiny:\n", c->model.sizes, cfg_dtype_name(c->model.dtype),
              c->model.text_cpu ? "cpu" : "model");
    const train_tiny_dims *d = &c->model.tiny_dims;
#define TD(k) sb_printf(&b, "    " #k ": %d\n", d->k)
    TD(flux_double); TD(flux_single); TD(flux_heads); TD(flux_head_dim);
    TD(vision_hidden); TD(vision_layers); TD(vision_heads); TD(vision_patch); TD(vision_image);
    TD(text_dim); TD(text_len); TD(pooled_dim);
    TD(proj_heads); TD(proj_head_dim); TD(proj_layers); TD(proj_queries); TD(proj_depth);
    TD(vae_channels); TD(latent_channels);
#undef TD
    struct { const char *k, *v; } w[] = {{"flux", c->model.flux},   {"siglip", c->model.siglip}, {"dinov2", c->model.dinov2},
                                         {"vae", c->model.vae},     {"t5", c->model.t5},         {"clip", c->model.clip},
                                         {"adapter_init", c->model.adapter_init}, {"text_cache", c->model.text_cache},
                                         {"ref_cache", c->model.ref_cache}, {"latent_cache", c->model.latent_cache}};
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
        sb_printf(&b, "  %s: ", w[i].k);
        sb_str(&b, w[i].v);
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "data:\n  path: "); sb_str(&b, c->data.path);
    sb_printf(&b, "\n  generate_demo_if_missing: %s\n  demo_characters: %d\n  demo_per_character: %d\n  demo_size: %d\n"
              "  ref_size: %d\n  threads: %d\n  prefetch: %d\n  bucket_step: %d\n  max_aspect: ",
              c->data.generate_demo_if_missing ? "true" : "false", c->data.demo_characters, c->data.demo_per_character,
              c->data.demo_size, c->data.ref_size, c->data.threads, c->data.prefetch, c->data.bucket_step);
    sb_num(&b, c->data.max_aspect);
    sb_printf(&b, "\n  random_crop: %s\n  random_flip: %s", c->data.random_crop ? "true" : "false",
              c->data.random_flip ? "true" : "false");
    sb_printf(&b, "\nadapter:\n  ip_scale: "); sb_num(&b, c->adapter.ip_scale);
    sb_printf(&b, "\n  init_kv: %s\n  freeze: [", cfg_init_kv_name(c->adapter.init_kv));
    for (int i = 0; i < c->adapter.n_freeze; i++) {
        if (i) sb_printf(&b, ", ");
        sb_str(&b, c->adapter.freeze[i]);
    }
    sb_printf(&b, "]\n");
    sb_printf(&b, "train:\n  caption_drop: "); sb_num(&b, c->train.caption_drop);
    sb_printf(&b, "\n  ref_drop: "); sb_num(&b, c->train.ref_drop);
    sb_printf(&b, "\n  timestep: %s\n  logit_mean: ", cfg_timestep_name(c->train.timestep)); sb_num(&b, c->train.logit_mean);
    sb_printf(&b, "\n  logit_std: "); sb_num(&b, c->train.logit_std);
    sb_printf(&b, "\n  shift_base: "); sb_num(&b, c->train.shift_base);
    sb_printf(&b, "\n  shift_max: "); sb_num(&b, c->train.shift_max);
    sb_printf(&b, "\n  guidance: "); sb_num(&b, c->train.guidance);
    sb_printf(&b, "\n  weighting: %s\n  vae_sample: %s\n  recompute: ", cfg_weighting_name(c->train.weighting),
              c->train.vae_sample ? "true" : "false");
    if (c->train.recompute > 0) sb_printf(&b, "%d\n", c->train.recompute);
    else if (c->train.recompute == CFG_RECOMPUTE_AUTO) sb_printf(&b, "auto\n");
    else sb_printf(&b, "%s\n", c->train.recompute ? "true" : "false");
    sb_printf(&b, "optimizer:\n  lr: "); sb_num(&b, c->optimizer.lr);
    sb_printf(&b, "\n  betas: ["); sb_num(&b, c->optimizer.beta1);
    sb_printf(&b, ", "); sb_num(&b, c->optimizer.beta2);
    sb_printf(&b, "]\n  eps: "); sb_num(&b, c->optimizer.eps);
    sb_printf(&b, "\n  weight_decay: "); sb_num(&b, c->optimizer.weight_decay);
    sb_printf(&b, "\n  grad_clip: "); sb_num(&b, c->optimizer.grad_clip);
    sb_printf(&b, "\n  shard_state: %s", c->optimizer.shard_state ? "true" : "false");
    sb_printf(&b, "\n  reduce_bucket_mb: "); sb_num(&b, c->optimizer.reduce_bucket_mb);
    sb_printf(&b, "\n  state_dtype: %s", c->optimizer.state_bf16 ? "bf16" : "f32");
    sb_printf(&b, "\n  ema: "); sb_num(&b, c->optimizer.ema);
    sb_printf(&b, "\n  ema_warmup: %s", c->optimizer.ema_warmup ? "true" : "false");
    sb_printf(&b, "\neval:\n  every: %d\n  pairs: ", c->eval.every); sb_str(&b, c->eval.pairs);
    sb_printf(&b, "\n  scale: "); sb_num(&b, c->eval.scale);
    sb_printf(&b, "\n  guidance: "); sb_num(&b, c->eval.guidance);
    sb_printf(&b, "\n  steps: %d\n  seeds: %d\n  size: %d\n  clip: ", c->eval.steps, c->eval.seeds, c->eval.size);
    sb_str(&b, c->eval.clip);
    sb_printf(&b, "\n  ema: %s", c->eval.ema ? "true" : "false");
    sb_printf(&b, "\nvalidation:\n  every: %d\n  path: ", c->validation.every); sb_str(&b, c->validation.path);
    sb_printf(&b, "\n  samples: %d\n  batch_size: %d\n  sigmas: [", c->validation.samples, c->validation.batch_size);
    for (int i = 0; i < c->validation.n_sigmas; i++) {
        sb_printf(&b, "%s", i ? ", " : "");
        sb_num(&b, c->validation.sigmas[i]);
    }
    sb_printf(&b, "]\nstages:\n");
    for (int i = 0; i < c->n_stages; i++) {
        const train_stage *s = &c->stages[i];
        sb_printf(&b, "  - name: "); sb_str(&b, s->name);
        sb_printf(&b, "\n    data: "); sb_str(&b, s->data);
        sb_printf(&b, "\n    mode: %s\n    paired_share: ", cfg_mode_name(s->mode)); sb_num(&b, s->paired_share);
        sb_printf(&b, "\n    resolution: %d\n    buckets: ", s->resolution);
        if (!s->n_buckets) sb_printf(&b, "auto");
        else {
            sb_printf(&b, "[");
            for (int k = 0; k < s->n_buckets; k++) sb_printf(&b, "%s[%d, %d]", k ? ", " : "", s->buckets[k][0], s->buckets[k][1]);
            sb_printf(&b, "]");
        }
        sb_printf(&b, "\n    batch_size: %d\n    grad_accum: %d\n    steps: %lld\n    lr_schedule: %s\n    warmup_steps: %lld\n    lr: ",
                  s->batch_size, s->grad_accum, (long long)s->steps, cfg_lr_kind_name(s->lr_schedule), (long long)s->warmup_steps);
        sb_num(&b, s->lr);
        sb_printf(&b, "\n    min_lr_ratio: "); sb_num(&b, s->min_lr_ratio);
        if (s->recompute > 0) sb_printf(&b, "\n    recompute: %d", s->recompute);
        else if (s->recompute == CFG_RECOMPUTE_AUTO) sb_printf(&b, "\n    recompute: auto");
        else if (s->recompute != CFG_RECOMPUTE_INHERIT) sb_printf(&b, "\n    recompute: %s", s->recompute ? "true" : "false");
        sb_printf(&b, "\n");
    }
    return b.s;
}

int train_config_write(const train_config *c, const char *path, char *err, size_t errlen) {
    char *y = train_config_to_yaml(c);
    af_file f;
    int rc = af_open(&f, path, false, err, errlen);
    if (!rc) {
        af_write(&f, y, strlen(y));
        rc = af_commit(&f, NULL, err, errlen);
    }
    free(y);
    return rc;
}

// ---------------------------------------------------------------------------------------------
const char *train_config_run_dir(const train_config *c, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", c->run.out_dir, c->run.name);
    return buf;
}
double train_stage_lr(const train_config *c, int stage) {
    return c->stages[stage].lr > 0 ? c->stages[stage].lr : c->optimizer.lr;
}
int64_t train_config_total_steps(const train_config *c) {
    int64_t n = 0;
    for (int i = 0; i < c->n_stages; i++) n += c->stages[i].steps;
    return n;
}
int64_t train_config_stage_start(const train_config *c, int stage) {
    int64_t n = 0;
    for (int i = 0; i < stage && i < c->n_stages; i++) n += c->stages[i].steps;
    return n;
}
int train_config_stage_of_step(const train_config *c, int64_t step, int64_t *step_in_stage) {
    int64_t start = 0;
    for (int i = 0; i < c->n_stages; i++) {
        if (step < start + c->stages[i].steps) {
            if (step_in_stage) *step_in_stage = step - start;
            return i;
        }
        start += c->stages[i].steps;
    }
    if (step_in_stage) *step_in_stage = 0;
    return c->n_stages;  // past the end: done
}
int train_config_last_stage(const train_config *c) {
    int last = -1;
    for (int i = 0; i < c->n_stages; i++)
        if (c->stages[i].steps > 0) last = i;
    return last;
}
