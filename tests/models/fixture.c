// fixture.c — fixture tensors, relative error and the weighted-sum loss for the model tests.
#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"

cm_tensor *fixture_tensor(const st_file *f, const char *name) {
    char err[256];
    const st_entry *e = st_find(f, name);
    if (!e) cm_die("fixture", "%s: no tensor %s (run the scripts/fixtures_*.py that writes it)", st_path(f), name);
    cm_tensor *t = st_to_tensor(e, CM_DEV_CPU, err, sizeof err);
    if (!t) cm_die("fixture", "%s: %s", st_path(f), err);
    return t;
}

double fixture_rel_err(const cm_tensor *got, const cm_tensor *want) {
    int64_t n = tensor_numel(want);
    if (!got || tensor_numel(got) != n) return INFINITY;
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double a = tensor_get(got, i), b = tensor_get(want, i);
        double d = fabs(a - b);
        if (!(d <= num)) num = d;  // NaN propagates
        if (fabs(b) > den) den = fabs(b);
    }
    return num / den;
}

cm_tensor *fixture_dot(cm_tensor *a, cm_tensor *w) {
    cm_tensor *m = op_mul(a, w);
    cm_tensor *s = op_sum_all(m);
    tensor_release(m);
    return s;
}
