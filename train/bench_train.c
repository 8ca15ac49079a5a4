// bench_train.c — `cameo bench train`: steps/s, samples/s and the time split of one optimizer step
// (data wait, frozen encoders, forward, backward, optimizer) on the CPU, beside the same step in
// PyTorch (scripts/bench_train_torch.py, same dims, batch, resolution and threads) run from here;
// and the step's peak memory beside the arithmetic of weights + optimizer state + gradients +
// saved activations. The models, loader and step are built exactly as train/trainer.c builds them.
#define _GNU_SOURCE  // nftw, mkdtemp
#include "train/bench.h"
#include "train/bench_train.h"
#include "train/demo_data.h"
#include "train/stage_setup.h"
#include <cblas.h>
#include <cjson/cJSON.h>
#include <ftw.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "data/build.h"
#include "data/demo.h"
#include "data/loader.h"
#include "train/config.h"
#include "train/models.h"
#include "train/optim.h"
#include "train/paths.h"
#include "train/recompute_auto.h"
#include "train/schedule.h"
#include "train/step.h"
#include "train/progress.h"

// --medium: a larger tiny config (same code path): FLUX 4 double + 8 single blocks of 4 x 32,
// vision towers 64 wide (3 layers, 56-px views = 8 x 8 patches), text 64 wide, 128-px targets
static const char *const MEDIUM_SETS[] = {
    "model.tiny.flux_double=4",   "model.tiny.flux_single=8", "model.tiny.flux_heads=4",   "model.tiny.flux_head_dim=32",
    "model.tiny.vision_hidden=64", "model.tiny.vision_layers=3", "model.tiny.vision_heads=4", "model.tiny.vision_image=56",
    "data.ref_size=56",           "model.tiny.text_dim=64",   "model.tiny.text_len=32",    "model.tiny.pooled_dim=32",
    "model.tiny.proj_heads=4",    "model.tiny.proj_head_dim=16", "model.tiny.proj_layers=2", "model.tiny.proj_queries=16",
    "model.tiny.proj_depth=2",    "model.tiny.vae_channels=32", "stages.0.resolution=128", "stages.0.batch_size=4",
    "stages.0.grad_accum=1",
};

typedef struct phase_times { double data, encoders, forward, backward, optimizer, step, vision, vae, text; } phase_times;
#define N_PHASES 9

typedef struct torch_figures {
    bool ok;
    char version[64];
    phase_times t;  // seconds per optimizer step
    double steps_per_s, samples_per_s, saved_bytes, max_rss, params_frozen, params_adapter, outside_load;
    double tensors, tensors_held, params_held;  // the adapter's, after --freeze (adapter.freeze); -1 = not told
    double recompute, ema;                      // FLUX blocks it recomputed, its weight average's decay; -1 = not told
} torch_figures;

// busy jiffies of the whole machine (/proc/stat) and CPU seconds of this process: what other
// processes took meanwhile says whether the timing was disturbed (shared machines)
static double machine_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long u = 0, n = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io, &irq, &sirq) != 7) u = n = sy = irq = sirq = 0;
        fclose(f);
    }
    return (double)(u + n + sy + irq + sirq) / (double)sysconf(_SC_CLK_TCK);
}
static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

// the dataset the benchmarked stage reads (its own data, else data.path), or a demo dataset generated
// into a temporary folder (tmp set) that the stage then reads
static int bench_data(train_config *c, int stage, char *tmp, size_t tmplen, char *err, size_t errlen) {
    char man[CFG_PATH + 32];
    snprintf(man, sizeof man, "%s/manifest.json", cfg_stage_data(c, stage));
    tmp[0] = 0;
    if (!access(man, R_OK)) return 0;
    c->stages[stage].data[0] = 0;
    snprintf(tmp, tmplen, "/tmp/cameo-bench-train-XXXXXX");
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "cannot create a temporary folder for the demo dataset under /tmp");
        tmp[0] = 0;
        return -1;
    }
    snprintf(c->data.path, sizeof c->data.path, "%s/demo-data", tmp);
    fprintf(stderr, "cameo bench train: generating the demo dataset at %s (%d characters x %d images)\n", c->data.path,
            c->data.demo_characters, c->data.demo_per_character);
    return train_demo_data(c, err, errlen);
}

static double reg_bytes(const cm_params *ps) {
    double b = 0;
    for (int i = 0; i < ps->n; i++) b += (double)tensor_numel(ps->items[i].t) * (double)dtype_size(ps->items[i].t->dtype);
    return b;
}

static void dims_json(const train_tiny_dims *d, char *out, size_t n) {
    snprintf(out, n,
             "{\"flux_double\":%d,\"flux_single\":%d,\"flux_heads\":%d,\"flux_head_dim\":%d,\"vision_hidden\":%d,"
             "\"vision_layers\":%d,\"vision_heads\":%d,\"vision_patch\":%d,\"vision_image\":%d,\"text_dim\":%d,"
             "\"text_len\":%d,\"pooled_dim\":%d,\"proj_heads\":%d,\"proj_head_dim\":%d,\"proj_layers\":%d,"
             "\"proj_queries\":%d,\"proj_depth\":%d,\"vae_channels\":%d,\"latent_channels\":%d}",
             d->flux_double, d->flux_single, d->flux_heads, d->flux_head_dim, d->vision_hidden, d->vision_layers,
             d->vision_heads, d->vision_patch, d->vision_image, d->text_dim, d->text_len, d->pooled_dim, d->proj_heads,
             d->proj_head_dim, d->proj_layers, d->proj_queries, d->proj_depth, d->vae_channels, d->latent_channels);
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

// s in single quotes for sh (a ' inside closed, escaped and reopened); false when out does not hold it
static bool sh_quote(const char *s, char *out, size_t n) {
    size_t k = 0;
    if (n < 3) return false;
    out[k++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t len = piece ? 4 : 1;
        if (k + len + 2 > n) return false;
        if (piece) memcpy(out + k, piece, len);
        else out[k] = *s;
        k += len;
    }
    out[k++] = '\'';
    out[k] = 0;
    return true;
}

// runs the PyTorch twin and reads its JSON line; f->ok false (with a note on stderr) when unavailable
static void run_torch(const train_config *c, const train_stage *sg, int threads, int steps, int warmup, int B, int H, int W,
                      int R, int n_rc, torch_figures *f) {
    memset(f, 0, sizeof *f);
    char script[4096], err[512];
    if (cameo_asset(script, sizeof script, "scripts/bench_train_torch.py", err, sizeof err)) {
        fprintf(stderr, "cameo bench train: no PyTorch figures: %s\n", err);
        return;
    }
    char dims[1024], errf[] = "/tmp/cameo-bench-torch-XXXXXX";
    dims_json(&c->model.tiny_dims, dims, sizeof dims);
    // adapter.freeze: the same prefixes, so the twin holds the same weights fixed
    char freeze[CFG_MAX_FREEZE * (4 * CFG_NAME + 16)] = "";
    for (int i = 0; i < c->adapter.n_freeze; i++) {
        char q[4 * CFG_NAME + 8];
        size_t k = strlen(freeze);
        if (!sh_quote(c->adapter.freeze[i], q, sizeof q)) {
            fprintf(stderr, "cameo bench train: no PyTorch figures: adapter.freeze[%d] is too long to pass on\n", i);
            return;
        }
        snprintf(freeze + k, sizeof freeze - k, " --freeze %s", q);
    }
    int efd = mkstemp(errf);
    if (efd >= 0) close(efd);
    char cmd[8192 + sizeof freeze];
    snprintf(cmd, sizeof cmd,
             "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT -u OMP_NUM_THREADS python3 '%s' --threads %d --steps %d --warmup %d --batch %d --grad-accum %d --height %d --width %d --ref %d "
             "--dims '%s' --lr %.17g --betas %.17g %.17g --eps %.17g --weight-decay %.17g --grad-clip %.17g --ema %.17g --recompute %d%s 2>%s",
             script, threads, steps, warmup, B, sg->grad_accum, H, W, R, dims, sg->lr > 0 ? sg->lr : c->optimizer.lr,
             c->optimizer.beta1, c->optimizer.beta2, c->optimizer.eps, c->optimizer.weight_decay, c->optimizer.grad_clip,
             c->optimizer.ema > 0 ? c->optimizer.ema : 0.0, n_rc, freeze, efd >= 0 ? errf : "/dev/null");
    int rc;
    cJSON *j = bench_python_json(cmd, &rc);
    if (rc == -1) {
        fprintf(stderr, "cameo bench train: no PyTorch figures: cannot run python3\n");
        return;
    }
    if (!j) {
        fprintf(stderr, "cameo bench train: no PyTorch figures (python3 exit %d; torch, diffusers and transformers needed)\n", rc);
        FILE *e = efd >= 0 ? fopen(errf, "r") : NULL;  // the tail of its messages
        if (e) {
            char tail[8][512];
            int n = 0;
            while (fgets(tail[n % 8], sizeof tail[0], e)) n++;
            for (int i = n > 8 ? n - 8 : 0; i < n; i++) fprintf(stderr, "  | %s", tail[i % 8]);
            fclose(e);
        }
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "torch");
        snprintf(f->version, sizeof f->version, "%s", cJSON_IsString(v) ? v->valuestring : "?");
        f->t = (phase_times){jnum(j, "t_data"), jnum(j, "t_encoders"), jnum(j, "t_forward"), jnum(j, "t_backward"),
                             jnum(j, "t_optimizer"), jnum(j, "t_step"), jnum(j, "t_vision"), jnum(j, "t_vae"), jnum(j, "t_text")};
        f->steps_per_s = jnum(j, "steps_per_s");
        f->samples_per_s = jnum(j, "samples_per_s");
        f->saved_bytes = jnum(j, "saved_activation_bytes");
        f->max_rss = jnum(j, "max_rss_bytes");
        f->outside_load = jnum(j, "outside_load");
        f->params_frozen = jnum(j, "params_frozen");
        f->params_adapter = jnum(j, "params_adapter");
        bool told = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "adapter_tensors_held"));  // an older twin: not
        f->tensors = told ? jnum(j, "adapter_tensors") : -1;
        f->tensors_held = told ? jnum(j, "adapter_tensors_held") : -1;
        f->params_held = told ? jnum(j, "params_adapter_held") : -1;
        told = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "recompute_blocks"));
        f->recompute = told ? jnum(j, "recompute_blocks") : -1;
        f->ema = told ? jnum(j, "ema") : -1;
        f->ok = true;
        cJSON_Delete(j);
    }
    if (efd >= 0) unlink(errf);
}

static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    fclose(f);
}

static void row_ms(const char *name, double c, double t, bool have_t, const char *t_note) {
    char ct[32], tt[48], rt[32] = "";
    snprintf(ct, sizeof ct, "%.2f", 1e3 * c);
    if (t_note) snprintf(tt, sizeof tt, "%s", t_note);
    else if (have_t) snprintf(tt, sizeof tt, "%.2f", 1e3 * t);
    else snprintf(tt, sizeof tt, "n/a");
    if (have_t && !t_note && c > 0) snprintf(rt, sizeof rt, "%.2fx", t / c);
    printf("| %s | %s | %s | %s |\n", name, ct, tt, rt[0] ? rt : "");
}

static void usage(FILE *f) {
    fprintf(f, "usage: cameo bench train [CONFIG] [--steps N] [--warmup N] [--stage S] [--medium] [--no-torch] [--set key=value]...\n"
               "  CONFIG     a YAML config with model.sizes: tiny (default: the embedded configs/tiny.yaml)\n"
               "  --steps    timed optimizer steps (default 20)\n"
               "  --warmup   untimed steps first (default 3)\n"
               "  --stage    which stage's data mode, resolution, batch and grad_accum (default 0)\n"
               "  --medium   a larger tiny config: FLUX 4+8 blocks of 4x32, vision 64 wide, 128-px targets\n"
               "  --no-torch skip the PyTorch twin (scripts/bench_train_torch.py)\n");
}

int bench_train_main(int argc, char **argv) {
    const char *config = NULL;
    // --set values, as many as given (after --medium's, taken first so --set can still change them)
    const int n_medium = (int)(sizeof MEDIUM_SETS / sizeof *MEDIUM_SETS);
    const char **set_buf = malloc(sizeof *set_buf * (size_t)(argc + n_medium));  // [n_medium + argc]
    int n_sets = 0, steps = 20, warmup = 3, stage = 0;
    bool medium = false, torch = true;
    if (!set_buf) { fprintf(stderr, "cameo bench train: out of memory for %d arguments\n", argc); return 1; }
    const char **sets = set_buf + n_medium;
    for (int i = 0; i < argc; i++) {
        bool valued = !strcmp(argv[i], "--steps") || !strcmp(argv[i], "--warmup") || !strcmp(argv[i], "--stage") ||
                      !strcmp(argv[i], "--set");
        if (valued && i + 1 >= argc) {
            fprintf(stderr, "cameo bench train: %s needs a value after it\n", argv[i]);
            free(set_buf);
            return 2;
        }
        int *num = !strcmp(argv[i], "--steps") ? &steps : !strcmp(argv[i], "--warmup") ? &warmup : !strcmp(argv[i], "--stage") ? &stage : NULL;
        if (num) {  // a whole number, not atoi's 0 for "abc" (--stage abc benchmarked stage 0)
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || v < 0 || v > 1000000) {
                fprintf(stderr, "cameo bench train: %s '%s': expected a whole number in 0..1000000\n", argv[i - 1], argv[i]);
                free(set_buf);
                return 2;
            }
            *num = (int)v;
        } else if (!strcmp(argv[i], "--set")) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--medium")) medium = true;
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); free(set_buf); return 0; }
        else if (argv[i][0] != '-' && !config) config = argv[i];
        else { fprintf(stderr, "cameo bench train: unknown argument '%s'\n", argv[i]); usage(stderr); free(set_buf); return 2; }
    }
    if (steps < 1 || warmup < 0) {
        fprintf(stderr, "cameo bench train: --steps must be >= 1 and --warmup >= 0\n");
        free(set_buf);
        return 2;
    }
    if (medium) memcpy(set_buf, MEDIUM_SETS, sizeof MEDIUM_SETS);
    const char **all_sets = medium ? set_buf : sets;
    int n_all = n_sets + (medium ? n_medium : 0);

    static train_config c;
    char err[16384] = "", tmp[256] = "";
    int rc = config ? train_config_load(&c, config, all_sets, n_all, err, sizeof err)
                    : train_config_parse(&c, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "<embedded tiny.yaml>",
                                         all_sets, n_all, err, sizeof err);
    free(set_buf);
    if (rc) { fprintf(stderr, "cameo bench train: %s\n", err); return 1; }
    if (!c.model.tiny || c.run.dev.type != CM_CPU) {
        fprintf(stderr, "cameo bench train: this benchmark runs tiny-size configs (model.sizes: tiny) on the CPU\n");
        return 1;
    }
    if (stage < 0 || stage >= c.n_stages) { fprintf(stderr, "cameo bench train: --stage %d: the config has %d stages\n", stage, c.n_stages); return 2; }
    if (c.run.threads > 0) {
        omp_set_num_threads(c.run.threads);
        openblas_set_num_threads(c.run.threads);
    }
    int threads = omp_get_max_threads();
    if (bench_data(&c, stage, tmp, sizeof tmp, err, sizeof err)) { fprintf(stderr, "cameo bench train: %s\n", err); rc = 1; goto out_tmp; }

    static ic_models m;
    if (ic_models_init_tiny(&m, &c.model.tiny_dims, CM_DEV_CPU, CM_F32, false, c.run.seed, cfg_init_kv_name(c.adapter.init_kv), err,
                            sizeof err)) {
        fprintf(stderr, "cameo bench train: %s\n", err);
        rc = 1;
        goto out_tmp;
    }
    // as train/trainer.c: adapter.freeze holds its parts fixed (no gradients, no optimizer state)
    int64_t held = 0, all = 0;
    int nt = 0, nf = 0;
    if (c.adapter.n_freeze && stage_freeze_adapter(&c, &m.ps_adapter, &nf, &nt, &held, &all, err, sizeof err)) {
        fprintf(stderr, "cameo bench train: %s\n", err);
        rc = 1;
        goto out_models;
    }
    optim opt;
    // as train/trainer.c: the moments' dtype and the weight average are the config's
    optim_config oc = {.lr = c.optimizer.lr, .beta1 = c.optimizer.beta1, .beta2 = c.optimizer.beta2, .eps = c.optimizer.eps,
                       .weight_decay = c.optimizer.weight_decay, .grad_clip = c.optimizer.grad_clip,
                       .state_dtype = c.optimizer.state_bf16 ? CM_BF16 : CM_F32, .ema_decay = c.optimizer.ema,
                       .ema_warmup = c.optimizer.ema_warmup};
    cm_params *regs[1] = {&m.ps_adapter};
    if (optim_init(&opt, regs, 1, &oc, 0, -1, err, sizeof err)) {
        fprintf(stderr, "cameo bench train: %s\n", err);
        rc = 1;
        goto out_models;
    }
    const train_stage *sg = &c.stages[stage];
    loader_config lc = stage_loader_config(&c, stage, m.ref_size, 0, 1);
    loader *L = loader_open(&lc, NULL);
    if (!L) { fprintf(stderr, "cameo bench train: the loader could not open %s\n", cfg_stage_data(&c, stage)); rc = 1; goto out_opt; }
    step_opts so = stage_step_opts(&c, stage);
    // recompute: auto as train/trainer.c: the first step recomputes every block and is measured,
    // the later ones recompute the blocks chosen from it (rc_n)
    const bool rc_auto = so.recompute == CFG_RECOMPUTE_AUTO;
    const int nb = m.flux.cfg.num_layers + m.flux.cfg.num_single_layers;
    int rc_n = nb;
    double rc_peak = 0, rc_kept = 0, rc_budget = 0;
    lr_schedule ls = schedule_for_stage(&c, stage);

    phase_times *rec = calloc((size_t)steps, sizeof *rec);  // each timed step
    int B = 0, H = 0, W = 0, R = 0, samples = 0;
    double base_live = 0, peak = 0, saved = 0, busy0 = 0, self0 = 0, wall0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) busy0 = machine_busy_s(), self0 = self_cpu_s(), wall0 = progress_now();
        bool timed = s >= warmup;
        phase_times t = {0};
        double t_step = progress_now();
        cm_alloc_stats a0 = alloc_stats(CM_DEV_CPU);
        alloc_reset_peak(CM_DEV_CPU);
        if (rc_auto) {
            so.recompute = s == 0 ? FLUX_RECOMPUTE_ALL : rc_n;
            if (s == 0) autograd_recompute_max_kept(true);
        }
        for (int a = 0; a < sg->grad_accum; a++) {
            loader_batch b;
            double t0 = progress_now();
            if (loader_next(L, &b)) { fprintf(stderr, "cameo bench train: the loader failed\n"); rc = 1; free(rec); goto out_loader; }
            t.data += progress_now() - t0;
            B = b.B, H = b.H, W = b.W, R = b.R;
            step_times st = {0};
            uint64_t micro = step_micro_key((uint64_t)s, a);
            // from this micro-step's start: with grad_accum > 1 the earlier micro-steps' gradients are
            // live by now, and they are counted once, as the gradients row
            double live0 = (double)alloc_stats(CM_DEV_CPU).current;
            cm_tensor *loss = step_forward(&m, &b, &so, micro, &st);
            double live = (double)alloc_stats(CM_DEV_CPU).current - live0;  // the tape's saved tensors
            if (timed && live > saved) saved = live;
            t.encoders += st.encoders;
            t.vision += st.vision, t.vae += st.vae, t.text += st.text;
            t.forward += st.forward;
            double t1 = progress_now();
            cm_tensor *scaled = op_scale(loss, 1.0 / sg->grad_accum);
            autograd_backward(scaled, NULL);
            tensor_release(scaled);
            tensor_release(loss);
            t.backward += progress_now() - t1;
            if (timed) samples += b.B;
        }
        if (rc_auto && s == 0) {
            int n = recompute_vote(m.flux.cfg.num_layers, m.flux.cfg.num_single_layers, CM_DEV_CPU, &rc_peak, &rc_kept, &rc_budget);
            rc_n = n < 0 ? nb : n;
        }
        double t2 = progress_now();
        for (int i = 0; i < optim_n_params(&opt); i++) optim_grad_ready(&opt, i);
        optim_step_info info;
        optim_step(&opt, schedule_lr(&ls, s), &info);
        t.optimizer = progress_now() - t2;
        t.step = progress_now() - t_step;
        if (timed) {
            cm_alloc_stats a1 = alloc_stats(CM_DEV_CPU);
            base_live = (double)a0.current;
            if ((double)a1.peak > peak) peak = (double)a1.peak;
            rec[s - warmup] = t;
        }
    }
    double wall = progress_now() - wall0, ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
    double outside = ((machine_busy_s() - busy0) - (self_cpu_s() - self0)) / (wall * ncpu);  // share of all cores
    loader_close(L);  // its threads would compete with the PyTorch run
    L = NULL;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double c_rss = (double)ru.ru_maxrss * 1024.0;

    // the FLUX blocks the timed steps recomputed (train.recompute; auto: the choice made at step 0)
    const int n_rc = rc_auto ? rc_n : so.recompute < 0 || so.recompute > nb ? nb : so.recompute;
    torch_figures tf = {0};
    if (torch) run_torch(&c, sg, threads, steps, warmup, B, H, W, R, n_rc, &tf);

    // --- the tables ---
    // medians over the timed steps, phase by phase (robust to a neighbour's burst on a shared machine)
    phase_times mean;
    double *col = malloc(sizeof(double) * (size_t)steps);
    double *dst[N_PHASES] = {&mean.data, &mean.encoders, &mean.forward, &mean.backward, &mean.optimizer, &mean.step,
                             &mean.vision, &mean.vae, &mean.text};
    for (int k = 0; k < N_PHASES; k++) {
        for (int i = 0; i < steps; i++) col[i] = ((double *)&rec[i])[k];
        *dst[k] = bench_median(col, steps);
    }
    free(col);
    free(rec);
    double spstep = (double)samples / steps;  // samples per optimizer step
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    const train_tiny_dims *d = &c.model.tiny_dims;
    printf("cameo bench train — %s%s, stage %d '%s' (%s): batch %d x grad_accum %d, target %dx%d, references %d px; "
           "%d threads on %s; %d timed steps after %d warm-up\n",
           medium ? "medium " : "", c.source, stage, sg->name, cfg_mode_name(sg->mode), B, sg->grad_accum, W, H, R, threads, cpu,
           steps, warmup);
    printf("models: FLUX %d double + %d single blocks, %d heads x %d; SigLIP/DINOv2 %d wide x %d layers, patch %d; "
           "T5 %d wide x %d tokens, CLIP %d wide; projector %d+%d blocks, resampler %d x %d queries; VAE %d channels, latent %d\n\n",
           d->flux_double, d->flux_single, d->flux_heads, d->flux_head_dim, d->vision_hidden, d->vision_layers, d->vision_patch,
           d->text_dim, d->text_len, d->pooled_dim, d->proj_layers, d->proj_layers, d->proj_depth, d->proj_queries,
           d->vae_channels, d->latent_channels);
    char th[96];
    snprintf(th, sizeof th, "PyTorch %s", tf.ok ? tf.version : "(not run)");
    printf("| per optimizer step | cameo (C) | %s | C speed-up (PyTorch time / C time) |\n|---|---|---|---|\n", th);
    {
        char c1[32], t1[32], r1[32] = "";
        snprintf(c1, sizeof c1, "%.2f", 1.0 / mean.step);
        snprintf(t1, sizeof t1, tf.ok ? "%.2f" : "n/a", tf.steps_per_s);
        if (tf.ok && tf.steps_per_s > 0) snprintf(r1, sizeof r1, "%.2fx", (1.0 / mean.step) / tf.steps_per_s);
        printf("| steps/s | %s | %s | %s |\n", c1, t1, r1);
        snprintf(c1, sizeof c1, "%.1f", spstep / mean.step);
        snprintf(t1, sizeof t1, tf.ok ? "%.1f" : "n/a", tf.samples_per_s);
        if (tf.ok && tf.samples_per_s > 0) snprintf(r1, sizeof r1, "%.2fx", (spstep / mean.step) / tf.samples_per_s);
        printf("| samples/s | %s | %s | %s |\n", c1, t1, r1);
    }
    row_ms("data: loader_next wait (ms)", mean.data, 0, tf.ok, tf.ok ? "— (random inputs, untimed)" : NULL);
    row_ms("frozen encoders: vision, VAE, T5/CLIP (ms)", mean.encoders, tf.t.encoders, tf.ok, NULL);
    row_ms("  of which SigLIP + DINOv2, 5 views (ms)", mean.vision, tf.t.vision, tf.ok, NULL);
    row_ms("  of which the VAE encoder (ms)", mean.vae, tf.t.vae, tf.ok, NULL);
    row_ms("  of which T5 + CLIP (ms)", mean.text, tf.t.text, tf.ok, NULL);
    row_ms("forward: projector + FLUX/IP + loss (ms)", mean.forward, tf.t.forward, tf.ok, NULL);
    row_ms("backward (ms)", mean.backward, tf.t.backward, tf.ok, NULL);
    row_ms("optimizer: clip + AdamW (ms)", mean.optimizer, tf.t.optimizer, tf.ok, NULL);
    row_ms("step, all of the above (ms)", mean.step, tf.t.step, tf.ok, NULL);
    row_ms("step without data (ms)", mean.step - mean.data, tf.t.step, tf.ok, NULL);
    printf("\nmedians over the timed steps, per optimizer step (the step row is the median step, not the sum of the medians). "
           "CPU taken by other processes while timing: %.0f%% of the machine for cameo%s",
           100.0 * (outside > 0 ? outside : 0), tf.ok ? "" : "\n");
    if (tf.ok) printf(", %.0f%% for PyTorch\n", 100.0 * (tf.outside_load > 0 ? tf.outside_load : 0));
    if (outside > 0.1 || (tf.ok && tf.outside_load > 0.1)) printf("(the machine was shared while timing: the figures are disturbed; run again on an idle machine)\n");
    const char *wp = getenv("OMP_WAIT_POLICY");
    const char *bt = getenv("OPENBLAS_THREAD_TIMEOUT");
    printf("cameo ran with OMP_WAIT_POLICY=%s, OPENBLAS_THREAD_TIMEOUT=%s; PyTorch with its defaults (those unset)\n",
           wp ? wp : "(unset)", bt ? bt : "(unset)");
    // the twin keeps f32 moments; it keeps the same weight average when it says so (an older one: none)
    const bool ema_differs = c.optimizer.ema > 0 && tf.ema != c.optimizer.ema;
    if (tf.ok && (c.optimizer.state_bf16 || ema_differs))
        printf("cameo's AdamW%s%s; PyTorch's keeps f32 moments%s: its optimizer row is not like for like\n",
               c.optimizer.state_bf16 ? " keeps bf16 moments (optimizer.state_dtype)" : "",
               !ema_differs ? "" : c.optimizer.state_bf16 ? " and updates a weight average (optimizer.ema)"
                                                          : " updates a weight average (optimizer.ema)",
               ema_differs ? " and no average" : "");
    // the twin checkpoints the same blocks when it says so (an older one: none)
    if (tf.ok && n_rc != (tf.recompute < 0 ? 0 : (int)tf.recompute))
        printf("cameo recomputed the first %d of %d FLUX blocks in backward (train.recompute); PyTorch's twin %.0f: its forward, "
               "backward and saved-activation figures are not like for like\n", n_rc, nb, tf.recompute < 0 ? 0 : tf.recompute);
    if (rc_auto)
        printf("recompute: auto: the first %d of %d FLUX blocks recompute, %d keep their activations (chosen as cameo train "
               "does, from the first step: all recomputed, peak %.1f MiB, a block keeps %.2f MiB, budget %.0f MiB)%s\n",
               rc_n, nb, nb - rc_n, rc_peak / 1048576.0, rc_kept / 1048576.0, rc_budget / 1048576.0,
               warmup ? "" : "; that first step is among the timed ones (--warmup 0)");
    if (nf) {
        printf("adapter.freeze: %d of %d adapter tensors held fixed (%lld of %lld parameters)", nf, nt, (long long)held, (long long)all);
        if (tf.ok && tf.tensors_held == nf && tf.tensors == nt && tf.params_held == (double)held)
            printf("; PyTorch's twin holds the same fixed\n");
        else if (tf.ok && tf.tensors_held < 0)
            printf("; PyTorch's twin trains them all: its backward and optimizer rows are not like for like\n");
        else if (tf.ok)
            printf("; PyTorch's twin held %.0f of %.0f tensors (%.0f parameters): its backward and optimizer rows are not like "
                   "for like\n", tf.tensors_held, tf.tensors, tf.params_held);
        else printf("\n");
    }
    printf("\n");

    // memory: the arithmetic beside the allocator's measurement
    const double MiB = 1024.0 * 1024.0;
    double w_frozen = reg_bytes(&m.ps_flux) + reg_bytes(&m.ps_vision) + reg_bytes(&m.ps_dino) + reg_bytes(&m.ps_vae) +
                      reg_bytes(&m.text.ps_t5) + reg_bytes(&m.text.ps_clip);
    double w_adapter = reg_bytes(&m.ps_adapter);
    double n_frozen = (double)(params_count(&m.ps_flux, false) + params_count(&m.ps_vision, false) + params_count(&m.ps_dino, false) +
                               params_count(&m.ps_vae, false) + params_count(&m.text.ps_t5, false) + params_count(&m.text.ps_clip, false));
    double n_adapter = (double)params_count(&m.ps_adapter, false);
    // m, v in optimizer.state_dtype, the f32 average with optimizer.ema; f32 params are their own masters
    const double n_own = (double)optim_numel(&opt, true), moments = 2.0 * (c.optimizer.state_bf16 ? 2.0 : 4.0) * n_own;
    const double ema = c.optimizer.ema > 0 ? 4.0 * n_own : 0.0, state = moments + ema;
    double grads = 4.0 * (double)optim_numel(&opt, false);       // f32 .grad of every trained adapter parameter, live until the update
    double arith = w_frozen + w_adapter + state + grads + saved;
    printf("| memory of the step (CPU allocator) | cameo MiB | PyTorch |\n|---|---|---|\n");
    char tp[64];
    snprintf(tp, sizeof tp, tf.ok ? "%.0f params" : "n/a", tf.params_frozen);
    printf("| frozen weights: FLUX, SigLIP, DINOv2, VAE enc, T5, CLIP (%.0f params, f32) | %.2f | %s |\n", n_frozen, w_frozen / MiB, tp);
    snprintf(tp, sizeof tp, tf.ok ? "%.0f params" : "n/a", tf.params_adapter);
    printf("| adapter weights = f32 masters (%.0f params) | %.2f | %s |\n", n_adapter, w_adapter / MiB, tp);
    printf("| AdamW m + v (%s) | %.2f | |\n", c.optimizer.state_bf16 ? "bf16" : "f32", moments / MiB);
    if (ema > 0) printf("| weight average (optimizer.ema, f32) | %.2f | |\n", ema / MiB);
    printf("| adapter gradients (f32) | %.2f | |\n", grads / MiB);
    snprintf(tp, sizeof tp, tf.ok ? "%.2f (unique storages the tape saves)" : "n/a", tf.saved_bytes / MiB);
    printf("| saved activations: live after forward − before it (max over micro-steps) | %.2f | %s |\n", saved / MiB, tp);
    printf("| **sum (arithmetic)** | **%.2f** | |\n", arith / MiB);
    printf("| **measured peak of the step** (alloc_stats peak) | **%.2f** | |\n", peak / MiB);
    printf("| peak − (weights + state + gradients + saved) = transient buffers | %.2f | |\n", (peak - arith) / MiB);
    printf("| live between steps (weights + state) | %.2f | |\n", base_live / MiB);
    snprintf(tp, sizeof tp, tf.ok ? "%.0f" : "n/a", tf.max_rss / MiB);
    printf("| process max RSS (incl. libraries, loader / interpreter) | %.0f | %s |\n", c_rss / MiB, tp);

out_loader:
    loader_close(L);
out_opt:
    optim_free(&opt);
out_models:
    ic_models_free(&m);
out_tmp:
    if (tmp[0]) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
