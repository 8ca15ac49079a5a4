// test_bench_blocks.c — `cameo bench blocks`' FLOP model and rig, on tiny shapes on the CPU (no
// timing assertions): the analytic forward FLOPs equal a count built from the registered weight
// shapes; the linear GEMM calls of forward and backward (cm_gemm_calls) are the ones the model
// assumes (frozen FLUX: dX only, adaLN: none, IP: dX + dW); no FLUX weight gets a gradient; the
// recompute pass gives the plain pass's gradients; the full-size counts agree with the spec's
// arithmetic; and the whole benchmark, full step included, runs through at tiny size on the CPU
// and on the emulated cuda:0 (tests/emulated_device.h: device memory closed to host code), so the
// device path touches device memory only through the backend.
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "emulated_device.h"
#include "autograd/autograd.h"
#include "kernels/backend.h"
#include "models/ic_adapter.h"
#include "testutil.h"
#include "train/bench.h"
#include "train/bench_blocks.h"
#include "train/progress.h"

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

// forward FLOPs from the weights themselves: every 2-D weight of the block times the rows it is
// applied to, plus the attention products written out by hand
static double registry_fwd(const blocks_rig *r, int single) {
    const blocks_dims *d = &r->d;
    const double B = (double)d->B, L = (double)(d->Lt + d->N);
    double f = 0;
    const char *prefix = single ? "single_transformer_blocks.0." : "transformer_blocks.0.";
    for (int i = 0; i < r->ps_flux.n; i++) {
        const cm_param *p = &r->ps_flux.items[i];
        if (strncmp(p->name, prefix, strlen(prefix)) || p->t->ndim != 2) continue;
        double rows = has(p->name, "norm1") || has(p->name, ".norm.linear") ? B  // adaLN on temb
                      : single                                                  ? B * L
                      : has(p->name, "add_") || has(p->name, "ff_context")     ? B * d->Lt
                                                                                : B * d->N;
        f += 2.0 * rows * (double)tensor_numel(p->t);
    }
    const char *ip = single ? "ip_adapter.1." : "ip_adapter.0.";
    for (int i = 0; i < r->ps_ip.n; i++) {
        const cm_param *p = &r->ps_ip.items[i];
        if (!strncmp(p->name, ip, strlen(ip)) && p->t->ndim == 2) f += 2.0 * B * d->Li * (double)tensor_numel(p->t);
    }
    return f + 4.0 * B * L * L * d->C + 4.0 * B * d->N * d->Li * d->C;
}

static int grads_in(const cm_params *ps, const char *prefix) {
    int n = 0;
    for (int i = 0; i < ps->n; i++)
        if ((!prefix || !strncmp(ps->items[i].name, prefix, strlen(prefix))) && ps->items[i].t->grad) n++;
    return n;
}

// the whole benchmark at tiny size, full step included (no PyTorch), on the CPU or, in a child, on
// the emulated cuda:0: runs through and appends its sections. The child must be forked before this
// process starts OpenMP's thread pool (libgomp does not survive a fork): main runs it first.
static void whole_bench(int emulated) {
    char md[] = "/tmp/cameo-test-bench-blocks-XXXXXX";
    int fd = mkstemp(md);
    TEST_CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    char *argv[] = {"--device", emulated ? "cuda:0" : "cpu", "--dtype", "f32", "--tokens-txt", "8", "--tokens-img", "16",
                    "--hidden", "64", "--heads", "2", "--ip-tokens", "4", "--ip-dim", "48", "--warmup", "0", "--iters", "1",
                    "--projector", "tiny", "--encoders", "tiny", "--no-torch", "--full-step", "--blocks", "1+1", "--profile",
                    "--md", md};
    const int argc = (int)(sizeof argv / sizeof *argv);
    int rc;
    if (!emulated) rc = bench_blocks_main(argc, argv);
    else {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            emu_install();
            int r2 = bench_blocks_main(argc, argv);
            fflush(NULL);
            _exit(r2);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    TEST_CHECK(rc == 0, "bench_blocks_main on %s returned %d", argv[1], rc);
    FILE *f = fopen(md, "r");
    static char buf[1 << 17];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    TEST_CHECK(strstr(buf, "| double + IP | fwd+bwd |") && strstr(buf, "### The whole adapter training step") &&
                   strstr(buf, "### Memory of the full-size") && strstr(buf, "| **measured peak (alloc_stats)** |"),
               "%s: the markdown misses a section:\n%s", argv[1], buf);
    // the step again with fewer blocks recomputed: at this size every block keeps its activations
    TEST_CHECK(strstr(buf, "#### Fewer blocks recomputed") && strstr(buf, "| all 2 blocks |") && strstr(buf, "| first 0 of 2 |"),
               "%s: the fewer-recompute run is missing:\n%s", argv[1], buf);
    TEST_CHECK(!strstr(buf, "**DIFFERS**"), "%s: the step's loss differs with fewer blocks recomputed:\n%s", argv[1], buf);
    TEST_CHECK(strstr(buf, "Per card on 8 ranks with the AdamW state sharded") && strstr(buf, "fewer blocks recomputed 0.0") && strstr(buf, "(fits, with room for allocator rounding)"),
               "%s: the ZeRO-1 per-card line is missing:\n%s", argv[1], buf);
    // --encoders tiny: the frozen encoders' calls timed (small towers), the projection still estimated
    const char *en = strstr(buf, "The frozen encoders, measured (`--encoders tiny`");
    TEST_CHECK(en && strstr(en, "| SigLIP + DINOv2, 5 views of 56² |") && strstr(en, "| VAE encoder, 32² target |") &&
                   strstr(en, "| T5 (8 tokens) + CLIP (77) |") && strstr(buf, "| estimated at the blocks' forward rate (no-grad) |"),
               "%s: the tiny encoders' table or the estimates are missing:\n%s", argv[1], en ? en : buf);
    // --profile: where each block's fwd+bwd and each step's time went, per backend call
    const char *pd = strstr(buf, "#### double + IP, fwd+bwd (`--profile`)"), *ps = strstr(buf, "#### single + IP, fwd+bwd (`--profile`)");
    const char *p0 = strstr(buf, "#### One step, every block recomputed (`--profile`)");
    const char *p1 = strstr(buf, "#### One step, fewer blocks recomputed (`--profile`)");
    TEST_CHECK(pd && ps && p0 && p1 && pd < ps && ps < p0 && p0 < p1, "%s: a --profile table is missing:\n%s", argv[1], buf);
    TEST_CHECK(pd && ps && strstr(pd, "| attn_bwd") && strstr(pd, "| attn_bwd") < ps && strstr(pd, "| gemm_ex[gelu_tanh]") < ps,
               "%s: the double block's profile has its attention backward and GELU GEMM", argv[1]);
    TEST_CHECK(p0 && p1 && strstr(p0, "| adamw_multi") && strstr(p0, "| adamw_multi") < p1, "%s: the step's profile has AdamW", argv[1]);
    // and its GEMMs and attention per shape: the joint attention over 8 + 16 tokens, the image
    // stream's GELU GEMM (16 tokens × 4·64 from 64)
    const char *sh = pd ? strstr(pd, "GEMMs and attention by shape") : NULL;
    TEST_CHECK(sh && sh < ps && strstr(sh, "| attn_bwd | B1 H2 24×24 D32 | 1 |") && strstr(sh, "| gemm_ex[gelu_tanh] | NT 16×256×64 | 1 |"),
               "%s: the double block's shapes (joint attention, GELU GEMM) are missing:\n%s", argv[1], pd ? pd : buf);
    // f32 weights (--dtype f32): the update writes no cast copy, and the AdamW row must not claim one
    const char *aw = strstr(buf, "| AdamW on ");
    TEST_CHECK(aw && !strncmp(strchr(aw + 11, ' '), " adapter params |", 17), "%s: the f32 run's AdamW row: %.60s", argv[1],
               aw ? aw : "(missing)");
    TEST_CHECK(strstr(buf, "| frozen FLUX.1-dev | 11,901,408,320 |") && strstr(buf, "2,794,932,864"),
               "the memory table must use cameo's parameter counts (FLUX 11,901,408,320; adapter 2,794,932,864)");
    unlink(md);
}

// --md onto a full disk (/dev/full): the command fails at its first table, naming the file and the
// cause, instead of timing for minutes and returning 0 with the tables lost (its writes went unchecked)
static void md_full(void) {
    char *argv[] = {"--device", "cpu", "--dtype", "f32", "--tokens-txt", "8", "--tokens-img", "16", "--hidden", "64", "--heads", "2",
                    "--ip-tokens", "4", "--ip-dim", "48", "--warmup", "0", "--iters", "1", "--projector", "tiny", "--no-torch",
                    "--md", "/dev/full"};
    double t0 = progress_now();
    int rc = bench_blocks_main((int)(sizeof argv / sizeof *argv), argv);
    TEST_CHECK(rc == 1, "--md /dev/full: returned %d, want 1", rc);
    TEST_CHECK(progress_now() - t0 < 5, "--md /dev/full: failed at once (%.1f s)", progress_now() - t0);
}

int main(void) {
    whole_bench(1);  // first: see whole_bench
    char err[512];
    blocks_dims d = {.B = 1, .Lt = 8, .N = 12, .C = 64, .H = 2, .D = 32, .F = 256, .Li = 4, .Ci = 48};
    blocks_rig r;
    TEST_CHECK(blocks_rig_init(&r, &d, CM_DEV_CPU, CM_F32, 7, err, sizeof err) == 0, "rig: %s", err);
    TEST_CHECK(blocks_rig_init(&(blocks_rig){0}, &d, CM_DEV_CPU, CM_BF16, 7, err, sizeof err) == -1 && strstr(err, "f32"),
               "bf16 on the CPU must be refused: %s", err);

    for (int s = 0; s < 2; s++) {
        const char *name = s ? "single" : "double";
        blocks_flops f = s ? blocks_flops_single(&d) : blocks_flops_double(&d);
        double want = registry_fwd(&r, s);
        TEST_NEAR(f.fwd, want, 0, 1e-12, name);

        int64_t g0 = cm_gemm_calls;
        blocks_rig_run(&r, s, BLOCKS_FWD);
        int64_t g_fwd = cm_gemm_calls - g0;
        blocks_rig_reset(&r);
        TEST_CHECK(g_fwd == f.gemm_fwd, "%s forward: %lld GEMM calls, the model assumes %d", name, (long long)g_fwd, f.gemm_fwd);

        g0 = cm_gemm_calls;
        blocks_rig_run(&r, s, BLOCKS_FWDBWD);
        int64_t g_fb = cm_gemm_calls - g0;
        TEST_CHECK(g_fb == f.gemm_fwd + f.gemm_bwd, "%s fwd+bwd: %lld GEMM calls, the model assumes %d + %d", name,
                   (long long)g_fb, f.gemm_fwd, f.gemm_bwd);
        TEST_CHECK(grads_in(&r.ps_flux, NULL) == 0, "%s: %d frozen FLUX weights got a gradient", name, grads_in(&r.ps_flux, NULL));
        const char *ip = s ? "ip_adapter.1." : "ip_adapter.0.";
        TEST_CHECK(grads_in(&r.ps_ip, ip) == 6, "%s: %d of the 6 IP parameters got a gradient", name, grads_in(&r.ps_ip, ip));
        TEST_CHECK(r.h->grad && r.tok->grad && !r.temb_act->grad, "%s: dX for the block input and the tokens only", name);
        cm_tensor *gh = tensor_retain(r.h->grad), *gt = tensor_retain(r.tok->grad);
        blocks_rig_reset(&r);

        // under recompute: the forward runs twice (no-grad, then the replay), the gradients agree
        g0 = cm_gemm_calls;
        blocks_rig_run(&r, s, BLOCKS_RECOMPUTE);
        int64_t g_rc = cm_gemm_calls - g0;
        TEST_CHECK(g_rc == 2 * f.gemm_fwd + f.gemm_bwd, "%s recompute: %lld GEMM calls, want %d", name, (long long)g_rc,
                   2 * f.gemm_fwd + f.gemm_bwd);
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < tensor_numel(gh); i++) {
            worst = test_max(worst, fabs(tensor_get(r.h->grad, i) - tensor_get(gh, i)));
            scale = fmax(scale, fabs(tensor_get(gh, i)));
        }
        for (int64_t i = 0; i < tensor_numel(gt); i++) worst = test_max(worst, fabs(tensor_get(r.tok->grad, i) - tensor_get(gt, i)));
        TEST_CHECK(scale > 0 && worst <= 1e-5 * scale, "%s: recompute changes dX by %.3g (scale %.3g)", name, worst, scale);
        tensor_release(gh);
        tensor_release(gt);
        blocks_rig_reset(&r);
    }
    TEST_CHECK(autograd_tape_len() == 0, "tape left over: %lld", (long long)autograd_tape_len());
    blocks_rig_free(&r);

    // full size: the spec's arithmetic (§6): 24·L·C² per block for the linears, 4·L²·C attention;
    // IP per block 2·2·1024·4096·3072 + 4·N·1024·C; the projector ≈ 2.7 TFLOP forward
    blocks_dims dev = blocks_dims_flux_dev();
    const double C = 3072, L = 1536, N = 1024, ipf = 4.0 * 1024 * 4096 * C + 4.0 * N * 1024 * C;
    TEST_NEAR(blocks_flops_double(&dev).fwd, 24.0 * L * C * C + 24.0 * C * C + 4.0 * L * L * C + ipf, 0, 1e-12, "double, full size");
    TEST_NEAR(blocks_flops_single(&dev).fwd, 24.0 * L * C * C + 6.0 * C * C + 4.0 * L * L * C + ipf, 0, 1e-12, "single, full size");
    blocks_flops pf = blocks_flops_projector(&IC_PROJECTOR_FULL, 1, 729);
    TEST_NEAR(pf.fwd, 2.71e12, 0, 0.02, "projector forward ≈ 2.71 TFLOP (spec §6: 1.10 + 1.21 + 0.13 + 0.27)");
    TEST_CHECK(pf.bwd > 1.8 * pf.fwd && pf.bwd < 2.5 * pf.fwd, "projector backward %.3g vs forward %.3g", pf.bwd, pf.fwd);

    whole_bench(0);
    md_full();
    return test_summary("test_bench_blocks");
}
