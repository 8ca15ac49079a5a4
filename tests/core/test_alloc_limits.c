// test_alloc_limits.c — sizes past what 64 bits hold stop with a message instead of wrapping: a
// shape whose byte count overflows (it used to make a tensor with a wrapped, too small or empty,
// storage), and an allocation above 2^63 bytes (a size gone negative somewhere: the size-class
// rounding looped forever). Children are checked for exit status and stderr.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "autograd/alloc.h"
#include "testutil.h"

static void wrap_to_zero(void) {  // 2^64 f32 bytes: the count wrapped to 0, a tensor without storage
    cm_tensor *t = tensor_empty(CM_F32, SHAPE((int64_t)1 << 62), CM_DEV_CPU);
    printf("made %p\n", tensor_data(t));
}
static void wrap_numel(void) {  // 2^64 elements
    tensor_empty(CM_U8, SHAPE((int64_t)1 << 32, (int64_t)1 << 32), CM_DEV_CPU);
}
static void huge_get(void) { alloc_get(CM_DEV_CPU, ((size_t)1 << 63) + 4096, "a test buffer"); }
static void negative_get(void) { alloc_get(CM_DEV_CPU, (size_t)(int64_t)-4096, "a negative size"); }

int main(void) {
    alarm(120);  // a hang fails
    test_expect_death("f32 x 2^62", wrap_to_zero, "shape [4611686018427387904] f32: its byte count overflows 64 bits", NULL);
    test_expect_death("u8 2^32 x 2^32", wrap_numel, "shape [4294967296, 4294967296] u8: its byte count overflows", NULL);
    test_expect_death("alloc 2^63+4K", huge_get, "out of memory on cpu allocating 9223372036854779904 bytes for a test buffer", NULL);
    test_expect_death("alloc -4096", negative_get, "for a negative size", NULL);

    // still fine: a large shape whose bytes fit, as a view (no storage of that size is made)
    cm_tensor *base = tensor_zeros(CM_F32, SHAPE(1), CM_DEV_CPU);
    cm_tensor *v = tensor_view_raw(base, 2, (int64_t[]){(int64_t)1 << 30, (int64_t)1 << 30}, (int64_t[]){0, 0}, 0);
    TEST_CHECK(tensor_numel(v) == (int64_t)1 << 60, "a broadcast view of 2^60 elements");
    cm_tensor *e = tensor_empty(CM_F32, SHAPE((int64_t)1 << 40, 0), CM_DEV_CPU);
    TEST_CHECK(tensor_numel(e) == 0 && e->stride[0] == 0, "an empty tensor");
    // an allocation past any device: NULL at once, the cache untouched
    void *p = alloc_try(CM_DEV_CPU, ((size_t)1 << 63) + 1);
    TEST_CHECK(p == NULL, "alloc_try of 2^63 + 1 bytes");
    tensor_release(v), tensor_release(e), tensor_release(base);
    return test_summary("test_alloc_limits");
}
