// gradcheck.c — see gradcheck.h
#include "gradcheck.h"
#include <math.h>
#include <stdio.h>
#include "testutil.h"

cm_tensor *gc_rand(int ndim, const int64_t *shape, uint64_t seed, double scale, double shift) {
    cm_tensor *t = tensor_empty(CM_F64, ndim, shape, CM_DEV_CPU);
    tensor_fill_randn(t, seed, scale);
    double *p = tensor_data(t);
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] += shift;
    tensor_set_requires_grad(t, true);
    return t;
}

static double loss_of(gc_fn fn, void *ctx, cm_tensor **in, cm_tensor *R) {
    autograd_no_grad_push();
    cm_tensor *out = fn(in, ctx);
    cm_tensor *m = op_mul(out, R);
    cm_tensor *s = op_sum_all(m);
    double v = tensor_get(s, 0);
    tensor_release(out); tensor_release(m); tensor_release(s);
    autograd_no_grad_pop();
    return v;
}

int gradcheck(const char *name, gc_fn fn, void *ctx, int n, cm_tensor **in) {
    // analytic
    for (int i = 0; i < n; i++) tensor_zero_grad(in[i]);
    cm_tensor *out = fn(in, ctx);
    cm_tensor *R = tensor_empty(CM_F64, out->ndim, out->shape, CM_DEV_CPU);
    tensor_fill_randn(R, 1234, 1.0);
    cm_tensor *m = op_mul(out, R);
    cm_tensor *s = op_sum_all(m);
    autograd_backward(s, NULL);
    tensor_release(out); tensor_release(m); tensor_release(s);
    int bad = 0;
    double worst = 0;
    const double h = 1e-6;
    for (int i = 0; i < n; i++) {
        if (!in[i]->requires_grad) continue;
        TEST_CHECK(in[i]->grad != NULL, "%s: input %d got no gradient", name, i);
        if (!in[i]->grad) { bad++; continue; }
        double *x = tensor_data(in[i]);
        for (int64_t j = 0; j < tensor_numel(in[i]); j++) {
            double x0 = x[j];
            x[j] = x0 + h;
            double fp = loss_of(fn, ctx, in, R);
            x[j] = x0 - h;
            double fm = loss_of(fn, ctx, in, R);
            x[j] = x0;
            double num = (fp - fm) / (2 * h), ana = tensor_get(in[i]->grad, j);
            double err = fabs(num - ana) / (1e-6 + fabs(num));
            if (err > worst || isnan(err)) worst = isnan(err) ? INFINITY : err;
            if (!(fabs(num - ana) <= 1e-6 + 1e-5 * fabs(num))) {  // so written, a NaN on either side fails
                if (bad < 5) fprintf(stderr, "%s: input %d element %lld: analytic %.10g numeric %.10g\n", name, i, (long long)j, ana, num);
                bad++;
            }
        }
    }
    TEST_CHECK(bad == 0, "%s: %d gradient mismatches", name, bad);
    TEST_CHECK(autograd_tape_len() == 0, "%s: tape not empty after backward", name);
    printf("%-28s max rel err %.3g\n", name, worst);
    tensor_release(R);
    return bad;
}
