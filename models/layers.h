// layers.h — the small building blocks every model shares: linear, norms, MLPs.
// Each layer holds borrowed pointers to tensors owned by a cm_params registry.
// defines: cm_linear, cm_norm, layers' *_init and *_fwd functions.
#pragma once
#include "autograd/ops.h"
#include "models/params.h"

typedef struct { cm_tensor *w, *b; } cm_linear;           // w [out, in], b [out] or NULL
typedef struct { cm_tensor *w, *b; double eps; } cm_lnorm; // LayerNorm; w, b may be NULL (no affine)
typedef struct { cm_tensor *w; double eps; cm_rmsvariant v; } cm_rms;

// registers "<prefix>.weight" / "<prefix>.bias"
cm_linear linear_init(cm_params *ps, const char *prefix, int64_t in, int64_t out, bool bias);
cm_tensor *linear_fwd(const cm_linear *l, cm_tensor *x);
// GELU(tanh)(x W^T + b): one GEMM with the GELU epilogue (on the tape it also keeps gelu's input)
cm_tensor *linear_gelu_fwd(const cm_linear *l, cm_tensor *x);
// l2(gelu_tanh(l1(x))) as one op (op_mlp_gelu): the hidden activation is never kept
cm_tensor *mlp_gelu_fwd(const cm_linear *l1, const cm_linear *l2, cm_tensor *x);
cm_lnorm lnorm_init(cm_params *ps, const char *prefix, int64_t dim, double eps, bool affine);
cm_tensor *lnorm_fwd(const cm_lnorm *n, cm_tensor *x);
// lnorm_fwd(x) * (1 + scale) + shift in one op (adaLN); x [B, L, C], scale, shift [B, C]
cm_tensor *lnorm_mod_fwd(const cm_lnorm *n, cm_tensor *x, cm_tensor *scale, cm_tensor *shift);
// RMSNorm weight name: "weight" (diffusers, T5) or "scale" (InstantCharacter)
cm_rms rms_init(cm_params *ps, const char *prefix, const char *wname, int64_t dim, double eps, cm_rmsvariant v);
cm_tensor *rms_fwd(const cm_rms *n, cm_tensor *x);

// printf-style name building: name_fmt(buf, "transformer_blocks.%d.attn", i)
const char *name_fmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define NAME_MAX_LEN 160
