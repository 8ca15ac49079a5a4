// test_flux_frozen.c — FLUX-tiny frozen with the IP adapter trainable (fixture from
// scripts/fixtures_flux.py): gradients reach the adapter and the inputs only; no FLUX weight gets
// a .grad and no weight-gradient GEMM runs for one (cm_gemm_calls); per-block recompute gives
// the same gradients as the plain tape and keeps a lower peak.
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "kernels/backend.h"
#include "models/flux.h"
#include "models/ip_attn.h"
#include "models/safetensors.h"
#include "fixture.h"
#include "testutil.h"

#define DIR "tests/fixtures/flux/"

typedef struct {
    flux_model m;
    ip_attn ip;
    cm_params fps, ips;
    cm_tensor *x, *txt, *pooled, *sigma, *guid, *tok, *w;
    int gh, gw;
    double scale;
} rig;

// forward + backward of sum(out * w); returns the GEMM calls made by backward
static int64_t step(rig *r, int recompute, size_t *peak) {
    alloc_reset_peak(CM_DEV_CPU);
    size_t base = alloc_stats(CM_DEV_CPU).current;
    cm_tensor *out = flux_forward(&r->m, r->x, r->txt, r->pooled, r->sigma, r->guid, r->gh, r->gw, &r->ip, r->tok,
                                  r->scale, recompute);
    cm_tensor *prod = op_mul(out, r->w);
    cm_tensor *loss = op_sum_all(prod);
    tensor_release(prod);
    tensor_release(out);
    int64_t g0 = cm_gemm_calls;
    autograd_backward(loss, NULL);
    int64_t calls = cm_gemm_calls - g0;
    tensor_release(loss);
    if (peak) *peak = alloc_stats(CM_DEV_CPU).peak - base;
    return calls;
}

static void zero_all(rig *r) {
    cm_tensor *in[] = {r->x, r->txt, r->tok};
    for (int i = 0; i < 3; i++) tensor_zero_grad(in[i]);
    for (int i = 0; i < r->ips.n; i++) tensor_zero_grad(r->ips.items[i].t);
    for (int i = 0; i < r->fps.n; i++) tensor_zero_grad(r->fps.items[i].t);
}

// copies of every gradient the adapter step produces: x, txt, tokens, then the IP parameters
static int grab(rig *r, cm_tensor **g) {
    int n = 0;
    g[n++] = tensor_retain(r->x->grad);
    g[n++] = tensor_retain(r->txt->grad);
    g[n++] = tensor_retain(r->tok->grad);
    for (int i = 0; i < r->ips.n; i++) g[n++] = tensor_retain(r->ips.items[i].t->grad);
    return n;
}

int main(void) {
    char err[512];
    rig r;
    memset(&r, 0, sizeof r);
    flux_config c = flux_config_tiny();
    params_init_registry(&r.fps, CM_DEV_CPU, CM_F32, false);
    params_init_registry(&r.ips, CM_DEV_CPU, CM_F32, true);
    TEST_CHECK(flux_init(&r.m, &c, &r.fps, err, sizeof err) == 0, "init: %s", err);
    TEST_CHECK(flux_load(&r.m, &r.fps, DIR "flux_tiny.safetensors", err, sizeof err) == 0, "load: %s", err);
    st_file *io = st_open(DIR "io.safetensors", err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_flux_frozen");
    cm_tensor *meta = fixture_tensor(io, "meta"), *sc = fixture_tensor(io, "ip_scale");
    r.gh = (int)tensor_get(meta, 0);
    r.gw = (int)tensor_get(meta, 1);
    r.scale = tensor_get(sc, 0);
    ip_attn_config ic = {.n_modules = c.num_layers + c.num_single_layers, .heads = c.heads, .head_dim = c.head_dim,
                         .ip_dim = (int)tensor_get(meta, 4)};
    ip_attn_init(&r.ip, &ic, &r.ips, "ip_adapter");
    TEST_CHECK(params_load(&r.ips, DIR "ip_tiny.safetensors", NULL, true, NULL, err, sizeof err) == 0, "ip load: %s", err);
    r.x = fixture_tensor(io, "x");
    r.txt = fixture_tensor(io, "txt");
    r.pooled = fixture_tensor(io, "pooled");
    r.sigma = fixture_tensor(io, "sigma");
    r.guid = fixture_tensor(io, "guidance");
    r.tok = fixture_tensor(io, "ip_tokens");
    r.w = fixture_tensor(io, "loss_w");
    tensor_set_requires_grad(r.x, true);
    tensor_set_requires_grad(r.txt, true);
    tensor_set_requires_grad(r.tok, true);

    // 1. plain tape
    size_t peak_plain = 0, peak_rc = 0;
    int64_t calls_frozen = step(&r, 0, &peak_plain);
    int flux_grads = 0;
    for (int i = 0; i < r.fps.n; i++) flux_grads += r.fps.items[i].t->grad != NULL;
    TEST_CHECK(flux_grads == 0, "%d frozen FLUX weights received a gradient", flux_grads);
    TEST_CHECK(autograd_tape_len() == 0, "tape not empty after backward: %lld", (long long)autograd_tape_len());
    cm_tensor *g_plain[64], *g_rc[64];
    int ng = grab(&r, g_plain);
    cm_tensor *want = fixture_tensor(io, "grad.ip_tokens");
    TEST_CHECK(fixture_rel_err(r.tok->grad, want) <= 5e-5, "ip token grad %.3g", fixture_rel_err(r.tok->grad, want));
    tensor_release(want);
    zero_all(&r);

    // 2. per-block recompute: the same gradients, bit for bit — the inputs every block reads (temb,
    // the IP tokens) gather their per-block parts in the plain tape's order.
    int64_t calls_rc = step(&r, FLUX_RECOMPUTE_ALL, &peak_rc);
    TEST_CHECK(grab(&r, g_rc) == ng, "gradient count");
    double worst = 0;
    for (int i = 0; i < ng; i++) worst = test_max(worst, fixture_rel_err(g_rc[i], g_plain[i]));
    TEST_CHECK(worst == 0, "recompute changes gradients: %.3g", worst);
    flux_grads = 0;
    for (int i = 0; i < r.fps.n; i++) flux_grads += r.fps.items[i].t->grad != NULL;
    TEST_CHECK(flux_grads == 0, "recompute: %d frozen FLUX weights received a gradient", flux_grads);
    printf("recompute vs plain: worst max rel err %.3g over %d gradients\n", worst, ng);
    printf("peak bytes during forward+backward: plain %zu, recompute %zu\n", peak_plain, peak_rc);
    // the replayed blocks are extra forward GEMMs during backward
    TEST_CHECK(calls_rc > calls_frozen, "recompute must replay the block GEMMs (%lld vs %lld)", (long long)calls_rc,
               (long long)calls_frozen);
    TEST_CHECK(peak_rc < peak_plain, "recompute peak %zu not below plain %zu", peak_rc, peak_plain);
    for (int i = 0; i < ng; i++) tensor_release(g_rc[i]);
    zero_all(&r);

    // 2b. the first half of the blocks under recompute scopes, the rest on the plain tape: the
    // same gradients; only those blocks replay (GEMMs between none and all); peak between
    const int nb = c.num_layers + c.num_single_layers, half = nb / 2;
    size_t peak_half = 0;
    int64_t calls_half = step(&r, half, &peak_half);
    TEST_CHECK(grab(&r, g_rc) == ng, "gradient count");
    worst = 0;
    for (int i = 0; i < ng; i++) worst = test_max(worst, fixture_rel_err(g_rc[i], g_plain[i]));
    TEST_CHECK(worst == 0, "recompute of %d of %d blocks changes gradients: %.3g", half, nb, worst);
    printf("recompute %d of %d blocks: worst max rel err %.3g, %lld GEMMs (plain %lld, all %lld), peak %zu\n", half, nb,
           worst, (long long)calls_half, (long long)calls_frozen, (long long)calls_rc, peak_half);
    TEST_CHECK(calls_half > calls_frozen && calls_half < calls_rc, "recompute of %d blocks: %lld GEMMs, want between %lld and %lld",
               half, (long long)calls_half, (long long)calls_frozen, (long long)calls_rc);
    TEST_CHECK(peak_half <= peak_plain && peak_half >= peak_rc, "recompute of %d blocks: peak %zu outside [%zu, %zu]", half,
               peak_half, peak_rc, peak_plain);
    for (int i = 0; i < ng; i++) {
        tensor_release(g_plain[i]);
        tensor_release(g_rc[i]);
    }
    zero_all(&r);

    // 3. the same step with FLUX trainable: each FLUX Linear adds its one dW GEMM (a single block's
    // proj_out two: its [attention | MLP] input is never concatenated, op_mlp_gelu_cat), and the
    // conditioning path (off the tape while FLUX is frozen) adds the dX GEMMs of the embedders'
    // second layers (3) and of every AdaLayerNorm Linear reading silu(temb) (2 per double block,
    // 1 per single block, norm_out). The difference is exactly that: the frozen run formed no dW.
    int n_lin = 0;
    for (int i = 0; i < r.fps.n; i++) n_lin += r.fps.items[i].t->ndim == 2;
    int64_t cond_dx = 3 + 2 * c.num_layers + c.num_single_layers + 1;
    params_set_trainable(&r.fps, true);
    int64_t calls_train = step(&r, false, NULL);
    flux_grads = 0;
    for (int i = 0; i < r.fps.n; i++) flux_grads += r.fps.items[i].t->grad != NULL;
    TEST_CHECK(flux_grads == r.fps.n, "trainable FLUX: %d of %d weights got a gradient", flux_grads, r.fps.n);
    int n_dw = n_lin + c.num_single_layers;
    TEST_CHECK(calls_train - calls_frozen == n_dw + cond_dx, "frozen backward ran %lld GEMMs, trainable %lld: "
               "want a difference of %d dW + %lld dX", (long long)calls_frozen, (long long)calls_train, n_dw,
               (long long)cond_dx);
    printf("backward GEMMs: FLUX frozen %lld, FLUX trainable %lld (%d FLUX Linear weights)\n", (long long)calls_frozen,
           (long long)calls_train, n_lin);
    params_set_trainable(&r.fps, false);
    zero_all(&r);

    cm_tensor *all[] = {meta, sc, r.x, r.txt, r.pooled, r.sigma, r.guid, r.tok, r.w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tensor_release(all[i]);
    st_close(io);
    flux_free(&r.m);
    ip_attn_free(&r.ip);
    params_free(&r.fps);
    params_free(&r.ips);
    return test_summary("test_flux_frozen");
}
