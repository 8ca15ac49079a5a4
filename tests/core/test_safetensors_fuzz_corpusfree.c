// test_safetensors_fuzz_corpusfree.c — runs the libFuzzer entry of fuzz_safetensors.c over a few
// thousand generated and mutated inputs, so the parser's robustness is checked in every ctest
// run (no libFuzzer needed). Deterministic: a fixed-seed xorshift drives everything.
#include "fuzz_safetensors.c"

#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

typedef struct { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *s, size_t n) {
    if (n == 0) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

// a valid file: random tensors (dtype, shape), header listed in a random order, maybe metadata
static bytes gen_valid(void) {
    static const char *dts[] = {"F32", "BF16", "F16", "F64", "I32", "U8", "I64", "BOOL", "F8_E4M3", "F4"};
    static const int bits[] = {32, 16, 16, 64, 32, 8, 64, 8, 8, 4};
    int nt = (int)rndn(6);
    char hdr[4096];
    size_t hn = 0, off = 0;
    char ent[6][256];
    size_t sizes[6];
    for (int i = 0; i < nt; i++) {
        int d = (int)rndn(10), nd = (int)rndn(4);
        int64_t shape[3] = {0}, numel = 1;
        char sh[64] = "";
        for (int k = 0; k < nd; k++) {
            shape[k] = (int64_t)rndn(4);
            numel *= shape[k];
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", k ? "," : "", (long long)shape[k]);
        }
        if (bits[d] == 4 && numel % 2) {  // F4 needs an even count
            numel = 0;
            snprintf(sh, sizeof sh, "0");
        }
        sizes[i] = (size_t)numel * (size_t)bits[d] / 8;
        snprintf(ent[i], sizeof ent[i], "\"t%d\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}", i,
                 dts[d], sh, off, off + sizes[i]);
        off += sizes[i];
    }
    hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "{");
    bool meta = rndn(2);
    if (meta) hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"}");
    int order[6];
    for (int i = 0; i < nt; i++) order[i] = i;
    for (int i = nt - 1; i > 0; i--) {
        int j = (int)rndn((size_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < nt; i++)
        hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "%s%s", (i || meta) ? "," : "", ent[order[i]]);
    hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "}");
    while (hn % 8) hdr[hn++] = ' ';
    bytes b = {0};
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    put(&b, len8, 8);
    put(&b, hdr, hn);
    for (size_t i = 0; i < off; i++) {
        uint8_t v = (uint8_t)rnd();
        put(&b, &v, 1);
    }
    return b;
}

static const char *TOKENS[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "-1", "0", "1e309", "1.5", "18446744073709551616",
    "9007199254740993", "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"I64\"",
    "\"F4\"", "\\u0000", "\\ud800", "\xff", "\xc3", "\xed\xa0\x80", "[0,4]", "[4,0]", "[1,1,1,1,1,1,1]", "{}", "[]",
};

// one random edit of the whole file (length prefix, header or data)
static void mutate(bytes *b) {
    int kind = (int)rndn(8);
    if (b->n == 0) kind = 3;
    switch (kind) {
    case 0: b->p[rndn(b->n)] ^= (uint8_t)(1u << rndn(8)); break;
    case 1: b->p[rndn(b->n)] = (uint8_t)rnd(); break;
    case 2: b->n = rndn(b->n + 1); break;  // truncate
    case 3: {                               // insert a JSON-ish token
        const char *t = TOKENS[rndn(sizeof TOKENS / sizeof TOKENS[0])];
        size_t at = rndn(b->n + 1), tn = strlen(t);
        bytes nb = {0};
        put(&nb, b->p, at);
        put(&nb, t, tn);
        put(&nb, b->p + at, b->n - at);
        free(b->p);
        *b = nb;
        break;
    }
    case 4: {  // delete a span
        size_t at = rndn(b->n), len = 1 + rndn(8);
        if (at + len > b->n) len = b->n - at;
        memmove(b->p + at, b->p + at + len, b->n - at - len);
        b->n -= len;
        break;
    }
    case 5:  // an interesting header length
        if (b->n >= 8) {
            static const uint64_t L[] = {0, 1, 7, 8, 100000001ull, ~0ull, 1ull << 63, 0xffffffffull};
            uint64_t v = rndn(2) ? L[rndn(8)] : (b->n - 8 + rndn(5) - 2);
            for (int i = 0; i < 8; i++) b->p[i] = (uint8_t)(v >> (8 * i));
        }
        break;
    default: {  // change a digit in the header, keeping the JSON shape
        for (int tries = 0; tries < 16 && b->n > 8; tries++) {
            size_t at = 8 + rndn(b->n - 8);
            if (b->p[at] >= '0' && b->p[at] <= '9') {
                b->p[at] = (uint8_t)('0' + rndn(10));
                break;
            }
        }
    }
    }
}

// after edits inside the header the length prefix no longer matches; fixing it lets the parser
// reach the JSON and offset checks instead of stopping at "truncated"
static void fix_len(bytes *b, size_t data_len) {
    if (b->n < 8 || data_len > b->n - 8) return;
    uint64_t v = b->n - 8 - data_len;
    for (int i = 0; i < 8; i++) b->p[i] = (uint8_t)(v >> (8 * i));
}

static bytes read_fixture(const char *path) {
    bytes b = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return b;
    uint8_t buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0) put(&b, buf, k);
    fclose(fp);
    return b;
}

static int accepts(const bytes *b) {
    char err[256];
    st_file *f = st_open_memory(b->p, b->n, "x", err, sizeof err);
    st_close(f);
    return f != NULL;
}

int main(void) {
    const char *fixtures[] = {
        "tests/fixtures/safetensors/basic.safetensors", "tests/fixtures/safetensors/unsupported.safetensors",
        "tests/fixtures/safetensors/writer_ref.safetensors", "tests/fixtures/safetensors/writer_ref_nometa.safetensors",
    };
    int runs = 0, accepted = 0;
    for (int round = 0; round < 4000; round++) {
        bytes seed;
        if (round % 3 == 0) {
            seed = read_fixture(fixtures[rndn(4)]);
            TEST_CHECK(seed.n > 0, "fixture missing (run from the repository root)");
            if (!seed.n) break;
        } else {
            seed = gen_valid();
        }
        // unmutated seeds must be accepted
        if (round < 200) TEST_CHECK(accepts(&seed), "valid seed %d rejected", round);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = (hl << 8) | seed.p[i];
        size_t data_len = seed.n - 8 - (size_t)hl;
        int edits = 1 + (int)rndn(4);
        for (int e = 0; e < edits; e++) mutate(&seed);
        if (rndn(2)) fix_len(&seed, data_len);
        // exactly-sized copy, so ASan sees reads past the end
        uint8_t *exact = malloc(seed.n ? seed.n : 1);
        memcpy(exact, seed.p, seed.n);
        LLVMFuzzerTestOneInput(exact, seed.n);
        bytes view = {exact, seed.n, seed.n};
        accepted += accepts(&view);
        runs++;
        free(exact);
        free(seed.p);
    }
    printf("fuzz corpus-free: %d inputs, %d accepted after mutation\n", runs, accepted);
    TEST_CHECK(runs == 4000, "ran %d inputs", runs);
    TEST_CHECK(accepted > 0 && accepted < runs, "mutations should both keep some files valid and break most");
    return test_summary("test_safetensors_fuzz_corpusfree");
}
