// test_op_errors.c — programmer errors stop with a message naming the op and the shapes: each
// case runs in a child process, whose exit status and stderr are checked.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "autograd/ops.h"
#include "testutil.h"

typedef void (*bad_fn)(void);

static cm_tensor *z(int nd, const int64_t *s) { return tensor_zeros(CM_F32, nd, s, CM_DEV_CPU); }
static void add_mismatch(void) { op_add(z(SHAPE(2, 3)), z(SHAPE(4, 3))); }
static void matmul_inner(void) { op_matmul(z(SHAPE(2, 3)), z(SHAPE(4, 5))); }
static void linear_width(void) { op_linear(z(SHAPE(2, 3)), z(SHAPE(5, 4)), NULL); }
static void dtype_mix(void) { op_mul(z(SHAPE(2)), tensor_zeros(CM_F64, SHAPE(2), CM_DEV_CPU)); }
static void sdpa_rank(void) { op_sdpa(z(SHAPE(2, 3, 4)), z(SHAPE(2, 3, 4)), z(SHAPE(2, 3, 4)), NULL, 0); }
static void reshape_count(void) { op_reshape(z(SHAPE(2, 3)), SHAPE(4, 2)); }
static void slice_range(void) { op_slice(z(SHAPE(2, 3)), 1, 1, 5); }
static void lnmod_scale(void) { op_layernorm_modulate(z(SHAPE(2, 3, 4)), NULL, NULL, 1e-6, z(SHAPE(2, 3)), z(SHAPE(2, 4))); }
static void lnmod_weight(void) { op_layernorm_modulate(z(SHAPE(2, 3, 4)), z(SHAPE(5)), NULL, 1e-6, z(SHAPE(2, 4)), z(SHAPE(2, 4))); }
static void gated_shape(void) { op_gated_add(z(SHAPE(2, 3, 4)), z(SHAPE(2, 4)), z(SHAPE(2, 5, 4))); }
static void add_rows_fit(void) { op_add_rows(z(SHAPE(1, 6, 4)), z(SHAPE(1, 4, 4)), 1.0, 3); }
static void rr_heads(void) {  // width 10 does not split into 4 heads
    op_rms_rope_heads(1, (cm_tensor *[]){z(SHAPE(1, 3, 10))}, NULL, 4, 1e-6, CM_RMS_DIFFUSERS, z(SHAPE(3, 2)), z(SHAPE(3, 2)));
}
static void rr_table(void) {  // RoPE table for 5 rows, sequence of 3 + 4
    op_rms_rope_heads(2, (cm_tensor *[]){z(SHAPE(1, 3, 8)), z(SHAPE(1, 4, 8))}, NULL, 2, 1e-6, CM_RMS_DIFFUSERS,
                      z(SHAPE(5, 4)), z(SHAPE(5, 4)));
}
static void bicubic_empty(void) { op_interp_bicubic(z(SHAPE(1, 1, 0, 5)), 4, 4); }  // read outside x (SIGSEGV)
static void i32_math(void) { op_gelu(tensor_zeros(CM_I32, SHAPE(2), CM_DEV_CPU), true); }

int main(void) {
    test_expect_death("add", add_mismatch, "add", "[2, 3] f32 cpu and [4, 3] f32 cpu");
    test_expect_death("matmul", matmul_inner, "matmul", "[4, 5]");
    test_expect_death("linear", linear_width, "linear", "[5, 4]");
    test_expect_death("dtypes", dtype_mix, "mul", "f64");
    test_expect_death("sdpa", sdpa_rank, "sdpa", "[2, 3, 4]");
    test_expect_death("reshape", reshape_count, "reshape", "[2, 3]");
    test_expect_death("slice", slice_range, "slice", "[1, 5)");
    test_expect_death("i32", i32_math, "unary", "i32");
    test_expect_death("gated_add", gated_shape, "gated_add", "[2, 5, 4]");
    test_expect_death("add_rows", add_rows_fit, "rows [3, 7) of b do not fit in a's 6", "[1, 4, 4]");
    test_expect_death("rms_rope heads", rr_heads, "rms_rope_heads", "[1, 3, 10]");
    test_expect_death("rms_rope cos", rr_table, "[L, D] = [7, 4]", "[5, 4]");
    test_expect_death("lnmod scale", lnmod_scale, "layernorm_modulate", "[2, 3] f32 cpu");
    test_expect_death("lnmod weight", lnmod_weight, "layernorm_modulate", "[5] f32 cpu");
    test_expect_death("bicubic empty", bicubic_empty, "interp_bicubic", "H, W > 0");
    return test_summary("test_op_errors");
}
