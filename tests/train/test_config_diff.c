// test_config_diff.c — what a resume changes (train/config_diff.h): the checkpoint's resolved
// config against the resumed run's, key by key, and the changes a stage in progress refuses.
#include <string.h>
#include "train/config.h"
#include "train/config_diff.h"
#include "testutil.h"

static const char *Y = "stages:\n  - name: a\n    steps: 10\n  - name: b\n    mode: paired\n    steps: 20\n    batch_size: 8\n";

static void parse(train_config *c, const char *const *sets, int n) {
    char err[1024];
    TEST_CHECK(train_config_parse(c, Y, strlen(Y), "t.yaml", sets, n, err, sizeof err) == 0, "%s", err);
}

static const cfg_change *find(const cfg_change *ch, int n, const char *path) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ch[i].path, path)) return &ch[i];
    return NULL;
}

int main(void) {
    static train_config a, b;
    cfg_change ch[32];
    char err[1024];
    parse(&a, NULL, 0);
    parse(&b, NULL, 0);
    TEST_CHECK(train_config_diff(&a, &b, ch, 32) == 0, "the same config: no change");

    const char *sets[] = {"optimizer.lr=5e-5", "stages.1.batch_size=16", "model.tiny.flux_heads=4", "optimizer.betas=[0.9, 0.99]",
                          "stages.0.steps=12", "data.bucket_step=32"};
    parse(&b, sets, 6);
    int n = train_config_diff(&a, &b, ch, 32);
    for (int i = 0; i < n; i++) printf("  %s: %s -> %s\n", ch[i].path, ch[i].was, ch[i].now);
    TEST_CHECK(n == 6, "6 changes (got %d)", n);
    const cfg_change *c = find(ch, n, "stages[1].batch_size");
    TEST_CHECK(c && !strcmp(c->was, "8") && !strcmp(c->now, "16"), "stages[1].batch_size 8 -> 16");
    c = find(ch, n, "model.tiny.flux_heads");
    TEST_CHECK(c && !strcmp(c->now, "4"), "a nested key: model.tiny.flux_heads");
    TEST_CHECK(find(ch, n, "optimizer.lr") && find(ch, n, "optimizer.betas") && find(ch, n, "stages[0].steps") &&
               find(ch, n, "data.bucket_step"), "optimizer.lr, optimizer.betas, stages[0].steps, data.bucket_step");

    // an appended stage: its keys exist on one side only
    const char *more[] = {"stages.2.steps=5"};
    parse(&b, more, 1);
    n = train_config_diff(&a, &b, ch, 32);
    c = find(ch, n, "stages[2].steps");
    TEST_CHECK(c && !strcmp(c->was, "(none)") && !strcmp(c->now, "5"), "a new stage's keys: (none) -> value");
    TEST_CHECK(train_config_diff(&b, &a, ch, 32) == n && find(ch, n, "stages[2].name") && !strcmp(find(ch, n, "stages[2].name")->now, "(none)"),
               "a removed stage's keys: value -> (none)");
    TEST_CHECK(train_config_diff(&a, &b, ch, 2) == n, "the count goes on past max");

    // what a resume may change: anything of a stage not yet started, or one at its first step;
    // of the stage in progress, nothing its data order follows; never the seed
    parse(&b, sets, 6);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(train_config_resume_check(ch, n, 1, 0, err, sizeof err) == 0, "stage 1 at its first step takes them: %s", err);
    TEST_CHECK(train_config_resume_check(ch, n, 0, 3, err, sizeof err) != 0 && strstr(err, "data.bucket_step"),
               "stage 0 in progress: data.bucket_step refused (%s)", err);
    const char *bs[] = {"stages.1.batch_size=16", "stages.1.lr=1e-5", "stages.0.mode=paired"};
    parse(&b, bs, 3);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(train_config_resume_check(ch, n, 1, 4, err, sizeof err) != 0 && strstr(err, "stages[1].batch_size: 8 in the checkpoint, 16 now"),
               "stage 1 in progress: its batch size refused, naming both values (%s)", err);
    parse(&b, bs + 1, 2);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(train_config_resume_check(ch, n, 1, 4, err, sizeof err) == 0, "its lr, and a finished stage's mode, are fine: %s", err);
    const char *seed[] = {"run.seed=7"};
    parse(&b, seed, 1);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(train_config_resume_check(ch, n, 1, 0, err, sizeof err) != 0 && strstr(err, "run.seed"), "the seed refused (%s)", err);
    // values that differ past what a cfg_change shows (160 bytes): still a change, and a frozen set
    // changed that way still refused by name
    const char *fz1[] = {"adapter.freeze=[image_proj.cross_layer_blocks.0.attn1, image_proj.cross_layer_blocks.0.attn2, "
                         "image_proj.cross_scale_blocks.0.attn1, image_proj.cross_scale_blocks.0.attn2, image_proj.proj_cross_layer]"};
    const char *fz2[] = {"adapter.freeze=[image_proj.cross_layer_blocks.0.attn1, image_proj.cross_layer_blocks.0.attn2, "
                         "image_proj.cross_scale_blocks.0.attn1, image_proj.cross_scale_blocks.0.attn2, image_proj.proj_cross_scale]"};
    parse(&a, fz1, 1);
    parse(&b, fz2, 1);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(n == 1 && !strcmp(ch[0].path, "adapter.freeze"), "a late difference in adapter.freeze is a change (%d)", n);
    TEST_CHECK(train_config_resume_check(ch, n, 0, 0, err, sizeof err) != 0 && strstr(err, "adapter.freeze"),
               "and refused on a resume (%s)", err);
    char longp[2][600];
    for (int k = 0; k < 2; k++) {
        memset(longp[k], 'd', 520);
        snprintf(longp[k] + 520, sizeof longp[k] - 520, "%s", k ? "/two" : "/one");
        memcpy(longp[k], "data.path=", 10);
    }
    const char *lp1[] = {longp[0]}, *lp2[] = {longp[1]};
    parse(&a, lp1, 1);
    parse(&b, lp2, 1);
    n = train_config_diff(&a, &b, ch, 32);
    TEST_CHECK(n == 1 && !strcmp(ch[0].path, "data.path"), "a data.path differing at byte 520 is a change (%d)", n);

    // a resume with more changes than the trainer lists (64): a refused one after them was never
    // checked (stage 0's batch size, 3 steps in, behind 68 harmless changes)
    {
        static const char *many[] = {
            "model.tiny.flux_double=3", "model.tiny.flux_single=3", "model.tiny.flux_heads=4", "model.tiny.flux_head_dim=32",
            "model.tiny.vision_hidden=64", "model.tiny.vision_layers=3", "model.tiny.vision_heads=4", "model.tiny.vision_patch=8",
            "model.tiny.vision_image=32", "model.tiny.text_dim=64", "model.tiny.text_len=8", "model.tiny.pooled_dim=32",
            "model.tiny.proj_heads=4", "model.tiny.proj_head_dim=32", "model.tiny.proj_layers=2", "model.tiny.proj_queries=4",
            "model.tiny.proj_depth=2", "model.tiny.vae_channels=32", "model.tiny.latent_channels=8", "run.log_every=3",
            "run.ckpt_every=3", "run.keep_last=5", "run.max_bad_steps=3", "run.threads=2", "run.step_timeout=60",
            "data.demo_characters=3", "data.demo_per_character=3", "data.demo_size=64", "data.ref_size=32", "data.threads=2",
            "data.prefetch=3", "model.flux=f", "model.siglip=s", "model.dinov2=d", "model.vae=v", "model.t5=t", "model.clip=c",
            "model.adapter_init=a", "model.dtype=bf16", "model.text_device=cpu", "train.caption_drop=0.2", "train.ref_drop=0.2",
            "train.timestep=flux_shift", "train.logit_mean=0.5", "train.logit_std=2", "train.shift_base=0.6", "train.shift_max=1.2",
            "train.guidance=2", "train.weighting=cosmap", "train.vae_sample=false", "train.recompute=true", "optimizer.lr=2e-4",
            "optimizer.betas=[0.8, 0.99]", "optimizer.eps=1e-6", "optimizer.weight_decay=0.1", "optimizer.grad_clip=2",
            "optimizer.shard_state=false", "optimizer.reduce_bucket_mb=5", "optimizer.state_dtype=bf16", "optimizer.ema=0.9",
            "optimizer.ema_warmup=false", "eval.scale=0.5", "eval.guidance=2", "eval.steps=4", "eval.seeds=2", "eval.size=64",
            "validation.samples=4", "stages.0.name=a2", "stages.0.batch_size=2"};
        int nm = (int)(sizeof many / sizeof *many);
        parse(&a, NULL, 0);
        parse(&b, many, nm);
        static cfg_change all[128];
        n = train_config_diff(&a, &b, all, 128);
        TEST_CHECK(n == nm, "%d changes (got %d)", nm, n);
        TEST_CHECK(n > 64 && !strcmp(all[n - 1].path, "stages[0].batch_size"), "the batch size comes last, past the 64th");
        TEST_CHECK(train_config_resume_check_all(&a, &b, 0, 3, err, sizeof err) != 0 && strstr(err, "stages[0].batch_size: 1 in the checkpoint, 2 now"),
                   "refused however many changes come before it (%s)", err);
        TEST_CHECK(train_config_resume_check_all(&a, &b, 1, 0, err, sizeof err) == 0, "stage 1 at its first step takes them: %s", err);
    }
    return test_summary("test_config_diff");
}
