// test_tokenizers.c — T5 unigram and CLIP BPE tokenizers against the tokenizers library (fixtures from
// scripts/fixtures_text.py): exact id equality on the whole text set (ascii, accents precomposed and
// decomposed, CJK, Hangul, emoji sequences, repeated whitespace, tabs/newlines, controls, fullwidth and
// ligatures, special tokens in the text, empty strings, inputs far beyond the limits), both unpadded
// and padded/truncated the way the FLUX pipeline asks; CLIP loaded from tokenizer.json and from
// vocab.json + merges.txt; wrong-kind and missing files give messages.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "models/tok_clip.h"
#include "models/tok_common.h"
#include "models/tok_t5.h"
#include "testutil.h"

typedef int32_t *(*encode_fn)(void *t, const char *text, int *n);
typedef int (*padded_fn)(void *t, const char *text, int max_len, int32_t *out, bool *truncated);

static bool same(const int32_t *got, int n, const cJSON *exp) {
    if (n != cJSON_GetArraySize(exp)) return false;
    for (int i = 0; i < n; i++)
        if (got[i] != cJSON_GetArrayItem(exp, i)->valueint) return false;
    return true;
}

static void show(const char *what, const char *text, const int32_t *got, int n, const cJSON *exp) {
    fprintf(stderr, "  %s mismatch for \"%.60s\"\n  got (%d):", what, text, n);
    for (int i = 0; i < n && i < 48; i++) fprintf(stderr, " %d", got[i]);
    fprintf(stderr, "\n  exp (%d):", cJSON_GetArraySize(exp));
    for (int i = 0; i < cJSON_GetArraySize(exp) && i < 48; i++) fprintf(stderr, " %d", cJSON_GetArrayItem(exp, i)->valueint);
    fprintf(stderr, "\n");
}

static void run_cases(const char *name, const char *cases_path, void *tok, encode_fn enc, padded_fn pad) {
    char err[512];
    char *buf = tok_read_file(cases_path, NULL, err, sizeof err);
    TEST_CHECK(buf != NULL, "%s", err);
    if (!buf) return;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    int max_len = cJSON_GetObjectItem(root, "max_length")->valueint;
    int32_t *out = malloc((size_t)max_len * sizeof(int32_t));
    int ncase = 0, nbad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(c, "ids"), *padded = cJSON_GetObjectItem(c, "padded");
        int n;
        int32_t *got = enc(tok, text, &n);
        bool ok = same(got, n, ids);
        if (!ok) show(name, text, got, n, ids);
        TEST_CHECK(ok, "%s: ids differ for case %d", name, ncase);
        bool tr = false;
        int real = pad(tok, text, max_len, out, &tr);
        bool okp = same(out, max_len, padded);
        if (!okp) show(name, text, out, max_len, padded);
        TEST_CHECK(okp, "%s: padded ids differ for case %d", name, ncase);
        TEST_CHECK(tr == (n > max_len), "%s: truncated flag %d for %d ids", name, tr, n);
        TEST_CHECK(real == (n < max_len ? n : max_len), "%s: %d real ids, expected %d", name, real, n);
        nbad += !(ok && okp);
        free(got);
        ncase++;
    }
    printf("%s: %d texts, %d mismatches\n", name, ncase, nbad);
    TEST_CHECK(ncase >= 20, "%s: only %d cases", name, ncase);
    free(out);
    cJSON_Delete(root);
}

static int32_t *t5_enc(void *t, const char *s, int *n) { return t5_tok_encode(t, s, n); }
static int t5_pad(void *t, const char *s, int m, int32_t *o, bool *tr) { return t5_tok_encode_padded(t, s, m, o, tr); }
static int32_t *clip_enc(void *t, const char *s, int *n) { return clip_tok_encode(t, s, n); }
static int clip_pad(void *t, const char *s, int m, int32_t *o, bool *tr) { return clip_tok_encode_padded(t, s, m, o, tr); }


// the truncation warning, in a child (its flags start clear) with stderr joined to stdout: two
// tokenizers of each kind (eval opens one per adapter) truncating twice each say it once per kind
static int truncate_twice(void *arg) {
    (void)arg;
    dup2(1, 2);
    char err[512];
    const char *text = "a long prompt of many words that will not fit in four tokens at all";
    int32_t ids[4];
    for (int k = 0; k < 2; k++) {
        t5_tok *t5 = t5_tok_load("tests/fixtures/t5", err, sizeof err);
        clip_tok *ct = clip_tok_load("tests/fixtures/clip", err, sizeof err);
        if (!t5 || !ct) return 2;
        for (int r = 0; r < 2; r++) {
            t5_tok_encode_padded(t5, text, 4, ids, NULL);
            clip_tok_encode_padded(ct, text, 4, ids, NULL);
        }
        t5_tok_free(t5);
        clip_tok_free(ct);
    }
    fflush(stderr);
    return 0;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

int main(void) {
    char err[512];
    {
        char out[8192];
        int rc = test_fork_stdout(truncate_twice, NULL, out, sizeof out);
        TEST_CHECK(rc == 0, "truncation child: status %d", rc);
        TEST_CHECK(count_of(out, "T5 tokenizer: a prompt") == 1 && count_of(out, "CLIP tokenizer: a prompt") == 1,
                   "truncation warned once per kind, got:\n%s", out);
    }
    t5_tok *t5 = t5_tok_load("tests/fixtures/t5/tokenizer.json", err, sizeof err);
    TEST_CHECK(t5 != NULL, "%s", err);
    if (t5) {
        TEST_CHECK(t5_tok_pad_id(t5) == 0 && t5_tok_eos_id(t5) == 1 && t5_tok_unk_id(t5) == 2,
                   "T5 special ids pad %d eos %d unk %d", t5_tok_pad_id(t5), t5_tok_eos_id(t5), t5_tok_unk_id(t5));
        run_cases("t5", "tests/fixtures/t5/tokens.json", t5, t5_enc, t5_pad);
        t5_tok_free(t5);
    }
    // other normalizer / pre-tokenizer settings of published unigram files (Strip, Replace " {2,}",
    // Metaspace prepend "first" without split)
    t5 = t5_tok_load("tests/fixtures/t5/variant/tokenizer.json", err, sizeof err);
    TEST_CHECK(t5 != NULL, "variant: %s", err);
    if (t5) run_cases("t5(variant)", "tests/fixtures/t5/variant/tokens.json", t5, t5_enc, t5_pad);
    t5_tok_free(t5);
    // a folder holding tokenizer.json loads too (FLUX's tokenizer_2/)
    t5 = t5_tok_load("tests/fixtures/t5", err, sizeof err);
    TEST_CHECK(t5 != NULL, "folder: %s", err);
    t5_tok_free(t5);

    // the vocab.json + merges.txt layout (no tokenizer.json beside them): the pair copied to a
    // folder of this run's own (a shared fixed name may hold another run's files, or be written
    // by a concurrent run while this one reads)
    char pair_dir[] = "/tmp/cameo-clip-pair-XXXXXX";
    TEST_CHECK(mkdtemp(pair_dir) != NULL, "mkdtemp %s", pair_dir);
    const char *clip_paths[2] = {"tests/fixtures/clip/tokenizer.json", pair_dir};
    TEST_CHECK(test_sh("cp tests/fixtures/clip/vocab.json tests/fixtures/clip/merges.txt %s/", pair_dir) == 0,
               "copying vocab.json + merges.txt to %s failed", pair_dir);
    for (int k = 0; k < 2; k++) {
        clip_tok *ct = clip_tok_load(clip_paths[k], err, sizeof err);
        TEST_CHECK(ct != NULL, "%s: %s", clip_paths[k], err);
        if (!ct) continue;
        TEST_CHECK(clip_tok_eos_id(ct) == clip_tok_vocab_size(ct) - 1 && clip_tok_bos_id(ct) == clip_tok_eos_id(ct) - 1,
                   "CLIP bos %d eos %d vocab %d", clip_tok_bos_id(ct), clip_tok_eos_id(ct), clip_tok_vocab_size(ct));
        TEST_CHECK(clip_tok_pad_id(ct) == clip_tok_eos_id(ct), "CLIP pads with <|endoftext|>");
        run_cases(k ? "clip(vocab+merges)" : "clip(tokenizer.json)", "tests/fixtures/clip/tokens.json", ct, clip_enc,
                  clip_pad);
        clip_tok_free(ct);
    }
    test_sh("rm -rf %s", pair_dir);

    // invalid UTF-8 (C strings can carry it; Python's cannot): read as U+FFFD, as a lossy conversion
    {
        t5 = t5_tok_load("tests/fixtures/t5", err, sizeof err);
        clip_tok *ct = clip_tok_load("tests/fixtures/clip", err, sizeof err);
        const char *bad = "caf\xc3 a\xff\xfe b \xe6\x9d", *good = "caf\xef\xbf\xbd a\xef\xbf\xbd\xef\xbf\xbd b \xef\xbf\xbd";
        int n1, n2;
        int32_t *a = t5_tok_encode(t5, bad, &n1), *b = t5_tok_encode(t5, good, &n2);
        TEST_CHECK(n1 == n2 && !memcmp(a, b, (size_t)n1 * 4), "T5: invalid bytes differ from U+FFFD");
        free(a); free(b);
        a = clip_tok_encode(ct, bad, &n1);
        b = clip_tok_encode(ct, good, &n2);
        TEST_CHECK(n1 == n2 && !memcmp(a, b, (size_t)n1 * 4), "CLIP: invalid bytes differ from U+FFFD");
        free(a); free(b);
        t5_tok_free(t5);
        clip_tok_free(ct);
    }

    // bad input: a tokenizer of the other kind, a missing file, not JSON
    TEST_CHECK(t5_tok_load("tests/fixtures/clip/tokenizer.json", err, sizeof err) == NULL && strstr(err, "Unigram"),
               "CLIP file as T5: %s", err);
    TEST_CHECK(clip_tok_load("tests/fixtures/t5/tokenizer.json", err, sizeof err) == NULL && strstr(err, "BPE"),
               "T5 file as CLIP: %s", err);
    TEST_CHECK(t5_tok_load("tests/fixtures/t5/missing.json", err, sizeof err) == NULL && strstr(err, "missing.json"),
               "missing: %s", err);
    TEST_CHECK(clip_tok_load("tests/fixtures/clip/merges.txt", err, sizeof err) == NULL && strstr(err, "JSON"),
               "not JSON: %s", err);
    return test_summary("test_tokenizers");
}
