// cli_usage.c — the `cameo` command line as a user meets it, the real binary as a process: every
// `--help` prints its usage on stdout and exits 0, the top-level help names every subcommand, and
// the natural mistakes (a missing value, a file where a folder belongs) get messages that say so.
// Usage: cli_usage PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "data/image.h"
#include "models/safetensors.h"
#include "testutil.h"

static const char *cameo;
static char dir[64];
static char out[65536];  // stdout + stderr of the last command

// runs `cameo ARGS` (printf-formatted) in dir with stdout and stderr into out; its exit status
static int cli(const char *fmt, ...) {
    char args[2048], cmd[4096], path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s >out.txt 2>&1", dir, cameo, args);
    int st = system(cmd);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `cameo ARGS --help`: exit 0 and the text holds want
static void check_help(const char *args, const char *want) {
    int rc = cli("%s --help", args);
    TEST_CHECK(rc == 0 && strstr(out, want), "cameo %s --help: exit %d, want '%s' in:\n%s", args, rc, want, out);
}

static void test_bench_help(void) {
    TEST_CHECK(cli("help") == 0 && strstr(out, "bench <ops|train|blocks|text-cache|ref-cache|gpu>"), "cameo help names every benchmark:\n%s", out);
    check_help("bench", "cameo bench blocks");
    check_help("bench ops", "usage: cameo bench ops");
    check_help("bench train", "usage: cameo bench train");
    check_help("bench blocks", "usage: cameo bench blocks");
    check_help("bench text-cache", "usage: cameo bench text-cache");
    check_help("bench ref-cache", "usage: cameo bench ref-cache");
}

// the flags `cameo help` lists for a command are the ones its parser takes (its --help names them), and
// a command of few flags has them all there (train's --quiet was missing)
static void test_help_flags(void) {
    static char top[sizeof out], sub[sizeof out];
    TEST_CHECK(cli("help") == 0, "cameo help: exit 0");
    snprintf(top, sizeof top, "%s", out);
    const char *all[] = {"train", "export", "inspect", "import-bin"};  // listed in full; the others say [options]
    int seen = 0;
    for (char *l = strtok(top, "\n"); l; l = strtok(NULL, "\n")) {
        char cmd[32];
        if (strncmp(l, "  ", 2) || l[2] == ' ' || sscanf(l + 2, "%31s", cmd) != 1 || !strcmp(cmd, "help")) continue;
        char line[512];
        snprintf(line, sizeof line, "%s", l);
        int rc = cli("%s --help", cmd);
        snprintf(sub, sizeof sub, "%s", out);
        TEST_CHECK(rc == 0, "cameo %s --help: exit %d", cmd, rc);
        for (const char *f = strstr(line, "--"); f; f = strstr(f + 2, "--")) {  // listed here: taken there
            char flag[40];
            if (sscanf(f, "%39[-a-z]", flag) == 1)
                TEST_CHECK(strstr(sub, flag) != NULL, "cameo help lists %s for %s, which its usage does not name:\n%s", flag, cmd, sub);
        }
        bool full = false;
        for (int i = 0; i < 4; i++) full |= !strcmp(cmd, all[i]);
        seen += full;
        for (const char *f = strstr(sub, "--"); full && f; f = strstr(f + 2, "--")) {  // taken there: listed here
            char flag[40];
            if (sscanf(f, "%39[-a-z]", flag) == 1 && strcmp(flag, "--help") && strlen(flag) > 2)
                TEST_CHECK(strstr(line, flag) != NULL, "cameo %s takes %s, which cameo help does not list: %s", cmd, flag, line);
        }
    }
    TEST_CHECK(seen == 4, "cameo help has a line for train, export, inspect and import-bin (%d)", seen);
}

// a second config: said so, with the ways to combine two (it read "unknown argument 'b.yaml'")
static void test_train_two_configs(void) {
    int rc = cli("train a.yaml b.yaml");
    TEST_CHECK(rc == 2 && strstr(out, "one CONFIG is read") && strstr(out, "'b.yaml'") && strstr(out, "--set KEY=VALUE") &&
                   !strstr(out, "unknown argument"),
               "cameo train a.yaml b.yaml: exit %d\n%s", rc, out);
}

// CAMEO_PROFILE=FILE on a full disk: the table is not lost in silence but told, and printed on stderr
static void test_profile_full_disk(void) {
    if (access("/dev/full", W_OK)) { printf("  skip: no /dev/full\n"); return; }
    setenv("CAMEO_PROFILE", "/dev/full", 1);
    int rc = cli("help");
    unsetenv("CAMEO_PROFILE");
    TEST_CHECK(rc == 0, "cameo help under CAMEO_PROFILE=/dev/full: exit %d", rc);
    TEST_CHECK(strstr(out, "CAMEO_PROFILE: writing '/dev/full' failed") && strstr(out, "where the time went"),
               "a profile table that cannot be written is told, and shown on stderr:\n%s", out);
}

// CAMEO_PROFILE=FILE takes its rank as the trainer does: a Slurm batch shell (SLURM_PROCID 0 and the
// job's SLURM_NTASKS, no step) is one process, FILE itself (it wrote FILE.rank0, "rank 0 of 2");
// an srun step's task 1 of 2 writes FILE.rank1
static void test_profile_rank(void) {
    int rc = test_sh("cd %s && env SLURM_PROCID=0 SLURM_NTASKS=2 CAMEO_PROFILE=pb.md %s help >/dev/null && test -s pb.md && "
                     "test ! -e pb.md.rank0 && env SLURM_PROCID=1 SLURM_NTASKS=2 SLURM_STEP_NUM_TASKS=2 CAMEO_PROFILE=ps.md %s help "
                     ">/dev/null && grep -q 'rank 1 of 2' ps.md.rank1 && test ! -e ps.md", dir, cameo, cameo);
    TEST_CHECK(rc == 0, "CAMEO_PROFILE in a batch shell: FILE; in a 2-task step: FILE.rank1 (exit %d; see %s/pb.md*, ps.md*)", rc, dir);
}

static void test_data_help(void) {
    const char *subs[] = {"build", "demo", "verify", "stats", "show", "bench"};
    for (int i = 0; i < 6; i++) {
        char a[32];
        snprintf(a, sizeof a, "data %s", subs[i]);
        check_help(a, "usage: cameo data");
    }
    check_help("data", "demo --out DATASET");
    TEST_CHECK(strstr(out, "--shard-samples N] [--threads N]\n  verify"), "data demo's usage names the build options it takes:\n%s", out);
    TEST_CHECK(cli("data stats") == 2 && strstr(out, "missing DATASET"), "data stats without a dataset:\n%s", out);
    TEST_CHECK(cli("data bogus") == 2 && strstr(out, "unknown command 'bogus'") && !strstr(out, "missing DATASET"),
               "data with a misspelt command and no dataset: exit 2, unknown command:\n%s", out);
    TEST_CHECK(cli("data bogus DIR") == 2 && strstr(out, "unknown command 'bogus'"), "data bogus DIR:\n%s", out);
}

static void test_export_import_help(void) {
    check_help("export", "usage: cameo export");
    check_help("import-bin", "usage: cameo import-bin");
    TEST_CHECK(cli("export") == 2 && strstr(out, "usage: cameo export"), "export without arguments: its usage, exit 2:\n%s", out);
    TEST_CHECK(cli("export runs/x") == 2 && strstr(out, "missing --out FILE") && strstr(out, "usage: cameo export"),
               "export without --out: says so, exit 2:\n%s", out);
    TEST_CHECK(cli("export --out a.safetensors") == 2 && strstr(out, "missing CHECKPOINT"), "export without a checkpoint:\n%s", out);
}

// a tiny run of 2 steps (one checkpoint) under dir/runs/tiny and its adapter exported as dir/a.bin
static bool make_run(void) {
    int rc = cli("train --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs "
                 "--set data.path=data --set data.demo_characters=2 --set data.demo_per_character=2 --set stages.0.batch_size=1 --quiet");
    TEST_CHECK(rc == 0, "the tiny run: exit %d\n%s", rc, out);
    if (rc) return false;
    rc = cli("export runs/tiny/checkpoints --out a.bin");
    TEST_CHECK(rc == 0, "export a.bin: exit %d\n%s", rc, out);
    return rc == 0;
}

// a legacy (pre-1.6, non-zip) torch.save file — an old adapter .bin — is named as one by inspect
// and as adapter_init (both read it as safetensors and said "header length 5088219219985302144 is
// over the limit (not a safetensors file?)"), as import-bin already did
static void test_legacy_bin(void) {
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
                                           0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e};  // torch.save's first pickles
    char p[128];
    snprintf(p, sizeof p, "%s/old.bin", dir);
    FILE *f = fopen(p, "wb");
    TEST_CHECK(f && fwrite(legacy, 1, sizeof legacy, f) == sizeof legacy, "write %s", p);
    if (f) fclose(f);
    const char *cmds[] = {"inspect old.bin", "import-bin old.bin old.safetensors",
                          "train --set stages.0.steps=1 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs "
                          "--set run.name=old --set data.path=data --set stages.0.batch_size=1 --set model.adapter_init=old.bin --quiet"};
    for (int i = 0; i < 3; i++) {
        int rc = cli("%s", cmds[i]);
        TEST_CHECK(rc != 0 && strstr(out, "old.bin: a legacy (pre-1.6, non-zip) torch.save file") && !strstr(out, "safetensors file?"),
                   "cameo %s: exit %d, want the legacy torch.save file named in:\n%s", cmds[i], rc, out);
    }
}

// -q before or after PATH: the same reader (it used to be the safetensors one after a .bin's path)
static void test_inspect_quiet(void) {
    check_help("inspect", "t5-xxl");
    TEST_CHECK(cli("inspect a.bin -q") == 0 && strstr(out, "a.bin (a torch.save file"), "inspect a.bin -q:\n%s", out);
    TEST_CHECK(cli("inspect --quiet a.bin") == 0 && strstr(out, "a.bin (a torch.save file"), "inspect --quiet a.bin:\n%s", out);
    TEST_CHECK(cli("inspect -q runs/tiny") == 0 && strstr(out, "checkpoint runs/tiny/checkpoints/step-2 (verified"),
               "inspect -q RUN: its checkpoint, as without -q:\n%s", out);
}

// an option at the end of the line without its value: said so (it was "unknown argument '--out'")
static void test_missing_value(void) {
    struct { const char *args, *want; } c[] = {
        {"train --resume", "--resume needs a value"},
        {"train --set", "--set needs a value"},
        {"export runs/tiny/checkpoints --out", "--out needs a value"},
        {"sample runs/tiny/checkpoints --ref r.png --out s.png --prompt", "--prompt needs a value"},
        {"eval runs/tiny/checkpoints --pairs p.jsonl --out", "--out needs a value"},
        {"eval runs/tiny/checkpoints --pairs p.jsonl --out e --scales", "--scales needs a value"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        int rc = cli("%s", c[i].args);
        TEST_CHECK(rc == 2 && strstr(out, c[i].want), "cameo %s: exit %d, want '%s' in:\n%s", c[i].args, rc, c[i].want, out);
    }
    char sets[2048] = "train";
    for (int i = 0; i < 64; i++) strcat(sets, " --set run.seed=1");
    int rc = cli("%s", sets);
    TEST_CHECK(rc == 2 && strstr(out, "more than 63 --set"), "64 --set: exit %d\n%s", rc, out);
}

// the resume message counts stages from 1 as the progress bar and inspect do (it said "stage 0
// (unpaired)" for the first)
static void test_resume_message(void) {
    // the run's last stage with steps was the first (the others had 0): its checkpoint stays there,
    // data position kept, and the resume goes on into the now-lengthened second
    int rc = cli("train --resume runs/tiny/checkpoints --set stages.1.steps=1 --set stages.1.batch_size=1");
    TEST_CHECK(rc == 0 && strstr(out, "resuming from runs/tiny/checkpoints/step-2: step 2, stage 1 of 3 (unpaired), 2 of its steps done") &&
                   strstr(out, "checkpoint runs/tiny/checkpoints/step-3"),
               "resume message: exit %d\n%s", rc, out);
}

// a file where a checkpoint belongs: said so (it was "a.bin: no such checkpoint folder")
static void test_file_not_checkpoint(void) {
    int rc = cli("export a.bin --out x.safetensors");
    TEST_CHECK(rc == 1 && strstr(out, "a.bin is a file, not a checkpoint"), "export a.bin: exit %d\n%s", rc, out);
    {   // a readable reference (sample reads it first): the checkpoint is what is wrong here
        char rp[128];
        snprintf(rp, sizeof rp, "%s/r.png", dir);
        uint8_t px[8 * 8 * 3] = {0};
        char e[256];
        TEST_CHECK(image_write_png(rp, &(image){8, 8, 3, px}, e, sizeof e) == 0, "%s", e);
    }
    rc = cli("sample runs/tiny/adapter.safetensors --ref r.png --prompt p --out s.png");
    TEST_CHECK(rc == 1 && strstr(out, "adapter.safetensors is a file, not a checkpoint"), "sample ADAPTER: exit %d\n%s", rc, out);
    // --ema on a run without an average (the README's export --ema after its plain run): what to do instead
    rc = cli("export runs/tiny/checkpoints --ema --out e.bin");
    TEST_CHECK(rc == 1 && strstr(out, "no weight average") && strstr(out, "leave out --ema") && strstr(out, "optimizer.ema=0.999"),
               "export --ema without an average: exit %d\n%s", rc, out);
    // a file that is not an adapter: the checkpoint's optimizer state was written out as a .bin
    // of <param>.m / .master keys that the pipeline's load_state_dict(strict=False) passes over
    rc = cli("export runs/tiny/checkpoints/step-2/optimizer.safetensors --out o.bin");
    char ob[128];
    snprintf(ob, sizeof ob, "%s/o.bin", dir);
    TEST_CHECK(rc == 1 && strstr(out, "is an optimizer state") && access(ob, F_OK) != 0, "export OPTIMIZER FILE: exit %d\n%s", rc, out);
    {   // another model's weights: named, nothing written
        char fp[128];
        snprintf(fp, sizeof fp, "%s/foreign.safetensors", dir);
        float w[4] = {1, 2, 3, 4};
        int64_t shape[1] = {4};
        st_writer *sw = st_writer_new();
        st_writer_add(sw, "ip_adapter.0.to_k_ip.bias", CM_F32, 1, shape, w);
        st_writer_add(sw, "transformer_blocks.0.attn.to_q.bias", CM_F32, 1, shape, w);
        char e[512];
        TEST_CHECK(st_writer_save(sw, fp, e, sizeof e) == 0, "%s", e);
        st_writer_free(sw);
        rc = cli("export foreign.safetensors --out o.bin");
        TEST_CHECK(rc == 1 && strstr(out, "'transformer_blocks.0.attn.to_q.bias' is not part of an InstantCharacter adapter") &&
                   access(ob, F_OK) != 0, "export FOREIGN FILE: exit %d\n%s", rc, out);
    }
    // import-bin writes safetensors: OUT under another name was written all the same, and
    // `import-bin a.bin a.bin` replaced the torch.save file by its conversion
    uint8_t head[4] = {0};
    char ab[128];
    snprintf(ab, sizeof ab, "%s/a.bin", dir);
    rc = cli("import-bin a.bin a.bin");
    FILE *hf = fopen(ab, "rb");
    TEST_CHECK(hf && fread(head, 1, 4, hf) == 4 && !memcmp(head, "PK\3\4", 4), "a.bin still a torch.save zip");
    if (hf) fclose(hf);
    TEST_CHECK(rc == 2 && strstr(out, "give a name ending in .safetensors"), "import-bin a.bin a.bin: exit %d\n%s", rc, out);
    rc = cli("import-bin a.bin b.pt");
    TEST_CHECK(rc == 2 && strstr(out, "b.pt: the output is written as safetensors"), "import-bin a.bin b.pt: exit %d\n%s", rc, out);
    // --list after IN.bin was read as OUT "--list" ("--list: the output is written as safetensors")
    rc = cli("import-bin a.bin --list");
    TEST_CHECK(rc == 0 && strstr(out, "a.bin (a torch.save file") && !strstr(out, "written as safetensors"),
               "import-bin a.bin --list: exit %d\n%s", rc, out);
    // its errors named another command ("cameo inspect: nothing.bin: ..."); --list alone, or with two
    // files, printed the usage without saying what was wrong
    rc = cli("import-bin --list nothing.bin");
    TEST_CHECK(rc == 1 && strstr(out, "cameo import-bin --list: nothing.bin") && !strstr(out, "cameo inspect"),
               "import-bin --list MISSING: exit %d\n%s", rc, out);
    rc = cli("import-bin --list");
    TEST_CHECK(rc == 2 && strstr(out, "--list: missing IN.bin"), "import-bin --list: exit %d\n%s", rc, out);
    rc = cli("import-bin --list a.bin b.safetensors");
    snprintf(ab, sizeof ab, "%s/b.safetensors", dir);
    TEST_CHECK(rc == 2 && strstr(out, "--list lists one file") && access(ab, F_OK) != 0,
               "import-bin --list IN OUT: exit %d\n%s", rc, out);
    rc = cli("import-bin a.bin");
    TEST_CHECK(rc == 2 && strstr(out, "missing OUT.safetensors"), "import-bin IN alone: exit %d\n%s", rc, out);
    rc = cli("export runs/tiny/checkpoints --out s.safetensors");
    rc |= cli("import-bin s.safetensors s.safetensors");
    TEST_CHECK(rc == 2 && strstr(out, "s.safetensors is the input itself"), "import-bin s.safetensors s.safetensors: exit %d\n%s", rc, out);
    // --out into the checkpoint itself: refused (the adapter written over a file of it broke the
    // manifest, and the checkpoint was lost to resume)
    rc = cli("export runs/tiny/checkpoints/step-2 --out runs/tiny/checkpoints/step-2/optimizer.safetensors");
    TEST_CHECK(rc == 2 && strstr(out, "is inside the checkpoint folder"), "export into the checkpoint: exit %d\n%s", rc, out);
    rc = cli("inspect runs/tiny/checkpoints/step-2");
    TEST_CHECK(rc == 0 && strstr(out, "(verified"), "the checkpoint still verifies: exit %d\n%s", rc, out);
    rc = cli("export nothing-here --out x.safetensors");
    TEST_CHECK(rc == 1 && strstr(out, "nothing-here: no such checkpoint folder"), "export a missing path: exit %d\n%s", rc, out);
}

// a checkpoint's adapter.safetensors given by path — export's input, or model.adapter_init as the
// docs suggest for a new run from a checkpoint — was read unverified: a damaged one was exported or
// trained on without a word, while the folder itself was refused
static void test_damaged_member(void) {
    int rc = test_sh("cd %s && rm -rf dmg && cp -r runs/tiny/checkpoints/step-2 dmg && "
                     "printf 'U' | dd of=dmg/adapter.safetensors bs=1 seek=$(($(stat -c %%s dmg/adapter.safetensors) - 100)) conv=notrunc 2>/dev/null", dir);
    TEST_CHECK(rc == 0, "make dmg: exit %d", rc);
    char db[128];
    snprintf(db, sizeof db, "%s/d.bin", dir);
    rc = cli("export dmg/adapter.safetensors --out d.bin");
    TEST_CHECK(rc == 1 && strstr(out, "dmg/adapter.safetensors: crc32") && strstr(out, "(damaged)") && access(db, F_OK) != 0,
               "export of a damaged checkpoint adapter by path: exit %d\n%s", rc, out);
    rc = cli("train --set stages.0.steps=1 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs --set run.name=dmg "
             "--set data.path=data --set stages.0.batch_size=1 --set model.adapter_init=dmg/adapter.safetensors --quiet");
    TEST_CHECK(rc != 0 && strstr(out, "dmg/adapter.safetensors: crc32") && strstr(out, "(damaged)"),
               "train from a damaged checkpoint adapter: exit %d\n%s", rc, out);
    rc = cli("export runs/tiny/checkpoints/step-2/adapter.safetensors --out d.bin");
    TEST_CHECK(rc == 0 && access(db, F_OK) == 0, "export of an intact checkpoint adapter by path: exit %d\n%s", rc, out);
    test_sh("rm -rf %s/dmg %s/d.bin %s/runs/dmg", dir, dir, dir);
}

// inspect lists every file of a checkpoint and its newest checkpoints: a folder of more than 64
// files (one optimizer shard per rank at 128 ranks) showed the first 64 readdir gave, here leaving
// config.yaml or the adapter out, and over 64 checkpoints the oldest 64 and "...", not the newest
static void test_inspect_many(void) {
    int rc = test_sh("cd %s && mkdir -p many/checkpoints && cp -r runs/tiny/checkpoints/step-2 many/checkpoints/step-2 && "
                     "for i in $(seq 100 169); do : > many/checkpoints/step-2/shard-$i.txt; "
                     "mkdir many/checkpoints/step-$i && cp runs/tiny/checkpoints/step-2/manifest.json many/checkpoints/step-$i; "
                     "done && echo step-2 > many/checkpoints/latest", dir);  // a manifest makes a step-N listed
    TEST_CHECK(rc == 0, "make many/checkpoints: exit %d", rc);
    rc = cli("inspect many/checkpoints");
    const char *want[] = {"adapter.safetensors", "config.yaml", "manifest.json", "optimizer.safetensors", "trainer_state.json",
                          "shard-100.txt", "shard-169.txt", "checkpoints in many/checkpoints (71): step-2 step-100 step-101 step-102 "
                          "... (39 more) ... step-142", "step-168 step-169\n"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        TEST_CHECK(rc == 0 && strstr(out, want[i]), "inspect of 75 files and 71 checkpoints: exit %d, want '%s' in:\n%s", rc, want[i], out);
    test_sh("rm -rf %s/many", dir);
}

// a stage of 0 steps is skipped: its mode asks nothing of the data, its loader is never opened (a
// paired stage of 0 steps refused a dataset without pairs); a run of 0 steps in all says it wrote
// no checkpoint (it printed "checkpoint:  (resume with --resume)")
static void test_zero_step_stages(void) {
    int rc = cli("data demo --out single --characters 3 --per-character 1");
    TEST_CHECK(rc == 0, "demo of single-image characters: exit %d\n%s", rc, out);
    rc = cli("train --set data.path=single --set stages.0.steps=1 --set stages.0.batch_size=1 --set stages.1.steps=0 "
             "--set stages.2.steps=0 --set run.out_dir=runs1 --set stages.0.warmup_steps=4 --set stages.1.warmup_steps=4");
    TEST_CHECK(rc == 0 && strstr(out, "done: 1 steps") && !strstr(out, "stage 2/3"), "paired stage of 0 steps on single images: exit %d\n%s", rc,
               out);
    // a warm-up longer than its stage is told (the skipped stage's is not)
    TEST_CHECK(strstr(out, "warning: stage 1/3: warmup_steps 4 > steps 1: the learning rate climbs the whole stage and ends at") &&
               strstr(out, "25% of its lr") && !strstr(out, "stage 2/3: warmup_steps"), "warm-up past the stage's end:\n%s", out);
    rc = cli("train --set data.path=single --set stages.0.steps=0 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs0");
    TEST_CHECK(rc == 0 && strstr(out, "done: 0 steps") && strstr(out, "checkpoint: none (no step was run)") && !strstr(out, "checkpoint:  ("),
               "a run of 0 steps: exit %d\n%s", rc, out);
}

// a stage whose dataset has no aspect bucket with a whole global batch (a few images of one's own
// character): stopped before the models load, naming stages[s].batch_size and what to do; it was
// found by the loader only when that stage began (after the full-size models had loaded, or after
// the earlier stages had trained) and named the loader's `global_batch`, no config key
static void test_batch_over_buckets(void) {
    int rc = cli("data demo --out five --characters 1 --per-character 5");  // 64x64: 2, 80x48: 3 at resolution 64
    TEST_CHECK(rc == 0, "demo of one character: exit %d\n%s", rc, out);
    rc = cli("train --set data.path=five --set run.out_dir=runs5 --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0");
    char run5[128];
    snprintf(run5, sizeof run5, "%s/runs5", dir);
    TEST_CHECK(rc == 1 && strstr(out, "stages[0].batch_size: stage 1/3 ('unpaired') takes global batches of 4") &&
                   strstr(out, "has at most 3 in any bucket") && strstr(out, "--set 'stages.0.buckets=[[64, 64]]'") &&
                   !strstr(out, "global_batch") && !strstr(out, "stage 1/3 unpaired:") && access(run5, F_OK) != 0,
               "batch 4 over buckets of 2 and 3 images (refused, no run folder left): exit %d\n%s", rc, out);
    rc = cli("train --set data.path=five --set run.out_dir=runs5 --set stages.0.steps=0 --set stages.1.steps=0 --set stages.2.steps=1 "
             "--set stages.2.batch_size=8 --set stages.2.grad_accum=1");
    TEST_CHECK(rc == 1 && strstr(out, "stages[2].batch_size: stage 3/3 ('mixed') takes global batches of 8") && strstr(out, "or add images") &&
                   !strstr(out, "buckets=["),
               "batch 8 from 5 images: exit %d\n%s", rc, out);
    rc = cli("train --set data.path=five --set run.out_dir=runs5b --set 'stages.0.buckets=[[64, 64]]' --set stages.0.steps=1 "
             "--set stages.1.steps=0 --set stages.2.steps=0");
    TEST_CHECK(rc == 0 && strstr(out, "done: 1 steps") && !strstr(out, "enlarged"), "the suggested single bucket: exit %d\n%s", rc, out);
    // a stage at twice the images' size learns from blurred targets: said before it trains (it was not said at all)
    rc = cli("train --set data.path=five --set run.out_dir=runs5c --set 'stages.0.buckets=[[128, 128]]' --set stages.0.resolution=128 "
             "--set stages.0.steps=1 --set stages.1.steps=0 --set stages.2.steps=0");
    TEST_CHECK(rc == 0 && strstr(out, "warning: stage 1/3 ('unpaired', resolution 128): 3 of 5 images of five (60%) are smaller than "
                                      "their bucket and are enlarged to it (up to 1.3x)") &&
                   strstr(out, "done: 1 steps") && strstr(out, "enlarged") < strstr(out, "stage 1/3 unpaired:"),
               "a stage upscaling most images: exit %d\n%s", rc, out);
    // a few held-out images over two buckets (finetune-character.yaml's suggestion): validation in
    // the stage's batches of 4 cannot take them, validation.batch_size: 1 can (there was no such key)
    rc = cli("train --set validation.path=five --set validation.every=1 --set run.out_dir=runs5d --set stages.0.steps=1 "
             "--set stages.1.steps=0 --set stages.2.steps=0");
    TEST_CHECK(rc == 1 && strstr(out, "validation.path: validation in stage 1/3 ('unpaired') takes global batches of 4") &&
                   strstr(out, "lower validation.batch_size (validation.batch_size: 1 takes any held-out set)") && !strstr(out, "stage 1/3 unpaired:"),
               "validation batches of 4 over buckets of 2 and 3: exit %d\n%s", rc, out);
    rc = cli("train --set validation.path=five --set validation.every=1 --set validation.batch_size=1 --set validation.samples=5 "
             "--set run.out_dir=runs5d --set stages.0.steps=1 --set stages.1.steps=0 --set stages.2.steps=0");
    TEST_CHECK(rc == 0 && strstr(out, "done: 1 steps") && strstr(out, ") on 5 samples,"), "validation.batch_size: 1: exit %d\n%s", rc, out);
    rc = cli("data stats five --resolution 128");  // the command the warning names says the same
    TEST_CHECK(rc == 0 && strstr(out, "image shorter side: 96 to 128 px; enlarged to their bucket at 128²: 3 (60%), up to 1.3x"),
               "data stats on enlarged images: exit %d\n%s", rc, out);
}

// the README's CPU fallback with model.dtype left at a full config's bf16: the message says what to
// set (it said only that the CPU computes in f32), and comes before the run folder is made (an
// empty RUN/checkpoints/ was left behind)
static void test_cpu_bf16(void) {
    char run[128];
    snprintf(run, sizeof run, "%s/runs-bf16", dir);
    int rc = cli("train --set model.dtype=bf16 --set run.out_dir=runs-bf16");
    TEST_CHECK(rc == 1 && strstr(out, "model.dtype: bf16 on the CPU") && strstr(out, "--set model.dtype=f32") && access(run, F_OK) != 0,
               "bf16 on the CPU: exit %d\n%s", rc, out);
}

// a required argument left out: named before the usage (the usage alone was printed)
static void test_missing_required(void) {
    struct { const char *args, *want; } c[] = {
        {"sample runs/tiny/checkpoints --ref r.png --prompt p", "missing --out OUT.png"},
        {"sample --ref r.png --prompt p --out s.png", "missing CHECKPOINT"},
        {"eval runs/tiny/checkpoints --pairs p.jsonl", "missing --out DIR"},
        {"eval runs/tiny/checkpoints --out e", "missing --pairs PAIRS.jsonl"},
        {"eval --config c.yaml --pairs p.jsonl --out e", "missing ADAPTER"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        int rc = cli("%s", c[i].args);
        TEST_CHECK(rc == 2 && strstr(out, c[i].want) && strstr(out, "usage:"), "cameo %s: exit %d, want '%s' in:\n%s", c[i].args, rc, c[i].want,
                   out);
    }
}

// an export stopped by SIGTERM mid-write leaves no OUT.tmp (it stayed, part-written). OUT.tmp made a
// FIFO whose reader never reads: the export blocks in its write, past the pipe's 64 KiB of a 500 KB
// adapter, for as long as the test likes (no timing)
static void test_export_killed(void) {
    char tmp[128], fin[128];
    snprintf(tmp, sizeof tmp, "%s/k.safetensors.tmp", dir);
    snprintf(fin, sizeof fin, "%s/k.safetensors", dir);
    TEST_CHECK(mkfifo(tmp, 0644) == 0, "mkfifo %s", tmp);
    int rd = open(tmp, O_RDONLY | O_NONBLOCK);  // a reader: the export's open for writing does not wait
    TEST_CHECK(rd >= 0, "open %s", tmp);
    if (rd < 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1), dup2(nul, 2);
        if (chdir(dir)) _exit(127);
        execl(cameo, cameo, "export", "runs/tiny/checkpoints", "--out", "k.safetensors", (char *)NULL);
        _exit(127);
    }
    struct pollfd pf = {rd, POLLIN, 0};
    int ready = poll(&pf, 1, 60000);  // its first bytes: it is writing (a guard against a hang, not a timing)
    TEST_CHECK(ready == 1 && (pf.revents & POLLIN), "the export writes into k.safetensors.tmp (poll %d, revents %d)", ready, pf.revents);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    close(rd);
    struct stat sb;
    TEST_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the export ends by SIGTERM (status %#x)", st);
    TEST_CHECK(lstat(tmp, &sb) != 0 && access(fin, F_OK) != 0, "a killed export leaves %s behind (or a part of OUT)", tmp);
    unlink(tmp);
}

// a resume whose data.path names another dataset (the user rebuilt it with more photos) while a
// stage is some steps in: refused before any model is loaded, naming the key, both datasets and the
// way on (it went through as "resume: data.path changed", loaded the models, then failed in the
// loader with hashes: "the checkpoint's data position belongs to another order")
static void test_resume_other_dataset(void) {
    int rc = cli("data demo --out data2 --characters 2 --per-character 2 --seed 5");
    TEST_CHECK(rc == 0, "data demo data2: exit %d\n%s", rc, out);
    rc = cli("train --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs-ds "
             "--set data.path=data --set stages.0.batch_size=1 --quiet");
    TEST_CHECK(rc == 0, "the run to resume: exit %d\n%s", rc, out);
    rc = cli("train --resume runs-ds/tiny/checkpoints --set stages.0.steps=3 --set data.path=data2");
    TEST_CHECK(rc != 0 && strstr(out, "data.path: data2 is not the dataset stage 1/3 ('unpaired') is 2 steps into (data, the checkpoint's") &&
                   strstr(out, "--set model.adapter_init=") && !strstr(out, "belongs to another order"),
               "resume on another dataset: exit %d, want data.path refused, both datasets named, in:\n%s", rc, out);
    // the same folder rebuilt under the run (a shard added or rewritten): said as a change of that dataset
    rc = cli("train --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=runs-ds3 "
             "--set data.path=data3 --set stages.0.batch_size=1 --set data.demo_characters=2 --set data.demo_per_character=2 --quiet");
    TEST_CHECK(rc == 0, "the run on data3: exit %d\n%s", rc, out);
    test_sh("cd %s && rm -rf data3 && cp -r data2 data3", dir);
    rc = cli("train --resume runs-ds3/tiny/checkpoints --set stages.0.steps=3");
    TEST_CHECK(rc != 0 && strstr(out, "data.path: the dataset at data3 changed since stage 1/3 ('unpaired') began on it, 2 steps ago") &&
                   !strstr(out, "is not the dataset"), "resume on a dataset rebuilt in place: exit %d, want it said as changed, in:\n%s",
               rc, out);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: cli_usage PATH/TO/cameo\n"); return 2; }
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-cli-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_bench_help();
    test_help_flags();
    test_train_two_configs();
    test_export_import_help();
    test_data_help();
    test_profile_full_disk();
    test_profile_rank();
    if (make_run()) {
        test_inspect_quiet();
        test_export_killed();
        test_legacy_bin();
        test_missing_value();
        test_file_not_checkpoint();
        test_inspect_many();
        test_damaged_member();
        test_missing_required();
        test_resume_message();
        test_zero_step_stages();
        test_batch_over_buckets();
        test_cpu_bf16();
        test_resume_other_dataset();
    }
    fs_remove_tree(dir);
    return test_summary("cli_usage");
}
