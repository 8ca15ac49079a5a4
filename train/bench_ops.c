// bench_ops.c — `cameo bench ops`: GFLOP/s of linear and attention forward+backward through the
// autograd at transformer shapes, beside OpenBLAS's raw SGEMM peak measured in the same run and
// beside PyTorch CPU on the same shapes and threads (scripts/bench_ops_torch.py) when available;
// then the fused adaLN norm (op_layernorm_modulate) against layernorm + modulate, and the fused
// GELU MLPs (op_mlp_gelu, op_mlp_gelu_cat) against their composition, in ms.
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "train/bench.h"
#include "train/paths.h"
#include "train/progress.h"

static cm_tensor *rnd(int nd, const int64_t *shape, uint64_t seed, bool grad) {
    cm_tensor *t = tensor_empty(CM_F32, nd, shape, CM_DEV_CPU);
    tensor_fill_randn(t, seed, 0.5);
    if (grad) tensor_set_requires_grad(t, true);
    return t;
}

// OpenBLAS SGEMM n^3 GFLOP/s, best of reps after one warm-up call (also `cameo bench blocks`' CPU peak)
double bench_sgemm_peak(int n, int reps) {
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = progress_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = progress_now() - t0;
        if (r && dt < best) best = dt;  // first call warms up
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * n / best / 1e9;
}

static double bench_linear(int64_t T, int64_t K, int64_t N, int reps) {
    cm_tensor *x = rnd(SHAPE(T, K), 1, true), *w = rnd(SHAPE(N, K), 2, true), *b = rnd(SHAPE(N), 3, true);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = progress_now();
        cm_tensor *y = op_linear(x, w, b), *l = op_sum_all(y);
        autograd_backward(l, NULL);
        double dt = progress_now() - t0;
        tensor_release(y); tensor_release(l);
        tensor_zero_grad(x); tensor_zero_grad(w); tensor_zero_grad(b);
        if (r && dt < best) best = dt;
    }
    tensor_release(x); tensor_release(w); tensor_release(b);
    return 6.0 * T * K * N / best / 1e9;
}

static double bench_attention(int64_t T, int64_t H, int64_t D, int reps) {
    cm_tensor *q = rnd(SHAPE(1, H, T, D), 4, true), *k = rnd(SHAPE(1, H, T, D), 5, true), *v = rnd(SHAPE(1, H, T, D), 6, true);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = progress_now();
        cm_tensor *o = op_sdpa(q, k, v, NULL, 0), *l = op_sum_all(o);
        autograd_backward(l, NULL);
        double dt = progress_now() - t0;
        tensor_release(o); tensor_release(l);
        tensor_zero_grad(q); tensor_zero_grad(k); tensor_zero_grad(v);
        if (r && dt < best) best = dt;
    }
    tensor_release(q); tensor_release(k); tensor_release(v);
    return 12.0 * T * T * D * H / best / 1e9;  // fwd 4 T^2 D H + bwd 8 T^2 D H (no recompute counted)
}

// adaLN at FLUX's width: LayerNorm (no affine) then modulate, fused (one op) or not; forward +
// backward into x, scale and shift from a fixed output gradient; best of reps, in ms
static double bench_adanorm(int64_t L, int64_t C, bool fused, int reps) {
    cm_tensor *x = rnd(SHAPE(1, L, C), 7, true), *sc = rnd(SHAPE(1, C), 8, true), *sh = rnd(SHAPE(1, C), 9, true);
    cm_tensor *g = rnd(SHAPE(1, L, C), 10, false);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = progress_now();
        cm_tensor *y;
        if (fused) y = op_layernorm_modulate(x, NULL, NULL, 1e-6, sc, sh);
        else {
            cm_tensor *n = op_layernorm(x, NULL, NULL, 1e-6);
            y = op_modulate(n, sc, sh);
            tensor_release(n);
        }
        autograd_backward(y, g);
        double dt = progress_now() - t0;
        tensor_release(y);
        tensor_zero_grad(x); tensor_zero_grad(sc); tensor_zero_grad(sh);
        if (r && dt < best) best = dt;
    }
    tensor_release(x); tensor_release(sc); tensor_release(sh); tensor_release(g);
    return best * 1e3;
}

// FLUX's MLPs with frozen weights (the gradient reaches x, and pre for the single block's
// [attention | MLP] projection): fused (op_mlp_gelu / op_mlp_gelu_cat) or composed from
// linear, gelu, (concat,) linear; forward + backward from a fixed output gradient; best of reps, ms
static double bench_mlp(int64_t L, int64_t C, bool cat, bool fused, int reps) {
    const int64_t H = 4 * C, P = cat ? C : 0;
    cm_tensor *x = rnd(SHAPE(1, L, C), 11, true), *pre = cat ? rnd(SHAPE(1, L, C), 12, true) : NULL;
    cm_tensor *w1 = rnd(SHAPE(H, C), 13, false), *b1 = rnd(SHAPE(H), 14, false);
    cm_tensor *w2 = rnd(SHAPE(C, P + H), 15, false), *b2 = rnd(SHAPE(C), 16, false), *g = rnd(SHAPE(1, L, C), 17, false);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = progress_now();
        cm_tensor *y;
        if (fused) y = op_mlp_gelu_cat(pre, x, w1, b1, w2, b2);
        else {
            cm_tensor *h = op_linear(x, w1, b1), *a = op_gelu(h, true), *in = a;
            if (cat) {
                cm_tensor *parts[2] = {pre, a};
                in = op_concat(2, parts, 2);
            }
            y = op_linear(in, w2, b2);
            if (in != a) tensor_release(in);
            tensor_release(h), tensor_release(a);
        }
        autograd_backward(y, g);
        double dt = progress_now() - t0;
        tensor_release(y);
        tensor_zero_grad(x);
        if (pre) tensor_zero_grad(pre);
        if (r && dt < best) best = dt;
    }
    cm_tensor *rel[] = {x, pre, w1, b1, w2, b2, g};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) tensor_release(rel[i]);
    return best * 1e3;
}

// PyTorch's figures for the same rows, in order, from the helper script; 0 where unavailable
// the helper script, found as every asset is (beside the binary's tree, CAMEO_HOME): a bench run
// outside the repository root would otherwise show n/a without a word
static const char *torch_script(void) {
    static char script[1024];
    char err[256];
    if (!script[0] && cameo_asset(script, sizeof script, "scripts/bench_ops_torch.py", err, sizeof err)) {
        fprintf(stderr, "cameo bench ops: no PyTorch figures: %s\n", err);
        script[0] = 0;
        return NULL;
    }
    return script;
}

// runs the helper with args (the shapes, reps and threads of this run, so that it does the same
// work) and reads up to n numbers from it; how many. PyTorch runs with its own threading defaults,
// as in `cameo bench train` and `bench blocks`: not under the OMP_WAIT_POLICY=passive and
// OPENBLAS_THREAD_TIMEOUT cameo re-executes itself with (train/main.c)
static int torch_figures(const char *args, double *out, int n) {
    char cmd[4096];
    const char *script = torch_script();
    if (!script) return 0;
    snprintf(cmd, sizeof cmd,
             "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT -u OMP_NUM_THREADS python3 '%s' %s 2>/dev/null",
             script, args);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    int got = 0;
    while (got < n && fscanf(p, "%lf", &out[got]) == 1) got++;
    pclose(p);
    return got;
}

int bench_ops_main(int argc, char **argv) {
    bool quick = false, torch = true, tiny = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--tiny")) tiny = quick = true;
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cameo bench ops [--quick] [--tiny] [--no-torch]\n"
                   "  linear and attention forward + backward GFLOP/s against OpenBLAS's SGEMM peak and PyTorch\n"
                   "  (scripts/bench_ops_torch.py), then the fused adaLN and FLUX MLP ops against their composition\n"
                   "  --quick     smaller peak GEMM and fewer rows\n"
                   "  --tiny      as --quick at 1/16 of the widths (runs every table through: a test, not figures)\n"
                   "  --no-torch  skip the PyTorch figures\n");
            return 0;
        } else { fprintf(stderr, "cameo bench ops: unknown option '%s' (allowed: --quick, --tiny, --no-torch)\n", argv[i]); return 2; }
    }
    // --tiny divides every width and token count by 16 (attention's heads and head dim stay)
    const int64_t sc = tiny ? 16 : 1, pn = tiny ? 128 : quick ? 1024 : 2048;
    int threads = omp_get_max_threads(), reps = quick ? 1 : 3;
    double peak = bench_sgemm_peak((int)pn, reps);
    struct { const char *kind; int64_t a, b, c; } rows[] = {
        {"linear", 1024, 256, 1024}, {"linear", 1024, 1024, 1024}, {"linear", 4096, 1024, 1024}, {"linear", 1024, 3072, 3072},
        {"attention", 1024, 8, 64}, {"attention", 4096, 4, 64}, {"attention", 1024, 4, 128},
    };
    int nrows = quick ? 3 : (int)(sizeof rows / sizeof rows[0]);
    if (quick) { rows[2] = rows[4]; }
    for (int i = 0; i < nrows; i++) {
        rows[i].a /= sc;  // tokens; attention keeps its heads and head dim
        if (!strcmp(rows[i].kind, "linear")) rows[i].b /= sc, rows[i].c /= sc;
    }
    double pt[16] = {0};
    int npt = 0;
    if (torch) {  // the same rows in PyTorch: --rows kind:a:b:c,...
        char args[1024];
        int at = snprintf(args, sizeof args, "--threads %d --reps %d --rows ", threads, reps);
        for (int i = 0; i < nrows; i++)
            at += snprintf(args + at, sizeof args - (size_t)at, "%s%s:%lld:%lld:%lld", i ? "," : "", rows[i].kind,
                           (long long)rows[i].a, (long long)rows[i].b, (long long)rows[i].c);
        npt = torch_figures(args, pt, nrows);
    }
    printf("cameo bench ops — %d threads; OpenBLAS SGEMM %lldx%lldx%lld peak: %.1f GFLOP/s\n", threads, (long long)pn,
           (long long)pn, (long long)pn, peak);
    printf("| op (fwd+bwd) | shape | cameo GFLOP/s | %% of SGEMM peak | PyTorch GFLOP/s | cameo / PyTorch |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < nrows; i++) {
        double g;
        char shape[64];
        if (!strcmp(rows[i].kind, "linear")) {
            g = bench_linear(rows[i].a, rows[i].b, rows[i].c, reps);
            snprintf(shape, sizeof shape, "T=%lld %lld->%lld", (long long)rows[i].a, (long long)rows[i].b, (long long)rows[i].c);
        } else {
            g = bench_attention(rows[i].a, rows[i].b, rows[i].c, reps);
            snprintf(shape, sizeof shape, "T=%lld H=%lld D=%lld", (long long)rows[i].a, (long long)rows[i].b, (long long)rows[i].c);
        }
        char ptxt[32] = "n/a", rtxt[32] = "n/a";
        if (i < npt && pt[i] > 0) {
            snprintf(ptxt, sizeof ptxt, "%.1f", pt[i]);
            snprintf(rtxt, sizeof rtxt, "%.2fx", g / pt[i]);
        }
        printf("| %s | %s | %.1f | %.0f%% | %s | %s |\n", rows[i].kind, shape, g, 100.0 * g / peak, ptxt, rtxt);
    }
    printf("\n| adaLN, f32 (fwd+bwd: dx, dscale, dshift) | shape | fused ms | layernorm + modulate ms | speedup |\n");
    printf("|---|---|---|---|---|\n");
    const int64_t ada_L[2] = {1024 / sc, 4608 / sc}, C = 3072 / sc;  // FLUX's width
    for (int i = 0; i < (quick ? 1 : 2); i++) {
        double tu = bench_adanorm(ada_L[i], C, false, reps), tf = bench_adanorm(ada_L[i], C, true, reps);
        printf("| layernorm_modulate | B=1 L=%lld C=%lld | %.2f | %.2f | %.2fx |\n", (long long)ada_L[i], (long long)C, tf, tu, tu / tf);
    }
    const int64_t mlp_L = (quick ? 64 : 256) / sc;
    double ptm[2] = {0};
    if (torch) {  // the same two rows in PyTorch, ms
        char args[256];
        snprintf(args, sizeof args, "--threads %d --reps %d --mlp %lld --width %lld", threads, reps, (long long)mlp_L, (long long)C);
        torch_figures(args, ptm, 2);
    }
    printf("\n| FLUX MLP, f32, frozen weights (fwd+bwd: dx) | shape | fused ms | composed ms | speedup | PyTorch ms |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int cat = 0; cat < 2; cat++) {
        double tu = bench_mlp(mlp_L, C, cat, false, reps), tf = bench_mlp(mlp_L, C, cat, true, reps);
        char ptxt[32] = "n/a";
        if (ptm[cat] > 0) snprintf(ptxt, sizeof ptxt, "%.1f", ptm[cat]);
        // a '|' inside a cell must be escaped, or markdown splits the row into one column more
        printf("| %s | B=1 L=%lld C=%lld H=%lld | %.1f | %.1f | %.2fx | %s |\n",
               cat ? "mlp_gelu_cat ([attn \\| MLP] proj_out)" : "mlp_gelu (FeedForward)", (long long)mlp_L, (long long)C,
               (long long)(4 * C), tf, tu, tu / tf, ptxt);
    }
    return 0;
}
