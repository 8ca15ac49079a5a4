// test_data_build.c — JSONL build from PNG (with alpha) / JPEG / WebP / mask inputs: round trip of
// pixels and metadata, bad lines and missing images reported with their line and skipped,
// shards split, pairs index, a published dataset never overwritten; the folder front end (character
// from the first folder, captions from NAME.txt, defaults, hidden folders and captionless images);
// a UTF-8 BOM at the start of a JSONL or a NAME.txt is dropped.
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/dataset.h"
#include "data/verify.h"
#include "helpers.h"

static image pattern(int w, int h, int c, int seed) {
    image im = {w, h, c, malloc((size_t)w * h * c)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) im.px[((size_t)y * w + x) * c + k] = (uint8_t)(k == 3 ? (x < w / 2 ? 0 : 255) : (x * 7 + y * 3 + k * 50 + seed * 13));
    return im;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    TEST_CHECK(f != NULL, "cannot write %s", path);
    if (f) fputs(text, f), fclose(f);
}

// a tree of images: chars/alice/{a1.png + a1.txt, sub/a2.jpg}, chars/bob/b1.webp + b1.txt,
// chars/top.png + top.txt, chars/.hidden/x.png, chars/notes.txt
static void test_folder(const char *root) {
    char d[512], p[700], err[2048], out[600];
    snprintf(d, sizeof d, "%s/chars", root);
    const char *sub[] = {"alice/sub", "bob", ".hidden"};
    for (int i = 0; i < 3; i++) snprintf(p, sizeof p, "%s/%s", d, sub[i]), fs_mkdirs(p);
    image a = pattern(20, 16, 3, 6), b = pattern(16, 20, 3, 7);
    snprintf(p, sizeof p, "%s/alice/a1.png", d), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/alice/a1.txt", d), write_text(p, "\xEF\xBB\xBF" "alice smiling\n\n  alice waving  \r\n");  // a UTF-8 BOM (Windows Notepad)
    snprintf(p, sizeof p, "%s/alice/sub/a2.jpg", d), image_write_jpeg(p, &b, 90, err, sizeof err);  // no caption file
    size_t wl;
    uint8_t *w = image_webp_encode(&b, 0, 1, &wl);
    snprintf(p, sizeof p, "%s/bob/b1.webp", d);
    FILE *f = fopen(p, "wb");
    fwrite(w, 1, wl, f), fclose(f), free(w);
    snprintf(p, sizeof p, "%s/bob/b1.txt", d), write_text(p, "bob at the beach");
    snprintf(p, sizeof p, "%s/bob/B2.PNG", d), image_write_png(p, &b, err, sizeof err);
    snprintf(p, sizeof p, "%s/bob/B2.TXT", d), write_text(p, "bob in capitals\r\n");  // upper-case caption file
    snprintf(p, sizeof p, "%s/top.png", d), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/top.txt", d), write_text(p, "someone\n");
    snprintf(p, sizeof p, "%s/.hidden/x.png", d), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/notes.txt", d), write_text(p, "not an image");
    // formats the builder does not decode (a GIF, a phone's HEIC): named and counted, not left out unsaid
    snprintf(p, sizeof p, "%s/alice/anim.gif", d), write_text(p, "GIF89a");
    snprintf(p, sizeof p, "%s/alice/anim.txt", d), write_text(p, "alice dancing\n");
    snprintf(p, sizeof p, "%s/bob/IMG_0001.HEIC", d), write_text(p, "....ftypheic");
    build_options o = build_options_default();
    o.lossless = 1;
    o.quiet = 1;
    build_report r;
    snprintf(out, sizeof out, "%s/ds-folder", root);
    TEST_CHECK(build_from_folder(d, NULL, NULL, out, &o, &r, err, sizeof err) == 0, "folder build: %s", err);
    TEST_CHECK(r.kept == 4 && r.lines == 7 && r.skipped[BUILD_SKIP_FIELD] == 1 && r.skipped[BUILD_SKIP_IMAGE] == 2 && r.characters == 3,
               "folder: kept %llu of %llu, %llu without caption, %llu unreadable (want the GIF and the HEIC), %llu characters",
               (unsigned long long)r.kept, (unsigned long long)r.lines, (unsigned long long)r.skipped[BUILD_SKIP_FIELD],
               (unsigned long long)r.skipped[BUILD_SKIP_IMAGE], (unsigned long long)r.characters);
    dataset ds;
    TEST_CHECK(dataset_open(&ds, out, 0, err, sizeof err) == 0, "open: %s", err);
    dataset_reader rd;
    dataset_reader_init(&rd, &ds);
    record_view rec;
    const char *want_char[] = {"alice", "bob", "bob", "chars"}, *want_src[] = {"alice/a1.png", "bob/B2.PNG", "bob/b1.webp", "top.png"};
    for (int i = 0; i < 4 && ds.m.samples == 4; i++) {
        TEST_CHECK(dataset_get(&rd, (uint64_t)i, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0,
                   "folder sample %d: %s", i, err);
        TEST_CHECK(!strcmp(rd.meta.character, want_char[i]) && !strcmp(rd.meta.source, want_src[i]),
                   "folder sample %d: character '%s' source '%s'", i, rd.meta.character, rd.meta.source);
    }
    TEST_CHECK(dataset_get(&rd, 0, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0 &&
               rd.meta.n_captions == 2 && !strcmp(rd.meta.captions[0], "alice smiling") && !strcmp(rd.meta.captions[1], "alice waving"),
               "NAME.txt: one caption per non-empty line, trimmed, BOM dropped: '%s'", rd.meta.n_captions ? rd.meta.captions[0] : "");
    TEST_CHECK(dataset_get(&rd, 1, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0 &&
               rd.meta.n_captions == 1 && !strcmp(rd.meta.captions[0], "bob in capitals"),
               "NAME.TXT (upper case) read as the caption file: '%s'", rd.meta.n_captions ? rd.meta.captions[0] : "");
    dataset_reader_free(&rd);
    dataset_close(&ds);
    // defaults: the captionless image gets --caption, the top-level one --character
    snprintf(out, sizeof out, "%s/ds-folder2", root);
    TEST_CHECK(build_from_folder(d, "me", "a character", out, &o, &r, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(r.kept == 5 && r.characters == 3, "with defaults: kept %llu, %llu characters", (unsigned long long)r.kept,
               (unsigned long long)r.characters);
    TEST_CHECK(dataset_open(&ds, out, 0, err, sizeof err) == 0, "open: %s", err);
    dataset_reader_init(&rd, &ds);
    bool cap_ok = false, me_ok = false;
    for (uint64_t i = 0; i < ds.m.samples; i++) {
        if (dataset_get(&rd, i, &rec, err, sizeof err) || dataset_get_meta(&rd, &rec, err, sizeof err)) continue;
        cap_ok |= !strcmp(rd.meta.source, "alice/sub/a2.jpg") && !strcmp(rd.meta.captions[0], "a character") && !strcmp(rd.meta.character, "alice");
        me_ok |= !strcmp(rd.meta.source, "top.png") && !strcmp(rd.meta.character, "me");
    }
    TEST_CHECK(cap_ok && me_ok, "the default caption (%d) and character (%d)", cap_ok, me_ok);
    dataset_reader_free(&rd);
    dataset_close(&ds);
    // `--images .` (or `chars/.`, `chars/alice/..`): the folder's real name, not "." or ".."
    const char *dots[] = {"%s/.", "%s/alice/.."};
    for (int k = 0; k < 2; k++) {
        char given[600];
        snprintf(given, sizeof given, dots[k], d);
        snprintf(out, sizeof out, "%s/ds-folder-dot%d", root, k);
        TEST_CHECK(build_from_folder(given, NULL, "x", out, &o, &r, err, sizeof err) == 0, "%s: %s", given, err);
        TEST_CHECK(dataset_open(&ds, out, 0, err, sizeof err) == 0, "open: %s", err);
        dataset_reader_init(&rd, &ds);
        bool named = false;
        for (uint64_t i = 0; i < ds.m.samples; i++)
            if (!dataset_get(&rd, i, &rec, err, sizeof err) && !dataset_get_meta(&rd, &rec, err, sizeof err) && !strcmp(rd.meta.source, "top.png"))
                named = !strcmp(rd.meta.character, "chars");
        TEST_CHECK(named, "--images %s: top.png's character is the folder's name 'chars'", given);
        dataset_reader_free(&rd);
        dataset_close(&ds);
    }
    // a folder with no image at all is an error naming it
    snprintf(p, sizeof p, "%s/empty", root);
    fs_mkdirs(p);
    snprintf(out, sizeof out, "%s/ds-empty", root);
    TEST_CHECK(build_from_folder(p, NULL, "x", out, &o, &r, err, sizeof err) != 0 && strstr(err, "empty") && strstr(err, "no usable image"),
               "empty folder: %s", err);
    image_free(&a), image_free(&b);
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    TEST_CHECK(f && fwrite(b, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

// caption files as Windows writes them: UTF-16 with a BOM (Notepad's "Unicode", PowerShell 5's
// `echo ... > a.txt`), little- and big-endian, read as their text (they became "\xFF\xFEa");
// Windows-1252 ("café" as 63 61 66 E9) named and skipped, not stored as broken UTF-8
static void test_folder_encodings(const char *root) {
    char d[512], p[700], err[2048], out[600];
    snprintf(d, sizeof d, "%s/enc/eve", root);
    fs_mkdirs(d);
    image a = pattern(16, 16, 3, 9);
    const char *names[] = {"le", "be", "cp1252"};
    for (int i = 0; i < 3; i++) snprintf(p, sizeof p, "%s/%s.png", d, names[i]), image_write_png(p, &a, err, sizeof err);
    const uint8_t le[] = {0xFF, 0xFE, 'e', 0, 0xE9, 0, '\r', 0, '\n', 0, 'x', 0, 0x3D, 0xD8, 0x00, 0xDE, '\n', 0};  // "eé", "x😀"
    const uint8_t be[] = {0xFE, 0xFF, 0, 'e', 0, 'v', 0, 'e', 0, '\n'};
    const uint8_t cp[] = {'c', 'a', 'f', 0xE9, '\n'};
    snprintf(p, sizeof p, "%s/le.txt", d), write_bytes(p, le, sizeof le);
    snprintf(p, sizeof p, "%s/be.txt", d), write_bytes(p, be, sizeof be);
    snprintf(p, sizeof p, "%s/cp1252.txt", d), write_bytes(p, cp, sizeof cp);
    // a folder and a file named in Latin-1 (an old zip, a Windows share): stored as UTF-8, not as
    // the bytes (the format's character and source strings are UTF-8)
    snprintf(p, sizeof p, "%s/enc/Ren\xE9" "e", root), fs_mkdirs(p);
    snprintf(p, sizeof p, "%s/enc/Ren\xE9" "e/\xE9t\xE9.png", root), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/enc/Ren\xE9" "e/\xE9t\xE9.txt", root), write_text(p, "summer\n");
    build_options o = build_options_default();
    o.lossless = 1;
    o.quiet = 1;
    build_report r;
    snprintf(out, sizeof out, "%s/ds-enc", root);
    snprintf(p, sizeof p, "%s/enc", root);
    TEST_CHECK(build_from_folder(p, NULL, NULL, out, &o, &r, err, sizeof err) == 0, "encodings build: %s", err);
    TEST_CHECK(r.kept == 3 && r.skipped[BUILD_SKIP_FIELD] == 1, "encodings: kept %llu (want 3), %llu skipped for their caption (want the cp1252 one)",
               (unsigned long long)r.kept, (unsigned long long)r.skipped[BUILD_SKIP_FIELD]);
    dataset ds;
    int opened = dataset_open(&ds, out, 0, err, sizeof err) == 0;
    TEST_CHECK(opened, "open: %s", err);
    if (opened) {
        dataset_reader rd;
        dataset_reader_init(&rd, &ds);
        record_view rec;
        const char *want[3][3] = {{"eve/be.png", "eve", NULL}, {"eve/le.png", "e\xC3\xA9", "x\xF0\x9F\x98\x80"},
                                  {"Ren\xC3\xA9" "e/\xC3\xA9t\xC3\xA9.png", "summer", NULL}};
        for (int k = 0; k < 3; k++) {
            bool found = false, ok = false;
            for (uint64_t i = 0; i < ds.m.samples && !found; i++) {
                if (dataset_get(&rd, i, &rec, err, sizeof err) || dataset_get_meta(&rd, &rec, err, sizeof err)) continue;
                if (strcmp(rd.meta.source, want[k][0])) continue;
                found = true;
                ok = rd.meta.n_captions == (want[k][2] ? 2 : 1) && !strcmp(rd.meta.captions[0], want[k][1]) &&
                     (!want[k][2] || !strcmp(rd.meta.captions[1], want[k][2]));
                if (k == 2) ok = ok && !strcmp(rd.meta.character, "Ren\xC3\xA9" "e");
                TEST_CHECK(ok, "%s: its caption file read as its text, its character as UTF-8: %d caption(s), '%s', character '%s'",
                           want[k][0], rd.meta.n_captions, rd.meta.n_captions ? rd.meta.captions[0] : "", rd.meta.character);
            }
            TEST_CHECK(found, "%s in the dataset", want[k][0]);
        }
        dataset_reader_free(&rd);
        dataset_close(&ds);
    }
    TEST_CHECK(build_utf8_check("a\xC3\xA9\xF0\x9F\x98\x80", 7) == 7 && build_utf8_check("ab\xC0\xAF", 4) == 2 &&
               build_utf8_check("\xED\xA0\x80", 3) == 0 && build_utf8_check("\xF4\x90\x80\x80", 4) == 0 && build_utf8_check("a\xE9", 2) == 1 &&
               build_utf8_check("\xE2\x82", 2) == 0, "UTF-8 check: overlong, surrogate, past U+10FFFF, Latin-1, truncated");
    image_free(&a);
}

// a folder's unreadable image is named by the folder and its path, not as a line of a file
// ("chars:21: skipped: ..." read as line 21 of a file named chars: the 21 was an index)
static int build_zero_byte(const void *arg) {
    const char *root = arg;
    char d[512], out[600], err[1024];
    snprintf(d, sizeof d, "%s/zb/zed", root);
    fs_mkdirs(d);
    image a = pattern(16, 16, 3, 3);
    char p[700];
    for (int i = 0; i < 22; i++) snprintf(p, sizeof p, "%s/a%02d.png", d, i), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/zero.png", d), write_text(p, "");
    image_free(&a);
    build_options o = build_options_default();
    o.lossless = 1;
    o.threads = 1;  // a forked child: the parent's OpenMP pool is not there (more threads would hang)
    build_report r;
    snprintf(out, sizeof out, "%s/ds-zb", root);
    snprintf(d, sizeof d, "%s/zb", root);
    return build_from_folder(d, NULL, "zed", out, &o, &r, err, sizeof err) == 0 && r.kept == 22 && r.skipped[BUILD_SKIP_IMAGE] == 1 ? 0 : 1;
}

static void test_folder_messages(const char *root) {
    char log[8192], want[700];
    int rc = run_captured(build_zero_byte, root, log, sizeof log);
    snprintf(want, sizeof want, "%s/zb: skipped: zed/zero.png: not a PNG, JPEG or WebP file (0 bytes)", root);
    TEST_CHECK(rc == 0 && strstr(log, want), "a folder's unreadable image: exit %d, want '%s' in:\n%s", rc, want, log);
}

// symbolic links are followed: the folder given is a link, a character folder is a link, an image
// is a link; a broken link and (when not root) an unreadable folder are named, skipped, counted;
// a link back up the tree (a cycle) is not walked twice
static void test_folder_links(const char *root) {
    char real[512], tree[512], p[700], t[700], err[2048], out[600];
    snprintf(real, sizeof real, "%s/links-real", root);
    snprintf(tree, sizeof tree, "%s/links-tree", root);
    snprintf(p, sizeof p, "%s/alice", real), fs_mkdirs(p);
    snprintf(p, sizeof p, "%s/bob", tree), fs_mkdirs(p);
    image a = pattern(20, 16, 3, 8);
    snprintf(p, sizeof p, "%s/alice/a1.png", real), image_write_png(p, &a, err, sizeof err);
    snprintf(p, sizeof p, "%s/alice/a1.txt", real), write_text(p, "alice\n");
    snprintf(t, sizeof t, "%s/alice", real), snprintf(p, sizeof p, "%s/alice", tree);
    TEST_CHECK(symlink(t, p) == 0, "symlink %s", p);                        // a linked character folder
    snprintf(t, sizeof t, "%s/alice/a1.png", real), snprintf(p, sizeof p, "%s/bob/b1.png", tree);
    TEST_CHECK(symlink(t, p) == 0, "symlink %s", p);                        // a linked image
    snprintf(p, sizeof p, "%s/bob/b1.txt", tree), write_text(p, "bob\n");
    snprintf(p, sizeof p, "%s/bob/gone.png", tree);
    TEST_CHECK(symlink("/nonexistent/gone.png", p) == 0, "symlink %s", p);   // a broken link
    snprintf(p, sizeof p, "%s/bob/loop", tree);
    TEST_CHECK(symlink("..", p) == 0, "symlink %s", p);                     // a cycle
    int unreadable = geteuid() != 0;  // root reads a mode-000 folder anyway
    if (unreadable) {
        snprintf(p, sizeof p, "%s/locked", tree), fs_mkdirs(p);
        snprintf(p, sizeof p, "%s/locked/x.png", tree), image_write_png(p, &a, err, sizeof err);
        snprintf(p, sizeof p, "%s/locked", tree), chmod(p, 0);
    }
    char link[600];
    snprintf(link, sizeof link, "%s/links-given", root);
    TEST_CHECK(symlink(tree, link) == 0, "symlink %s", link);               // --images LINK
    build_options o = build_options_default();
    o.lossless = 1;
    o.quiet = 1;
    build_report r;
    snprintf(out, sizeof out, "%s/ds-links", root);
    TEST_CHECK(build_from_folder(link, NULL, "x", out, &o, &r, err, sizeof err) == 0, "build through links: %s", err);
    TEST_CHECK(r.kept == 2 && r.characters == 2 && r.skipped[BUILD_SKIP_IMAGE] == (uint64_t)(1 + unreadable) && r.lines == (uint64_t)(3 + unreadable),
               "links: kept %llu (want 2) of %llu, %llu characters, %llu unreadable (want %d)", (unsigned long long)r.kept,
               (unsigned long long)r.lines, (unsigned long long)r.characters, (unsigned long long)r.skipped[BUILD_SKIP_IMAGE], 1 + unreadable);
    if (unreadable) snprintf(p, sizeof p, "%s/locked", tree), chmod(p, 0755);
    image_free(&a);
}

int main(void) {
    const char *root = tmp_dir();
    char dir[512], p[640], err[2048];
    snprintf(dir, sizeof dir, "%s/img", root);
    fs_mkdirs(dir);
    image a = pattern(40, 30, 4, 1), b = pattern(32, 32, 3, 2), c = pattern(24, 36, 3, 3), big = pattern(300, 200, 3, 4);
    snprintf(p, sizeof p, "%s/a.png", dir); TEST_CHECK(image_write_png(p, &a, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/b.jpg", dir); TEST_CHECK(image_write_jpeg(p, &b, 95, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/big.png", dir); image_write_png(p, &big, err, sizeof err);
    size_t wl;
    uint8_t *w = image_webp_encode(&c, 0, 1, &wl);
    snprintf(p, sizeof p, "%s/c.webp", dir);
    FILE *f = fopen(p, "wb"); fwrite(w, 1, wl, f); fclose(f); free(w);
    image mask = pattern(32, 32, 3, 5);
    for (size_t i = 0; i < 32 * 32 * 3; i++) mask.px[i] = (i / 3) % 32 < 16 ? 0 : 255;
    snprintf(p, sizeof p, "%s/m.png", dir); image_write_png(p, &mask, err, sizeof err);
    snprintf(p, sizeof p, "%s/garbage.png", dir);
    f = fopen(p, "wb"); fputs("not an image", f); fclose(f);
    char jl[512];
    snprintf(jl, sizeof jl, "%s/in.jsonl", root);
    f = fopen(jl, "w");
    fprintf(f, "\xEF\xBB\xBF{\"image\":\"a.png\",\"caption\":\"alpha fox\",\"character\":\"fox\",\"bbox\":[2,3,10,12]}\n");  // 1 after a UTF-8 BOM
    fprintf(f, "{\"image\":\"b.jpg\",\"caption\":[\"owl one\",\"owl two\"],\"character\":7}\n");                 // 2
    fprintf(f, "{\"image\":\"c.webp\",\"caption\":\"fox again\",\"character\":\"fox\"}\n");                     // 3
    fprintf(f, "{\"image\":\"missing.png\",\"caption\":\"x\",\"character\":\"fox\"}\n");                        // 4 unreadable
    fprintf(f, "{\"image\":\"a.png\",\"caption\":3,\"character\":\"fox\"}\n");                                  // 5 bad caption
    fprintf(f, "this is not json\n");                                                                           // 6
    fprintf(f, "\n");                                                                                           // 7 blank: ignored
    fprintf(f, "{\"image\":\"b.jpg\",\"caption\":\"masked owl\",\"character\":7,\"mask\":\"m.png\"}\n");          // 8
    fprintf(f, "{\"image\":\"garbage.png\",\"caption\":\"x\",\"character\":\"z\"}\n");                          // 9 undecodable
    fprintf(f, "{\"image\":\"big.png\",\"caption\":\"big cat\",\"character\":\"cat\",\"bbox\":[100,50,100,100]}\n"); // 10
    fprintf(f, "{\"image\":\"a.png\",\"caption\":\"bad box\",\"character\":\"fox\",\"bbox\":[30,3,20,12]}\n");   // 11 bbox outside
    fprintf(f, "{\"image\":\"a.png\",\"caption\":\"caf\xE9\",\"character\":\"fox\"}\n");                       // 12 Windows-1252 text
    fclose(f);
    build_options o = build_options_default();
    o.lossless = 1;
    o.max_side = 150;
    o.shard_samples = 2;
    o.quiet = 0;
    build_report r;
    char out[512];
    snprintf(out, sizeof out, "%s/ds", root);
    fprintf(stderr, "--- expected skip messages below ---\n");
    TEST_CHECK(build_from_jsonl(dir, jl, out, &o, &r, err, sizeof err) == 0, "build: %s", err);
    fprintf(stderr, "--- end of expected messages ---\n");
    TEST_CHECK(r.kept == 5 && r.lines == 11, "kept %llu of %llu", (unsigned long long)r.kept, (unsigned long long)r.lines);
    TEST_CHECK(r.skipped[BUILD_SKIP_IMAGE] == 2 && r.skipped[BUILD_SKIP_FIELD] == 1 && r.skipped[BUILD_SKIP_JSON] == 2 && r.skipped[BUILD_SKIP_BBOX] == 1,
               "skip reasons %llu %llu %llu %llu", (unsigned long long)r.skipped[BUILD_SKIP_IMAGE], (unsigned long long)r.skipped[BUILD_SKIP_FIELD],
               (unsigned long long)r.skipped[BUILD_SKIP_JSON], (unsigned long long)r.skipped[BUILD_SKIP_BBOX]);
    TEST_CHECK(r.shards == 3 && r.characters == 3, "shards %llu characters %llu", (unsigned long long)r.shards, (unsigned long long)r.characters);
    TEST_CHECK(verify_dataset(out, 1, stderr) == 0, "fresh dataset verifies");
    // read back: order grouped by character in first-appearance order: fox(a, c), 7(b, b+mask), cat(big)
    dataset d;
    TEST_CHECK(dataset_open(&d, out, 0, err, sizeof err) == 0, "open: %s", err);
    TEST_CHECK(d.n_chars == 3 && d.char_count[0] == 2 && d.char_first[1] == 2 && d.char_count[1] == 2 && d.char_count[2] == 1, "character table");
    dataset_reader rd;
    dataset_reader_init(&rd, &d);
    record_view rec;
    image im = {0};
    size_t cap = 0;
    TEST_CHECK(dataset_get(&rd, 0, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0, "sample 0: %s", err);
    TEST_CHECK(rec.flags & RECORD_FLAG_ALPHA, "PNG alpha kept");
    TEST_CHECK(!strcmp(rd.meta.captions[0], "alpha fox") && !strcmp(rd.meta.character, "fox") && !strcmp(rd.meta.source, "a.png") && rd.meta.has_bbox && rd.meta.bbox[3] == 12, "sample 0 metadata");
    image_webp_decode_into(rec.image, rec.image_len, 1, &im, &cap);
    int same = im.w == 40 && im.h == 30;
    for (int i = 0; same && i < 40 * 30; i++)  // lossless WebP may change the colour of fully transparent pixels
        same = im.px[4 * i + 3] == a.px[4 * i + 3] && (a.px[4 * i + 3] == 0 || !memcmp(im.px + 4 * i, a.px + 4 * i, 3));
    TEST_CHECK(same, "lossless PNG pixels (visible ones) and alpha round trip");
    TEST_CHECK(dataset_get(&rd, 1, &rec, err, sizeof err) == 0, "sample 1");
    image_webp_decode_into(rec.image, rec.image_len, 0, &im, &cap);
    TEST_CHECK(im.w == 24 && im.h == 36 && !memcmp(im.px, c.px, 24 * 36 * 3), "lossless WebP pixels round trip");
    TEST_CHECK(dataset_get(&rd, 2, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0, "sample 2");
    TEST_CHECK(rd.meta.n_captions == 2 && !strcmp(rd.meta.captions[1], "owl two") && !strcmp(rd.meta.character, "7"), "caption list and numeric character");
    TEST_CHECK(dataset_get(&rd, 3, &rec, err, sizeof err) == 0, "sample 3");
    image_webp_decode_into(rec.image, rec.image_len, 1, &im, &cap);
    TEST_CHECK((rec.flags & RECORD_FLAG_ALPHA) && im.px[3] == 0 && im.px[4 * 31 + 3] == 255, "mask became alpha");
    TEST_CHECK(dataset_get(&rd, 4, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0, "sample 4");
    TEST_CHECK(rec.width == 150 && rec.height == 100 && rd.meta.orig_w == 300 && rd.meta.orig_h == 200 && rd.meta.bbox[0] == 50 && rd.meta.bbox[2] == 50, "max-side resize %ux%u, bbox scaled", rec.width, rec.height);
    // pairs database: character 1 lists ids 2 and 3 (they sit in shard 1)
    MDB_txn *t = shard_begin(&d.shards[1], err, sizeof err);
    MDB_cursor *cur;
    mdb_cursor_open(t, d.shards[1].pairs, &cur);
    uint8_t kc[4];
    shard_key32(kc, 1);
    MDB_val k = {4, kc}, v;
    size_t dups = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (!rc) mdb_cursor_count(cur, &dups);
    TEST_CHECK(rc == 0 && dups == 2 && shard_unkey64(v.mv_data) == 2, "pairs: character 1 → %zu ids", dups);
    mdb_cursor_close(cur);
    mdb_txn_abort(t);
    // no lock file and no temporary folder in a published dataset
    struct stat st;
    snprintf(p, sizeof p, "%s/shard-00000/lock.mdb", out);
    TEST_CHECK(stat(p, &st) != 0, "no lock.mdb in a published shard");
    free(im.px);
    dataset_reader_free(&rd);
    dataset_close(&d);
    // building again into a published dataset is refused and changes nothing
    snprintf(p, sizeof p, "%s/manifest.json", out);
    stat(p, &st);
    time_t before = st.st_mtime;
    TEST_CHECK(build_from_jsonl(dir, jl, out, &o, &r, err, sizeof err) != 0 && strstr(err, "manifest.json"), "rebuild refused: %s", err);
    TEST_CHECK(stat(p, &st) == 0 && st.st_mtime == before && verify_dataset(out, 1, stderr) == 0, "published dataset untouched");
    // a BOM alone on line 1 (an editor's empty first line) is a blank line, not a bad one
    snprintf(p, sizeof p, "%s/bom.jsonl", root);
    write_text(p, "\xEF\xBB\xBF\r\n{\"image\":\"c.webp\",\"caption\":\"fox\",\"character\":\"fox\"}\n");
    snprintf(out, sizeof out, "%s/ds-bom", root);
    TEST_CHECK(build_from_jsonl(dir, p, out, &o, &r, err, sizeof err) == 0 && r.kept == 1 && r.lines == 1 && r.skipped[BUILD_SKIP_JSON] == 0,
               "BOM-only first line: kept %llu of %llu, %llu bad JSON: %s", (unsigned long long)r.kept, (unsigned long long)r.lines,
               (unsigned long long)r.skipped[BUILD_SKIP_JSON], err);
    // two objects on one line (a lost newline): the line is skipped as bad JSON, not read as its first
    // object with the second dropped; trailing spaces still pass
    snprintf(p, sizeof p, "%s/glued.jsonl", root);
    write_text(p, "{\"image\":\"c.webp\",\"caption\":\"fox\",\"character\":\"fox\"}{\"image\":\"c.webp\",\"caption\":\"b\"}\n"
                  "{\"image\":\"c.webp\",\"caption\":\"fox\",\"character\":\"fox\"} \t \n");
    snprintf(out, sizeof out, "%s/ds-glued", root);
    TEST_CHECK(build_from_jsonl(dir, p, out, &o, &r, err, sizeof err) == 0 && r.kept == 1 && r.lines == 2 && r.skipped[BUILD_SKIP_JSON] == 1,
               "glued objects: kept %llu of %llu, %llu bad JSON: %s", (unsigned long long)r.kept, (unsigned long long)r.lines,
               (unsigned long long)r.skipped[BUILD_SKIP_JSON], err);
    // a box reaching the right edge stays inside the image after --max-side (corners scaled, not x and w apart)
    image wide = pattern(1000, 200, 3, 9);
    snprintf(p, sizeof p, "%s/wide.png", dir), image_write_png(p, &wide, err, sizeof err);
    image_free(&wide);
    snprintf(p, sizeof p, "%s/wide.jsonl", root);
    write_text(p, "{\"image\":\"wide.png\",\"caption\":\"wide\",\"character\":\"w\",\"bbox\":[5,5,995,195]}\n");
    snprintf(out, sizeof out, "%s/ds-wide", root);
    build_options ow = o;
    ow.max_side = 300;
    TEST_CHECK(build_from_jsonl(dir, p, out, &ow, &r, err, sizeof err) == 0 && r.kept == 1, "wide build: %s", err);
    TEST_CHECK(dataset_open(&d, out, 0, err, sizeof err) == 0, "open: %s", err);
    dataset_reader_init(&rd, &d);
    TEST_CHECK(dataset_get(&rd, 0, &rec, err, sizeof err) == 0 && dataset_get_meta(&rd, &rec, err, sizeof err) == 0, "wide sample: %s", err);
    const uint32_t *bx = rd.meta.bbox;
    TEST_CHECK(rec.width == 300 && rec.height == 60 && bx[0] + bx[2] <= 300 && bx[1] + bx[3] <= 60 && bx[0] == 2 && bx[2] == 298 && bx[1] == 2 && bx[3] == 58,
               "bbox [5,5,995,195] of 1000x200 at max-side 300: [%u,%u,%u,%u] in %ux%u (want [2,2,298,58])", bx[0], bx[1], bx[2], bx[3], rec.width, rec.height);
    dataset_reader_free(&rd);
    dataset_close(&d);
    // extreme aspect ratios are skipped under their own reason (the loader would scale a 16383x1 image to GBs)
    image thin = pattern(90, 10, 3, 10), ok8 = pattern(80, 10, 3, 11);
    snprintf(p, sizeof p, "%s/thin.png", dir), image_write_png(p, &thin, err, sizeof err);
    snprintf(p, sizeof p, "%s/ok8.png", dir), image_write_png(p, &ok8, err, sizeof err);
    image_free(&thin), image_free(&ok8);
    snprintf(p, sizeof p, "%s/aspect.jsonl", root);
    write_text(p, "{\"image\":\"thin.png\",\"caption\":\"9:1\",\"character\":\"t\"}\n"
                  "{\"image\":\"ok8.png\",\"caption\":\"8:1\",\"character\":\"t\"}\n");
    snprintf(out, sizeof out, "%s/ds-aspect", root);
    build_options oa = build_options_default();
    oa.lossless = 1, oa.quiet = 1;
    TEST_CHECK(build_from_jsonl(dir, p, out, &oa, &r, err, sizeof err) == 0 && r.kept == 1 && r.skipped[BUILD_SKIP_ASPECT] == 1,
               "aspect 9:1 skipped, 8:1 kept: kept %llu, %llu for aspect: %s", (unsigned long long)r.kept,
               (unsigned long long)r.skipped[BUILD_SKIP_ASPECT], err);
    // a missing JSONL names the file
    snprintf(p, sizeof p, "%s/none.jsonl", root);
    snprintf(out, sizeof out, "%s/ds2", root);
    TEST_CHECK(build_from_jsonl(dir, p, out, &o, &r, err, sizeof err) != 0 && strstr(err, "none.jsonl"), "missing manifest file: %s", err);
    image_free(&a); image_free(&b); image_free(&c); image_free(&big); image_free(&mask);
    test_folder(root);
    test_folder_links(root);
    test_folder_encodings(root);
    test_folder_messages(root);
    return test_summary("test_data_build");
}
