// test_grad_embedding.c — finite-difference gradient check of embedding: embedding lookup with repeated indices.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *idx;
static cm_tensor *f(cm_tensor **in, void *c) { return op_embedding(in[0], idx); }

int main(void) {
    int32_t ids[5] = {3, 0, 3, 1, 4}; idx = tensor_from_host(CM_I32, SHAPE(5), ids, CM_DEV_CPU); cm_tensor *in[1] = {gc_rand(SHAPE(5, 3), 1, 1, 0)};
    gradcheck("embedding", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    tensor_release(idx);
    return test_summary("test_grad_embedding");
}
