// e2e_train.c — `cameo train` as a user runs it, as real processes: three tiny stages; resume
// from a mid-stage checkpoint and from a stage boundary gives bit-identical weights and optimizer
// state to the uninterrupted run; SIGINT checkpoints and exits 0; `--resume auto` after SIGTERM
// (a requeued job) resumes, a plain start over existing checkpoints is refused; SIGKILL at any
// moment leaves a resumable run; `cameo export` writes the adapter with its published keys and shapes.
// Usage: e2e_train PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "models/safetensors.h"
#include "train/torch_import.h"
#include "testutil.h"

static const char *cameo;
static char dir[64];

#define STEPS "--set stages.0.steps=6 --set stages.1.steps=4 --set stages.2.steps=4 --set run.keep_last=0 --set run.ckpt_every=3 --quiet"


static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

// waits until path exists (the run reached that point); false after timeout_ms
static bool wait_for(const char *path, int timeout_ms) {
    for (int t = 0; t < timeout_ms; t += 5) {
        if (access(path, F_OK) == 0) return true;
        usleep(5000);
    }
    return false;
}

// `sh -c CMD` in the background, its stderr discarded (CMD starts with exec: signals reach cameo)
static pid_t spawn(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

// spawn(cmd), wait until run RUN (under dir) checkpointed step `step`, send sig, reap it: the
// wait status (-1 if it never got there: it is killed)
static int signal_at_step(const char *cmd, const char *dir, const char *run, int step, int sig) {
    char p[1024];
    pid_t pid = spawn(cmd);
    snprintf(p, sizeof p, "%s/%s/tiny/checkpoints/step-%d", dir, run, step);
    bool reached = wait_for(p, 120000);
    TEST_CHECK(reached, "run %s reached step %d", run, step);
    kill(pid, reached ? sig : SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    return reached ? status : -1;
}

// the weights and optimizer state of run X's final checkpoint equal run A's, byte for byte, and so
// does the smoothed loss of its last metrics line (a resume restores its running average exactly)
static void check_same_final(const char *run) {
    char a[512], b[512];
    const char *files[] = {"adapter.safetensors", "optimizer.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/a/tiny/checkpoints/step-14/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s/tiny/checkpoints/step-14/%s", dir, run, files[i]);
        TEST_CHECK(same_file(a, b), "%s: %s differs from the uninterrupted run's", run, files[i]);
    }
#define SMOOTHED(r) "sed -n 's/^{\"step\":14,.*\"loss_smoothed\":\\([^,]*\\),.*/\\1/p' %s/" r "/tiny/metrics.jsonl"
    TEST_CHECK(test_sh("test -n \"$(" SMOOTHED("a") ")\" && test \"$(" SMOOTHED("a") ")\" = \"$(" SMOOTHED("%s") ")\"", dir, dir, dir,
                       run) == 0, "%s: the smoothed loss at step 14 is the uninterrupted run's", run);
#undef SMOOTHED
}

// how many tensors named prefix.… two safetensors files hold with the same bytes, and how many in all
static int same_tensors(const char *fa, const char *fb, const char *prefix, int *total) {
    char e[512];
    st_file *a = st_open(fa, e, sizeof e), *b = st_open(fb, e, sizeof e);
    TEST_CHECK(a && b, "%s", e);
    int same = 0;
    *total = 0;
    for (int i = 0; a && b && i < st_count(a); i++) {
        const st_entry *x = st_at(a, i), *y = st_find(b, x->name);
        if (strncmp(x->name, prefix, strlen(prefix))) continue;
        (*total)++;
        same += y && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
    }
    if (a) st_close(a);
    if (b) st_close(b);
    return same;
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_train PATH/TO/cameo");
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-e2e-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    // the uninterrupted run (also generates the dataset, shared by all runs below)
    TEST_CHECK(test_sh("%s train " STEPS " --set run.out_dir=%s/a --set data.path=%s/data 2>%s/a.log", cameo, dir, dir, dir) == 0, "run a");
    char p[512];
    snprintf(p, sizeof p, "%s/a/tiny/adapter.safetensors", dir);
    TEST_CHECK(access(p, R_OK) == 0, "adapter exported at the end");
    snprintf(p, sizeof p, "%s/a/tiny/metrics.jsonl", dir);
    TEST_CHECK(access(p, R_OK) == 0, "metrics.jsonl written");
    // the final adapter cannot be written (a full disk: its temporary name is /dev/full): the error
    // says the last checkpoint is intact and gives the export that makes the file, which does
    TEST_CHECK(test_sh("mkdir -p %s/full/tiny && ln -s /dev/full %s/full/tiny/adapter.safetensors.tmp && "
                       "! %s train --resume %s/a/tiny/checkpoints/step-14 --set run.out_dir=%s/full --quiet 2>%s/full.log && "
                       "grep -q 'No space left on device' %s/full.log && "
                       "grep -qF 'last checkpoint %s/a/tiny/checkpoints/step-14 is intact' %s/full.log && "
                       "grep -qF 'cameo export %s/a/tiny/checkpoints/step-14 --out %s/full/tiny/adapter.safetensors' %s/full.log",
                       dir, dir, cameo, dir, dir, dir, dir, dir, dir, dir, dir, dir) == 0,
               "a full disk at the final adapter names the checkpoint and the export (see %s/full.log)", dir);
    TEST_CHECK(test_sh("%s export %s/a/tiny/checkpoints/step-14 --out %s/full/tiny/adapter.safetensors >/dev/null 2>&1", cameo, dir,
                       dir) == 0, "the export the message gives");
    // a checkpoint that cannot be written stops the run with what the save needs and what is kept:
    // past a file-size limit (`ulimit -f`; the optimizer state is 2.9 MB) the write fails by name,
    // where SIGXFSZ killed the process without a word; the checkpoint resumed from is named intact
    TEST_CHECK(test_sh("(ulimit -f 2000 && exec %s train --resume %s/a/tiny/checkpoints/step-3 --set run.out_dir=%s/fsz --quiet "
                       "2>%s/fsz.log); test $? = 1 && grep -q 'optimizer.safetensors.tmp failed: File too large. The checkpoint of "
                       "step 6 was not saved (about [0-9.]* MiB; [0-9.]* MiB free under .*; the file-size limit (ulimit -f) is "
                       "[0-9]* bytes)' %s/fsz.log && grep -qF 'the checkpoint it resumed from, %s/a/tiny/checkpoints/step-3, is "
                       "intact; once there is room the same command goes on' %s/fsz.log && ! ls -A %s/fsz/tiny/checkpoints | grep -q .",
                       cameo, dir, dir, dir, dir, dir, dir, dir) == 0, "a file-size limit at a checkpoint (see %s/fsz.log)", dir);
    // the same after a checkpoint of its own (step-5 taken by a file: the rename fails): that one
    // is named, with the resume that goes on from it
    TEST_CHECK(test_sh("mkdir -p %s/sv/tiny/checkpoints && touch %s/sv/tiny/checkpoints/step-5 && ! %s train --resume "
                       "%s/a/tiny/checkpoints/step-3 --set run.out_dir=%s/sv --set run.ckpt_every=1 --quiet 2>%s/sv.log && "
                       "grep -qF 'The checkpoint of step 5 was not saved' %s/sv.log && grep -qF 'its last checkpoint "
                       "%s/sv/tiny/checkpoints/step-4 is intact; once that is mended `cameo train --resume %s/sv/tiny/checkpoints`' "
                       "%s/sv.log", dir, dir, cameo, dir, dir, dir, dir, dir, dir, dir) == 0,
               "a failed checkpoint names the run's last one and its resume (see %s/sv.log)", dir);
    {   // the same weights as the run's own (the export's metadata adds the step)
        char x[512], y[512];
        snprintf(x, sizeof x, "%s/full/tiny/adapter.safetensors", dir);
        snprintf(y, sizeof y, "%s/a/tiny/adapter.safetensors", dir);
        int n_all = 0, n_back = 0, same = same_tensors(y, x, "", &n_all);
        same_tensors(x, y, "", &n_back);
        TEST_CHECK(n_all > 0 && same == n_all && n_back == n_all, "the export remakes the run's adapter: %d of %d tensors the same (%d)",
                   same, n_all, n_back);
    }
    // a tiny run starts from model.adapter_init (it was checked to exist, then never read): with
    // no step run, the adapter it exports is the one it started from
    TEST_CHECK(test_sh("%s train --set stages.0.steps=0 --set stages.1.steps=0 --set stages.2.steps=0 --set run.out_dir=%s/init "
                       "--set data.path=%s/data --set model.adapter_init=%s/a/tiny/adapter.safetensors --quiet 2>%s/init.log && "
                       "cmp -s %s/a/tiny/adapter.safetensors %s/init/tiny/adapter.safetensors", cameo, dir, dir, dir, dir, dir, dir) == 0,
               "a tiny run from model.adapter_init exports those weights (see %s/init.log)", dir);
    // --quiet is how that process printed, not the run's config: a resume prints its bar again
    TEST_CHECK(test_sh("grep -q '^  quiet: false$' %s/a/tiny/checkpoints/step-3/config.yaml", dir) == 0,
               "--quiet not saved in the checkpoint's config.yaml");

    // the validation loss: the same weights as without it; every 4 steps and at the end; a resume
    // remakes the later lines with the same values; a missing held-out set is named before any work
    TEST_CHECK(test_sh("%s train " STEPS " --set validation.every=4 --set validation.samples=4 --set run.out_dir=%s/v "
                       "--set data.path=%s/data 2>%s/v.log", cameo, dir, dir, dir) == 0, "run v (see %s/v.log)", dir);
    check_same_final("v");
    int64_t vs[16], vs2[16];
    double vl[16], vl2[16];
    int nv = test_run_validation(dir, "v", vs, vl, 16);
    TEST_CHECK(nv == 4 && vs[0] == 4 && vs[1] == 8 && vs[2] == 12 && vs[3] == 14, "validation at steps 4, 8, 12 and the last (%d lines)", nv);
    for (int i = 0; i < nv; i++) TEST_CHECK(isfinite(vl[i]) && vl[i] > 0, "validation loss %g at step %lld", vl[i], (long long)vs[i]);
    TEST_CHECK(test_sh("%s train --resume %s/v/tiny/checkpoints/step-6 --set run.out_dir=%s/v2 --quiet 2>%s/v2.log", cameo, dir, dir, dir) == 0,
               "resume v (see %s/v2.log)", dir);
    int nv2 = test_run_validation(dir, "v2", vs2, vl2, 16);
    TEST_CHECK(nv2 == 3 && vs2[0] == 8, "the resumed run validates at 8, 12, 14 (%d lines)", nv2);
    for (int i = 0; i < nv2 && i + 1 < nv; i++)
        TEST_CHECK(vs2[i] == vs[i + 1] && vl2[i] == vl[i + 1], "step %lld: validation loss %.17g after the resume, %.17g before",
                   (long long)vs2[i], vl2[i], vl[i + 1]);
    // a resume at a validation step whose line the run folder lacks (the stop came before or during
    // that validation: here a new folder) makes it first, with the uninterrupted run's value
    TEST_CHECK(test_sh("%s train --resume %s/v/tiny/checkpoints/step-12 --set run.out_dir=%s/v3 --quiet 2>%s/v3.log && "
                       "grep -q 'validation at step 12 was left out before the stop: made now' %s/v3.log", cameo, dir, dir, dir, dir) == 0,
               "resume v at its validation step 12 (see %s/v3.log)", dir);
    {
        int64_t s3[16];
        double l3[16];
        int n3 = test_run_validation(dir, "v3", s3, l3, 16);
        TEST_CHECK(n3 == 2 && nv == 4 && s3[0] == 12 && s3[1] == 14 && l3[0] == vl[2] && l3[1] == vl[3],
                   "validation at 12 made again, then 14, as run v (%d lines)", n3);
    }
    // with a weight average (optimizer.ema): the weights and their validation losses of run v, and
    // the average's loss beside them (not the weights'), remade alike by a resume
    TEST_CHECK(test_sh("%s train " STEPS " --set validation.every=4 --set validation.samples=4 --set optimizer.ema=0.8 "
                       "--set run.out_dir=%s/ve --set data.path=%s/data 2>%s/ve.log && cmp -s %s/v/tiny/adapter.safetensors "
                       "%s/ve/tiny/adapter.safetensors && grep -q '; the weight average' %s/ve.log", cameo, dir, dir, dir, dir, dir,
                       dir) == 0, "run ve: the weights of run v (see %s/ve.log)", dir);
    TEST_CHECK(test_sh("%s train --resume %s/ve/tiny/checkpoints/step-6 --set run.out_dir=%s/ve2 --quiet 2>%s/ve2.log", cameo, dir, dir,
                       dir) == 0, "resume ve (see %s/ve2.log)", dir);
    {
        int64_t s1[16], s2[16], s3[16];
        double l1[16], a1[16], a2[16];
        int n1 = test_run_validation(dir, "ve", s1, l1, 16), na = test_run_validation_key(dir, "ve", "loss_ema", s2, a1, 16),
            nr = test_run_validation_key(dir, "ve2", "loss_ema", s3, a2, 16), same = 0, apart = 0, again = 0;
        for (int i = 0; i < n1 && i < nv && i < na; i++) same += l1[i] == vl[i], apart += a1[i] != l1[i];
        for (int i = 0; i < nr && i + 1 < na; i++) again += s3[i] == s2[i + 1] && a2[i] == a1[i + 1];
        TEST_CHECK(n1 == nv && na == nv && same == nv && apart == nv && nr == nv - 1 && again == nr,
                   "validation with a weight average: %d of %d losses the weights', %d averages apart from them, %d of %d "
                   "remade by the resume", same, nv, apart, again, nr);
    }
    TEST_CHECK(test_sh("! %s train --set validation.every=2 --set validation.path=%s/none --set run.out_dir=%s/v3 "
                       "--set data.path=%s/data --quiet 2>%s/v3.log && grep -q 'validation.path' %s/v3.log", cameo, dir, dir, dir,
                       dir, dir) == 0, "a missing validation set is refused by name (see %s/v3.log)", dir);
    // every stage with its own dataset: data.path (here absent) is not needed
    TEST_CHECK(test_sh("%s train " STEPS " --set stages.2.steps=0 --set stages.0.data=%s/data --set stages.1.data=%s/data "
                       "--set stages.2.data=%s/data --set data.path=%s/none --set data.generate_demo_if_missing=false "
                       "--set run.out_dir=%s/own 2>%s/own.log", cameo, dir, dir, dir, dir, dir, dir) == 0,
               "stages with their own datasets need no data.path (see %s/own.log)", dir);
    // a last stage of steps: 0 is skipped: the run's last step is stage 2's, validated like any last step
    TEST_CHECK(test_sh("%s train " STEPS " --set stages.2.steps=0 --set validation.every=4 --set validation.samples=4 "
                       "--set run.out_dir=%s/vz --set data.path=%s/data 2>%s/vz.log", cameo, dir, dir, dir) == 0,
               "run vz (see %s/vz.log)", dir);
    {
        int64_t zs[16];
        double zl[16];
        int nz = test_run_validation(dir, "vz", zs, zl, 16);
        TEST_CHECK(nz == 3 && zs[0] == 4 && zs[1] == 8 && zs[2] == 10, "validation at steps 4, 8 and the last, 10 (%d lines, "
                   "the last at %lld)", nz, nz ? (long long)zs[nz - 1] : -1LL);
    }

    // resume mid-stage (step 3: inside stage 1, mid-epoch) and at a stage boundary (step 6)
    TEST_CHECK(test_sh("%s train --resume %s/a/tiny/checkpoints/step-3 --set run.out_dir=%s/b --quiet 2>%s/b.log", cameo, dir, dir, dir) == 0, "resume b");
    check_same_final("b");
    TEST_CHECK(test_sh("%s train --resume %s/a/tiny/checkpoints/step-6 --set run.out_dir=%s/c --quiet 2>%s/c.log", cameo, dir, dir, dir) == 0, "resume c");
    check_same_final("c");
    TEST_CHECK(test_sh("%s train --resume %s/a/tiny/checkpoints/step-12 --set run.out_dir=%s/d --quiet 2>%s/d.log", cameo, dir, dir, dir) == 0, "resume d");
    // another run's checkpoint into a run folder with checkpoints of its own (b's): refused, b's checkpoints kept
    TEST_CHECK(test_sh("! %s train --resume %s/a/tiny/checkpoints/step-12 --set run.out_dir=%s/b --quiet 2>%s/bx.log && "
                       "grep -q 'already holds [0-9]* checkpoint(s) of another run' %s/bx.log && ls %s/b/tiny/checkpoints/step-6/manifest.json",
                       cameo, dir, dir, dir, dir, dir) == 0,
               "resuming a's checkpoint into b's run folder is refused (see %s/bx.log)", dir);
    check_same_final("d");
    // a resume tells what it changes; the stage in progress refuses a batch size its data order
    // cannot follow, before any work (naming the key and both values)
    TEST_CHECK(test_sh("grep -q 'resume: run.out_dir changed from' %s/b.log", dir) == 0, "resume b tells its change (see %s/b.log)", dir);
    TEST_CHECK(test_sh("! %s train --resume %s/a/tiny/checkpoints/step-3 --set run.out_dir=%s/bs --set stages.0.batch_size=8 --quiet "
                       "2>%s/bs.log && grep -q 'stages\\[0\\].batch_size: 4 in the checkpoint, 8 now' %s/bs.log && ! test -e %s/bs",
                       cameo, dir, dir, dir, dir, dir) == 0, "a changed batch size mid-stage refused (see %s/bs.log)", dir);
    // a finished stage is not trained again: its change is told as doing nothing
    TEST_CHECK(test_sh("%s train --resume %s/a/tiny/checkpoints/step-12 --set run.out_dir=%s/fs --set stages.0.steps=9 --quiet "
                       "2>%s/fs.log && grep -q 'stages\\[0\\].steps changed from 6 .* to 9 — no effect: stage 1/3 is finished, the run "
                       "goes on in stage 3/3' %s/fs.log", cameo, dir, dir, dir, dir) == 0,
               "a finished stage's change told as doing nothing (see %s/fs.log)", dir);

    // AdamW moments in bf16 (optimizer.state_dtype): the checkpoint holds them in bf16, a resume
    // ends on the uninterrupted run's bytes, the losses follow the f32 state's; an f32-state
    // checkpoint resumes with bf16 moments (cast)
    TEST_CHECK(test_sh("%s train " STEPS " --set optimizer.state_dtype=bf16 --set run.out_dir=%s/h --set data.path=%s/data 2>%s/h.log && "
                       "%s train --resume %s/h/tiny/checkpoints/step-6 --set run.out_dir=%s/h2 --quiet 2>%s/h2.log && "
                       "%s train --resume %s/a/tiny/checkpoints/step-6 --set optimizer.state_dtype=bf16 --set run.out_dir=%s/h3 2>%s/h3.log",
                       cameo, dir, dir, dir, cameo, dir, dir, dir, cameo, dir, dir, dir) == 0, "bf16 moments: run, resume (see %s/h*.log)", dir);
    {
        char x[512], y[512], e[512];
        snprintf(x, sizeof x, "%s/h/tiny/checkpoints/step-14/optimizer.safetensors", dir);
        snprintf(y, sizeof y, "%s/h2/tiny/checkpoints/step-14/optimizer.safetensors", dir);
        TEST_CHECK(same_file(x, y), "bf16 moments: the resumed run's optimizer state is the uninterrupted run's");
        st_file *f = st_open(x, e, sizeof e);
        TEST_CHECK(f != NULL, "%s", e);
        int nm = 0, bf = 0;
        for (int i = 0; f && i < st_count(f); i++) {
            const st_entry *en = st_at(f, i);
            size_t l = strlen(en->name);
            if (l > 2 && (!strcmp(en->name + l - 2, ".m") || !strcmp(en->name + l - 2, ".v"))) nm++, bf += en->dtype == CM_BF16;
            if (l > 7 && !strcmp(en->name + l - 7, ".master")) TEST_CHECK(en->dtype == CM_F32, "%s: masters stay f32", en->name);
        }
        TEST_CHECK(nm > 50 && bf == nm, "bf16 moments: %d of %d moment tensors are bf16 in the checkpoint", bf, nm);
        if (f) st_close(f);
        double la[64], lb[64];
        int na = test_run_losses(dir, "a", la, 64), nb = test_run_losses(dir, "h", lb, 64);
        double worst = 0;
        for (int i = 0; i < na && i < nb; i++) worst = test_max(worst, fabs(la[i] - lb[i]) / fabs(la[i]));
        printf("bf16 against f32 AdamW moments: per-step loss within %.3g over %d steps\n", worst, na);
        TEST_CHECK(na == nb && na > 0 && worst < 2e-2, "bf16 moments: the losses follow the f32 state's (%.3g)", worst);
        TEST_CHECK(test_sh("grep -q 'optimizer.state_dtype changed from f32' %s/h3.log", dir) == 0, "the switch is told (see %s/h3.log)", dir);
    }

    // train.recompute: auto — each stage's first step (every block recomputed) measures, then as few
    // blocks as fit the budget recompute: none with room for all, all with room for none; the losses
    // are run a's (no recompute)
    TEST_CHECK(test_sh("CAMEO_RECOMPUTE_BUDGET_MB=100000 %s train " STEPS " --set train.recompute=auto --set run.out_dir=%s/ra "
                       "--set data.path=%s/data 2>%s/ra.log && test $(grep -c 'recompute: auto: the first 0 of 4 FLUX blocks "
                       "recompute' %s/ra.log) = 3", cameo, dir, dir, dir, dir) == 0,
               "recompute auto, room for every block: none recomputes after each stage's first step (see %s/ra.log)", dir);
    TEST_CHECK(test_sh("CAMEO_RECOMPUTE_BUDGET_MB=0.01 %s train " STEPS " --set train.recompute=auto --set run.out_dir=%s/rb "
                       "--set data.path=%s/data 2>%s/rb.log && test $(grep -c 'recompute: auto: the first 4 of 4 FLUX blocks "
                       "recompute' %s/rb.log) = 3", cameo, dir, dir, dir, dir) == 0,
               "recompute auto, no room: every block keeps recomputing (see %s/rb.log)", dir);
    {
        double la[64], lr[64];
        const char *runs[2] = {"ra", "rb"};
        int na = test_run_losses(dir, "a", la, 64);
        for (int r = 0; r < 2; r++) {
            int nr = test_run_losses(dir, runs[r], lr, 64);
            double worst = 0;
            for (int i = 0; i < na && i < nr; i++) worst = test_max(worst, fabs(la[i] - lr[i]) / fabs(la[i]));
            printf("recompute auto (%s) against no recompute: per-step loss within %.3g over %d steps\n", runs[r], worst, nr);
            TEST_CHECK(na == nr && na > 0 && worst < 1e-5, "recompute auto (%s): the losses of run a (%.3g)", runs[r], worst);
        }
    }
    // on the CPU a recompute scope gives the plain tape's bits (the replays add into what the inputs
    // every block reads have gathered, in the plain tape's order): both end on run a's bytes, and so
    // does ra resumed mid-stage (its first step after the resume is measured again, all recomputed)
    check_same_final("ra");
    check_same_final("rb");
    TEST_CHECK(test_sh("CAMEO_RECOMPUTE_BUDGET_MB=100000 %s train --resume %s/ra/tiny/checkpoints/step-3 --set run.out_dir=%s/rc "
                       "--quiet 2>%s/rc.log && test $(grep -c 'recompute: auto: the first 0 of 4' %s/rc.log) = 3", cameo, dir, dir,
                       dir, dir) == 0, "recompute auto resumed mid-stage: measured again (see %s/rc.log)", dir);
    check_same_final("rc");

    // adapter.freeze: the projector held fixed — its weights leave the run as they came in (equal to
    // a 2-step run's), the IP weights train, the optimizer keeps no state for it, a resume ends on
    // the uninterrupted run's bytes and one that changes the frozen set is refused
    // (with a weight average, optimizer.ema: it resumes exactly too, and holds nothing of the frozen part)
    TEST_CHECK(test_sh("%s train " STEPS " --set 'adapter.freeze=[image_proj]' --set optimizer.ema=0.8 --set run.out_dir=%s/fz "
                       "--set data.path=%s/data 2>%s/fz.log && "
                       "%s train --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0 --set 'adapter.freeze=[image_proj]' "
                       "--quiet --set run.out_dir=%s/fz1 --set data.path=%s/data 2>%s/fz1.log && "
                       "%s train --resume %s/fz/tiny/checkpoints/step-6 --set run.out_dir=%s/fz2 --quiet 2>%s/fz2.log && "
                       "grep -q 'adapter.freeze: [0-9]* of [0-9]* tensors held fixed' %s/fz.log",
                       cameo, dir, dir, dir, cameo, dir, dir, dir, cameo, dir, dir, dir, dir) == 0, "adapter.freeze runs (see %s/fz*.log)", dir);
    {
        char x[512], y[512];
        int n_proj, n_ip, n_all;
        snprintf(x, sizeof x, "%s/fz/tiny/adapter.safetensors", dir);
        snprintf(y, sizeof y, "%s/fz1/tiny/adapter.safetensors", dir);
        int sp = same_tensors(x, y, "image_proj.", &n_proj), si = same_tensors(x, y, "ip_adapter.", &n_ip);
        printf("adapter.freeze=[image_proj]: %d of %d projector tensors as a 2-step run's, %d of %d IP tensors\n", sp, n_proj, si, n_ip);
        TEST_CHECK(n_proj > 10 && sp == n_proj && n_ip > 10 && si == 0, "the projector held, the IP weights trained");
        snprintf(y, sizeof y, "%s/a/tiny/adapter.safetensors", dir);
        TEST_CHECK(same_tensors(x, y, "image_proj.", &n_all) == 0, "without freeze the projector trains");
        snprintf(x, sizeof x, "%s/fz/tiny/checkpoints/step-14/optimizer.safetensors", dir);
        TEST_CHECK(same_tensors(x, x, "image_proj.", &n_all) == 0 && n_all == 0 && same_tensors(x, x, "ip_adapter.", &n_all) == n_all &&
                   n_all > 10, "no optimizer state for the frozen projector");
        snprintf(y, sizeof y, "%s/fz2/tiny/checkpoints/step-14/optimizer.safetensors", dir);
        TEST_CHECK(same_file(x, y), "adapter.freeze: the resumed run's optimizer state is the uninterrupted run's");
        snprintf(x, sizeof x, "%s/fz/tiny/checkpoints/step-14/adapter.safetensors", dir);
        snprintf(y, sizeof y, "%s/fz2/tiny/checkpoints/step-14/adapter.safetensors", dir);
        TEST_CHECK(same_file(x, y), "adapter.freeze: the resumed run's adapter is the uninterrupted run's");
        // export --ema: the IP modules' averages (f32, rounded to bf16), the frozen projector as it is
        TEST_CHECK(test_sh("%s export %s/fz/tiny/checkpoints --ema --out %s/fz-ema.bin >%s/fze.txt && grep -q 'weight average of 24 of' %s/fze.txt",
                           cameo, dir, dir, dir, dir) == 0, "export --ema (see %s/fze.txt)", dir);
        snprintf(y, sizeof y, "%s/fz/tiny/checkpoints/step-14/optimizer.safetensors", dir);
        snprintf(p, sizeof p, "%s/fz-ema.bin", dir);
        char why[512] = "";
        st_file *raw = st_open(x, why, sizeof why), *opt = st_open(y, why, sizeof why);
        ti_file *ex = torch_import_open(p, why, sizeof why);
        int n_has = 0, n_avg = 0, n_held = 0, n_bad = 0;
        for (int i = 0; raw && opt && ex && i < st_count(raw); i++) {
            const st_entry *e = st_at(raw, i);
            const ti_tensor *t = torch_import_find(ex, e->name);
            char name[300];
            snprintf(name, sizeof name, "%s.ema", e->name);
            const st_entry *a = st_find(opt, name);
            uint16_t *want = malloc(e->nbytes + 2);
            if (a) for (int64_t j = 0; j < (int64_t)(e->nbytes / 2); j++) want[j] = f32_to_bf16(((const float *)a->data)[j]);
            else memcpy(want, e->data, e->nbytes);
            bool same = t && (size_t)ti_numel(t) * 2 == e->nbytes && !memcmp(t->data, want, e->nbytes);
            n_bad += !same;
            if (a) n_has++, n_avg += memcmp(want, e->data, e->nbytes) != 0;  // the average is not the weights (in bf16: mostly)
            else n_held += !strncmp(e->name, "image_proj.", 11);
            free(want);
        }
        TEST_CHECK(ex && n_bad == 0 && n_has == 24 && n_avg > 12 && n_held == st_count(raw) - 24,
                   "export --ema: %d tensors not as expected; %d averages, %d of them differ from the weights in bf16; %d held fixed %s",
                   n_bad, n_has, n_avg, n_held, why);
        torch_import_close(ex);
        st_close(raw), st_close(opt);
        // a checkpoint of a run without an average: --ema refused, naming why; a resume with one starts it
        TEST_CHECK(test_sh("! %s export %s/a/tiny/checkpoints --ema --out %s/a-ema.bin 2>%s/ae.log && grep -q 'optimizer.ema: 0' %s/ae.log && "
                           "%s train --resume %s/a/tiny/checkpoints/step-12 --set optimizer.ema=0.8 --set run.out_dir=%s/ema1 2>%s/ema1.log && "
                           "grep -q 'keeps no weight average; the average starts from its weights' %s/ema1.log && "
                           "%s export %s/ema1/tiny/checkpoints --ema --out %s/ema1.safetensors >/dev/null",
                           cameo, dir, dir, dir, dir, cameo, dir, dir, dir, dir, cameo, dir, dir) == 0,
                   "--ema without an average; an average started on resume (see %s/ae.log, ema1.log)", dir);
        TEST_CHECK(test_sh("! %s train --resume %s/fz/tiny/checkpoints/step-6 --set 'adapter.freeze=[]' --set run.out_dir=%s/fz3 "
                           "2>%s/fz3.log && grep -q 'adapter.freeze: .*model.adapter_init' %s/fz3.log && "
                           "! %s train --set 'adapter.freeze=[image_prj]' --set run.out_dir=%s/fz4 --set data.path=%s/data 2>%s/fz4.log && "
                           "grep -q \"adapter.freeze\\[0\\]: 'image_prj' names no adapter weight\" %s/fz4.log",
                           cameo, dir, dir, dir, dir, cameo, dir, dir, dir, dir) == 0,
                   "a changed frozen set on resume, and a prefix that names nothing, are refused (see %s/fz3.log, fz4.log)", dir);
        TEST_CHECK(test_sh("%s inspect %s/fz/tiny >%s/fzi.txt && grep -q 'held fixed (adapter.freeze): image_proj' %s/fzi.txt && "
                           "grep -q 'a weight average, decay 0.8 with warm-up' %s/fzi.txt && "
                           "%s inspect %s/h/tiny >%s/hi.txt && grep -q 'moments bf16' %s/hi.txt", cameo, dir, dir, dir, dir, cameo, dir,
                           dir, dir) == 0, "inspect tells the moments' dtype, the weight average and the frozen set (see %s/fzi.txt, hi.txt)", dir);
    }

    // SIGINT once step 3 is checkpointed: finishes the step, checkpoints, exits 0 before the end;
    // then resumes to the same end as the uninterrupted run
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s train " STEPS " --set run.ckpt_every=3 --set run.out_dir=%s/e --set data.path=%s/data", cameo, dir, dir);
    int status = signal_at_step(cmd, dir, "e", 3, SIGINT);  // `exec` in the command: the signal reaches cameo itself
    TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGINT: exit 0 (status %d)", status);
    snprintf(p, sizeof p, "%s/e/tiny/checkpoints/step-14", dir);
    if (access(p, F_OK) == 0) printf("note: run e finished before SIGINT landed\n");
    TEST_CHECK(test_sh("%s train --resume %s/e/tiny/checkpoints --quiet 2>%s/e.log", cameo, dir, dir) == 0, "resume after SIGINT");
    check_same_final("e");

    // SIGHUP (an ssh session dropped, the terminal closed) stops as SIGTERM does, with a checkpoint,
    // where its default ended the process and lost the steps since the last checkpoint
    snprintf(cmd, sizeof cmd, "exec %s train " STEPS " --set stages.0.steps=60 --set run.out_dir=%s/hup --set data.path=%s/data "
             "2>%s/hup.log", cameo, dir, dir, dir);
    status = signal_at_step(cmd, dir, "hup", 3, SIGHUP);
    TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGHUP: exit 0 (status %d)", status);
    TEST_CHECK(test_sh("grep -q 'SIGHUP (the terminal is gone): stopping after this step' %s/hup.log && "
                       "grep -q 'stopped by signal 1 at step' %s/hup.log && test \"$(cat %s/hup/tiny/checkpoints/latest)\" != step-3",
                       dir, dir, dir) == 0, "SIGHUP: told, and the step it stopped at checkpointed (see %s/hup.log)", dir);

    // a finished run resumed with a longer last stage trains on from where it ended (its data
    // position kept): 6 + 4 + 2 steps, then --set stages.2.steps=4, equals 6 + 4 + 4 straight
    // (a constant rate in that stage, so its first steps' rates do not depend on its length)
    TEST_CHECK(test_sh("%s train " STEPS " --set stages.2.lr_schedule=constant --set run.out_dir=%s/lg1 --set data.path=%s/data 2>%s/lg1.log && "
                       "%s train " STEPS " --set stages.2.lr_schedule=constant --set stages.2.steps=2 --set run.out_dir=%s/lg2 "
                       "--set data.path=%s/data 2>%s/lg2.log && "
                       "%s inspect %s/lg2/tiny/checkpoints | grep -q 'all 3 stages done (a resume with a longer last stage trains on)' && "
                       "%s train --resume %s/lg2/tiny/checkpoints --set stages.2.steps=4 --quiet 2>%s/lg3.log && grep -Eq 'done: 2 steps in .*, final loss [0-9.]+ \\(smoothed [0-9.]+\\)' %s/lg3.log",
                       cameo, dir, dir, dir, cameo, dir, dir, dir, cameo, dir, cameo, dir, dir, dir) == 0,
               "a finished run, its last stage lengthened on resume, trains 2 more steps (see %s/lg3.log)", dir);
    {
        const char *files[] = {"adapter.safetensors", "optimizer.safetensors"};
        for (int i = 0; i < 2; i++) {
            char a1[512], a2[512];
            snprintf(a1, sizeof a1, "%s/lg1/tiny/checkpoints/step-14/%s", dir, files[i]);
            snprintf(a2, sizeof a2, "%s/lg2/tiny/checkpoints/step-14/%s", dir, files[i]);
            TEST_CHECK(same_file(a1, a2), "the lengthened run's %s equals the straight run's", files[i]);
        }
    }

    // a requeued cluster job: one command, `--resume auto`, for the first start and every restart;
    // SIGTERM (what Slurm sends before the time limit) checkpoints and exits 0
    snprintf(cmd, sizeof cmd, "exec %s train " STEPS " --resume auto --set run.ckpt_every=3 --set run.out_dir=%s/q --set data.path=%s/data",
             cameo, dir, dir);
    status = signal_at_step(cmd, dir, "q", 3, SIGTERM);
    TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: exit 0 (status %d)", status);
    TEST_CHECK(test_sh("%s 2>%s/q.log && grep -q 'resuming from %s/q/tiny/checkpoints' %s/q.log", cmd + 5, dir, dir, dir) == 0,
               "the same command resumes (see %s/q.log)", dir);
    check_same_final("q");
    TEST_CHECK(test_sh("%s 2>%s/q2.log && grep -q 'done: 0 steps' %s/q2.log", cmd + 5, dir, dir) == 0,
               "once more: the finished run is found, nothing is trained again (see %s/q2.log)", dir);
    // a plain start over a run's checkpoints is refused, pointing at --resume auto; auto in an empty folder starts
    TEST_CHECK(test_sh("! %s train " STEPS " --set run.out_dir=%s/q --set data.path=%s/data --quiet 2>%s/q3.log && "
                       "grep -q 'already holds [0-9]* checkpoint(s).*--resume auto' %s/q3.log", cameo, dir, dir, dir, dir) == 0,
               "a fresh start over existing checkpoints is refused (see %s/q3.log)", dir);
    // (the metrics line of an earlier attempt killed before its first checkpoint is replaced, not logged twice)
    TEST_CHECK(test_sh("mkdir -p %s/q0/tiny && echo '{\"step\":1,\"stage\":0,\"loss\":9}' >%s/q0/tiny/metrics.jsonl && "
                       "%s train --set stages.0.steps=1 --set stages.1.steps=1 --set stages.2.steps=1 --resume auto "
                       "--set run.out_dir=%s/q0 --set data.path=%s/data --quiet 2>%s/q0.log && grep -q 'no checkpoint under' %s/q0.log",
                       dir, dir, cameo, dir, dir, dir, dir) == 0, "--resume auto without checkpoints starts the run (see %s/q0.log)", dir);
    TEST_CHECK(test_sh("test \"$(grep -c '^{\"step\":1,' %s/q0/tiny/metrics.jsonl)\" = 1 && ! grep -q '\"loss\":9}' %s/q0/tiny/metrics.jsonl",
                       dir, dir) == 0, "a fresh start logs step 1 once, not after an earlier attempt's line (see %s/q0/tiny/metrics.jsonl)", dir);

    // SIGKILL at an arbitrary moment (checkpoints every step): the newest complete checkpoint resumes
    snprintf(cmd, sizeof cmd, "exec %s train " STEPS " --set run.ckpt_every=1 --set run.out_dir=%s/f --set data.path=%s/data 2>/dev/null", cameo, dir, dir);
    status = signal_at_step(cmd, dir, "f", 2, SIGKILL);  // wherever it is: mid-step, mid-checkpoint
    TEST_CHECK(WIFSIGNALED(status), "killed");
    snprintf(p, sizeof p, "%s/f/tiny/checkpoints/step-14", dir);
    if (access(p, F_OK) == 0) printf("note: run f finished before SIGKILL landed\n");
    TEST_CHECK(test_sh("%s train --resume %s/f/tiny/checkpoints --quiet 2>%s/f.log", cameo, dir, dir) == 0, "resume after SIGKILL");
    check_same_final("f");

    // damaged records: a global batch of one damaged sample makes no update and the run goes on
    TEST_CHECK(test_sh("cp -r %s/data %s/dmg", dir, dir) == 0, "copy the dataset");
    snprintf(p, sizeof p, "%s/dmg", dir);
    TEST_CHECK(test_damage_records(p, 3) > 0, "damage every third record of %s", p);
    TEST_CHECK(test_sh("%s train --set stages.0.steps=6 --set stages.1.steps=3 --set stages.2.steps=3 --set stages.0.batch_size=1 "
                       "--set stages.1.batch_size=1 --set stages.2.batch_size=1 --set validation.every=6 --set validation.samples=6 "
                       "--set run.out_dir=%s/dmgrun --set data.path=%s/dmg --quiet 2>%s/dmg.log && grep -q 'no update' %s/dmg.log && "
                       "grep -q 'records skipped as damaged' %s/dmg.log && grep -q 'samples_damaged' %s/dmgrun/tiny/validation.jsonl",
                       cameo, dir, dir, dir, dir, dir, dir) == 0, "training on damaged records (see %s/dmg.log)", dir);

    // a stage with a dataset of its own (stages[i].data): the damaged copy for the unpaired stage only —
    // its loader reports skipped records, the paired stage (data.path) none; a missing one is refused
    TEST_CHECK(test_sh("%s train --set stages.0.steps=6 --set stages.1.steps=3 --set stages.2.steps=3 --set stages.0.data=%s/dmg "
                       "--set run.out_dir=%s/sdata --set data.path=%s/data --quiet 2>%s/sdata.log && "
                       "grep -q 'stage unpaired: [1-9][0-9]* records skipped as damaged' %s/sdata.log && "
                       "! grep -q 'stage paired: [1-9][0-9]* records skipped' %s/sdata.log && grep -q 'data: \"%s/dmg\"' "
                       "%s/sdata/tiny/checkpoints/step-12/config.yaml", cameo, dir, dir, dir, dir, dir, dir, dir, dir) == 0,
               "stages[0].data reads its own dataset (see %s/sdata.log)", dir);
    TEST_CHECK(test_sh("! %s train --set stages.1.data=%s/nope --set run.out_dir=%s/sdata2 --set data.path=%s/data 2>%s/sdata2.log && "
                       "grep -q \"stages\\[1\\].data: '%s/nope' holds no dataset\" %s/sdata2.log", cameo, dir, dir, dir, dir, dir, dir) == 0,
               "a missing stage dataset is refused by name (see %s/sdata2.log)", dir);
    // a paired stage given a dataset without pairs (two characters of one image each) is refused,
    // naming the stage and the dataset
    TEST_CHECK(test_sh("mkdir -p %s/single/a %s/single/b && cp docs/examples/eval/ref-a.png %s/single/a/ && "
                       "cp docs/examples/eval/ref-b.png %s/single/b/ && %s data build --images %s/single --out %s/nopairs --caption x "
                       ">/dev/null 2>&1 && ! %s train --set stages.1.data=%s/nopairs --set run.out_dir=%s/sdata3 --set data.path=%s/data "
                       "2>%s/sdata3.log && grep -q 'stages\\[1\\].mode: %s/nopairs has no character with two images, and stage 2/3' "
                       "%s/sdata3.log", dir, dir, dir, dir, cameo, dir, dir, cameo, dir, dir, dir, dir, dir, dir) == 0,
               "a paired stage on a dataset without pairs is refused (see %s/sdata3.log)", dir);

    // inspect: where a checkpoint stands in the schedule, its files, the run's other checkpoints
    TEST_CHECK(test_sh("%s inspect %s/a/tiny >%s/i1.txt && grep -q 'step 14: all 3 stages done' %s/i1.txt && "
                       "grep -q 'checkpoints in .*step-3 step-6' %s/i1.txt && grep -q 'optimizer.safetensors' %s/i1.txt",
                       cameo, dir, dir, dir, dir, dir) == 0, "inspect a run folder (see %s/i1.txt)", dir);
    TEST_CHECK(test_sh("%s inspect %s/a/tiny/checkpoints/step-3 >%s/i2.txt && grep -q 'stage 1 of 3 (unpaired), 3 of its 6 steps done' "
                       "%s/i2.txt && grep -q 'data position: epoch' %s/i2.txt", cameo, dir, dir, dir, dir) == 0,
               "inspect a mid-stage checkpoint (see %s/i2.txt)", dir);

    // export: the adapter alone, every published key with its shape and bf16
    TEST_CHECK(test_sh("%s export %s/a/tiny/checkpoints --out %s/export.safetensors >/dev/null", cameo, dir, dir) == 0, "export");
    TEST_CHECK(test_sh("%s export %s/a/tiny/checkpoints/latest --out %s/export2.safetensors >/dev/null", cameo, dir, dir) == 0,
               "export names the latest file itself");
    char err[512];
    snprintf(p, sizeof p, "%s/export.safetensors", dir);
    st_file *f = st_open(p, err, sizeof err);
    TEST_CHECK(f != NULL, "%s", err);
    if (f) {
        int n_proj = 0, n_ip = 0, bf16 = 0;
        for (int i = 0; i < st_count(f); i++) {
            const st_entry *e = st_at(f, i);
            n_proj += !strncmp(e->name, "image_proj.", 11);
            n_ip += !strncmp(e->name, "ip_adapter.", 11);
            bf16 += e->dtype == CM_BF16;
        }
        TEST_CHECK(n_proj + n_ip == st_count(f) && n_ip == 4 * 6, "keys: %d image_proj.*, %d ip_adapter.* of %d", n_proj, n_ip, st_count(f));
        TEST_CHECK(bf16 == st_count(f), "all bf16");
        const st_entry *q = st_find(f, "ip_adapter.0.to_k_ip.weight");
        TEST_CHECK(q && q->ndim == 2 && q->shape[0] == 32 && q->shape[1] == 32, "ip_adapter.0.to_k_ip.weight [32, 32]");
        TEST_CHECK(st_find(f, "image_proj.resampler.latents") != NULL, "image_proj.resampler.latents");
        st_close(f);
    }
    // the same adapter as a torch.save file (the released pipeline's torch.load), from the
    // checkpoint and from the exported safetensors: the same tensors, bytes and order
    TEST_CHECK(test_sh("%s export %s/a/tiny/checkpoints --out %s/export.bin >/dev/null && %s inspect %s/export.bin >%s/xi.txt && "
                       "grep -q \"every storage's crc32 verified\" %s/xi.txt && grep -q '  image_proj: [0-9]*   ip_adapter: [0-9]*$' %s/xi.txt",
                       cameo, dir, dir, cameo, dir, dir, dir, dir) == 0, "export .bin, inspect it (see %s/xi.txt)", dir);
    TEST_CHECK(test_sh("%s export %s/export.safetensors --out %s/export2.pt >/dev/null && cmp -s %s/export.bin %s/export2.pt", cameo,
                       dir, dir, dir, dir) == 0, "export from a .safetensors file writes the same .pt");
    TEST_CHECK(test_sh("%s export %s/export.safetensors --out %s/export.npz 2>%s/ext.log; test $? = 2 && grep -q '.safetensors, or .bin' %s/ext.log",
                       cameo, dir, dir, dir, dir) == 0, "an unknown extension is refused, naming the formats");
    snprintf(p, sizeof p, "%s/export.bin", dir);
    ti_file *tf = torch_import_open(p, err, sizeof err);
    f = st_open(strcat(strcpy(p, dir), "/export.safetensors"), err, sizeof err);
    TEST_CHECK(tf && f && torch_import_count(tf) == st_count(f), "the .bin holds the adapter's %d tensors", f ? st_count(f) : -1);
    for (int i = 0; tf && f && i < torch_import_count(tf); i++) {
        const ti_tensor *t = torch_import_at(tf, i);
        const st_entry *e = st_find(f, t->name);
        TEST_CHECK(e && e->dtype == t->dtype && e->ndim == t->ndim && (size_t)ti_numel(t) * dtype_size(t->dtype) == e->nbytes &&
                       !memcmp(t->data, e->data, e->nbytes), "%s: as in the safetensors export", t->name);
    }
    torch_import_close(tf);
    st_close(f);
    // diverging training: non-finite steps are skipped and counted; after max_bad_steps in a row
    // the run stops (exit 1) naming the last good checkpoint, which stays loadable
    // (CAMEO_FAULT_NAN_FROM=N poisons every step from N on: the trainer's fault-injection hook)
    TEST_CHECK(test_sh("CAMEO_FAULT_NAN_FROM=4 %s train " STEPS " --set stages.0.steps=10 --set run.ckpt_every=2 --set run.max_bad_steps=3 "
                  "--set run.out_dir=%s/g --set data.path=%s/data 2>%s/g.log", cameo, dir, dir, dir) == 1,
               "diverging run exits 1");
    TEST_CHECK(test_sh("grep -q 'step-4' %s/g.log && test -d %s/g/tiny/checkpoints/step-4 && ! test -d %s/g/tiny/checkpoints/step-6",
                  dir, dir, dir) == 0, "checkpoints stop at the last good step");
    TEST_CHECK(test_sh("grep -q 'max_bad_steps' %s/g.log && grep -q 'skipped' %s/g.log", dir, dir) == 0, "skips reported, max_bad_steps named");
    TEST_CHECK(test_sh("%s export %s/g/tiny/checkpoints --out %s/g.safetensors >/dev/null 2>&1", cameo, dir, dir) == 0,
               "the last good checkpoint is intact");

    // a bad config stops before any work, naming the key
    TEST_CHECK(test_sh("%s train --set stages.1.mode=pared --quiet 2>%s/bad.log", cameo, dir) == 1, "bad mode exits 1");
    TEST_CHECK(test_sh("grep -q \"stages\\[1\\].mode\" %s/bad.log", dir) == 0, "the message names stages[1].mode");
    test_sh("rm -rf %s", dir);
    return test_summary("e2e_train");
}
