// cpu_backend.c — the CPU backend table and its memory functions (64-byte aligned host memory).
// defines: cm_cpu_backend
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kernels/cpu/cpu_internal.h"

void cpu_bad_dtype(const char *op, cm_dtype dt) {
    cm_die(op, "the CPU backend has no kernel for dtype %d here (allowed: f32, f64)", (int)dt);
}

// 64-byte alignment: a cache line and one AVX-512 vector
static void *cpu_alloc(size_t nbytes) {
    size_t n = (nbytes + 63) & ~(size_t)63;
    return aligned_alloc(64, n ? n : 64);
}
static void cpu_free(void *p) { free(p); }
static void cpu_memcpy(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (n) memcpy(dst, src, n);
}
static void cpu_sync(const cm_kctx *k) {}
// one thread, no streams: the "asynchronous" copy is done on return, every event is complete (0)
static void cpu_memcpy_async(const cm_kctx *k, void *dst, const void *src, size_t n) {
    if (n) memcpy(dst, src, n);
}
static uint64_t cpu_event_record(const cm_kctx *k, cm_stream s) { return 0; }
static void cpu_event_wait(const cm_kctx *k, cm_stream s, uint64_t e) {}
static void cpu_event_sync(const cm_kctx *k, uint64_t e) {}
// the profiler's marks: the monotonic clock in ns (the CPU's work is done when its call returns)
static uint64_t cpu_timer_mark(const cm_kctx *k) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static double cpu_timer_ms(const cm_kctx *k, uint64_t a, uint64_t b) { return b >= a ? (double)(b - a) * 1e-6 : 0.0; }
static void cpu_timer_reset(const cm_kctx *k) {}
static size_t cpu_mem_free(const cm_kctx *k) {
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return (pages > 0 && psz > 0) ? (size_t)pages * (size_t)psz : 0;
}

const cm_backend cm_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memcpy_h2d = cpu_memcpy,
    .memcpy_d2h = cpu_memcpy,
    .memcpy_d2d = cpu_memcpy,
    .sync = cpu_sync,
    .mem_free = cpu_mem_free,
    .host_alloc = cpu_alloc,
    .host_free = cpu_free,
    .memcpy_h2d_async = cpu_memcpy_async,
    .event_record = cpu_event_record,
    .event_wait = cpu_event_wait,
    .event_sync = cpu_event_sync,
    .fill = cpu_fill,
    .copy_strided = cpu_copy_strided,
    .binary = cpu_binary,
    .axpby = cpu_axpby,
    .unary_fwd = cpu_unary_fwd,
    .unary_bwd = cpu_unary_bwd,
    .glu_fwd = cpu_glu_fwd,
    .glu_bwd = cpu_glu_bwd,
    .reduce_sum = cpu_reduce_sum,
    .sumsq = cpu_sumsq,
    .sumsq_multi = cpu_sumsq_multi,
    .gemm = cpu_gemm,
    .gemm_ex = cpu_gemm_ex,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .groupnorm_fwd = cpu_groupnorm_fwd,
    .groupnorm_bwd = cpu_groupnorm_bwd,
    .softmax_fwd = cpu_softmax_fwd,
    .softmax_bwd = cpu_softmax_bwd,
    .attn_fwd = cpu_attn_fwd,
    .attn_bwd = cpu_attn_bwd,
    .rope = cpu_rope,
    .rms_rope_fwd = cpu_rms_rope_fwd,
    .rms_rope_bwd = cpu_rms_rope_bwd,
    .modulate_fwd = cpu_modulate_fwd,
    .modulate_bwd = cpu_modulate_bwd,
    .gated_add = cpu_gated_add,
    .add_rows = cpu_add_rows,
    .layernorm_mod_fwd = cpu_layernorm_mod_fwd,
    .layernorm_mod_bwd = cpu_layernorm_mod_bwd,
    .timestep_fwd = cpu_timestep_fwd,
    .timestep_bwd = cpu_timestep_bwd,
    .im2col = cpu_im2col,
    .col2im = cpu_col2im,
    .bicubic_fwd = cpu_bicubic_fwd,
    .bicubic_bwd = cpu_bicubic_bwd,
    .conv2d_fwd = cpu_conv2d_fwd,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .mse_fwd = cpu_mse_fwd,
    .mse_bwd = cpu_mse_bwd,
    .adamw = cpu_adamw,
    .adamw_multi = cpu_adamw_multi,
    .timer_mark = cpu_timer_mark,
    .timer_ms = cpu_timer_ms,
    .timer_reset = cpu_timer_reset,
};
