// layers.c — linear, LayerNorm and RMSNorm layers over registry-owned weights.
#include "models/layers.h"
#include <stdarg.h>
#include <stdio.h>

const char *name_fmt(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, NAME_MAX_LEN, fmt, ap);
    va_end(ap);
    return buf;
}

cm_linear linear_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, bool bias) {
    cm_linear l;
    l.w = params_new(ps, prefix, "weight", 2, (int64_t[]){out, in}, CM_INIT_LINEAR_DEFAULT);
    l.b = bias ? params_new(ps, prefix, "bias", 1, (int64_t[]){out}, CM_INIT_ZEROS) : NULL;
    return l;
}

cm_tensor *linear_fwd(const cm_linear *l, cm_tensor *x) { return op_linear(x, l->w, l->b); }
cm_tensor *linear_gelu_fwd(const cm_linear *l, cm_tensor *x) { return op_linear_gelu(x, l->w, l->b); }
cm_tensor *mlp_gelu_fwd(const cm_linear *l1, const cm_linear *l2, cm_tensor *x) {
    return op_mlp_gelu(x, l1->w, l1->b, l2->w, l2->b);
}

cm_lnorm lnorm_init(cm_params *ps, const char *prefix, int64_t dim, double eps, bool affine) {
    cm_lnorm n = {NULL, NULL, eps};
    if (affine) {
        n.w = params_new(ps, prefix, "weight", 1, (int64_t[]){dim}, CM_INIT_ONES);
        n.b = params_new(ps, prefix, "bias", 1, (int64_t[]){dim}, CM_INIT_ZEROS);
    }
    return n;
}

cm_tensor *lnorm_fwd(const cm_lnorm *n, cm_tensor *x) { return op_layernorm(x, n->w, n->b, n->eps); }
cm_tensor *lnorm_mod_fwd(const cm_lnorm *n, cm_tensor *x, cm_tensor *scale, cm_tensor *shift) {
    return op_layernorm_modulate(x, n->w, n->b, n->eps, scale, shift);
}

cm_rms rms_init(cm_params *ps, const char *prefix, const char *wname, int64_t dim, double eps, cm_rmsvariant v) {
    cm_rms n = {params_new(ps, prefix, wname, 1, (int64_t[]){dim}, CM_INIT_ONES), eps, v};
    return n;
}

cm_tensor *rms_fwd(const cm_rms *n, cm_tensor *x) { return op_rmsnorm(x, n->w, n->eps, n->v); }
