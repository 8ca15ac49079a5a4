// test_recompute_auto.c — train.recompute: auto's pieces: recompute_to_fit keeps the last blocks
// while they fit (the per-kind costs, the budget's edge), recompute_budget's test override and
// device figures, and the autograd statistic it reads (the bytes a scope's replay keeps).
#include <stdlib.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "train/recompute_auto.h"

// out = x * x * x: the replay keeps x * x for the second product's backward, and out
static cm_tensor *cube(void *ctx, int n, cm_tensor **in) {
    (void)ctx, (void)n;
    cm_tensor *x2 = op_mul(in[0], in[0]);
    cm_tensor *y = op_mul(x2, in[0]);
    tensor_release(x2);
    return y;
}

int main(void) {
    const double c2[2] = {10, 20};  // a kept double block costs 10, a single 20
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 1000) == 0, "room for all: none recomputes");
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 99) == 4, "no room even for the measured step: all recompute");
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 135) == 3, "room for one single block (the last): 3 recompute");
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 140) == 2, "exactly two single blocks: 2 recompute");
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 149) == 2, "two singles, not yet a double: 2");
    TEST_CHECK(recompute_to_fit(2, 2, 100, c2, 150) == 1, "and a double: 1");
    TEST_CHECK(recompute_to_fit(0, 0, 100, c2, 150) == 0, "no blocks: 0");

    // the ranks agree on the most cautious vote of those that measured; a rank without a sample abstains
    TEST_CHECK(recompute_agree((const double[]){3, 5, 2}, 3, 9) == 5, "the most cautious measured vote");
    TEST_CHECK(recompute_agree((const double[]){3, -1, 2}, 3, 9) == 3, "a rank that read no sample does not force all");
    TEST_CHECK(recompute_agree((const double[]){-1, -1}, 2, 9) == 9, "no rank measured: all recompute");
    TEST_CHECK(recompute_agree((const double[]){0}, 1, 9) == 0, "one rank, room for all");

    setenv("CAMEO_RECOMPUTE_BUDGET_MB", "3", 1);
    TEST_CHECK(recompute_budget(CM_DEV_CPU) == 3.0 * 1024 * 1024, "the test override, in MiB");
    unsetenv("CAMEO_RECOMPUTE_BUDGET_MB");
    double b = recompute_budget(CM_DEV_CPU);
    TEST_CHECK(b > 0, "the CPU's budget: its available memory less the margin (%.0f bytes)", b);

    // a scope's replay keeps x * x and out (4096 floats each, 16 KiB before the allocator's rounding)
    const int64_t n = 4096;
    cm_tensor *x = tensor_full(CM_F32, SHAPE(n), 1.5, CM_DEV_CPU);
    x->requires_grad = true;
    autograd_recompute_max_kept(true);
    cm_tensor *y = autograd_recompute(cube, NULL, 1, &x);
    TEST_CHECK(autograd_recompute_max_kept(false) == 0, "nothing measured before the backward replays the scope");
    cm_tensor *s = op_sum_all(y);
    autograd_backward(s, NULL);
    int64_t kept = autograd_recompute_max_kept(true);
    TEST_CHECK(kept >= 2 * n * 4 && kept <= 3 * n * 4, "the replay kept x*x and out: %lld bytes (want 32768 .. 49152)",
               (long long)kept);
    TEST_CHECK(autograd_recompute_max_kept(false) == 0, "reset");
    TEST_CHECK(x->grad && tensor_get(x->grad, 0) == 3 * 1.5 * 1.5, "the gradient through the replay: 3 x^2");
    tensor_release(s);
    tensor_release(y);
    tensor_release(x);
    return test_summary("test_recompute_auto");
}
