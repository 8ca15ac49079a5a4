// ckpt_info.c — `cameo inspect CHECKPOINT`: what a checkpoint holds and whether it verifies.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "models/safetensors.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/config.h"

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}
static bool exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

bool ckpt_info_applies(const char *path) {
    char p[4200];
    size_t n = strlen(path);
    if (n >= 6 && !strcmp(path + n - 6, "latest") && (n == 6 || path[n - 7] == '/') && !is_dir(path)) return exists(path);
    if (!is_dir(path)) return false;
    // trainer_state.json: a checkpoint folder even when its manifest is missing (verified as one,
    // the missing manifest reported; listed as a weights folder it looked sound)
    const char *marks[] = {"manifest.json", "latest", "checkpoints", "trainer_state.json"};
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
        snprintf(p, sizeof p, "%s/%s", path, marks[i]);
        if (exists(p) && (i != 0 || !is_dir(p))) {
            if (i == 0) {  // a weights folder may hold a manifest.json too: a checkpoint's has trainer_state.json
                snprintf(p, sizeof p, "%s/trainer_state.json", path);
                return exists(p);
            }
            return true;
        }
    }
    return false;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// every file of the folder with its size; the adapter's and optimizer files' tensor counts. All of
// them: a sharded run's folder holds one optimizer file per rank (132 files at 128 ranks), and a
// fixed table of 64 kept the first ones readdir gave, so the adapter or config went unlisted
static void list_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char **names = NULL;  // [n] file names, sorted
    int n = 0, cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, (size_t)cap * sizeof *names);
            CM_CHECK(names, "inspect", "out of host memory listing %s", dir);
        }
        names[n] = strdup(e->d_name);
        CM_CHECK(names[n], "inspect", "out of host memory listing %s", dir);
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        char p[4400], err[512], extra[160] = "";
        snprintf(p, sizeof p, "%.4000s/%.255s", dir, names[i]);
        struct stat s;
        if (stat(p, &s)) continue;
        size_t l = strlen(names[i]);
        if (l > 12 && !strcmp(names[i] + l - 12, ".safetensors")) {
            st_file *f = st_open(p, err, sizeof err);
            if (f) {
                int64_t elems = 0;
                for (int k = 0; k < st_count(f); k++) elems += (int64_t)st_at(f, k)->nbytes / (st_at(f, k)->dtype == CM_BF16 ? 2 : 4);
                const char *shard = st_meta(f, "optim.shard");
                snprintf(extra, sizeof extra, "  %d tensors, %lld values%s%s", st_count(f), (long long)elems,
                         shard ? ", optimizer shard (begin:end:all) " : "", shard ? shard : "");
                st_close(f);
            }
        }
        printf("  %-40s %12lld bytes%s\n", names[i], (long long)s.st_size, extra);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int ckpt_info_cli(const char *path) {
    char dir[4096], err[4096];
    if (ckpt_resolve(path, dir, sizeof dir, err, sizeof err)) {
        fprintf(stderr, "cameo inspect: %s\n", err);
        return 1;
    }
    ckpt_state st;
    if (ckpt_read_state(dir, &st, err, sizeof err)) {
        fprintf(stderr, "cameo inspect: %s\n", err);
        return 1;
    }
    char when[64] = "?";
    time_t t = (time_t)st.saved_unix;
    struct tm tm;
    if (st.saved_unix > 0 && gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("checkpoint %s (verified: every file's size and crc32 match its manifest)\n", dir);
    // the stages from the checkpoint's own config: where in the schedule the run stands
    static train_config c;
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", dir);
    bool have_cfg = train_config_load(&c, cfg, NULL, 0, err, sizeof err) == 0;
    if (have_cfg && (st.stage >= c.n_stages || (st.stage == c.n_stages - 1 && st.step_in_stage >= c.stages[st.stage].steps)))
        printf("  step %lld: all %d stages done%s; seed %llu\n", (long long)st.step, c.n_stages,
               st.stage < c.n_stages ? " (a resume with a longer last stage trains on)" : "", (unsigned long long)st.seed);
    else if (have_cfg)
        printf("  step %lld: stage %d of %d (%s), %lld of its %lld steps done; seed %llu\n", (long long)st.step, st.stage + 1,
               c.n_stages, st.stage_name, (long long)st.step_in_stage, (long long)c.stages[st.stage].steps, (unsigned long long)st.seed);
    else
        printf("  step %lld: stage index %d (%s), %lld steps into it; seed %llu (config.yaml unreadable: %s)\n", (long long)st.step,
               st.stage, st.stage_name, (long long)st.step_in_stage, (unsigned long long)st.seed, err);
    printf("  saved %s after %.1f s of training; smoothed loss %.6g; %lld non-finite steps skipped (%lld in a row)\n", when,
           st.elapsed_s, st.loss_smoothed, (long long)st.skipped_steps, (long long)st.skipped_in_row);
    if (st.n_data) {
        printf("  data position:");
        for (int i = 0; i < st.n_data; i++) printf(" %s %llu", st.data_names[i], (unsigned long long)st.data_pos[i]);
        printf("\n");
    } else printf("  data position: at a stage's end (the next stage starts from its first batch)\n");
    if (have_cfg) {  // how the optimizer was kept, and what it left alone
        printf("  optimizer: AdamW, moments %s, state %s", c.optimizer.state_bf16 ? "bf16 (stochastic rounding)" : "f32",
               c.optimizer.shard_state ? "sharded over the ranks when there are several" : "replicated");
        if (c.optimizer.ema > 0) printf("; a weight average, decay %g%s (export / eval / sample --ema)", c.optimizer.ema,
                                        c.optimizer.ema_warmup ? " with warm-up" : "");
        if (c.adapter.n_freeze) {
            printf("; held fixed (adapter.freeze):");
            for (int i = 0; i < c.adapter.n_freeze; i++) printf(" %s", c.adapter.freeze[i]);
        }
        printf("\n");
    }
    list_files(dir);
    // the run's other complete checkpoints, when the folder is inside one
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = 0;
        // all of them, or the oldest few and the newest: the first 64 alone left out the newest
        // (latest among them) behind a bare "..." when keep_last kept more
        int64_t *steps;
        int n = ckpt_list_all(parent, &steps), head = n > 32 ? 4 : n;
        if (n > 1) {
            printf("  checkpoints in %s (%d):", parent, n);
            for (int i = 0; i < head; i++) printf(" step-%lld", (long long)steps[i]);
            if (n > head) printf(" ... (%d more) ...", n - 32);
            for (int i = n > head ? n - 28 : n; i < n; i++) printf(" step-%lld", (long long)steps[i]);
            printf("\n");
        }
        free(steps);
    }
    return 0;
}
