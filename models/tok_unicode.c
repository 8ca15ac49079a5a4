// tok_unicode.c — UTF-8, character classes, lowercase, NFC and grapheme clusters for the tokenizers.
#include "models/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

#include "models/tok_unicode_tables.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

// --- growable string ---

void ubuf_append(ubuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void ubuf_putc(ubuf *b, uint32_t cp) {
    char tmp[4];
    ubuf_append(b, tmp, (size_t)uni_encode(cp, tmp));
}

void ubuf_free(ubuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

// --- UTF-8 ---

int uni_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// returns the length of a valid sequence at i, or 0
static int utf8_valid_len(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned c = s[i];
    int len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (i + (size_t)len > n) return 0;
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

// bytes an invalid sequence at i spans: its maximal subpart (the longest start of a well-formed
// sequence, at least 1), so each broken sequence becomes one U+FFFD as in Rust's and Python's
// lossy decoding
static size_t invalid_len(const unsigned char *s, size_t n, size_t i) {
    unsigned c = s[i];
    int len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
    size_t k = 1;
    for (; k < (size_t)len && i + k < n; k++) {
        unsigned d = s[i + k], lo = 0x80, hi = 0xBF;
        if (k == 1) {
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
            else if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
        }
        if (d < lo || d > hi) break;
    }
    return k;
}

uint32_t uni_next(const char *s, size_t n, size_t *i) {
    uint32_t cp;
    int len = utf8_valid_len((const unsigned char *)s, n, *i, &cp);
    if (!len) { *i += invalid_len((const unsigned char *)s, n, *i); return 0xFFFD; }
    *i += (size_t)len;
    return cp;
}

int uni_char_len(const char *s, size_t n, size_t i) {
    uint32_t cp;
    int len = utf8_valid_len((const unsigned char *)s, n, i, &cp);
    return len ? len : (int)invalid_len((const unsigned char *)s, n, i);
}

// --- tables ---

static bool in_ranges(const uint32_t (*r)[2], size_t nr, uint32_t cp) {
    size_t lo = 0, hi = nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static uint32_t valued(const uint32_t (*r)[3], size_t nr, uint32_t cp) {
    size_t lo = 0, hi = nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return r[mid][2];
    }
    return 0;
}

bool uni_is_letter(uint32_t cp) { return in_ranges(ut_letter, NELEM(ut_letter), cp); }
bool uni_is_number(uint32_t cp) { return in_ranges(ut_number, NELEM(ut_number), cp); }
bool uni_is_space(uint32_t cp) { return in_ranges(ut_space, NELEM(ut_space), cp); }

int uni_lower(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    size_t lo = 0, hi = NELEM(ut_lower);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < ut_lower[mid][0]) hi = mid;
        else if (cp > ut_lower[mid][0]) lo = mid + 1;
        else {
            int k = 0;
            for (; k < 3 && ut_lower[mid][1 + k]; k++) out[k] = ut_lower[mid][1 + k];
            return k;
        }
    }
    out[0] = cp;
    return 1;
}

// --- grapheme clusters (UAX #29 extended, rules GB3..GB13 with GB9c) ---

static int gcb(uint32_t cp) { return (int)valued(ut_gcb, NELEM(ut_gcb), cp); }
static int incb(uint32_t cp) { return (int)valued(ut_incb, NELEM(ut_incb), cp); }
static bool extpict(uint32_t cp) { return in_ranges(ut_extpict, NELEM(ut_extpict), cp); }

size_t uni_grapheme_len(const char *s, size_t n, size_t i) {
    size_t start = i;
    if (i >= n) return 0;
    uint32_t cp = uni_next(s, n, &i);
    int prev = gcb(cp);
    int ri_run = prev == GCB_REGIONAL_INDICATOR;
    // GB11 state: 1 after ExtPict Extend*, 2 right after its ZWJ
    int emoji = extpict(cp) ? 1 : 0;
    // GB9c state: 1 after Consonant [Extend|Linker]*, 2 once a Linker was seen in that run
    int conj = incb(cp) == INCB_CONSONANT ? 1 : 0;
    while (i < n) {
        size_t j = i;
        uint32_t c = uni_next(s, n, &j);
        int cur = gcb(c);
        int ic = incb(c);
        bool brk;
        if (prev == GCB_CR && cur == GCB_LF) brk = false;                                              // GB3
        else if (prev == GCB_CONTROL || prev == GCB_CR || prev == GCB_LF) brk = true;                  // GB4
        else if (cur == GCB_CONTROL || cur == GCB_CR || cur == GCB_LF) brk = true;                     // GB5
        else if (prev == GCB_L && (cur == GCB_L || cur == GCB_V || cur == GCB_LV || cur == GCB_LVT)) brk = false;  // GB6
        else if ((prev == GCB_LV || prev == GCB_V) && (cur == GCB_V || cur == GCB_T)) brk = false;    // GB7
        else if ((prev == GCB_LVT || prev == GCB_T) && cur == GCB_T) brk = false;                      // GB8
        else if (cur == GCB_EXTEND || cur == GCB_ZWJ) brk = false;                                     // GB9
        else if (cur == GCB_SPACINGMARK) brk = false;                                                  // GB9a
        else if (prev == GCB_PREPEND) brk = false;                                                     // GB9b
        else if (conj == 2 && ic == INCB_CONSONANT) brk = false;                                       // GB9c
        else if (emoji == 2 && extpict(c)) brk = false;                                                // GB11
        else if (prev == GCB_REGIONAL_INDICATOR && cur == GCB_REGIONAL_INDICATOR) brk = (ri_run % 2) == 0;  // GB12/13
        else brk = true;                                                                               // GB999
        if (brk) break;
        // update the states for the char just joined
        if (extpict(c)) emoji = 1;
        else if (emoji == 1 && cur == GCB_EXTEND) emoji = 1;
        else if (emoji == 1 && cur == GCB_ZWJ) emoji = 2;
        else emoji = 0;
        if (ic == INCB_CONSONANT) conj = 1;
        else if (conj && ic == INCB_LINKER) conj = 2;
        else if (conj && ic == INCB_EXTEND) { /* keep */ }
        else conj = 0;
        ri_run = cur == GCB_REGIONAL_INDICATOR ? ri_run + 1 : 0;
        prev = cur;
        i = j;
    }
    return i - start;
}

// --- NFC ---

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int ccc(uint32_t cp) { return cp < 0x300 ? 0 : (int)valued(ut_ccc, NELEM(ut_ccc), cp); }

typedef struct { uint32_t *v; size_t n, cap; } cpvec;

static void cp_push(cpvec *a, uint32_t cp) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof(uint32_t));
        if (!a->v) abort();
    }
    a->v[a->n++] = cp;
}

static void decompose(uint32_t cp, cpvec *out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t si = cp - SBASE;
        cp_push(out, LBASE + si / NCOUNT);
        cp_push(out, VBASE + (si % NCOUNT) / TCOUNT);
        if (si % TCOUNT) cp_push(out, TBASE + si % TCOUNT);
        return;
    }
    if (cp >= 0xC0) {
        size_t lo = 0, hi = NELEM(ut_decomp);
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < ut_decomp[mid][0]) hi = mid;
            else if (cp > ut_decomp[mid][0]) lo = mid + 1;
            else {
                decompose(ut_decomp[mid][1], out);
                if (ut_decomp[mid][2]) decompose(ut_decomp[mid][2], out);
                return;
            }
        }
    }
    cp_push(out, cp);
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = NELEM(ut_comp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = ut_comp[mid];
        if (a < e[0] || (a == e[0] && b < e[1])) hi = mid;
        else if (a > e[0] || b > e[1]) lo = mid + 1;
        else return e[2];
    }
    return 0;
}

void uni_nfc(const char *s, size_t n, ubuf *out) {
    cpvec d = {0};
    for (size_t i = 0; i < n;) decompose(uni_next(s, n, &i), &d);
    // canonical ordering: stable insertion sort of each run of non-starters by combining class
    for (size_t k = 1; k < d.n; k++) {
        int c = ccc(d.v[k]);
        if (!c) continue;
        size_t m = k;
        while (m > 0 && ccc(d.v[m - 1]) > c) {
            uint32_t t = d.v[m]; d.v[m] = d.v[m - 1]; d.v[m - 1] = t;
            m--;
        }
    }
    // canonical composition
    if (d.n) {
        size_t starter = 0, w = 1;
        int last_cc = ccc(d.v[0]) ? 256 : 0;  // a leading non-starter cannot take compositions
        if (last_cc) starter = (size_t)-1;
        for (size_t k = 1; k < d.n; k++) {
            uint32_t c = d.v[k];
            int cc = ccc(c);
            if (starter != (size_t)-1 && (last_cc < cc || (last_cc == 0 && w - 1 == starter))) {
                uint32_t comp = compose_pair(d.v[starter], c);
                if (comp) { d.v[starter] = comp; continue; }
            }
            if (cc == 0) { starter = w; last_cc = 0; }
            else last_cc = cc;
            d.v[w++] = c;
        }
        d.n = w;
    }
    for (size_t k = 0; k < d.n; k++) ubuf_putc(out, d.v[k]);
    free(d.v);
}
