// test_tokenizers_malformed.c — tokenizer.json files a download could hand cameo that are valid JSON
// but not a sane tokenizer (found by fuzzing the loaders under ASan/UBSan): each must be refused
// with a message naming the file and the fault, never read through a NULL or past a fixed array.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/tok_clip.h"
#include "models/tok_t5.h"
#include "testutil.h"

#define CLIP_RX "'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+"
#define BERT "{\"type\":\"BertProcessing\",\"cls\":[\"a\",1],\"sep\":[\"b\",2]}"

static char g_path[256];

static const char *put(const char *json) {
    FILE *f = fopen(g_path, "wb");
    if (!f || fputs(json, f) < 0 || fclose(f)) { fprintf(stderr, "cannot write %s\n", g_path); exit(1); }
    return g_path;
}

typedef struct { const char *what, *json, *must; bool t5; } bad_case;

int main(void) {
    snprintf(g_path, sizeof g_path, "/tmp/cameo_tok_malformed_%d.json", (int)getpid());
    const bad_case cases[] = {
        // the Split + ByteLevel pair with no "type" in the second step: read through NULL
        {"ByteLevel without type",
         "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Sequence\","
         "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"" CLIP_RX "\"},\"invert\":true},{\"kind\":1}]}}",
         "pre_tokenizer is not CLIP's", false},
        // a merge [a, b] of numbers: strlen(NULL)
        {"merge of numbers", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[1,2]]}}", "two strings", false},
        // id INT32_MAX: n_vocab = maxid + 1 overflowed
        {"vocab id INT32_MAX", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":2147483647},\"merges\":[]}}",
         "id must be an integer", false},
        {"negative vocab id", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", "id must be an integer",
         false},
        // five Bert processors: five ids written into tok_post's pre[4]
        {"5 BertProcessing",
         "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]},\"post_processor\":{\"type\":\"Sequence\","
         "\"processors\":[" BERT "," BERT "," BERT "," BERT "," BERT "]}}",
         "more than 4 special tokens", true},
        {"Bert cls id not a number",
         "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]},\"post_processor\":{\"type\":\"BertProcessing\","
         "\"cls\":[\"a\",\"x\"],\"sep\":[\"b\",2]}}",
         "cls/sep", true},
        // five ids in a template: the fifth was dropped silently
        {"template of 5 ids",
         "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]},\"post_processor\":{\"type\":\"TemplateProcessing\","
         "\"single\":[{\"SpecialToken\":{\"id\":\"X\"}},{\"Sequence\":{\"id\":\"A\"}}],"
         "\"special_tokens\":{\"X\":{\"ids\":[1,2,3,4,5]}}}}",
         "more than 4 special tokens", true},
    };
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        err[0] = 0;
        bool refused;
        if (c->t5) {
            t5_tok *t = t5_tok_load(put(c->json), err, sizeof err);
            refused = !t;
            t5_tok_free(t);
        } else {
            clip_tok *t = clip_tok_load(put(c->json), err, sizeof err);
            refused = !t;
            clip_tok_free(t);
        }
        TEST_CHECK(refused && strstr(err, c->must) && !strncmp(err, g_path, strlen(g_path)),
                   "%s: refused %d, message '%s' (expected the file and '%s')", c->what, refused, err, c->must);
    }
    // the limit is 4: four ids before the sequence still load
    t5_tok *t = t5_tok_load(put("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]},\"post_processor\":{\"type\":"
                                "\"Sequence\",\"processors\":[" BERT "," BERT "," BERT "," BERT "]}}"),
                            err, sizeof err);
    TEST_CHECK(t != NULL, "4 BertProcessing: %s", err);
    t5_tok_free(t);
    unlink(g_path);
    return test_summary("test_tokenizers_malformed");
}
