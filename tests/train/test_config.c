// test_config.c — train/config: the shipped configs parse, defaults, --set overrides, errors that
// name the key path, the YAML round trip, the embedded copy of configs/tiny.yaml.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "train/config.h"
#include "train/stage_setup.h"
#include "train/step.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    b[n] = 0;
    fclose(f);
    return b;
}

// parses text (+ sets) and expects an error containing `want`
static void expect_err(const char *yaml, const char *set, const char *want) {
    train_config c;
    char err[1024] = "";
    const char *sets[1] = {set};
    int rc = train_config_parse(&c, yaml, strlen(yaml), "t.yaml", sets, set ? 1 : 0, err, sizeof err);
    TEST_CHECK(rc == -1, "expected an error for %s", want);
    TEST_CHECK(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

static const char *MIN = "stages:\n  - name: a\n    steps: 10\n  - name: b\n    mode: paired\n    steps: 20\n";

int main(void) {
    char err[1024];
    train_config c, d;

    // the embedded copy is configs/tiny.yaml, byte for byte
    char *tiny = slurp("configs/tiny.yaml");
    TEST_CHECK(tiny && !strcmp(tiny, train_config_tiny_yaml),
               "train/config_tiny.c is stale: run scripts/gen_config_tiny.sh");
    free(tiny);

    // the shipped configs parse
    const char *files[] = {"configs/tiny.yaml", "configs/instantcharacter-flux.yaml", "configs/finetune-character.yaml"};
    for (int i = 0; i < 3; i++) {
        int rc = train_config_load(&c, files[i], NULL, 0, err, sizeof err);
        TEST_CHECK(rc == 0, "%s: %s", files[i], err);
    }
    TEST_CHECK(train_config_load(&c, "configs/instantcharacter-flux.yaml", NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.n_stages == 3 && c.stages[2].resolution == 1024 && c.stages[0].resolution == 512, "paper stages");
    TEST_CHECK(!c.model.tiny && c.model.flux[0], "full config names weights");
    TEST_CHECK(train_config_load(&c, "configs/finetune-character.yaml", NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.model.adapter_init[0], "finetune starts from the released adapter");

    // the embedded default
    TEST_CHECK(train_config_load(&c, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.model.tiny && c.n_stages == 3, "tiny: 3 stages");
    TEST_CHECK(c.stages[0].mode == CFG_MODE_UNPAIRED && c.stages[1].mode == CFG_MODE_PAIRED &&
                   c.stages[2].mode == CFG_MODE_MIXED, "tiny stage modes");
    TEST_CHECK(c.data.generate_demo_if_missing, "tiny generates its data");

    // defaults
    TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.adapter.ip_scale == 1.0 && c.adapter.init_kv == CFG_INIT_KV_ZERO_V, "adapter defaults");
    TEST_CHECK(c.train.caption_drop == 0.1 && c.train.ref_drop == 0.1 && c.train.guidance == 1.0, "train defaults");
    TEST_CHECK(c.train.timestep == CFG_T_LOGIT_NORMAL && c.train.logit_std == 1.0, "timestep default");
    TEST_CHECK(c.optimizer.grad_clip == 1.0 && c.optimizer.beta2 == 0.999, "optimizer defaults");
    TEST_CHECK(c.stages[1].mode == CFG_MODE_PAIRED && c.stages[1].steps == 20 && c.stages[1].grad_accum == 1, "stage");
    TEST_CHECK(train_stage_lr(&c, 0) == c.optimizer.lr, "stage lr falls back");
    TEST_CHECK(train_config_total_steps(&c) == 30, "total steps");
    int64_t sis;
    TEST_CHECK(train_config_stage_of_step(&c, 12, &sis) == 1 && sis == 2, "stage of step");
    TEST_CHECK(train_config_stage_of_step(&c, 30, &sis) == 2, "past the end");

    // --set
    const char *sets[] = {"stages.1.steps=200", "optimizer.lr=3e-5", "stages[0].buckets=[[64, 32], 48x48]",
                          "run.device=cuda:1", "model.adapter_init=", "run.quiet=yes", "stages.2.name=extra"};
    TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", sets, 7, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.stages[1].steps == 200 && c.optimizer.lr == 3e-5, "sets applied");
    TEST_CHECK(c.stages[0].n_buckets == 2 && c.stages[0].buckets[0][0] == 64 && c.stages[0].buckets[1][1] == 48, "buckets");
    TEST_CHECK(c.run.dev.type == CM_CUDA && c.run.dev.index == 1, "device");
    TEST_CHECK(c.run.quiet && c.n_stages == 3 && !strcmp(c.stages[2].name, "extra"), "append a stage by index");

    // errors name the key path and what is allowed
    expect_err("stages:\n  - name: a\n  - name: b\n    mode: pared\n", NULL,
               "t.yaml:4: stages[1].mode: 'pared' is not one of unpaired, paired, mixed");
    expect_err("run:\n  sed: 3\nstages:\n  - name: a\n", NULL, "run.sed: unknown key (allowed here: name, out_dir, seed");
    expect_err("run:\n  log_every: ten\nstages:\n  - name: a\n", NULL, "run.log_every: 'ten' is not an integer");
    // session 8's keys: the watchdog, the moments' dtype, the frozen parts, a stage's own dataset
    expect_err(MIN, "run.step_timeout=soon", "run.step_timeout: 'soon' is not 'auto' or a number of seconds");
    expect_err(MIN, "run.step_timeout=-5", "run.step_timeout: '-5' is not 'auto'");
    expect_err(MIN, "optimizer.state_dtype=f16", "optimizer.state_dtype: 'f16' is not one of f32, bf16");
    expect_err(MIN, "adapter.freeze=image_proj", "adapter.freeze: expected a list of at most 8 weight-name prefixes");
    expect_err(MIN, "adapter.freeze=[a, b, c, d, e, f, g, h, i]", "adapter.freeze: expected a list of at most 8");
    expect_err(MIN, "adapter.freeze=[[image_proj]]", "adapter.freeze[0]: expected a weight-name prefix");
    expect_err(MIN, "optimizer.reduce_bucket_mb=-1", "optimizer.reduce_bucket_mb");
    expect_err(MIN, "train.recompute=some", "train.recompute: 'some' is not true, false, auto or a number of blocks");
    expect_err(MIN, "train.recompute=-3", "train.recompute: '-3' is not true, false, auto or a number of blocks");
    // train.recompute: true = every block (-1), false = none, N = the first N, auto (-3); each survives the round trip
    const char *rcs[][2] = {{"true", "-1"}, {"all", "-1"}, {"false", "0"}, {"0", "0"}, {"12", "12"}, {"auto", "-3"}};
    for (int i = 0; i < 6; i++) {
        char set[64];
        snprintf(set, sizeof set, "train.recompute=%s", rcs[i][0]);
        const char *s1[1] = {set};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", s1, 1, err, sizeof err) == 0, "%s: %s", set, err);
        TEST_CHECK(c.train.recompute == atoi(rcs[i][1]), "%s gave %d", set, c.train.recompute);
        char *y = train_config_to_yaml(&c);
        TEST_CHECK(train_config_parse(&d, y, strlen(y), "rt", NULL, 0, err, sizeof err) == 0 && d.train.recompute == c.train.recompute,
                   "%s: round trip gave %d", set, d.train.recompute);
        free(y);
    }
    // a stage's recompute: its own where set (round trip included), else the train section's
    const char *srcs[3] = {"train.recompute=true", "stages.1.recompute=20", "stages.2.recompute=auto"};
    TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", srcs, 3, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(c.stages[2].recompute == CFG_RECOMPUTE_AUTO && stage_step_opts(&c, 2).recompute == CFG_RECOMPUTE_AUTO,
               "a stage's recompute: auto (%d)", c.stages[2].recompute);
    TEST_CHECK(c.stages[0].recompute == CFG_RECOMPUTE_INHERIT && c.stages[1].recompute == 20, "stage recompute %d %d",
               c.stages[0].recompute, c.stages[1].recompute);
    TEST_CHECK(stage_step_opts(&c, 0).recompute == -1 && stage_step_opts(&c, 1).recompute == 20 &&
                   stage_step_opts(&c, -1).recompute == -1, "stage_step_opts: %d %d", stage_step_opts(&c, 0).recompute,
               stage_step_opts(&c, 1).recompute);
    {
        char *y = train_config_to_yaml(&c);
        TEST_CHECK(train_config_parse(&d, y, strlen(y), "rt", NULL, 0, err, sizeof err) == 0 &&
                       d.stages[1].recompute == 20 && d.stages[0].recompute == CFG_RECOMPUTE_INHERIT,
                   "stage recompute round trip: %s", err);
        free(y);
    }
    expect_err(MIN, "stages.0.recompute=most", "stages[0].recompute: 'most' is not true, false, auto or a number of blocks");
    {
        train_config c;
        char err[1024] = "";
        const char *sets[] = {"run.step_timeout=60", "optimizer.state_dtype=bf16", "adapter.freeze=[image_proj, ip_adapter.3]",
                              "stages.1.data=some/where", "optimizer.reduce_bucket_mb=0"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "t.yaml", sets, 5, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(c.run.step_timeout == 60 && c.optimizer.state_bf16 && c.adapter.n_freeze == 2 &&
                   !strcmp(c.adapter.freeze[1], "ip_adapter.3") && !strcmp(cfg_stage_data(&c, 1), "some/where") &&
                   !strcmp(cfg_stage_data(&c, 0), c.data.path) && c.optimizer.reduce_bucket_mb == 0, "the new keys read back");
        char *y = train_config_to_yaml(&c);
        train_config d;
        TEST_CHECK(train_config_parse(&d, y, strlen(y), "again", NULL, 0, err, sizeof err) == 0 && d.run.step_timeout == 60 &&
                   d.optimizer.state_bf16 && d.adapter.n_freeze == 2 && !strcmp(d.stages[1].data, "some/where"),
                   "and survive the resolved YAML: %s", err);
        free(y);
        TEST_CHECK(train_config_parse(&d, MIN, strlen(MIN), "t.yaml", NULL, 0, err, sizeof err) == 0 && d.run.step_timeout < 0 &&
                   !d.optimizer.state_bf16 && d.adapter.n_freeze == 0 && d.optimizer.reduce_bucket_mb == 25, "defaults: auto, f32, [], 25");
    }
    expect_err("train:\n  caption_drop: 1.5\nstages:\n  - name: a\n", NULL, "train.caption_drop: 1.5 is out of range (allowed: 0..1)");
    // bucket sides off 16 give odd latent grids: flux_pack_latents stopped the run at the first such batch
    expect_err(MIN, "data.bucket_step=12", "(--set): data.bucket_step: 12 must be a multiple of 16");
    expect_err("data:\n  bucket_step: 8\nstages:\n  - name: a\n", NULL, "t.yaml:2: data.bucket_step: 8 must be a multiple of 16");
    // a stage whose auto buckets are empty is refused when the config is read, not when the stage
    // begins (after the stages before it trained): 16² holds no 32-px side; 112² only 192x64, 3:1
    expect_err("data:\n  bucket_step: 32\nstages:\n  - name: a\n  - name: b\n    resolution: 16\n", NULL,
               "t.yaml:6: stages[1].resolution: 16 makes no aspect bucket (buckets: auto) with sides multiples of "
               "data.bucket_step 32");
    expect_err(MIN, "stages.1.resolution=112", "stages[1].resolution: 112 makes no aspect bucket");
    TEST_CHECK(train_config_parse(&d, MIN, strlen(MIN), "t.yaml", (const char *[]){"stages.1.resolution=112", "stages.1.steps=0"}, 2,
                                  err, sizeof err) == 0, "a stage of 0 steps is not held to its buckets: %s", err);
    TEST_CHECK(train_config_parse(&d, MIN, strlen(MIN), "t.yaml", (const char *[]){"stages.1.resolution=112", "stages.1.buckets=[[64, 64]]"},
                                  2, err, sizeof err) == 0, "explicit buckets at any resolution: %s", err);
    TEST_CHECK(train_config_parse(&d, MIN, strlen(MIN), "t.yaml", (const char *[]){"data.bucket_step=48"}, 1, err, sizeof err) == 0 &&
                   d.data.bucket_step == 48, "bucket_step 48: %s", err);
    expect_err("optimizer:\n  betas: 0.9\nstages:\n  - name: a\n", NULL, "optimizer.betas: expected a list of two numbers");
    expect_err("run:\n  name: x\n", NULL, "stages: required");
    expect_err(MIN, "stages.7.steps=1", "'7' is not an index");
    expect_err(MIN, "stages.0.stepz=1", "(--set): stages[0].stepz: unknown key");
    expect_err(MIN, "nothing", "expected key.path=value");
    expect_err(MIN, "run.device=tpu", "run.device: 'tpu' is not a device");
    expect_err(MIN, "run.name=..", "run.name: '..' must be a non-empty name without");
    expect_err("model:\n  sizes: full\nstages:\n  - name: a\n", NULL, "model.flux: required when model.sizes is full");
    expect_err("stages:\n  - name: a\n    resolution: 100\n", NULL, "stages[0].resolution: 100 must be a multiple of 16");
    expect_err("stages: [\n", NULL, "YAML syntax error");
    expect_err("- a\n- b\n", NULL, "the config must be a mapping");
    expect_err("stages:\n  - name: a\n    buckets: [[10, 20]]\n", NULL, "stages[0].buckets[0]: 10x20");
    // a second YAML document would be dropped unread; a lone trailing "---" is harmless
    expect_err("stages:\n  - name: a\n---\nrun:\n  seed: 3\n", NULL, "t.yaml:3: a second YAML document");
    {
        const char *y = "stages:\n  - name: a\n---\n";
        TEST_CHECK(train_config_parse(&c, y, strlen(y), "t.yaml", NULL, 0, err, sizeof err) == 0, "trailing ---: %s", err);
    }
    // aliases of aliases: refused at a bound, not expanded until memory runs out
    {
        char bomb[2048] = "";
        size_t l = 0;
        l += (size_t)snprintf(bomb + l, sizeof bomb - l, "x0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 9; i++)
            l += (size_t)snprintf(bomb + l, sizeof bomb - l, "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                                  i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        snprintf(bomb + l, sizeof bomb - l, "stages:\n  - name: a\n");
        expect_err(bomb, NULL, "expands to more than");
        // an ordinary alias still reads: a stage repeated
        const char *y = "stages:\n  - &s\n    name: a\n    steps: 5\n  - *s\n";
        TEST_CHECK(train_config_parse(&c, y, strlen(y), "t.yaml", NULL, 0, err, sizeof err) == 0 && c.n_stages == 2 &&
                       c.stages[1].steps == 5, "alias of a stage: %s", err);
    }
    // two noise levels that print alike would share a JSON key and a TensorBoard tag
    expect_err(MIN, "validation.sigmas=[0.5, 0.25, 0.50]", "validation.sigmas[2]: 0.50 repeats validation.sigmas[0]");
    expect_err(MIN, "validation.sigmas=[0.3, 0.30000001]", "validation.sigmas[1]: 0.30000001 repeats");

    // round trip: to_yaml → parse → to_yaml is a fixed point and the struct is the same
    TEST_CHECK(train_config_load(&c, "configs/instantcharacter-flux.yaml", sets + 2, 1, err, sizeof err) == 0, "%s", err);
    char *y1 = train_config_to_yaml(&c);
    TEST_CHECK(train_config_parse(&d, y1, strlen(y1), c.source, NULL, 0, err, sizeof err) == 0, "reparse: %s\n%s", err, y1);
    char *y2 = train_config_to_yaml(&d);
    TEST_CHECK(!strcmp(y1, y2), "round trip differs:\n%s\n---\n%s", y1, y2);
    TEST_CHECK(d.optimizer.lr == c.optimizer.lr && d.optimizer.eps == c.optimizer.eps && d.stages[0].n_buckets == 2 &&
                   d.run.seed == c.run.seed && d.train.shift_max == c.train.shift_max, "round trip values");
    free(y1);
    free(y2);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cameo-test-config-%d.yaml", (int)getpid());
    TEST_CHECK(train_config_write(&c, path, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(train_config_load(&d, path, NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(d.stages[2].steps == c.stages[2].steps, "written config reads back");
    remove(path);

    // path checks
    TEST_CHECK(train_config_load(&c, "configs/instantcharacter-flux.yaml", NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(train_config_check_paths(&c, err, sizeof err) == -1 && strstr(err, "model.flux"), "missing weights: %s", err);
    // a user without the published weights is told where to get them, and every one missing at once
    TEST_CHECK(strstr(err, "huggingface.co/black-forest-labs/FLUX.1-dev") &&
                   strstr(err, "also missing: model.siglip, model.dinov2, model.vae, model.t5, model.clip"),
               "missing weights: where to download, all of them: %s", err);
    TEST_CHECK(train_config_load(&c, "configs/finetune-character.yaml", NULL, 0, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(train_config_check_paths(&c, err, sizeof err) == -1 && strstr(err, ", model.adapter_init"),
               "fine-tuning without the released adapter names it with the rest: %s", err);
    {
        const char *ai[] = {"model.adapter_init=/nonexistent/cameo/instantcharacter_ip-adapter.bin"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", ai, 1, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(train_config_check_paths(&c, err, sizeof err) == -1 && strstr(err, "model.adapter_init") &&
                       strstr(err, "huggingface.co/tencent/InstantCharacter"),
                   "a missing adapter_init says where the released one is: %s", err);
    }
    // data.path is only needed by a stage without its own data
    {
        char ds[64], man[96];
        snprintf(ds, sizeof ds, "/tmp/cameo-test-config-ds-%d", (int)getpid());
        snprintf(man, sizeof man, "%s/manifest.json", ds);
        TEST_CHECK(mkdir(ds, 0755) == 0, "mkdir %s", ds);
        FILE *f = fopen(man, "w");
        if (f) fclose(f);
        char s0[128], s1[128];
        snprintf(s0, sizeof s0, "stages.0.data=%s", ds);
        snprintf(s1, sizeof s1, "stages.1.data=%s", ds);
        const char *own[] = {"data.path=/nonexistent/cameo", s0, s1};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", own, 3, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(!cfg_data_path_used(&c) && train_config_check_paths(&c, err, sizeof err) == 0,
                   "every stage has its own dataset: data.path unread (%s)", err);
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", own, 2, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(cfg_data_path_used(&c) && train_config_check_paths(&c, err, sizeof err) == -1 && strstr(err, "data.path"),
                   "stage 1 reads data.path, which is missing: %s", err);
        remove(man);
        rmdir(ds);
    }
    // train.timestep: uniform (diffusers' default): selectable, written back by name, and sampled as
    // the unshifted training schedule's sigmas[int(u * 1000)] = 1 - k/1000
    {
        const char *uni[] = {"train.timestep=uniform"};
        TEST_CHECK(train_config_parse(&c, MIN, strlen(MIN), "min", uni, 1, err, sizeof err) == 0 && c.train.timestep == CFG_T_UNIFORM,
                   "train.timestep=uniform: %s", err);
        char *y = train_config_to_yaml(&c);
        TEST_CHECK(y && strstr(y, "timestep: uniform"), "the resolved config names it");
        train_config back;
        TEST_CHECK(y && train_config_parse(&back, y, strlen(y), "resolved", NULL, 0, err, sizeof err) == 0 &&
                       back.train.timestep == CFG_T_UNIFORM, "read back: %s", err);
        free(y);
        step_opts so = stage_step_opts(&c, 0);
        TEST_CHECK(so.tsample == STEP_T_UNIFORM, "the step samples uniform σ (tsample %d)", (int)so.tsample);
        double sum = 0, lo = 2, hi = -1;
        int off_grid = 0, n = 4000;
        for (int i = 0; i < n; i++) {
            double s = step_sigma(&so, 7, i, 1024);
            off_grid += fabs(s * 1000 - round(s * 1000)) > 1e-9;
            sum += s, lo = s < lo ? s : lo, hi = s > hi ? s : hi;
        }
        TEST_CHECK(!off_grid && lo >= 0.001 && hi <= 1.0 && fabs(sum / n - 0.5) < 0.03 && hi - lo > 0.95,
                   "uniform σ on the 1/1000 grid over [0.001, 1]: %d off it, min %g max %g mean %g", off_grid, lo, hi, sum / n);
    }
    expect_err(MIN, "train.timestep=uniformly", "logit_normal, flux_shift, uniform");
    return test_summary("test_config");
}
