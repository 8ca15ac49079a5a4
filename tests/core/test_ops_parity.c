// test_ops_parity.c — every op in f32 against PyTorch: outputs and input gradients from
// tests/fixtures/ops/ops.safetensors (scripts/fixtures_ops.py). Tolerance: max|ours - torch| <=
// 1e-5 * max(1, max|torch|) per tensor (normalised error 1e-5), except where a case says why.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "models/safetensors.h"
#include "testutil.h"

static st_file *fx;

static cm_tensor *load(const char *key, bool grad) {
    char err[256];
    const st_entry *e = st_find(fx, key);
    if (!e) return NULL;
    cm_tensor *t = st_to_tensor(e, CM_DEV_CPU, err, sizeof err);
    TEST_CHECK(t != NULL, "%s: %s", key, err);
    if (t && grad && t->dtype == CM_F32) tensor_set_requires_grad(t, true);
    return t;
}

static double compare(const char *what, cm_tensor *got, cm_tensor *want) {
    if (!got || !want) { TEST_CHECK(got && want, "%s: missing tensor (got %p want %p)", what, (void *)got, (void *)want); return 1; }
    TEST_CHECK(tensor_numel(got) == tensor_numel(want), "%s: %lld elements, expected %lld", what, (long long)tensor_numel(got), (long long)tensor_numel(want));
    double maxdiff = 0, maxref = 1;
    for (int64_t i = 0; i < tensor_numel(want); i++) {
        double a = tensor_get(got, i), b = tensor_get(want, i);
        if (fabs(a - b) > maxdiff || isnan(a)) maxdiff = isnan(a) ? INFINITY : fabs(a - b);
        if (fabs(b) > maxref) maxref = fabs(b);
    }
    return maxdiff / maxref;
}

typedef cm_tensor *(*case_fn)(cm_tensor **in);
static cm_tensor *f_add(cm_tensor **x) { return op_add(x[0], x[1]); }
static cm_tensor *f_sub(cm_tensor **x) { return op_sub(x[0], x[1]); }
static cm_tensor *f_mul(cm_tensor **x) { return op_mul(x[0], x[1]); }
static cm_tensor *f_div(cm_tensor **x) { return op_div(x[0], x[1]); }
static cm_tensor *f_gelu_tanh(cm_tensor **x) { return op_gelu(x[0], true); }
static cm_tensor *f_gelu_erf(cm_tensor **x) { return op_gelu(x[0], false); }
static cm_tensor *f_silu(cm_tensor **x) { return op_silu(x[0]); }
static cm_tensor *f_geglu(cm_tensor **x) { return op_geglu(x[0]); }
static cm_tensor *f_swiglu(cm_tensor **x) { return op_swiglu(x[0]); }
static cm_tensor *f_sum(cm_tensor **x) { return op_sum(x[0], 2, (int[]){0, 2}, false); }
static cm_tensor *f_mean(cm_tensor **x) { return op_mean(x[0], 1, (int[]){-1}, true); }
static cm_tensor *f_matmul(cm_tensor **x) { return op_matmul(x[0], x[1]); }
static cm_tensor *f_matmul_tb(cm_tensor **x) { return op_matmul_t(x[0], x[1], false, true); }
static cm_tensor *f_linear(cm_tensor **x) { return op_linear(x[0], x[1], x[2]); }
static cm_tensor *f_layernorm(cm_tensor **x) { return op_layernorm(x[0], x[1], x[2], 1e-6); }
static cm_tensor *f_layernorm_na(cm_tensor **x) { return op_layernorm(x[0], NULL, NULL, 1e-6); }
static cm_tensor *f_rmsnorm(cm_tensor **x) { return op_rmsnorm(x[0], x[1], 1e-6, CM_RMS_DIFFUSERS); }
static cm_tensor *f_rmsnorm_ic(cm_tensor **x) { return op_rmsnorm(x[0], x[1], 1e-6, CM_RMS_IC); }
static cm_tensor *f_groupnorm(cm_tensor **x) { return op_groupnorm(x[0], 4, x[1], x[2], 1e-6); }
static cm_tensor *f_softmax(cm_tensor **x) { return op_softmax(x[0]); }
static cm_tensor *f_sdpa(cm_tensor **x) { return op_sdpa(x[0], x[1], x[2], x[3], 0); }
static cm_tensor *f_sdpa_nomask(cm_tensor **x) { return op_sdpa(x[0], x[1], x[2], NULL, 0); }
static cm_tensor *f_rope(cm_tensor **x) { return op_rope(x[0], x[1], x[2]); }
static cm_tensor *f_modulate(cm_tensor **x) { return op_modulate(x[0], x[1], x[2]); }
static cm_tensor *f_timestep(cm_tensor **x) { return op_timestep_embedding(x[0], 32, true, 0); }
static cm_tensor *f_timestep_shift1(cm_tensor **x) { return op_timestep_embedding(x[0], 16, false, 1); }
static cm_tensor *f_conv2d(cm_tensor **x) { return op_conv2d(x[0], x[1], x[2], 2, 1); }
static cm_tensor *f_conv2d_patch(cm_tensor **x) { return op_conv2d(x[0], x[1], x[2], 4, 0); }
static cm_tensor *f_bicubic_down(cm_tensor **x) { return op_interp_bicubic(x[0], 5, 5); }
static cm_tensor *f_bicubic_up(cm_tensor **x) { return op_interp_bicubic(x[0], 7, 11); }
static cm_tensor *f_embedding(cm_tensor **x) { return op_embedding(x[0], x[1]); }
static cm_tensor *f_mse(cm_tensor **x) { return op_mse(x[0], x[1]); }
static cm_tensor *f_lnmod(cm_tensor **x) { return op_layernorm_modulate(x[0], x[1], x[2], 1e-6, x[3], x[4]); }
static cm_tensor *f_lnmod_na(cm_tensor **x) { return op_layernorm_modulate(x[0], NULL, NULL, 1e-6, x[1], x[2]); }

static const struct { const char *name; case_fn fn; int n; double tol; } cases[] = {
    {"add", f_add, 2, 1e-5}, {"sub", f_sub, 2, 1e-5}, {"mul", f_mul, 2, 1e-5}, {"div", f_div, 2, 1e-5},
    {"gelu_tanh", f_gelu_tanh, 1, 1e-5}, {"gelu_erf", f_gelu_erf, 1, 1e-5}, {"silu", f_silu, 1, 1e-5},
    {"geglu", f_geglu, 1, 1e-5}, {"swiglu", f_swiglu, 1, 1e-5}, {"sum", f_sum, 1, 1e-5}, {"mean", f_mean, 1, 1e-5},
    {"matmul", f_matmul, 2, 1e-5}, {"matmul_tb", f_matmul_tb, 2, 1e-5}, {"linear", f_linear, 3, 1e-5},
    {"layernorm", f_layernorm, 3, 1e-5}, {"layernorm_noaffine", f_layernorm_na, 1, 1e-5},
    {"rmsnorm", f_rmsnorm, 2, 1e-5}, {"rmsnorm_ic", f_rmsnorm_ic, 2, 1e-5}, {"groupnorm", f_groupnorm, 3, 1e-5},
    {"softmax", f_softmax, 1, 1e-5}, {"sdpa", f_sdpa, 4, 1e-5}, {"sdpa_nomask", f_sdpa_nomask, 3, 1e-5},
    {"rope", f_rope, 3, 1e-5}, {"modulate", f_modulate, 3, 1e-5},
    {"timestep", f_timestep, 1, 1e-5}, {"timestep_shift1", f_timestep_shift1, 1, 1e-5},
    {"conv2d", f_conv2d, 3, 1e-5}, {"conv2d_patch", f_conv2d_patch, 3, 1e-5},
    {"bicubic_down", f_bicubic_down, 1, 1e-5}, {"bicubic_up", f_bicubic_up, 1, 1e-5},
    {"embedding", f_embedding, 2, 1e-5}, {"mse", f_mse, 2, 1e-5},
    {"layernorm_modulate", f_lnmod, 5, 1e-5}, {"layernorm_modulate_noaffine", f_lnmod_na, 3, 1e-5},
};

int main(void) {
    char err[256];
    fx = st_open("tests/fixtures/ops/ops.safetensors", err, sizeof err);
    TEST_CHECK(fx != NULL, "%s", err);
    if (!fx) return test_summary("test_ops_parity");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char key[96];
        cm_tensor *in[5] = {0};
        for (int i = 0; i < cases[c].n; i++) {
            snprintf(key, sizeof key, "%s.in%d", cases[c].name, i);
            snprintf(err, sizeof err, "%s.gin%d", cases[c].name, i);
            in[i] = load(key, st_find(fx, err) != NULL);
        }
        cm_tensor *out = cases[c].fn(in);
        snprintf(key, sizeof key, "%s.out", cases[c].name);
        cm_tensor *want = load(key, false);
        double e = compare(key, out, want), worst = e;
        TEST_CHECK(e <= cases[c].tol, "%s: normalised error %.3g > %.1g", key, e, cases[c].tol);
        snprintf(key, sizeof key, "%s.gout", cases[c].name);
        cm_tensor *gout = load(key, false);
        if (out->requires_grad) autograd_backward(out, gout);
        for (int i = 0; i < cases[c].n; i++) {
            snprintf(key, sizeof key, "%s.gin%d", cases[c].name, i);
            cm_tensor *gw = load(key, false);
            if (!gw) continue;
            e = compare(key, in[i]->grad, gw);
            worst = test_max(worst, e);
            TEST_CHECK(e <= cases[c].tol, "%s: normalised error %.3g > %.1g", key, e, cases[c].tol);
            tensor_release(gw);
        }
        printf("%-28s max normalised error %.2e\n", cases[c].name, worst);
        tensor_release(out); tensor_release(want); tensor_release(gout);
        for (int i = 0; i < cases[c].n; i++) tensor_release(in[i]);
    }
    st_close(fx);
    return test_summary("test_ops_parity");
}
