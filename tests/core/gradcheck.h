// gradcheck.h — central finite-difference gradient checks in f64 for the op tests.
// defines: gc_fn, gradcheck, gc_rand
#pragma once
#include "autograd/autograd.h"
#include "autograd/ops.h"

// builds the op's output from leaf inputs (views, broadcasts etc. happen inside)
typedef cm_tensor *(*gc_fn)(cm_tensor **in, void *ctx);

// a leaf f64 tensor with N(0, 1) * scale + shift values, requires_grad set
cm_tensor *gc_rand(int ndim, const int64_t *shape, uint64_t seed, double scale, double shift);
// compares backward's gradients with central differences of loss = sum(out * R) for every input
// that requires grad; prints the worst error; returns the number of mismatches (also counted by TEST_CHECK)
int gradcheck(const char *name, gc_fn fn, void *ctx, int n, cm_tensor **in);
