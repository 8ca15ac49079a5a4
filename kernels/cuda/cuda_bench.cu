// cuda_bench.cu — the GPU benchmark (`cameo bench gpu` calls cuda_bench_main): the measured bf16
// matrix peak (cuBLASLt's best algorithm on a large GEMM), cameo's GEMM wrapper at FLUX shapes
// against cuBLAS's best, flash attention forward + backward at FLUX shapes in TFLOP/s and % of
// the measured peak, and the bandwidth of a few memory-bound kernels. Prints a table; with
// --md FILE also writes it as markdown. Never fails on slowness; returns 2 when no GPU is usable.
#include "cuda_common.cuh"
#include <string.h>
#include <time.h>

extern "C" const char *cuda_gemm_best_what(void);
extern "C" double cuda_gemm_best_ms(const cm_kctx *k, int64_t M, int64_t N, int64_t K, const void *A, const void *B,
                                    void *C, int max_algos, int iters);
extern "C" int cuda_device_count(void);
extern "C" bool cuda_attn_use(const char *which);  // cuda_attention.cu
extern "C" void cuda_attn_pair_use(int on);      // 1 on, 0 off, -1 CAMEO_ATTN_PAIR's choice
extern "C" void cuda_gemm_tune(int on);            // cuda_gemm.cu
extern "C" const char *cuda_attn_name(void);
extern "C" const char *cuda_unavailable_reason(void);
// cuda_attention_mma.cu, cuda_attention_wgmma.cu
extern "C" double cuda_ceiling_mma(const cm_kctx *k, int waves, int iters, int reps, double *tflops, int *nblocks);
extern "C" double cuda_ceiling_wgmma(const cm_kctx *k, int n, int waves, int iters, int reps, double *tflops, int *nblocks);

__global__ void k_bench_rand(int64_t n, bf16 *x, uint32_t seed, float amp) {
    GRID_STRIDE(i, n) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        h *= 0x846ca68bu;
        h ^= h >> 16;
        x[i] = __float2bfloat16_rn(amp * ((float)(h & 0xffffff) / 8388608.f - 1.f));
    }
}

static bf16 *brand(const cm_kctx *k, int64_t n, uint32_t seed, float amp) {
    bf16 *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, (size_t)n * sizeof(bf16)));
    k_bench_rand<<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(n, p, seed, amp);
    CUDA_LAUNCH_CHECK();
    return p;
}

typedef struct {
    char what[96];
    char shape[64];
    double ms, tflops, ref_tflops, pct;  // pct: of the peak or of the reference (see `vs`)
    char vs[96];  // (a copy: some callers format it on their stack)
} bench_row;
// a full run makes 72 rows (66 without PyTorch's); room to grow, and a row that does not fit fails
// the run (cuda_bench_tiny sees it) rather than vanishing from the table
#define MAX_ROWS 192
static bench_row rows[MAX_ROWS];
static int nrows, nlost;
static void add_row(const char *what, const char *shape, double ms, double tflops, double ref, double pct,
                    const char *vs) {
    if (nrows >= MAX_ROWS) {
        fprintf(stderr, "cameo bench gpu: more than %d rows; '%s' left out of the table (raise MAX_ROWS)\n", MAX_ROWS,
                what);
        nlost++;
        return;
    }
    bench_row *r = &rows[nrows++];
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->ms = ms, r->tflops = tflops, r->ref_tflops = ref, r->pct = pct;
    snprintf(r->vs, sizeof r->vs, "%s", vs ? vs : "");
    printf("  %-40s %-22s %9.3f ms %8.1f TF/s", what, shape, ms, tflops);
    if (ref > 0) printf("  ref %7.1f", ref);
    if (pct > 0) printf("  %5.1f%% %s", pct, vs);
    printf("\n");
    fflush(stdout);
}

static int has_nan_bf16(const cm_kctx *k, const bf16 *d, int64_t n) {
    int64_t m = n < 65536 ? n : 65536;
    uint16_t *h = (uint16_t *)malloc((size_t)m * 2);
    // on the context's stream: it is non-blocking, a plain cudaMemcpy would not wait for its work
    CUDA_CHECK(cudaMemcpyAsync(h, d, (size_t)m * 2, cudaMemcpyDeviceToHost, KSTREAM(k)));
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
    int bad = 0;
    for (int64_t i = 0; i < m; i++)
        if ((h[i] & 0x7f80) == 0x7f80) bad = 1;
    free(h);
    return bad;
}

extern "C" int cuda_bench_main(int argc, char **argv) {
    const char *md = NULL, *only = NULL;  // --only gemm|ff|attention|memory: that part (and the peak) alone
    int quick = 0, tiny = 0;
    nrows = nlost = 0;
    // PyTorch's scaled_dot_product_attention at the attention shapes (train/bench.c runs it):
    // fwd, bwd ms at FLUX's shape, fwd ms at SigLIP's, torch's version
    double t_fwd = 0, t_bwd = 0, t_sig = 0;
    char t_ver[64] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--md") && i + 1 < argc) md = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--torch-attn") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lf,%lf,%lf,%63s", &t_fwd, &t_bwd, &t_sig, t_ver) != 4) t_fwd = 0;
        }
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--tiny")) tiny = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: cameo bench gpu [--quick] [--tiny] [--no-torch] [--only gemm|ff|attention|memory] [--md FILE]\n"
                   "  bf16 peak, GEMM at FLUX shapes vs cuBLAS best, flash attention fwd+bwd at 4608 tokens x 24 heads x 128\n"
                   "  --tiny: every case at 1/32 of its size, one timed pass (runs everything through: a test, not figures)\n");
            return 0;
        }
    }
    if (cuda_device_count() == 0) {
        const char *r = cuda_unavailable_reason();
        fprintf(stderr, "cameo bench gpu: %s\n", r ? r : "no CUDA device");
        return 2;
    }
    const cm_kctx *k = cuda_backend_ctx(0);
    if (!k) return 2;
    const cm_backend *be = cm_cuda_backend;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    printf("cameo GPU benchmark: %s (sm_%d%d, %d SMs, %.0f GiB), driver %d, runtime %d, %s\n", prop.name, prop.major,
           prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, drv, rt, date);
    const int it = tiny ? 1 : quick ? 5 : 20;
    // the parts to run: all, or the one --only names (a profiler then sees few launches besides it)
    auto part = [&](const char *name) { return !only || !strcmp(only, name); };
    if (only && !part("gemm") && !part("ff") && !part("attention") && !part("memory")) {
        fprintf(stderr, "cameo bench gpu: --only '%s' (allowed: gemm, ff, attention, memory)\n", only);
        return 2;
    }
    // sizes: FLUX at 1024² (4608 tokens, 3072 = 24 x 128, MLP 12288), or 1/32 of that (--tiny)
    const int64_t TOK = tiny ? 144 : 4608, WID = tiny ? 96 : 3072, MLP = tiny ? 384 : 12288, NPK = tiny ? 256 : 8192;
    const int64_t NH = tiny ? 2 : 24, HD = tiny ? 48 : 128;  // heads x head dim = WID
    char sh_peak[48], sh_act[48], sh_qk[64];
    snprintf(sh_peak, sizeof sh_peak, "%lldx%lldx%lld", (long long)NPK, (long long)NPK, (long long)NPK);
    snprintf(sh_act, sizeof sh_act, "%lldx%lld", (long long)TOK, (long long)WID);

    // --- measured bf16 peak: cuBLASLt's best of its top algorithms on 8192^3 ---
    double peak = 0;
    {
        int64_t n = NPK;
        bf16 *A = brand(k, n * n, 1, 1.f), *B = brand(k, n * n, 2, 1.f), *Cm = brand(k, n * n, 3, 0.f);
        double ms = cuda_gemm_best_ms(k, n, n, n, A, B, Cm, 8, it);
        peak = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
        add_row("bf16 peak (cuBLASLt best, NN)", sh_peak, ms, peak, 0, 0, "");
        CUDA_CHECK(cudaFree(A));
        CUDA_CHECK(cudaFree(B));
        CUDA_CHECK(cudaFree(Cm));
    }

    // --- GEMM at FLUX shapes: cameo's wrapper (NN and the linear layer's NT) vs cuBLAS best ---
    const int64_t shapes[3][3] = {{TOK, WID, WID}, {TOK, WID, MLP}, {TOK, MLP, WID}};
    for (int s = 0; s < 3 && part("gemm"); s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        bf16 *A = brand(k, M * K, 11, 1.f), *B = brand(k, K * N, 12, 1.f), *Cm = brand(k, M * N, 13, 0.f);
        double flop = 2.0 * M * N * K;
        double best = cuda_gemm_best_ms(k, M, N, K, A, B, Cm, 8, it);
        double best_tf = flop / (best * 1e-3) / 1e12;
        char shp[64], of_best[96];
        snprintf(shp, sizeof shp, "%lldx%lldx%lld", (long long)M, (long long)N, (long long)K);
        snprintf(of_best, sizeof of_best, "of cuBLAS best (%s)", cuda_gemm_best_what());
        double ms_nn = cuda_time_ms(k, 2, it, [&] {
            be->gemm(k, CM_BF16, 0, 0, M, N, K, 1.0, A, K, 0, B, N, 0, 0.0, Cm, N, 0, 1);
        });
        double tf_nn = flop / (ms_nn * 1e-3) / 1e12;
        add_row("gemm cameo NN vs cuBLAS best", shp, ms_nn, tf_nn, best_tf, 100.0 * tf_nn / best_tf, of_best);
        // y = x W^T with W [N, K] (the linear layer)
        double ms_nt = cuda_time_ms(k, 2, it, [&] {
            be->gemm(k, CM_BF16, 0, 1, M, N, K, 1.0, A, K, 0, B, K, 0, 0.0, Cm, N, 0, 1);
        });
        double tf_nt = flop / (ms_nt * 1e-3) / 1e12;
        add_row("gemm cameo NT (linear) vs cuBLAS best", shp, ms_nt, tf_nt, best_tf, 100.0 * tf_nt / best_tf, of_best);
        // the same with CAMEO_GEMM_TUNE=1: the plan times the heuristic's first algorithms once
        // (its first call, here the warm-up) and keeps the fastest
        cuda_gemm_tune(1);
        for (int t = 0; t < 2; t++) {
            double ms_t = cuda_time_ms(k, 2, it, [&] {
                be->gemm(k, CM_BF16, 0, t, M, N, K, 1.0, A, K, 0, B, t ? K : N, 0, 0.0, Cm, N, 0, 1);
            });
            double tf_t = flop / (ms_t * 1e-3) / 1e12;
            add_row(t ? "gemm cameo NT, CAMEO_GEMM_TUNE=1" : "gemm cameo NN, CAMEO_GEMM_TUNE=1", shp, ms_t, tf_t, best_tf,
                    100.0 * tf_t / best_tf, "of cuBLAS best");
        }
        cuda_gemm_tune(-1);
        if (best_tf > peak) peak = best_tf;  // the peak is the best bf16 rate seen in this run
        CUDA_CHECK(cudaFree(A));
        CUDA_CHECK(cudaFree(B));
        CUDA_CHECK(cudaFree(Cm));
    }

    // --- the FLUX FeedForward's GELU on the tape, fused into the GEMMs or not (x [4608, 3072],
    // W1 [12288, 3072], W2 [3072, 12288]): forward h = x W1^T + b1, y = gelu(h) keeping h (one
    // GELU_AUX_BIAS GEMM vs the BIAS GEMM and the gelu kernel), backward dh = (g W2) * gelu'(h)
    // (one DGELU GEMM vs the GEMM and the unary backward kernel) ---
    if (part("ff")) {
        int64_t T = TOK, C = WID, Hd = MLP;
        bf16 *x = brand(k, T * C, 41, 1.f), *w1 = brand(k, Hd * C, 42, 0.02f), *b1 = brand(k, Hd, 43, 0.1f);
        bf16 *h = brand(k, T * Hd, 44, 0.f), *y = brand(k, T * Hd, 45, 0.f), *g = brand(k, T * C, 46, 1.f);
        bf16 *w2 = brand(k, C * Hd, 47, 0.02f), *dh = brand(k, T * Hd, 48, 0.f);
        double flop = 2.0 * T * C * Hd;
        char shp[64];
        snprintf(shp, sizeof shp, "%lldx%lld->%lld", (long long)T, (long long)C, (long long)Hd);
        double ms_u = cuda_time_ms(k, 2, it, [&] {
            be->gemm_ex(k, CM_BF16, 0, 1, T, Hd, C, 1.0, x, C, 0, w1, C, 0, 0.0, h, Hd, 0, 1, b1, CM_ACT_NONE, NULL);
            be->unary_fwd(k, CM_UN_GELU_TANH, CM_BF16, T * Hd, y, h);
        });
        double ms_f = cuda_time_ms(k, 2, it, [&] {
            be->gemm_ex(k, CM_BF16, 0, 1, T, Hd, C, 1.0, x, C, 0, w1, C, 0, 0.0, y, Hd, 0, 1, b1, CM_ACT_GELU_TANH, h);
        });
        add_row("ff up + gelu, h kept: gemm, gelu kernel", shp, ms_u, flop / (ms_u * 1e-3) / 1e12, 0, 0, "");
        add_row("ff up + gelu, h kept: GELU_AUX_BIAS", shp, ms_f, flop / (ms_f * 1e-3) / 1e12,
                flop / (ms_u * 1e-3) / 1e12, 100.0 * ms_u / ms_f, "of unfused speed");
        ms_u = cuda_time_ms(k, 2, it, [&] {
            be->gemm(k, CM_BF16, 0, 0, T, Hd, C, 1.0, g, C, 0, w2, Hd, 0, 0.0, dh, Hd, 0, 1);
            be->unary_bwd(k, CM_UN_GELU_TANH, CM_BF16, T * Hd, dh, h, dh);
        });
        ms_f = cuda_time_ms(k, 2, it, [&] {
            be->gemm_ex(k, CM_BF16, 0, 0, T, Hd, C, 1.0, g, C, 0, w2, Hd, 0, 0.0, dh, Hd, 0, 1, NULL, CM_ACT_DGELU_TANH, h);
        });
        add_row("ff down dX + dgelu: gemm, dgelu kernel", shp, ms_u, flop / (ms_u * 1e-3) / 1e12, 0, 0, "");
        add_row("ff down dX + dgelu: DGELU", shp, ms_f, flop / (ms_f * 1e-3) / 1e12, flop / (ms_u * 1e-3) / 1e12,
                100.0 * ms_u / ms_f, "of unfused speed");
        bf16 *bufs[] = {x, w1, b1, h, y, g, w2, dh};
        for (bf16 *b : bufs) CUDA_CHECK(cudaFree(b));
    }

    // --- the tensor-core instructions' own ceilings (no memory traffic): what the attention
    // kernels of each family can approach at best, against the measured peak ---
    int wrong = 0;  // ceilings whose sums came out wrong: a broken kernel, the run fails
    if (part("attention")) {
        // 4 full waves of as many blocks as fit an SM at once (--tiny: two blocks, one step)
        const int waves = tiny ? 0 : 4, reps = tiny ? 1 : 3;
        int blocks = 0;
        char shp[64];
        double tf = 0, ms = cuda_ceiling_mma(k, waves, tiny ? 1 : 1024, reps, &tf, &blocks);
        snprintf(shp, sizeof shp, "%d blocks x 4 warps", blocks);
        if (ms > 0) add_row("ceiling: mma.sync m16n8k16 (registers)", shp, ms, tf, 0, 100.0 * tf / peak, "of peak");
        else printf("  ceiling: mma.sync m16n8k16: WRONG SUMS (the fragment layout?)\n"), wrong++;
        for (int n = 128; n >= 64; n -= 64) {
            ms = cuda_ceiling_wgmma(k, n, waves, tiny ? 1 : 256, reps, &tf, &blocks);
            char what[96];
            snprintf(what, sizeof what, "ceiling: wgmma m64n%dk16 (A regs, B smem)", n);
            snprintf(shp, sizeof shp, "%d blocks x 4 warps", blocks);
            if (ms > 0) add_row(what, shp, ms, tf, 0, 100.0 * tf / peak, "of peak");
            else printf("  %s: %s\n", what, ms == -2 ? "no wgmma on this device or in this build" : "WRONG SUMS");
            wrong += ms == -1;
        }
    }

    // --- flash attention at FLUX shapes: B=1, 24 heads, 4608 tokens, D=128 ---
    if (part("attention")) {
        int64_t Bn = 1, H = tiny ? 2 : 24, L = TOK, D = 128;  // D stays 128: the FLUX kernels
        int64_t n = Bn * H * L * D;
        bf16 *Q = brand(k, n, 21, 1.f), *K = brand(k, n, 22, 1.f), *V = brand(k, n, 23, 1.f), *dO = brand(k, n, 24, 1.f);
        bf16 *O = brand(k, n, 25, 0.f), *dQ = brand(k, n, 26, 0.f), *dK = brand(k, n, 27, 0.f), *dV = brand(k, n, 28, 0.f);
        float *lse = NULL;
        CUDA_CHECK(cudaMalloc(&lse, (size_t)Bn * H * L * sizeof(float)));
        int64_t st[3] = {H * L * D, L * D, D};
        double scale = 1.0 / sqrt((double)D);
        double fl_f = 4.0 * Bn * H * L * L * D;  // QK^T and PV
        double fl_b = 2.5 * fl_f;                 // the usual 5-matmul count (the split kernels run 7: S and dP twice)
        int ai = tiny ? 1 : quick ? 3 : 10;
        char shp[64];
        snprintf(shp, sizeof shp, "B1 H%lld L%lld D128", (long long)H, (long long)L);
        // every fast kernel (CAMEO_ATTN=wmma / mma / mma8 / mma2 / wgmma / wgmma3, mma and wgmma with their
        // backward fused: CAMEO_ATTN_BWD), and how far the others' outputs are from wmma's
        enum { NKINDS = 10 };
        const char *kinds[NKINDS] = {"wmma",        "mma",    "mma-fused",    "mma8",       "mma2", "wgmma",
                                     "wgmma-fused", "wgmma3", "wgmma3-fused", "wgmma3-k128"};
        const char *dflt = cuda_attn_name();  // the kernels in use (CAMEO_ATTN or the default)
        double ms_dflt = 0;
        // O, dQ, dK of the first kind (wmma) and of the one timed now
        uint16_t *first[3], *now[3];
        for (int i = 0; i < 3; i++) first[i] = (uint16_t *)malloc((size_t)n * 2), now[i] = (uint16_t *)malloc((size_t)n * 2);
        for (int v = 0; v < NKINDS; v++) {
            cuda_attn_use(kinds[v]);
            char what[96];
            double ms_f = cuda_time_ms(k, 1, ai, [&] {
                be->attn_fwd(k, CM_BF16, Bn, H, L, L, D, scale, O, NULL, lse, Q, st, K, st, V, st, NULL, 0, 0);
            });
            CUDA_CHECK(cudaMemcpyAsync(v ? now[0] : first[0], O, (size_t)n * 2, cudaMemcpyDeviceToHost, KSTREAM(k)));
            CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
            double ms_b = cuda_time_ms(k, 1, ai, [&] {
                be->attn_bwd(k, CM_BF16, Bn, H, L, L, D, scale, dQ, dK, dV, dO, NULL, O, NULL, lse, Q, st, K, st, V, st, NULL, 0, 0);
            });
            CUDA_CHECK(cudaMemcpyAsync(v ? now[1] : first[1], dQ, (size_t)n * 2, cudaMemcpyDeviceToHost, KSTREAM(k)));
            CUDA_CHECK(cudaMemcpyAsync(v ? now[2] : first[2], dK, (size_t)n * 2, cudaMemcpyDeviceToHost, KSTREAM(k)));
            CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
            double tf = fl_f / (ms_f * 1e-3) / 1e12;
            snprintf(what, sizeof what, "attention fwd [%s]", kinds[v]);
            add_row(what, shp, ms_f, tf, 0, 100.0 * tf / peak, "of peak");
            tf = fl_b / (ms_b * 1e-3) / 1e12;
            snprintf(what, sizeof what, "attention bwd [%s]", kinds[v]);
            add_row(what, shp, ms_b, tf, 0, 100.0 * tf / peak, "of peak");
            tf = (fl_f + fl_b) / ((ms_f + ms_b) * 1e-3) / 1e12;
            if (!strcmp(kinds[v], dflt)) ms_dflt = ms_f + ms_b;
            snprintf(what, sizeof what, "attention fwd+bwd [%s] (target >= 60%%)", kinds[v]);
            add_row(what, shp, ms_f + ms_b, tf, 0, 100.0 * tf / peak, "of peak");
            if (has_nan_bf16(k, O, n) || has_nan_bf16(k, dQ, n) || has_nan_bf16(k, dK, n))
                printf("  WARNING: attention [%s] produced NaN/inf on random inputs\n", kinds[v]);
            for (int w = 0; v && w < 3; w++) {  // O, dQ, dK against wmma's (the reference kernels)
                double dmax = 0, omax = 1e-30;
                for (int64_t i = 0; i < n; i++) {
                    uint32_t xb = (uint32_t)first[w][i] << 16, yb = (uint32_t)now[w][i] << 16;
                    float x, y;
                    memcpy(&x, &xb, 4);
                    memcpy(&y, &yb, 4);
                    dmax = fmax(dmax, fabs((double)x - y)), omax = fmax(omax, fabs((double)x));
                }
                const char *wn[3] = {"O", "dQ", "dK"};
                printf("  attention %s, %s against wmma at FLUX shape: max |diff| %.3g (max |%s| %.3g)%s\n", wn[w], kinds[v], dmax,
                       wn[w], omax, dmax > 0.1 * omax ? "  WARNING: the outputs differ (bf16 rounding is ~1e-3 of the largest)" : "");
            }
        }
        for (int i = 0; i < 3; i++) free(first[i]), free(now[i]);
        cuda_attn_use(dflt);
        if (t_fwd > 0 && !tiny) {
            char what[96];
            snprintf(what, sizeof what, "attention fwd [PyTorch %s sdpa]", t_ver);
            add_row(what, shp, t_fwd, fl_f / (t_fwd * 1e-3) / 1e12, 0, 100.0 * fl_f / (t_fwd * 1e-3) / 1e12 / peak, "of peak");
            snprintf(what, sizeof what, "attention bwd [PyTorch %s sdpa]", t_ver);
            add_row(what, shp, t_bwd, fl_b / (t_bwd * 1e-3) / 1e12, 0, 100.0 * fl_b / (t_bwd * 1e-3) / 1e12 / peak, "of peak");
            double tt = t_fwd + t_bwd, tf_t = (fl_f + fl_b) / (tt * 1e-3) / 1e12;
            snprintf(what, sizeof what, "attention fwd+bwd [PyTorch %s sdpa]", t_ver);
            add_row(what, shp, tt, tf_t, 0, 100.0 * tf_t / peak, "of peak");
            if (ms_dflt > 0) {
                snprintf(what, sizeof what, "attention fwd+bwd [%s, the default] vs PyTorch", dflt);
                add_row(what, shp, ms_dflt, (fl_f + fl_b) / (ms_dflt * 1e-3) / 1e12, tf_t, 100.0 * tt / ms_dflt,
                        "of PyTorch's speed");
            }
        }
        // SigLIP's head dim 72 (729 tokens, 16 heads, batch 8)
        int64_t L2 = tiny ? 40 : 729, D2 = 72, H2 = tiny ? 2 : 16, B2 = tiny ? 1 : 8, n2 = B2 * H2 * L2 * D2;
        if (n2 <= n) {
            int64_t st2[3] = {H2 * L2 * D2, L2 * D2, D2};
            double f2 = 4.0 * B2 * H2 * L2 * L2 * D2;
            double ms2 = cuda_time_ms(k, 1, ai, [&] {
                be->attn_fwd(k, CM_BF16, B2, H2, L2, L2, D2, 1.0 / sqrt(72.0), O, NULL, lse, Q, st2, K, st2, V, st2, NULL, 0,
                             0);
            });
            char s2[48], what[96];
            snprintf(s2, sizeof s2, "B%lld H%lld L%lld D72", (long long)B2, (long long)H2, (long long)L2);
            snprintf(what, sizeof what, "attention fwd (SigLIP D=72) [%s]", dflt);
            add_row(what, s2, ms2, f2 / (ms2 * 1e-3) / 1e12, 0, 100.0 * f2 / (ms2 * 1e-3) / 1e12 / peak, "of peak");
            if (t_sig > 0 && !tiny) {
                snprintf(what, sizeof what, "attention fwd (SigLIP D=72) [PyTorch sdpa]");
                add_row(what, s2, t_sig, f2 / (t_sig * 1e-3) / 1e12, f2 / (ms2 * 1e-3) / 1e12, 100.0 * ms2 / t_sig,
                        "of cameo's speed");
            }
        }
        // the FLUX VAE's mid-block attention (one head of 512, no gradient: the frozen encoder at
        // every step, the decoder in evaluation): 4096 tokens at 512^2, 16384 at 1024^2, through GEMMs
        // (cuda_attention_gemm.cu; the flash kernels stop at 128), and at 512^2 on the warp-per-row
        // kernel it replaced (CAMEO_ATTN=generic). The row names the path that ran (the tiny run's
        // shapes are below the GEMM path's threshold).
        for (int r = 0; r < 3; r++) {
            const bool gen = r == 2;
            int64_t L3 = tiny ? 32 << (r & 1) : 4096 << (2 * (r & 1)), D3 = 512;
            if (L3 * D3 > n || L3 > Bn * H * L) continue;
            int64_t st3[3] = {L3 * D3, L3 * D3, D3};
            double f3 = 4.0 * L3 * L3 * D3;
            if (gen) cuda_attn_use("generic");
            const int64_t g0 = cm_attn_gemm_runs;
            double ms3 = cuda_time_ms(k, 1, tiny ? 1 : quick ? 2 : 5, [&] {
                be->attn_fwd(k, CM_BF16, 1, 1, L3, L3, D3, 1.0 / sqrt(512.0), O, NULL, lse, Q, st3, K, st3, V, st3, NULL, 0, 0);
            });
            if (gen) cuda_attn_use(dflt);
            char s3[48], what[96];
            snprintf(s3, sizeof s3, "B1 H1 L%lld D512", (long long)L3);
            snprintf(what, sizeof what, "attention fwd (VAE mid-block, %s) [%s]", (r & 1) ? "1024^2" : "512^2",
                     cm_attn_gemm_runs > g0 ? "GEMM path" : "generic");
            add_row(what, s3, ms3, f3 / (ms3 * 1e-3) / 1e12, 0, 100.0 * f3 / (ms3 * 1e-3) / 1e12 / peak, "of peak");
        }
        // the 512^2 training step's own attention shapes: the blocks' joint attention (512 text + 1024
        // image tokens) and the IP attention (1024 image tokens over 1024 IP tokens), both 24 x 128
        const int64_t shp512[2][2] = {{tiny ? 48 : 1536, tiny ? 48 : 1536}, {tiny ? 32 : 1024, tiny ? 32 : 1024}};
        // (mma2-fused: FlashAttention-2's arrangement, 32 queries per forward warp, dQ in the dK dV kernel)
        // (the last row: wgmma with its dQ and dK dV kernels on one stream, as before side streams)
        enum { NK512 = 9 };
        const char *k512[NK512] = {"mma",    "mma-fused",    "mma2-fused",  "wgmma", "wgmma-fused",
                                   "wgmma3", "wgmma3-fused", "wgmma3-k128", "wgmma"};
        for (int sh = 0; sh < 2; sh++) {
            const int64_t Lq = shp512[sh][0], Lk = shp512[sh][1];
            int64_t sq[3] = {H * Lq * D, Lq * D, D}, sk[3] = {H * Lk * D, Lk * D, D};
            double f5 = 4.0 * Bn * H * Lq * Lk * D, b5 = 2.5 * f5;
            char s5[64];
            snprintf(s5, sizeof s5, "B1 H%lld Lq%lld Lk%lld D128", (long long)H, (long long)Lq, (long long)Lk);
            for (int v = 0; v < NK512; v++) {
                cuda_attn_use(k512[v]);
                cuda_side_streams_use(v == NK512 - 1 ? 0 : -1);
                double ms_f = cuda_time_ms(k, 1, ai, [&] {
                    be->attn_fwd(k, CM_BF16, Bn, H, Lq, Lk, D, scale, O, NULL, lse, Q, sq, K, sk, V, sk, NULL, 0, 0);
                });
                double ms_b = cuda_time_ms(k, 1, ai, [&] {
                    be->attn_bwd(k, CM_BF16, Bn, H, Lq, Lk, D, scale, dQ, dK, dV, dO, NULL, O, NULL, lse, Q, sq, K, sk, V, sk,
                                 NULL, 0, 0);
                });
                char what[96];
                snprintf(what, sizeof what, "attention fwd+bwd at 512^2, %s [%s%s]", sh ? "IP" : "joint", k512[v],
                         v == NK512 - 1 ? ", one stream" : "");
                double tf = (f5 + b5) / ((ms_f + ms_b) * 1e-3) / 1e12;
                add_row(what, s5, ms_f + ms_b, tf, 0, 100.0 * tf / peak, "of peak");
            }
        }
        cuda_side_streams_use(-1);
        // both at once, as a FLUX block runs them (op_sdpa_tokens_pair): one after the other; on two
        // streams (the IP attention's blocks fill the joint one's last wave, every family); or, for
        // wgmma3 (its fused backward, its 128-key forward), one launch each way. The operands one after the other in
        // the buffers, O token-major [B, Lj + Li, H, D]
        for (int fam = 0; fam < 4; fam++) {
            static const char *const fams[4] = {"wgmma", "wgmma3", "wgmma3-fused", "wgmma3-k128"};
            const char *fname = fams[fam];
            if (!cuda_attn_use(fname)) continue;
            cm_attn_problem pp[2];
            const int64_t Lj = shp512[0][0], Li = shp512[1][0], Ltot = Lj + Li;
            static int64_t st[2][3], os2[3];
            os2[0] = Ltot * H * D, os2[1] = D, os2[2] = H * D;
            double fl = 0;
            for (int w = 0; w < 2; w++) {
                const int64_t Lq = shp512[w][0], Lk = shp512[w][1], off = w ? Bn * H * Lj * D : 0;
                st[w][0] = H * Lq * D, st[w][1] = Lq * D, st[w][2] = D;  // q, k, v alike (Lq = Lk)
                pp[w] = (cm_attn_problem){Bn, H, Lq, Lk, D, scale, O + (w ? Lj * H * D : 0), os2, lse + (w ? Bn * H * Lj : 0),
                                          Q + off, K + off, V + off, st[w], st[w], st[w], NULL, 0, 0,
                                          dQ + off, dK + off, dV + off, dO + (w ? Lj * H * D : 0), os2};
                fl += 3.5 * 4.0 * Bn * H * Lq * Lk * D;
            }
            // 0 one after the other (one stream), 1 two streams, 2 one launch each way (wgmma3)
            for (int grouped = 0; grouped < 2 + (fam > 0); grouped++) {
                cuda_side_streams_use(grouped == 0 ? 0 : -1);
                cuda_attn_pair_use(grouped == 2 ? -1 : 0);
                double ms = cuda_time_ms(k, 1, ai, [&] {
                    if (grouped) {
                        be->attn_fwd_group(k, CM_BF16, 2, pp);
                        be->attn_bwd_group(k, CM_BF16, 2, pp);
                    } else
                        for (int w = 0; w < 2; w++) {
                            const cm_attn_problem &p = pp[w];
                            be->attn_fwd(k, CM_BF16, p.B, p.H, p.Lq, p.Lk, p.D, p.scale, p.O, p.os, p.lse, p.Q, p.qs, p.K,
                                         p.ks, p.V, p.vs, NULL, 0, 0);
                            be->attn_bwd(k, CM_BF16, p.B, p.H, p.Lq, p.Lk, p.D, p.scale, p.dQ, p.dK, p.dV, p.dO, p.gs, p.O,
                                         p.os, p.lse, p.Q, p.qs, p.K, p.ks, p.V, p.vs, NULL, 0, 0);
                        }
                });
                char what[96], s6[64];
                static const char *const how[3] = {"one after the other", "two streams", "one launch each way"};
                snprintf(what, sizeof what, "attention fwd+bwd at 512^2, joint + IP [%s, %s]", fname, how[grouped]);
                snprintf(s6, sizeof s6, "Lq %lld + %lld", (long long)Lj, (long long)Li);
                double tf = fl / (ms * 1e-3) / 1e12;
                add_row(what, s6, ms, tf, 0, 100.0 * tf / peak, "of peak");
            }
            cuda_side_streams_use(-1);
            cuda_attn_pair_use(-1);
        }
        cuda_attn_use(dflt);
        CUDA_CHECK(cudaFree(Q));
        CUDA_CHECK(cudaFree(K));
        CUDA_CHECK(cudaFree(V));
        CUDA_CHECK(cudaFree(dO));
        CUDA_CHECK(cudaFree(O));
        CUDA_CHECK(cudaFree(dQ));
        CUDA_CHECK(cudaFree(dK));
        CUDA_CHECK(cudaFree(dV));
        CUDA_CHECK(cudaFree(lse));
    }

    // --- memory-bound kernels: GB/s (the "TF/s" column holds GB/s here) ---
    if (part("memory")) {
        int64_t R = TOK, Cc = WID, n = R * Cc;
        bf16 *x = brand(k, n, 31, 1.f), *y = brand(k, n, 32, 0.f), *w = brand(k, Cc, 33, 1.f);
        float *mean = NULL, *rstd = NULL;
        CUDA_CHECK(cudaMalloc(&mean, R * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&rstd, R * sizeof(float)));
        // the reference: a device-to-device copy of the same bytes (what one read + one write can do)
        double ms = cuda_time_ms(k, 2, it, [&] {
            CUDA_CHECK(cudaMemcpyAsync(y, x, (size_t)n * 2, cudaMemcpyDeviceToDevice, KSTREAM(k)));
        });
        const double copy_gbs = 2.0 * n * 2 / (ms * 1e-3) / 1e9;
        add_row("d2d copy bf16 (GB/s, the reference)", sh_act, ms, copy_gbs, 0, 0, "");
        auto bw_row = [&](const char *what, double bytes, double t) {
            double gbs = bytes / (t * 1e-3) / 1e9;
            add_row(what, sh_act, t, gbs, copy_gbs, 100.0 * gbs / copy_gbs, "of d2d copy");
        };
        ms = cuda_time_ms(k, 2, it, [&] {
            be->layernorm_fwd(k, CM_BF16, R, Cc, 1e-6, y, mean, rstd, x, w, NULL);
        });
        bw_row("layernorm_fwd bf16 (GB/s)", 2.0 * n * 2, ms);
        ms = cuda_time_ms(k, 2, it, [&] {
            be->unary_fwd(k, CM_UN_GELU_TANH, CM_BF16, n, y, x);
        });
        bw_row("gelu_tanh bf16 (GB/s)", 2.0 * n * 2, ms);
        {
            bf16 *x2 = brand(k, n, 53, 1.f);
            int64_t sh[2] = {R, Cc}, st[2] = {Cc, 1};
            ms = cuda_time_ms(k, 2, it, [&] { be->binary(k, CM_BIN_ADD, CM_BF16, 2, sh, y, x, st, x2, st); });
            bw_row("binary add bf16 (GB/s)", 3.0 * n * 2, ms);
            // [1, 4608, 24, 128] -> [1, 24, 4608, 128]: a head split's copy (16-byte pieces)
            int64_t psh[3] = {NH, R, HD}, pdst[3] = {R * HD, HD, 1}, psrc[3] = {HD, Cc, 1};
            ms = cuda_time_ms(k, 2, it, [&] { be->copy_strided(k, 3, psh, CM_BF16, y, pdst, CM_BF16, x, psrc); });
            bw_row("permuted copy bf16 (GB/s)", 2.0 * n * 2, ms);
            CUDA_CHECK(cudaFree(x2));
        }
        // the gated residual res + gate * y: the broadcast mul and the add it replaced, and gated_add
        {
            bf16 *res = brand(k, n, 50, 1.f), *gate = brand(k, Cc, 51, 1.f), *gy = brand(k, n, 52, 0.f);
            int64_t sh[3] = {1, R, Cc}, full[3] = {R * Cc, Cc, 1}, bcast[3] = {Cc, 0, 1};
            double ms_u = cuda_time_ms(k, 2, it, [&] {
                be->binary(k, CM_BIN_MUL, CM_BF16, 3, sh, gy, gate, bcast, x, full);
                be->binary(k, CM_BIN_ADD, CM_BF16, 3, sh, y, res, full, gy, full);
            });
            double ms_f = cuda_time_ms(k, 2, it, [&] { be->gated_add(k, CM_BF16, 1, R, Cc, y, res, gate, x); });
            double gb = 3.0 * n * 2 / 1e9;  // read res and y, write out
            add_row("gated residual: mul, add (GB/s)", sh_act, ms_u, gb / (ms_u * 1e-3), 0, 0, "");
            add_row("gated residual: gated_add (GB/s)", sh_act, ms_f, gb / (ms_f * 1e-3), gb / (ms_u * 1e-3),
                    100.0 * ms_u / ms_f, "of unfused speed");
            CUDA_CHECK(cudaFree(res));
            CUDA_CHECK(cudaFree(gate));
            CUDA_CHECK(cudaFree(gy));
        }
        // the IP output on the image rows of a single block's attention output (text TOK/9 rows first):
        // scale + slices + add + concat, against add_rows
        {
            const int64_t Lt = TOK / 9, Li = R - Lt;
            bf16 *ipo = brand(k, Li * Cc, 54, 1.f), *sc = brand(k, Li * Cc, 55, 0.f), *img = brand(k, Li * Cc, 56, 0.f);
            int64_t ish[2] = {Li, Cc}, st[2] = {Cc, 1};
            double ms_u = cuda_time_ms(k, 2, it, [&] {
                be->axpby(k, CM_BF16, Li * Cc, 0.7, ipo, 0.0, sc);                                  // op_scale
                be->binary(k, CM_BIN_ADD, CM_BF16, 2, ish, img, x + Lt * Cc, st, sc, st);            // image rows
                CUDA_CHECK(cudaMemcpyAsync(y, x, (size_t)Lt * Cc * 2, cudaMemcpyDeviceToDevice, KSTREAM(k)));  // concat
                CUDA_CHECK(cudaMemcpyAsync(y + Lt * Cc, img, (size_t)Li * Cc * 2, cudaMemcpyDeviceToDevice, KSTREAM(k)));
            });
            double ms_f = cuda_time_ms(k, 2, it, [&] { be->add_rows(k, CM_BF16, 1, R, Cc, Lt, Li, 0.7, y, x, ipo); });
            double gb = (2.0 * n + 1.0 * Li * Cc) * 2 / 1e9;  // read a and b, write out
            add_row("IP rows: scale, add, concat (GB/s)", sh_act, ms_u, gb / (ms_u * 1e-3), 0, 0, "");
            add_row("IP rows: add_rows (GB/s)", sh_act, ms_f, gb / (ms_f * 1e-3), gb / (ms_u * 1e-3), 100.0 * ms_u / ms_f,
                    "of unfused speed");
            CUDA_CHECK(cudaFree(ipo));
            CUDA_CHECK(cudaFree(sc));
            CUDA_CHECK(cudaFree(img));
        }
        // a double block's q (or k) preparation, text 512 + image 4096 rows, 24 heads x 128: the fused
        // rms_rope against what it replaced (rmsnorm per stream, concat, the permuted copy, rope)
        {
            const int64_t H = NH, D = HD, Ls[2] = {TOK / 9, TOK - TOK / 9}, L = TOK;  // text 512 + image 4096
            snprintf(sh_qk, sizeof sh_qk, "B1 L%lld+%lld H%lld D%lld", (long long)Ls[0], (long long)Ls[1], (long long)H,
                     (long long)D);
            // the tables f32, as the model keeps them: 2 L D random bf16 in [-1, 1] read as L D floats
            // (each near the value of its high half; finite)
            bf16 *cat = brand(k, n, 34, 0.f), *hm = brand(k, n, 35, 0.f), *cs = brand(k, 2 * L * D, 36, 1.f),
                 *sn = brand(k, 2 * L * D, 37, 1.f), *wq = brand(k, 2 * D, 38, 1.f), *dx = brand(k, n, 39, 0.f),
                 *dw = brand(k, 2 * D, 40, 0.f);
            float *inv = NULL;
            CUDA_CHECK(cudaMalloc(&inv, R * H * sizeof(float)));
            int64_t tok_shape[4] = {1, L, H, D}, hm_shape[4] = {1, H, L, D};
            int64_t tok_st[4] = {L * H * D, H * D, D, 1}, tok_as_hm[4] = {L * H * D, D, H * D, 1};
            int64_t hm_st[4] = {H * L * D, L * D, D, 1}, hm_as_tok[4] = {H * L * D, D, L * D, 1};
            double ms_u = cuda_time_ms(k, 2, it, [&] {
                for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++) {  // rmsnorm per stream, then its concat copy
                    be->rmsnorm_fwd(k, CM_RMS_DIFFUSERS, CM_BF16, Ls[s] * H, D, 1e-6, y, inv, x + l0 * H * D, wq + s * D);
                    int64_t sh[4] = {1, Ls[s], H, D};
                    be->copy_strided(k, 4, sh, CM_BF16, cat + l0 * H * D, tok_st, CM_BF16, y, tok_st);
                }
                be->copy_strided(k, 4, hm_shape, CM_BF16, hm, hm_st, CM_BF16, cat, tok_as_hm);  // the permuted copy
                be->rope(k, CM_BF16, CM_F32, H, L, D, 0, y, hm, cs, sn);
            });
            double ms_f = cuda_time_ms(k, 2, it, [&] {
                for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++)
                    be->rms_rope_fwd(k, CM_RMS_DIFFUSERS, CM_BF16, CM_F32, 1, Ls[s], H, D, 1e-6, L, l0, y, inv + l0 * H,
                                     x + l0 * H * D, wq + s * D, cs, sn);
            });
            double gb = 2.0 * n * 2 / 1e9;  // one read of x, one write of q: the least traffic
            add_row("q/k prep fwd: rmsnorm, concat, copy, rope", sh_qk, ms_u, gb / (ms_u * 1e-3), 0, 0, "");
            add_row("q/k prep fwd: rms_rope (GB/s)", sh_qk, ms_f, gb / (ms_f * 1e-3),
                    gb / (ms_u * 1e-3), 100.0 * ms_u / ms_f, "of unfused speed");
            ms_u = cuda_time_ms(k, 2, it, [&] {
                be->rope(k, CM_BF16, CM_F32, H, L, D, 1, hm, y, cs, sn);                         // rope backward
                be->copy_strided(k, 4, tok_shape, CM_BF16, cat, tok_st, CM_BF16, hm, hm_as_tok);  // permute + slices
                for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++)
                    be->rmsnorm_bwd(k, CM_RMS_DIFFUSERS, CM_BF16, Ls[s] * H, D, 1e-6, dx + l0 * H * D, dw + s * D,
                                    cat + l0 * H * D, x + l0 * H * D, inv + l0 * H, wq + s * D);
            });
            ms_f = cuda_time_ms(k, 2, it, [&] {
                for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++)
                    be->rms_rope_bwd(k, CM_RMS_DIFFUSERS, CM_BF16, CM_F32, 1, Ls[s], H, D, 1e-6, L, l0, dx + l0 * H * D,
                                     dw + s * D, y, x + l0 * H * D, inv + l0 * H, wq + s * D, cs, sn);
            });
            gb = 3.0 * n * 2 / 1e9;  // read dq and x, write dx
            add_row("q/k prep bwd: rope, copy, rmsnorm_bwd", sh_qk, ms_u, gb / (ms_u * 1e-3), 0, 0, "");
            add_row("q/k prep bwd: rms_rope_bwd (GB/s)", sh_qk, ms_f, gb / (ms_f * 1e-3),
                    gb / (ms_u * 1e-3), 100.0 * ms_u / ms_f, "of unfused speed");
            bf16 *bufs[] = {cat, hm, cs, sn, wq, dx, dw};
            for (bf16 *b : bufs) CUDA_CHECK(cudaFree(b));
            CUDA_CHECK(cudaFree(inv));
        }
        CUDA_CHECK(cudaFree(x));
        CUDA_CHECK(cudaFree(y));
        CUDA_CHECK(cudaFree(w));
        CUDA_CHECK(cudaFree(mean));
        CUDA_CHECK(cudaFree(rstd));
    }
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));

    if (md) {
        FILE *f = fopen(md, "w");
        if (!f) {
            fprintf(stderr, "cameo bench gpu: cannot write %s\n", md);
            return 1;
        }
        fprintf(f, "GPU: %s (sm_%d%d, %d SMs), driver %d, runtime %d, %s. Measured bf16 peak: %.1f TFLOP/s.\n\n",
                prop.name, prop.major, prop.minor, prop.multiProcessorCount, drv, rt, date, peak);
        fprintf(f, "| what | shape | ms | TFLOP/s (GB/s) | reference | %% |\n|---|---|---:|---:|---:|---|\n");
        for (int i = 0; i < nrows; i++) {
            bench_row *r = &rows[i];
            fprintf(f, "| %s | %s | %.3f | %.1f | ", r->what, r->shape, r->ms, r->tflops);
            if (r->ref_tflops > 0) fprintf(f, "%.1f", r->ref_tflops);
            fprintf(f, " | ");
            if (r->pct > 0) fprintf(f, "%.1f%% %s", r->pct, r->vs);
            fprintf(f, " |\n");
        }
        fclose(f);
    }
    if (wrong) fprintf(stderr, "cameo bench gpu: %d instruction ceiling(s) computed wrong sums\n", wrong);
    if (nlost) fprintf(stderr, "cameo bench gpu: %d row(s) left out of the table\n", nlost);
    return wrong ? 3 : nlost ? 4 : 0;
}
