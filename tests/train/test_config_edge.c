// test_config_edge.c — train/config on what users write and what checkpoints store: the resolved
// YAML reads back whatever bytes a value holds, values that YAML cannot hold refused up front.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "train/config.h"

static const char *MIN = "stages:\n  - name: a\n    steps: 10\n  - name: b\n    steps: 20\n";

// c → resolved YAML → parse: reads back and gives the same YAML (and so the same values)
static void expect_round_trip(const train_config *c, const char *what) {
    char err[1024] = "";
    train_config d;
    char *y1 = train_config_to_yaml(c);
    int rc = train_config_parse(&d, y1, strlen(y1), "config.yaml", NULL, 0, err, sizeof err);
    TEST_CHECK(rc == 0, "%s: the resolved config does not read back: %s", what, err);
    if (!rc) {
        char *y2 = train_config_to_yaml(&d);
        const char *b1 = strchr(y1, '\n'), *b2 = strchr(y2, '\n');  // past the comment naming the source
        TEST_CHECK(b1 && b2 && !strcmp(b1, b2), "%s: the round trip changed it:\n%s\n---\n%s", what, y1, y2);
        free(y2);
    }
    free(y1);
}

int main(void) {
    char err[1024] = "";
    train_config c;

    // strings YAML reads back altered or not at all when written raw: DEL and the C1 controls are
    // not allowed in a stream (every resume from the checkpoint refused), NEL / LS / PS fold into
    // spaces; escaped in the file they read back as written
    const char *odd[] = {"stages.0.name=\"del\\x7fx\"", "stages.0.name=\"c1\\x80\\x9fx\"", "run.name=\"nel\\x85x\"",
                         "model.flux=\"a \\u2028b \\u2029c\"", "data.path=\"tab\\tq\\\"b\\\\s#: x\"",
                         "stages.1.name=é日本😀"};
    for (int i = 0; i < (int)(sizeof odd / sizeof *odd); i++) {
        const char *s[1] = {odd[i]};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == 0, "%s: %s", odd[i], err);
        expect_round_trip(&c, odd[i]);
    }
    // the source, a file name of any bytes, goes in the first line's comment: Latin-1, a newline
    TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "runs/caf\xe9\nx: 1.yaml", NULL, 0, err, sizeof err) == 0, "%s", err);
    expect_round_trip(&c, "a source name that is not UTF-8");

    // a --set value that is not UTF-8 (a Latin-1 folder name) is not YAML: taken raw, the run
    // trained and then no resume could read its checkpoint's config.yaml; refused before any work
    {
        const char *s[1] = {"stages.1.data=/data/caf\xe9"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 &&
                       strstr(err, "--set stages.1.data: byte 0xe9 at offset 9 of the value is not UTF-8"),
                   "a Latin-1 --set value: %s", err);
        const char *u[1] = {"stages.1.data=/data/caf\xc3\xa9: [x"};  // UTF-8, not YAML: still taken raw
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", u, 1, err, sizeof err) == 0 &&
                       !strcmp(c.stages[1].data, "/data/caf\xc3\xa9: [x"), "a UTF-8 --set value that is not YAML: %s", err);
        expect_round_trip(&c, u[0]);
    }

    // "WxH" buckets are read whole: a missing comma, or a third side, dropped the rest unsaid
    {
        const char *bad[] = {"stages.0.buckets=[512x768 768x512]", "stages.0.buckets=[64x64x2]", "stages.0.buckets=[64x64px]"};
        for (int i = 0; i < 3; i++) {
            const char *s[1] = {bad[i]};
            TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 &&
                           strstr(err, "stages[0].buckets[0]: expected [W, H] (or \"WxH\")"), "%s: %s", bad[i], err);
        }
        const char *ok[1] = {"stages.0.buckets=[512x768, 768X512, [64, 64]]"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", ok, 1, err, sizeof err) == 0 && c.stages[0].n_buckets == 3 &&
                       c.stages[0].buckets[1][0] == 768 && c.stages[0].buckets[1][1] == 512, "WxH buckets: %s", err);
    }

    // ranges open at 1: the message said "1 is out of range (allowed: 0..1)" (a bound just below 1, printed with %g)
    {
        const char *bad[][2] = {{"optimizer.ema=1", "optimizer.ema: 1 is out of range (allowed: 0 <= x < 1)"},
                                {"optimizer.beta1=1.0", "optimizer.beta1: 1.0 is out of range (allowed: 0 <= x < 1)"},
                                {"optimizer.beta2=1", "optimizer.beta2: 1 is out of range (allowed: 0 <= x < 1)"}};
        for (int i = 0; i < 3; i++) {
            const char *s[1] = {bad[i][0]};
            TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 && strstr(err, bad[i][1]),
                       "%s: %s", bad[i][0], err);
        }
        const char *ok[2] = {"optimizer.ema=0.9999", "optimizer.beta2=0.99999"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", ok, 2, err, sizeof err) == 0 && c.optimizer.ema == 0.9999 &&
                       c.optimizer.beta2 == 0.99999, "ema and beta2 below 1: %s", err);
    }

    // a --set value YAML reads as a comment alone is its text, not an empty mapping
    {
        const char *s[2] = {"stages.0.name=#1", "run.out_dir=#runs"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 2, err, sizeof err) == 0 && !strcmp(c.stages[0].name, "#1") &&
                       !strcmp(c.run.out_dir, "#runs"), "a name and a folder starting with '#': %s", err);
        expect_round_trip(&c, "names starting with '#'");
        const char *n[1] = {"stages.0.steps=#3"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", n, 1, err, sizeof err) == -1 &&
                       strstr(err, "stages[0].steps: '#3' is not an integer"), "steps=#3: %s", err);
        // a '#' after a blank is a YAML comment, but from a shell it is text: the path or name was
        // cut there without a word ("/w/run" for "/w/run #2/flux")
        const char *h[2] = {"model.adapter_init=/w/run #2/a.bin", "stages.1.name=exp\t# 3"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", h, 2, err, sizeof err) == 0 &&
                       !strcmp(c.model.adapter_init, "/w/run #2/a.bin") && !strcmp(c.stages[1].name, "exp\t# 3"),
                   "a '#' after a blank in a --set value: %s / %s (%s)", c.model.adapter_init, c.stages[1].name, err);
        expect_round_trip(&c, "values holding ' #'");
        const char *q[1] = {"stages.0.buckets=[[64, 64]] # square"};  // which part was meant is not clear: refused
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", q, 1, err, sizeof err) == -1 &&
                       strstr(err, "--set stages.0.buckets: '[[64, 64]] # square' ends in a YAML comment ('# square')"),
                   "a list with a comment behind it: %s", err);
        const char *e[1] = {"model.adapter_init="};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", e, 1, err, sizeof err) == 0 && !c.model.adapter_init[0],
                   "key= is still the empty string: %s", err);
    }

    // an integer too large for the key is out of range, not "not an integer"
    {
        const char *bad[][2] = {{"stages.0.batch_size=99999999999999999999", "stages[0].batch_size: 99999999999999999999 is out of range (allowed: 1..1048576)"},
                                {"stages.0.steps=-99999999999999999999", "stages[0].steps: -99999999999999999999 is out of range (allowed: 0.."},
                                {"stages.0.steps=1e20", "stages[0].steps: 1e20 is out of range"},
                                {"stages.0.steps=1.5", "stages[0].steps: '1.5' is not an integer"}};
        for (int i = 0; i < 4; i++) {
            const char *s[1] = {bad[i][0]};
            TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 && strstr(err, bad[i][1]),
                       "%s: %s", bad[i][0], err);
        }
    }

    // an unknown key is told at its own line: a misspelt section's block starts a line below it,
    // and the message named that line (t.yaml:3 for a key on line 2)
    {
        const char *y = "run:\n  seed: 1\nvalidaton:\n  every: 5\nstages:\n  - name: a\n";
        TEST_CHECK(train_config_parse(&c, y, strlen(y), "t.yaml", NULL, 0, err, sizeof err) == -1 &&
                       strstr(err, "t.yaml:3: validaton: unknown key"), "a misspelt section: %s", err);
        // a key inside a --set value is told as --set's, not at a line of the file (its line in the value's text)
        const char *sm[1] = {"run={seed: 1, sede: 2}"};
        TEST_CHECK(train_config_parse(&c, "stages:\n  - name: a\n", 20, "t.yaml", sm, 1, err, sizeof err) == -1 &&
                       strstr(err, "t.yaml (--set): run.sede: unknown key"), "an unknown key in a --set mapping: %s", err);
        const char *st = "stages:\n  - name: a\n    bucket:\n      - [64, 64]\n";
        TEST_CHECK(train_config_parse(&c, st, strlen(st), "t.yaml", NULL, 0, err, sizeof err) == -1 &&
                       strstr(err, "t.yaml:3: stages[0].bucket: unknown key"), "a misspelt stage key: %s", err);
    }

    // an empty bucket list was taken as auto without a word (buckets of another shape than the ones meant)
    {
        const char *s[1] = {"stages.0.buckets=[]"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 &&
                       strstr(err, "stages[0].buckets: 0 buckets (allowed: 1..64, or 'auto')"), "buckets: []: %s", err);
    }

    // data.path is read only by the stages without their own data: when each names one it may be
    // empty (docs/configs.md), and was refused as "must name the dataset folder" all the same
    {
        const char *s[3] = {"data.path=", "stages.0.data=/d/unpaired", "stages.1.data=/d/pairs"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 3, err, sizeof err) == 0 && !c.data.path[0] &&
                       !cfg_data_path_used(&c), "every stage with its own data, data.path empty: %s", err);
        expect_round_trip(&c, "an empty data.path");
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 2, err, sizeof err) == -1 &&
                       strstr(err, "data.path: must name the dataset folder"), "stages[1] reads data.path: %s", err);
    }

    // a length limit counts bytes: 64 'é' are 128 of them, not "128 characters"
    {
        char set[200] = "run.name=";
        for (int i = 0; i < 64; i++) strcat(set, "\xc3\xa9");
        const char *s[1] = {set};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", s, 1, err, sizeof err) == -1 &&
                       strstr(err, "run.name: value is 128 bytes long (at most 127 allowed)"), "64 x 'é': %s", err);
    }

    // a tab in the indentation: libyaml's message alone does not say it is a tab
    {
        const char *y = "run:\n\tseed: 3\nstages:\n  - name: a\n";
        TEST_CHECK(train_config_parse(&c, y, strlen(y), "t.yaml", NULL, 0, err, sizeof err) == -1 &&
                       strstr(err, "t.yaml:2:1: YAML syntax error") && strstr(err, "(a tab: YAML indents with spaces only)"),
                   "a tab: %s", err);
        const char *ok = "run:\n  seed: 3\t# a tab before a comment is fine\nstages:\n  - name: a\n";
        TEST_CHECK(train_config_parse(&c, ok, strlen(ok), "t.yaml", NULL, 0, err, sizeof err) == 0 && c.run.seed == 3, "%s", err);
    }

    // --set through a key the file lacks, or leaves empty, onto a list index: a list is made
    {
        const char *s[2] = {"stages.0.steps=5", "stages.1.name=b"};
        const char *none = "run:\n  seed: 1\n", *empty = "stages:\n";
        TEST_CHECK(train_config_parse(&c, none, strlen(none), "t.yaml", s, 2, err, sizeof err) == 0 && c.n_stages == 2 &&
                       c.stages[0].steps == 5 && !strcmp(c.stages[1].name, "b"), "stages from --set alone: %s", err);
        TEST_CHECK(train_config_parse(&c, empty, strlen(empty), "t.yaml", s, 2, err, sizeof err) == 0 && c.n_stages == 2,
                   "stages: (empty) filled by --set: %s", err);
        const char *far[1] = {"stages.2.steps=5"};
        TEST_CHECK(train_config_parse(&c, none, strlen(none), "t.yaml", far, 1, err, sizeof err) == -1 &&
                       strstr(err, "'2' is not an index of stages (a list of 0"), "an index past the end: %s", err);
        const char *map[1] = {"model.tiny.flux_heads=4"};  // a name still makes a mapping
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", map, 1, err, sizeof err) == 0 && c.model.tiny_dims.flux_heads == 4,
                   "model.tiny from --set: %s", err);
    }
    return test_summary("test_config_edge");
}
